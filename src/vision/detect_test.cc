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
  EXPECT_EQ(got, (std::vector<std::string>{"DOUBLE", "PARKING", "PROHIBITED"}));
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
