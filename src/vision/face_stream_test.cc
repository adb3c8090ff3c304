// Faces on streams (FaceStream: whole frame every frame, one tile per frame in turn, tile
// faces carried forward): the bookkeeping on made-up boxes, then real packaged photos played
// as streams through a real DetectorSet, as a pipeline runs them.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "vision/test_faces.h"
#include "vision/test_images.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using testdata::kOpencvData;

Detection Face(float x, float y, float side, float score = 0.9F) {
  return {"face", "face", "blazeface", score, cv::Rect2f(x, y, side, side), {}, {}};
}

cv::Point2f Centre(const Detection& d) {
  return {d.box.x + d.box.width / 2, d.box.y + d.box.height / 2};
}

// ---- the bookkeeping, no model -------------------------------------------------------------

constexpr int kWhole = FaceStream::kWholeFrame;
using Boxes = std::vector<std::vector<cv::Rect2f>>;

// A classifier that wavers: the face (a man) reads male 0.7-0.8 on most classifications but
// female 0.55-0.6 on every third, as an animated character or a turned head does.
Detection Classified(float x, int i) {
  Detection d = Face(x, 100, 80);
  const bool odd = i % 3 == 1;
  d.attributes = {{"gender", odd ? "female" : "male"},
                  {"gender_score", kserve::FormatScore(odd ? 0.6F : 0.75F)},
                  {"emotion", i < 20 ? "happy" : "sad"},
                  {"emotion_score", kserve::FormatScore(0.8F)},
                  {"age", kserve::FormatAge(i % 2 == 0 ? 30.0F : 50.0F)}};
  return d;
}

// One person keeps one answer: classified on every frame (as at each cycle's start), moving a
// little each frame, the wavering face keeps "male" on every frame after its first; without
// smoothing it flips on a third of them. Its emotion follows a real change within a few
// classifications; its age is the track's mean. Another face far away is its own track.
TEST(FaceStreamTest, ATrackedFaceKeepsItsGender) {
  for (const bool smooth : {true, false}) {
    FaceStreamOptions options;
    options.smooth_attributes = smooth;
    FaceStream s(options);
    int male = 0;
    int sad_from = -1;
    constexpr int kFrames = 40;
    for (int i = 0; i < kFrames; ++i) {
      s.Plan(cv::Size(640, 480), 0);
      Detection d = Classified(100 + 2.0F * i, i);
      s.SmoothAttributes(&d);
      Detection other = Face(500, 300, 60);
      other.attributes = {{"gender", "female"}, {"gender_score", kserve::FormatScore(0.9F)}};
      s.SmoothAttributes(&other);
      EXPECT_EQ(other.attributes["gender"], "female");
      male += d.attributes["gender"] == "male" ? 1 : 0;
      if (sad_from < 0 && d.attributes["emotion"] == "sad") sad_from = i;
      if (smooth && i == kFrames - 1) {
        EXPECT_NEAR(std::stod(d.attributes["age"]), 40.0, 0.6);
      }
      s.Merge(FaceScan{{d, other}, {{d.box, other.box}}});
    }
    if (smooth) {
      EXPECT_EQ(male, kFrames);  // >= 95% is the target; every frame here
      EXPECT_GE(sad_from, 20);
      EXPECT_LE(sad_from, 24);
    } else {
      EXPECT_LT(male, kFrames * 95 / 100);  // what the smoothing is for
    }
  }
}

TEST(FaceStreamTest, ScansEverySquareFirstThenOneSquarePerFrameInTurn) {
  FaceStream s;
  const cv::Size vga(640, 480);
  EXPECT_EQ(s.Plan(vga, 6), (std::vector<int>{kWhole, 0, 1, 2, 3, 4, 5}));
  s.Merge({{}, Boxes(7)});
  EXPECT_EQ(s.cycle(), 12);
  // The whole frame every other frame, the six tiles in turn in between.
  for (int frame = 0; frame < 25; ++frame) {
    const int slot = frame % 12;
    const std::vector<int> want = {slot % 2 == 0 ? kWhole : slot / 2};
    EXPECT_EQ(s.Plan(vga, 6), want) << frame;
    s.Merge({{}, Boxes(1)});
  }
  // Another frame size or tile layout: nothing carried fits it, so every square again.
  EXPECT_EQ(s.Plan(cv::Size(548, 342), 6).size(), 7U);
  s.Merge({{}, Boxes(7)});
  EXPECT_EQ(s.Plan(cv::Size(548, 342), 4).size(), 5U);
  s.Merge({{}, Boxes(5)});
  s.Reset();
  EXPECT_EQ(s.Plan(cv::Size(548, 342), 4).size(), 5U);
  s.Merge({{}, Boxes(5)});
  // No tiles (frame too small, tiles off, Haar): the whole frame every frame.
  EXPECT_EQ(s.Plan(cv::Size(200, 150), 0), std::vector<int>{kWhole});
  s.Merge({{}, Boxes(1)});
  EXPECT_EQ(s.Plan(cv::Size(200, 150), 0), std::vector<int>{kWhole});
  EXPECT_EQ(s.cycle(), 1);
  // The other schedule: the whole frame and a tile on every frame.
  FaceStream both(FaceStreamOptions{.whole_every_frame = true});
  EXPECT_EQ(both.Plan(vga, 6).size(), 7U);
  both.Merge({{}, Boxes(7)});
  EXPECT_EQ(both.cycle(), 6);
  for (int frame = 0; frame < 13; ++frame) {
    EXPECT_EQ(both.Plan(vga, 6), (std::vector<int>{kWhole, frame % 6})) << frame;
    both.Merge({{}, Boxes(2)});
  }
}

TEST(FaceStreamTest, ATilesFaceIsCarriedUntilThatTileIsScannedAgain) {
  FaceStream s;
  const cv::Size size(640, 480);
  const Detection small = Face(300, 200, 20);
  // First frame: every square; tile 2's pass found the small face, the whole pass did not.
  ASSERT_EQ(s.Plan(size, 3).size(), 4U);
  auto out = s.Merge({{small}, {{}, {}, {}, {small.box}}});
  ASSERT_EQ(out.size(), 1U);
  // The whole frame, tile 0, the whole frame, tile 1, the whole frame find nothing: tile 2
  // still holds the face.
  for (int square : {kWhole, 0, kWhole, 1, kWhole}) {
    ASSERT_EQ(s.Plan(size, 3), std::vector<int>{square});
    out = s.Merge({{}, Boxes(1)});
    ASSERT_EQ(out.size(), 1U) << "square " << square;
    EXPECT_EQ(out[0].box, small.box);
  }
  // Tile 2 again, and the face is gone: so is its detection.
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{2});
  EXPECT_TRUE(s.Merge({{}, Boxes(1)}).empty());
}

TEST(FaceStreamTest, AWholeFrameFaceIsCarriedToTheNextFrameOnly) {
  FaceStream s;
  const cv::Size size(640, 480);
  const Detection big = Face(200, 100, 200);
  ASSERT_EQ(s.Plan(size, 3).size(), 4U);
  s.Merge({{big}, {{big.box}, {}, {}, {}}});
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{kWhole});
  EXPECT_EQ(s.Merge({{big}, {{big.box}}}).size(), 1U);
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{0});  // a tile: the whole frame's face carried
  EXPECT_EQ(s.Merge({{}, Boxes(1)}).size(), 1U);
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{kWhole});  // gone from the whole frame: gone
  EXPECT_TRUE(s.Merge({{}, Boxes(1)}).empty());
}

TEST(FaceStreamTest, AFaceSeenByAFreshPassAndACarryingTileIsReportedOnce) {
  FaceStream s;
  const cv::Size size(640, 480);
  const Detection old_box = Face(100, 100, 60, 0.95F);
  const Detection other = Face(400, 300, 40);
  // Tiles 0 and 1 overlap and both found the face (two boxes of it), tile 2 another face.
  ASSERT_EQ(s.Plan(size, 3).size(), 4U);
  auto out = s.Merge({{old_box, other}, {{}, {old_box.box}, {Face(104, 98, 58).box}, {other.box}}});
  ASSERT_EQ(out.size(), 2U) << DetectionsToJson(out).dump();
  // The first face moved (IoU with the old box 0.29, the old centre inside the new box); the
  // whole pass finds it at the new place while tiles 0 and 1 still carry the old box: it is
  // reported once, at the fresh place, beside the other face tile 2 carries.
  const Detection moved = Face(128, 110, 60, 0.8F);
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{kWhole});
  out = s.Merge({{moved}, {{moved.box}}});
  ASSERT_EQ(out.size(), 2U) << DetectionsToJson(out).dump();
  EXPECT_EQ(out[0].box, moved.box);
  EXPECT_EQ(out[1].box, other.box);
}

TEST(FaceStreamTest, ACarriedFaceKeepsWhatItWasGivenWhenFound) {
  FaceStream s;
  const cv::Size size(640, 480);
  Detection classified = Face(300, 200, 24);
  classified.attributes["emotion"] = "happy";
  ASSERT_EQ(s.Plan(size, 2).size(), 3U);
  s.Merge({{classified}, {{}, {}, {classified.box}}});
  ASSERT_EQ(s.Plan(size, 2), std::vector<int>{kWhole});  // tile 1 carries the face
  auto out = s.Merge({{}, Boxes(1)});
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].attributes.at("emotion"), "happy");
}

TEST(FaceStreamTest, AttributesAreTakenOverWithinACycleAndClassifiedAgainAtItsStart) {
  FaceStream s;
  const cv::Size size(640, 480);
  Detection face = Face(100, 100, 60);
  Detection stranger = Face(400, 100, 60);
  // The first frame (every square) classifies every face.
  ASSERT_EQ(s.Plan(size, 3).size(), 4U);
  EXPECT_FALSE(s.TakeOverAttributes(&face));
  face.attributes["emotion"] = "sad";
  s.Merge({{face}, {{face.box}, {}, {}, {}}});
  // The cycle's first frame: classified again.
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{kWhole});
  EXPECT_FALSE(s.TakeOverAttributes(&face));
  face.attributes["emotion"] = "happy";
  s.Merge({{face}, {{face.box}}});
  // The rest of the cycle: the same face (moved a little) takes over "happy"; a new face
  // does not.
  for (int frame = 1; frame < s.cycle(); ++frame) {
    s.Plan(size, 3);
    Detection moved = Face(100 + static_cast<float>(frame), 100, 60);
    ASSERT_TRUE(s.TakeOverAttributes(&moved)) << frame;
    EXPECT_EQ(moved.attributes.at("emotion"), "happy");
    EXPECT_FALSE(s.TakeOverAttributes(&stranger)) << frame;
    s.Merge({{moved}, {{moved.box}}});
  }
  // The next cycle classifies again, so attributes are never more than a cycle old.
  ASSERT_EQ(s.Plan(size, 3), std::vector<int>{kWhole});
  EXPECT_FALSE(s.TakeOverAttributes(&face));
  s.Merge({{face}, {{face.box}}});
  // Without tiles every frame is a cycle; with reuse off nothing is taken over.
  s.Plan(cv::Size(200, 150), 0);
  EXPECT_FALSE(s.TakeOverAttributes(&face));
  FaceStream no_reuse(FaceStreamOptions{.reuse_attributes = false});
  no_reuse.Plan(size, 3);
  no_reuse.Merge({{face}, {{face.box}, {}, {}, {}}});
  no_reuse.Plan(size, 3);
  no_reuse.Merge({{face}, {{face.box}}});
  no_reuse.Plan(size, 3);
  EXPECT_FALSE(no_reuse.TakeOverAttributes(&face));
}

// ---- real photos through a real DetectorSet ----------------------------------------------

cv::Mat Load(const std::string& path) {
  auto img = ReadImageFile(path);
  EXPECT_TRUE(img.has_value()) << (img ? "" : img.error().message());
  return img ? *img : cv::Mat(1, 1, CV_8UC3);
}

// A photo with no one in it, at another photo's size (so the tile layout is the same and
// nothing is reset between them).
cv::Mat FaceFree(cv::Size size) {
  cv::Mat out;
  cv::resize(Load(std::string(kOpencvData) + "box.png"), out, size, 0, 0, cv::INTER_AREA);
  return out;
}

// messi5.jpg (548x342): one face of 32 pixels near (240, 116), which only the tiles find.
const cv::Point2f kMessiFace(240, 116);

bool HasFaceNear(const std::vector<Detection>& ds, cv::Point2f at) {
  return std::any_of(ds.begin(), ds.end(),
                     [&](const Detection& d) { return cv::norm(Centre(d) - at) < 20; });
}

std::shared_ptr<DetectorSet> Detectors(bool tiles = true) {
  DetectorSetOptions o;
  o.face.tiles = tiles;
  auto set = DetectorSet::Create(o);
  EXPECT_TRUE(set.has_value()) << (set ? "" : set.error().message());
  return set ? std::shared_ptr<DetectorSet>(std::move(*set)) : nullptr;
}

std::vector<Detection> Faces(DetectorSet* set, const std::string& detector, const cv::Mat& frame,
                             StreamState* stream) {
  auto ds = set->Run(detector, frame, stream);
  EXPECT_TRUE(ds.has_value()) << (ds ? "" : ds.error().message());
  return ds ? *ds : std::vector<Detection>();
}

TEST(FaceStreamPhotoTest, TheWholeFramePassAloneMissesMessisFace) {
  // What the rest depends on: without tiles the 32-pixel face is not found, so finding it
  // on a stream is the round-robin tile's doing.
  auto set = Detectors(/*tiles=*/false);
  ASSERT_NE(set, nullptr);
  StreamState stream;
  const cv::Mat messi = Load(std::string(kOpencvData) + "messi5.jpg");
  EXPECT_FALSE(HasFaceNear(Faces(set.get(), "faces", messi, nullptr), kMessiFace));
  EXPECT_FALSE(HasFaceNear(Faces(set.get(), "faces", messi, &stream), kMessiFace));
  EXPECT_EQ(stream.Faces("faces")->cycle(), 1);
}

// A stream that starts empty (its first, full scan finds nothing), then Messi walks in: a
// round-robin tile must reach him within one cycle, and he stays on every later frame.
void SmallFaceOnAStream(DetectorSet* set, const std::string& detector,
                        const FaceStreamOptions& options) {
  const cv::Mat messi = Load(std::string(kOpencvData) + "messi5.jpg");
  StreamState stream(options);
  EXPECT_TRUE(Faces(set, detector, FaceFree(messi.size()), &stream).empty());
  const int cycle = stream.Faces(detector)->cycle();
  // 548x342: tiles of 195 px, 2 rows x 4 columns (the last flush with the right edge), and
  // the whole frame every other frame.
  ASSERT_EQ(FaceTiles(messi.size()).size(), 8U);
  ASSERT_EQ(cycle, options.whole_every_frame ? 8 : 16);
  int first_seen = -1;
  for (int frame = 0; frame < 4 * cycle; ++frame) {
    const auto faces = Faces(set, detector, messi, &stream);
    if (first_seen < 0 && HasFaceNear(faces, kMessiFace)) first_seen = frame;
    if (first_seen >= 0) {
      ASSERT_EQ(faces.size(), 1U) << detector << " frame " << frame << ": "
                                  << DetectionsToJson(faces).dump();
      EXPECT_TRUE(HasFaceNear(faces, kMessiFace)) << detector << " frame " << frame;
      if (detector == "face_attributes") {  // classified when found, kept while carried
        EXPECT_EQ(faces[0].attributes.count("emotion"), 1U) << "frame " << frame;
      }
    }
  }
  EXPECT_GE(first_seen, 0) << detector << ": never found";
  EXPECT_LT(first_seen, cycle) << detector;
}

TEST(FaceStreamPhotoTest, ASmallFaceIsFoundWithinACycleAndReportedOnEveryFrameAfter) {
  auto set = Detectors();
  ASSERT_NE(set, nullptr);
  for (const std::string& detector : {std::string("faces"), std::string("face_attributes")}) {
    if (!set->Has(detector)) continue;  // face_attributes needs the converted models
    for (const bool whole_every_frame : {false, true}) {
      SCOPED_TRACE(detector + (whole_every_frame ? ", whole every frame" : ", default"));
      SmallFaceOnAStream(set.get(), detector,
                         FaceStreamOptions{.whole_every_frame = whole_every_frame});
    }
  }
}

TEST(FaceStreamPhotoTest, AFaceThatLeavesIsGoneWithinACycle) {
  auto set = Detectors();
  ASSERT_NE(set, nullptr);
  const cv::Mat messi = Load(std::string(kOpencvData) + "messi5.jpg");
  const cv::Mat empty = FaceFree(messi.size());
  StreamState stream;
  for (int frame = 0; frame < 8; ++frame) {
    ASSERT_TRUE(HasFaceNear(Faces(set.get(), "faces", messi, &stream), kMessiFace)) << frame;
  }
  const int cycle = stream.Faces("faces")->cycle();
  int gone_at = -1;
  for (int frame = 0; frame < 3 * cycle; ++frame) {
    const auto faces = Faces(set.get(), "faces", empty, &stream);
    if (gone_at < 0 && faces.empty()) gone_at = frame;
    if (gone_at >= 0) {
      EXPECT_TRUE(faces.empty()) << frame << ": " << DetectionsToJson(faces).dump();
    }
  }
  EXPECT_GE(gone_at, 0);
  EXPECT_LT(gone_at, cycle);
}

// Faces at the right and bottom edges and in the bottom-right corner on streams of several
// frame sizes: the round-robin reaches them within a cycle and they stay on every later frame
// (the tiles of rounded-down counts never covered those strips).
TEST(FaceStreamPhotoTest, FacesAtTheFramesEdgesAreFoundWithinACycle) {
  auto set = Detectors();
  ASSERT_NE(set, nullptr);
  struct Case {
    cv::Size size;
    int side;
  };
  for (const Case& c : {Case{{640, 480}, 100}, Case{{1280, 720}, 150}, Case{{960, 540}, 120}}) {
    const int height = c.side * testdata::kHopperFace.height / testdata::kHopperFace.width;
    for (const cv::Point at : testdata::EdgePlaces(c.size, c.side, height)) {
      cv::Rect truth;
      const cv::Mat frame = testdata::FrameWithFace(c.size, c.side, at, &truth);
      if (frame.empty()) GTEST_SKIP() << "SKIPPED: facedetect or opencv-doc photos missing";
      SCOPED_TRACE(std::to_string(c.size.width) + "x" + std::to_string(c.size.height) + ", " +
                   std::to_string(c.side) + " px face at (" + std::to_string(at.x) + ", " +
                   std::to_string(at.y) + ")");
      const cv::Point2f centre(truth.x + truth.width / 2.0F, truth.y + truth.height / 2.0F);
      StreamState stream;
      cv::Mat empty;
      cv::resize(Load(std::string(kOpencvData) + "fruits.jpg"), empty, c.size, 0, 0,
                 cv::INTER_AREA);
      EXPECT_TRUE(Faces(set.get(), "faces", empty, &stream).empty());
      const int cycle = stream.Faces("faces")->cycle();
      int first_seen = -1;
      for (int frame_no = 0; frame_no < 2 * cycle; ++frame_no) {
        const auto faces = Faces(set.get(), "faces", frame, &stream);
        const bool seen = std::any_of(faces.begin(), faces.end(), [&](const Detection& d) {
          return cv::norm(Centre(d) - centre) < 0.3 * c.side;
        });
        if (first_seen < 0 && seen) first_seen = frame_no;
        if (first_seen >= 0) {
          EXPECT_TRUE(seen) << "frame " << frame_no;
          EXPECT_EQ(faces.size(), 1U)
              << "frame " << frame_no << ": " << DetectionsToJson(faces).dump();
        }
      }
      EXPECT_GE(first_seen, 0) << "never found";
      EXPECT_LT(first_seen, cycle);
    }
  }
}

TEST(FaceStreamPhotoTest, AFaceTheWholePassAndTheTilesBothSeeIsReportedOnce) {
  auto set = Detectors();
  ASSERT_NE(set, nullptr);
  // Big faces: the whole pass finds them every frame and the tiles over them find (parts
  // of) them too and carry them.
  for (const std::string& path :
       {std::string(testdata::kGraceHopper), std::string(testdata::kSkimage) + "astronaut.png",
        std::string(testdata::kSkimage) + "camera.png"}) {
    const cv::Mat photo = Load(path);
    StreamState stream;
    for (int frame = 0; frame < 26; ++frame) {
      const auto faces = Faces(set.get(), "faces", photo, &stream);
      ASSERT_EQ(faces.size(), 1U) << path << " frame " << frame << ": "
                                  << DetectionsToJson(faces).dump();
    }
  }
}

TEST(FaceStreamPhotoTest, AStreamsFaceAttributesAreThoseOfTheStillImage) {
  auto set = Detectors();
  ASSERT_NE(set, nullptr);
  if (!set->Has("face_attributes")) GTEST_SKIP() << "SKIPPED: converted face models missing";
  // The same photo on every frame: classified, taken over or carried, the attributes must be
  // the photo's own on every frame.
  for (const std::string& path :
       {std::string(testdata::kGraceHopper), std::string(kOpencvData) + "messi5.jpg"}) {
    const cv::Mat photo = Load(path);
    const auto still = Faces(set.get(), "face_attributes", photo, nullptr);
    ASSERT_EQ(still.size(), 1U) << path;
    ASSERT_FALSE(still[0].attributes.empty()) << path;
    StreamState stream;
    for (int frame = 0; frame < 26; ++frame) {
      const auto faces = Faces(set.get(), "face_attributes", photo, &stream);
      ASSERT_EQ(faces.size(), 1U) << path << " frame " << frame;
      EXPECT_EQ(faces[0].attributes, still[0].attributes) << path << " frame " << frame;
    }
  }
}

TEST(FaceStreamPhotoTest, StreamsSharingADetectorSetKeepTheirOwnState) {
  auto set = Detectors();
  ASSERT_NE(set, nullptr);
  const cv::Mat messi = Load(std::string(kOpencvData) + "messi5.jpg");
  const cv::Mat empty = FaceFree(messi.size());
  // Same detector, same frame size, frames interleaved as two pipelines' would be: what one
  // stream's tiles carry must never show in the other, nor in a still image between them.
  StreamState door;
  StreamState shelf;
  for (int frame = 0; frame < 26; ++frame) {
    EXPECT_TRUE(HasFaceNear(Faces(set.get(), "faces", messi, &door), kMessiFace)) << frame;
    EXPECT_TRUE(Faces(set.get(), "faces", empty, &shelf).empty()) << frame;
    EXPECT_TRUE(Faces(set.get(), "faces", empty, nullptr).empty()) << frame;
  }
  // A stream that resets (its frames went to the cloud) scans in full again at once.
  door.Reset();
  EXPECT_TRUE(HasFaceNear(Faces(set.get(), "faces", messi, &door), kMessiFace));
}

}  // namespace
}  // namespace storevisor::vision
