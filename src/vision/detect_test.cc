// Detectors on real packaged photos: faces where there are faces and none where there are
// none, the four EAN-13 codes of 4_barcodes.jpg, the cookie box of box.png in box_in_scene.png,
// hands and their gesture in handSrc.jpg and messi5.jpg, the words of a street sign, and QR
// codes made by Debian's qrencode at test time (no package ships a photo of a QR code).
#include <gtest/gtest.h>

#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "common/child_process.h"
#include "common/files.h"
#include "vision/test_faces.h"
#include "vision/test_images.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using testdata::kOpencvData;
using testdata::kSkimage;

cv::Mat Load(const std::string& path) {
  auto img = ReadImageFile(path);
  EXPECT_TRUE(img.has_value()) << (img ? "" : img.error().message());
  return img ? *img : cv::Mat();
}

std::unique_ptr<FaceDetector> MakeFaces(FaceBackend backend) {
  auto paths = FindModels("");
  EXPECT_TRUE(paths.has_value()) << (paths ? "" : paths.error().message());
  if (!paths) return nullptr;
  FaceDetectorOptions options;
  options.backend = backend;
  auto det = FaceDetector::Create(*paths, options);
  EXPECT_TRUE(det.has_value()) << (det ? "" : det.error().message());
  return det ? std::move(*det) : nullptr;
}

struct FacePhoto {
  std::string path;
  cv::Point2f face_center;  // by eye, from looking at the photo
};

TEST(FaceDetectorTest, BlazeFaceFindsTheOneFaceInEachPortrait) {
  auto det = MakeFaces(FaceBackend::kBlazeFace);
  ASSERT_NE(det, nullptr);
  const std::vector<FacePhoto> photos = {
      {testdata::kGraceHopper, {268, 228}},
      {std::string(kSkimage) + "astronaut.png", {225, 132}},
      {std::string(kSkimage) + "camera.png", {222, 160}},
      {std::string(kOpencvData) + "messi5.jpg", {240, 116}},
  };
  for (const auto& photo : photos) {
    auto faces = det->Detect(Load(photo.path));
    ASSERT_TRUE(faces.has_value()) << photo.path;
    ASSERT_EQ(faces->size(), 1U) << photo.path << ": " << DetectionsToJson(*faces).dump();
    const Detection& f = faces->front();
    const cv::Point2f center(f.box.x + f.box.width / 2, f.box.y + f.box.height / 2);
    EXPECT_LT(cv::norm(center - photo.face_center), 0.5 * f.box.width + 10)
        << photo.path << ": face at " << DetectionsToJson(*faces).dump();
    EXPECT_GT(f.score, 0.75F);
    EXPECT_EQ(f.points.size(), 6U);  // eyes, nose, mouth, ears
  }
}

TEST(FaceDetectorTest, BlazeFaceFindsNoFaceInPhotosWithoutPeople) {
  auto det = MakeFaces(FaceBackend::kBlazeFace);
  ASSERT_NE(det, nullptr);
  for (const std::string& path :
       {std::string(kOpencvData) + "box.png", std::string(kOpencvData) + "box_in_scene.png",
        std::string(kOpencvData) + "fruits.jpg", std::string(kOpencvData) + "baboon.jpg",
        std::string(kSkimage) + "chelsea.png", std::string(kSkimage) + "coffee.png",
        std::string(kSkimage) + "rocket.jpg", std::string(testdata::kFourBarcodes)}) {
    auto faces = det->Detect(Load(path));
    ASSERT_TRUE(faces.has_value()) << path;
    EXPECT_TRUE(faces->empty()) << path << ": " << DetectionsToJson(*faces).dump();
  }
}

TEST(FaceTilesTest, TheTilesCoverEveryPixelAndOverlapByAQuarter) {
  for (const cv::Size size :
       {cv::Size(640, 480), cv::Size(1280, 720), cv::Size(548, 342), cv::Size(512, 512),
        cv::Size(1920, 1080), cv::Size(480, 640), cv::Size(1000, 230)}) {
    SCOPED_TRACE(std::to_string(size.width) + "x" + std::to_string(size.height));
    const std::vector<cv::Rect2f> tiles = FaceTiles(size);
    ASSERT_FALSE(tiles.empty());
    cv::Mat covered(size, CV_8U, cv::Scalar(0));
    for (const cv::Rect2f& t : tiles) {
      EXPECT_GE(t.x, -0.01F);
      EXPECT_GE(t.y, -0.01F);
      EXPECT_LE(t.x + t.width, size.width + 0.01F);
      EXPECT_LE(t.y + t.height, size.height + 0.01F);
      covered(cv::Rect(t) & cv::Rect(0, 0, size.width, size.height)).setTo(255);
      // Each tile overlaps its right neighbour (if any) by at least a quarter of a tile.
      for (const cv::Rect2f& u : tiles) {
        if (u.y == t.y && u.x > t.x && u.x - t.x < t.width) {
          EXPECT_GE(t.x + t.width - u.x, 0.25F * t.width - 0.01F);
        }
      }
    }
    // Every pixel is in some tile (the rounded-down counts left 40-60 px strips out).
    const cv::Rect2f last = tiles.back();
    EXPECT_NEAR(last.x + last.width, size.width, 1.0);
    EXPECT_NEAR(last.y + last.height, size.height, 1.0);
    EXPECT_EQ(cv::countNonZero(covered), size.area()) << "uncovered pixels";
  }
  EXPECT_TRUE(FaceTiles(cv::Size(300, 200)).empty());  // tiles under the model's input: none
}

// The issue's case: faces of 80-150 px reaching into the right or bottom strip of the frame
// were never found at 640x480 or 1280x720 (Haar found them). Now found at every edge.
TEST(FaceDetectorTest, FacesAtTheFramesEdgesAreFound) {
  auto det = MakeFaces(FaceBackend::kBlazeFace);
  ASSERT_NE(det, nullptr);
  struct Case {
    cv::Size size;
    int side;
  };
  for (const Case& c : {Case{{640, 480}, 100}, Case{{640, 480}, 80}, Case{{1280, 720}, 150},
                        Case{{960, 540}, 120}}) {
    const int height = c.side * testdata::kHopperFace.height / testdata::kHopperFace.width;
    for (const cv::Point at : testdata::EdgePlaces(c.size, c.side, height)) {
      cv::Rect truth;
      const cv::Mat frame = testdata::FrameWithFace(c.size, c.side, at, &truth);
      if (frame.empty()) GTEST_SKIP() << "SKIPPED: facedetect or opencv-doc photos missing";
      SCOPED_TRACE(std::to_string(c.size.width) + "x" + std::to_string(c.size.height) + ", " +
                   std::to_string(c.side) + " px face at (" + std::to_string(at.x) + ", " +
                   std::to_string(at.y) + ")");
      auto faces = det->Detect(frame);
      ASSERT_TRUE(faces.has_value());
      ASSERT_EQ(faces->size(), 1U) << DetectionsToJson(*faces).dump();
      const cv::Rect2f& f = faces->front().box;
      EXPECT_TRUE(cv::Rect2f(truth).contains(cv::Point2f(f.x + f.width / 2, f.y + f.height / 2)))
          << DetectionsToJson(*faces).dump();
    }
  }
}

TEST(FaceDetectorTest, HaarFallbackFindsGraceHopper) {
  auto det = MakeFaces(FaceBackend::kHaar);
  ASSERT_NE(det, nullptr);
  auto faces = det->Detect(Load(testdata::kGraceHopper));
  ASSERT_TRUE(faces.has_value());
  ASSERT_GE(faces->size(), 1U);
  EXPECT_EQ(faces->front().format, "haar");
}

TEST(FaceDetectorTest, RejectsEmptyAndGrayFrames) {
  auto det = MakeFaces(FaceBackend::kBlazeFace);
  ASSERT_NE(det, nullptr);
  EXPECT_FALSE(det->Detect(cv::Mat()).has_value());
  EXPECT_FALSE(det->Detect(cv::Mat(10, 10, CV_8UC1)).has_value());
}

TEST(BarcodeReaderTest, DecodesTheFourEan13CodesExactly) {
  auto reader = BarcodeReader::Create();
  ASSERT_TRUE(reader.has_value());
  auto codes = (*reader)->Detect(Load(testdata::kFourBarcodes));
  ASSERT_TRUE(codes.has_value());
  std::multiset<std::string> got;
  for (const auto& c : *codes) {
    EXPECT_EQ(c.format, "EAN_13");
    EXPECT_EQ(c.points.size(), 4U);
    got.insert(c.label);
  }
  const std::multiset<std::string> want = {"9787564350840", "9783319200064", "9787118081473",
                                           "9787122276124"};
  EXPECT_EQ(got, want);
}

TEST(BarcodeReaderTest, FindsNoCodesInAPortrait) {
  auto reader = BarcodeReader::Create();
  ASSERT_TRUE(reader.has_value());
  auto codes = (*reader)->Detect(Load(testdata::kGraceHopper));
  ASSERT_TRUE(codes.has_value());
  EXPECT_TRUE(codes->empty());
}

// A QR code image from Debian's qrencode (module size 6 px, 4-module quiet zone).
cv::Mat Qrencode(const std::string& text) {
  const std::string path = ::testing::TempDir() + "/qr-" + std::to_string(getpid()) + "-" +
                           std::to_string(text.size()) + ".png";
  auto r = RunCommand({"qrencode", "-s", "6", "-m", "4", "-o", path, text});
  EXPECT_TRUE(r.has_value() && r->status.success()) << "qrencode (apt-get install qrencode)";
  cv::Mat img = Load(path);
  (void)RemoveAll(path);
  return img;
}

// A barcode from Debian's zint (scale 2, with its quiet zones) on a white margin, or an empty
// Mat (and a skip reason) without zint.
cv::Mat Zint(const std::string& type, const std::string& data) {
  const std::string path =
      ::testing::TempDir() + "/zint-" + std::to_string(getpid()) + "-" + type + ".png";
  auto r = RunCommand({"zint", "-b", type, "-d", data, "--scale=2", "--quietzones", "-o", path});
  if (!r.has_value() || !r->status.success()) return {};
  cv::Mat img = Load(path);
  (void)RemoveAll(path);
  cv::Mat framed;
  cv::copyMakeBorder(img, framed, 30, 30, 30, 30, cv::BORDER_CONSTANT, cv::Scalar::all(255));
  return framed;
}

struct Symbol {
  std::string zint_type;
  std::string data;
  std::string format;  // ours
  std::string value;   // what a reader must return (check digits added by the symbology)
};

const std::vector<Symbol>& AllSymbologies() {
  static const std::vector<Symbol> kSymbols = {
      {"EANX", "590123412345", "EAN_13", "5901234123457"},
      {"EANX", "9638507", "EAN_8", "96385074"},
      {"UPCA", "03600029145", "UPC_A", "036000291452"},
      {"UPCE", "0425261", "UPC_E", "04252614"},
      {"CODE128", "SV-4711/parcel", "CODE_128", "SV-4711/parcel"},
      {"CODE39", "SHELF-42", "CODE_39", "SHELF-42"},
      {"CODE93", "CASE 93", "CODE_93", "CASE 93"},
      {"ITF14", "1540014128876", "I25", "15400141288763"},  // ITF-14
      {"CODABAR", "A40156B", "CODABAR", "A40156B"},
      {"DBAR_OMN", "2001234567890", "DATABAR", "0120012345678909"},
      {"DBAR_EXP", "[01]98898765432106[3202]012345", "DATABAR_EXPANDED",
       "01988987654321063202012345"},
      {"QRCODE", "https://store.example/p?id=42&s=7", "QR_CODE",
       "https://store.example/p?id=42&s=7"},
  };
  return kSymbols;
}

// Code 128 was never decoded (zbar had only QR and EAN/UPC enabled); now every symbology
// zbar or cv::barcode reads comes back, once, with its value and format.
TEST(BarcodeReaderTest, ReadsEverySymbologyOnce) {
  auto reader = BarcodeReader::Create();
  ASSERT_TRUE(reader.has_value());
  for (const Symbol& s : AllSymbologies()) {
    const cv::Mat img = Zint(s.zint_type, s.data);
    if (img.empty()) GTEST_SKIP() << "SKIPPED: zint missing (apt-get install zint)";
    auto codes = (*reader)->Detect(img);
    ASSERT_TRUE(codes.has_value()) << codes.error().message();
    ASSERT_EQ(codes->size(), 1U) << s.format << ": " << DetectionsToJson(*codes).dump();
    const Detection& d = codes->front();
    // A UPC-A may come back as the EAN-13 it is (a leading 0) when cv::barcode read it first.
    const bool upc_as_ean = s.format == "UPC_A" && d.format == "EAN_13" && d.label == "0" + s.value;
    EXPECT_TRUE((d.format == s.format && d.label == s.value) || upc_as_ean)
        << s.format << ": " << DetectionsToJson(*codes).dump();
    EXPECT_EQ(d.kind, s.format == "QR_CODE" ? "qrcode" : "barcode");
  }
}

// Never a wrong value: codes damaged until reading gets hard (blur, low contrast, JPEG at
// quality 5, rotation) either come back right or not at all, and photos without codes give
// nothing.
TEST(BarcodeReaderTest, DamagedCodesGiveTheRightValueOrNothing) {
  auto reader = BarcodeReader::Create();
  ASSERT_TRUE(reader.has_value());
  int read = 0;
  for (const Symbol& s : AllSymbologies()) {
    const cv::Mat clean = Zint(s.zint_type, s.data);
    if (clean.empty()) GTEST_SKIP() << "SKIPPED: zint missing (apt-get install zint)";
    std::vector<cv::Mat> damaged;
    for (const double sigma : {1.5, 2.5, 3.5}) {
      cv::Mat m;
      cv::GaussianBlur(clean, m, cv::Size(), sigma);
      damaged.push_back(m);
    }
    for (const double contrast : {0.15, 0.08}) {
      cv::Mat m;
      clean.convertTo(m, -1, contrast, 128 * (1 - contrast));
      damaged.push_back(m);
    }
    for (const int quality : {10, 5}) {
      std::vector<uchar> buf;
      cv::imencode(".jpg", clean, buf, {cv::IMWRITE_JPEG_QUALITY, quality});
      damaged.push_back(cv::imdecode(buf, cv::IMREAD_COLOR));
    }
    for (const double angle : {7.0, 33.0}) {
      cv::Mat m;
      const cv::Mat r =
          cv::getRotationMatrix2D(cv::Point2f(clean.cols / 2.0F, clean.rows / 2.0F), angle, 0.8);
      cv::warpAffine(clean, m, r, clean.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                     cv::Scalar::all(255));
      damaged.push_back(m);
    }
    for (const cv::Mat& img : damaged) {
      auto codes = (*reader)->Detect(img);
      ASSERT_TRUE(codes.has_value());
      for (const Detection& d : *codes) {
        const bool right = d.label == s.value || (s.format == "UPC_A" && d.label == "0" + s.value);
        EXPECT_TRUE(right) << s.format << ": " << DetectionsToJson(*codes).dump();
        read += right ? 1 : 0;
      }
    }
  }
  EXPECT_GT(read, 0);  // the damage is not so bad that nothing is read
  for (const std::string& path :
       {std::string(kOpencvData) + "baboon.jpg", std::string(kOpencvData) + "fruits.jpg",
        std::string(kOpencvData) + "building.jpg", std::string(kSkimage) + "coffee.png",
        std::string(kOpencvData) + "box_in_scene.png", std::string(testdata::kGraceHopper)}) {
    auto codes = (*reader)->Detect(Load(path));
    ASSERT_TRUE(codes.has_value());
    EXPECT_TRUE(codes->empty()) << path << ": " << DetectionsToJson(*codes).dump();
  }
}

TEST(QrCodeTest, DecodesAQrencodeImageExactly) {
  auto reader = BarcodeReader::Create();
  ASSERT_TRUE(reader.has_value());
  const std::string text = "storevisor:sku/0042?lot=A7&qty=12";
  auto codes = (*reader)->Detect(Qrencode(text));
  ASSERT_TRUE(codes.has_value()) << codes.error().message();
  ASSERT_EQ(codes->size(), 1U);
  EXPECT_EQ(codes->front().kind, "qrcode");
  EXPECT_EQ(codes->front().label, text);
  EXPECT_EQ(codes->front().points.size(), 4U);
}

TEST(QrCodeTest, DecodesAQrCodeTiltedIntoARealPhoto) {
  // The QR code pasted into fruits.jpg through a perspective warp (a label seen at an angle).
  cv::Mat qr = Qrencode("SKU 7612345678900");
  cv::Mat scene = Load(std::string(kOpencvData) + "fruits.jpg");
  ASSERT_FALSE(qr.empty());
  ASSERT_FALSE(scene.empty());
  const std::vector<cv::Point2f> from = {{0, 0},
                                         {static_cast<float>(qr.cols), 0},
                                         {static_cast<float>(qr.cols), static_cast<float>(qr.rows)},
                                         {0, static_cast<float>(qr.rows)}};
  const std::vector<cv::Point2f> to = {{120, 90}, {330, 110}, {320, 300}, {110, 290}};
  const cv::Mat h = cv::getPerspectiveTransform(from, to);
  cv::Mat warped;
  cv::Mat mask;
  cv::warpPerspective(qr, warped, h, scene.size());
  cv::warpPerspective(cv::Mat(qr.size(), CV_8U, cv::Scalar(255)), mask, h, scene.size());
  warped.copyTo(scene, mask);
  auto reader = BarcodeReader::Create();
  ASSERT_TRUE(reader.has_value());
  auto codes = (*reader)->Detect(scene);
  ASSERT_TRUE(codes.has_value());
  ASSERT_EQ(codes->size(), 1U);
  EXPECT_EQ(codes->front().label, "SKU 7612345678900");
  const cv::Rect2f box = codes->front().box;
  EXPECT_TRUE(box.contains({220, 200})) << box;  // the code's middle
}

std::unique_ptr<HandDetector> MakeHands() {
  auto paths = FindModels("");
  EXPECT_TRUE(paths.has_value());
  if (!paths) return nullptr;
  auto det = HandDetector::Create(*paths);
  EXPECT_TRUE(det.has_value()) << (det ? "" : det.error().message());
  return det ? std::move(*det) : nullptr;
}

TEST(HandDetectorTest, OpenPalmInTheHandPhoto) {
  auto hands = MakeHands();
  ASSERT_TRUE(hands);
  auto ds = hands->Detect(Load(testdata::kHand));  // 640x480, the hand fills the frame
  ASSERT_TRUE(ds.has_value()) << ds.error().message();
  ASSERT_EQ(ds->size(), 1U);
  const Detection& d = ds->front();
  EXPECT_EQ(d.kind, "hand");
  EXPECT_EQ(d.label, "open_palm") << DetectionToJson(d).dump();
  ASSERT_EQ(d.points.size(), 21U);
  // By eye: the palm's middle near (230, 280), the middle finger's tip near (545, 260).
  EXPECT_TRUE(d.box.contains({230, 280})) << d.box;
  EXPECT_NEAR(d.points[12].x, 545, 40);
  EXPECT_NEAR(d.points[12].y, 260, 40);
}

TEST(HandDetectorTest, TheTwoOutstretchedHandsInMessi5) {
  auto hands = MakeHands();
  ASSERT_TRUE(hands);
  auto ds = hands->Detect(Load(std::string(kOpencvData) + "messi5.jpg"));
  ASSERT_TRUE(ds.has_value());
  ASSERT_EQ(ds->size(), 2U);
  // By eye: an open hand reaching right near (362, 166), a half-closed one near (92, 97).
  int open = 0;
  for (const auto& d : *ds) {
    const cv::Point2f c(d.box.x + d.box.width / 2, d.box.y + d.box.height / 2);
    const bool right_hand = std::hypot(c.x - 362, c.y - 166) < 20;
    const bool left_hand = std::hypot(c.x - 92, c.y - 97) < 20;
    EXPECT_TRUE(right_hand || left_hand) << DetectionToJson(d).dump();
    if (right_hand) {
      EXPECT_EQ(d.label, "open_palm");
      open++;
    }
  }
  EXPECT_EQ(open, 1);
}

TEST(HandDetectorTest, NoHandsInPhotosWithoutHands) {
  auto hands = MakeHands();
  ASSERT_TRUE(hands);
  for (const std::string& path :
       {std::string(testdata::kGraceHopper), std::string(kSkimage) + "astronaut.png",
        std::string(kSkimage) + "camera.png", std::string(kSkimage) + "chelsea.png",
        std::string(kOpencvData) + "fruits.jpg", std::string(kOpencvData) + "baboon.jpg",
        std::string(kOpencvData) + "box_in_scene.png"}) {
    auto ds = hands->Detect(Load(path));
    ASSERT_TRUE(ds.has_value());
    EXPECT_TRUE(ds->empty()) << path << ": " << DetectionsToJson(*ds).dump();
  }
}

TEST(TextReaderTest, ReadsTheStreetSignsWords) {
  auto reader = TextReader::Create();
  ASSERT_TRUE(reader.has_value()) << reader.error().message();
  auto words = (*reader)->Detect(Load(testdata::kSignText));
  ASSERT_TRUE(words.has_value()) << words.error().message();
  std::vector<std::string> got;
  for (const auto& w : *words) {
    EXPECT_EQ(w.kind, "text");
    EXPECT_GT(w.box.area(), 100);
    got.push_back(w.label);
  }
  // NOTICE (white on orange) comes from its line's own pass; the small "AT ALL TIMES" stays
  // under the confidence cut.
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"DOUBLE", "NOTICE", "PARKING", "PROHIBITED"}));
}

// One-line price labels (testdata/labels, rendered by bench/vision-eval/make_sets.py: a light
// label on a shelf-grey frame) in a 16 px font, tilted by 5-15 degrees, or both: the
// whole-frame sparse pass read none of them (the 16 px ones give no words, the tilted ones
// fragments); each line read on its own, deskewed and scaled, reads every word exactly.
TEST(TextReaderTest, ReadsSmallAndTiltedLabelsWordForWord) {
  auto reader = TextReader::Create();
  ASSERT_TRUE(reader.has_value());
  const std::vector<std::pair<std::string, std::vector<std::string>>> labels = {
      {"DejaVuSans_16_0.png", {"Organic", "Milk", "1L", "1.29"}},
      {"DejaVuSans_16_5.png", {"Whole", "Grain", "Bread", "2.49"}},
      {"DejaVuSerif_16_10.png", {"Fresh", "Apples", "1kg", "3.19"}},
      {"LiberationSans-Bold_24_15.png", {"Butter", "250g", "2.15"}},
      {"DejaVuSans_40_15.png", {"Orange", "Juice", "1.99"}},
      {"DejaVuSerif_24_5.png", {"Coffee", "Beans", "500g", "7.49"}},
  };
  for (const auto& [file, want] : labels) {
    auto words = (*reader)->Detect(Load(std::string(SV_VISION_TESTDATA) + "/labels/" + file));
    ASSERT_TRUE(words.has_value()) << words.error().message();
    std::vector<Detection> sorted = *words;
    std::sort(sorted.begin(), sorted.end(),
              [](const Detection& a, const Detection& b) { return a.box.x < b.box.x; });
    std::vector<std::string> got;
    for (const auto& w : sorted) got.push_back(w.label);
    EXPECT_EQ(got, want) << file;
  }
}

TEST(TextReaderTest, NoWordsInPhotosWithoutText) {
  auto reader = TextReader::Create();
  ASSERT_TRUE(reader.has_value());
  for (const std::string& path :
       {std::string(kSkimage) + "astronaut.png", std::string(kOpencvData) + "fruits.jpg",
        std::string(kOpencvData) + "baboon.jpg", std::string(kOpencvData) + "messi5.jpg"}) {
    auto words = (*reader)->Detect(Load(path));
    ASSERT_TRUE(words.has_value());
    EXPECT_TRUE(words->empty()) << path << ": " << DetectionsToJson(*words).dump();
  }
}

TEST(ProductMatcherTest, FindsTheCookieBoxWithItsOutline) {
  // Corners of the box in box_in_scene.png, read off the photo (top-left, top-right,
  // bottom-right, bottom-left of box.png's frame).
  const std::vector<cv::Point2f> want = {{118, 161}, {285, 175}, {268, 299}, {90, 272}};
  for (const std::string features : {"sift", "orb", "akaze"}) {
    ProductMatcherOptions options;
    options.features = features;
    auto matcher =
        ProductMatcher::Create({{"cookie-box", std::string(kOpencvData) + "box.png"}}, options);
    ASSERT_TRUE(matcher.has_value()) << matcher.error().message();
    auto found = (*matcher)->Detect(Load(std::string(kOpencvData) + "box_in_scene.png"));
    ASSERT_TRUE(found.has_value());
    ASSERT_EQ(found->size(), 1U) << features;
    ASSERT_EQ(found->front().points.size(), 4U);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_LT(cv::norm(found->front().points[i] - want[i]), 12.0)
          << features << " corner " << i << ": " << DetectionsToJson(*found).dump();
    }
    // And the box is not claimed in a photo that does not show it.
    auto none = (*matcher)->Detect(Load(std::string(kOpencvData) + "messi5.jpg"));
    ASSERT_TRUE(none.has_value());
    EXPECT_TRUE(none->empty()) << features;
  }
}

TEST(ProductMatcherTest, CatalogErrorsNameTheField) {
  const std::string dir = ::testing::TempDir() + "/catalog-test";
  ASSERT_TRUE(MakeDirs(dir).has_value());
  ASSERT_TRUE(WriteFileAtomic(dir + "/c.json", R"({"items":[{"name":"x"}]})").has_value());
  auto bad = LoadCatalog(dir + "/c.json");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("items[0]"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(dir + "/d.json", "{not json").has_value());
  EXPECT_FALSE(LoadCatalog(dir + "/d.json").has_value());
  ASSERT_TRUE(WriteFileAtomic(dir + "/e.json", R"({"items":[{"name":"x","image":"missing.png"}]})")
                  .has_value());
  auto items = LoadCatalog(dir + "/e.json");
  ASSERT_TRUE(items.has_value());
  EXPECT_FALSE(ProductMatcher::Create(*items, {}).has_value());
  ProductMatcherOptions unknown;
  unknown.features = "surf";
  EXPECT_FALSE(ProductMatcher::Create({}, unknown).has_value());
}

TEST(DecodeImageTest, RefusesEmptyGarbageAndHugeImages) {
  EXPECT_FALSE(DecodeImage({}).has_value());
  const std::string garbage = "this is not an image at all";
  EXPECT_FALSE(
      DecodeImage({reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size()}).has_value());
  auto jpeg = ReadFile(testdata::kGraceHopper);
  ASSERT_TRUE(jpeg.has_value());
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(jpeg->data()),
                                       jpeg->size());
  EXPECT_TRUE(DecodeImage(bytes).has_value());
  auto small_limit = DecodeImage(bytes, 1000);
  ASSERT_FALSE(small_limit.has_value());
  EXPECT_NE(small_limit.error().message().find("512x512"), std::string::npos);
  EXPECT_FALSE(DecodeImage(bytes.first(40)).has_value());  // header only
}

}  // namespace
}  // namespace storevisor::vision
