// Hands: MediaPipe's palm detector (handdetect, 256x256, 2944 SSD anchors) finds palms; each
// palm is turned into a rotated square crop (as MediaPipe/Human do: rotation from the wrist to
// the middle finger's base, box shifted towards the fingers and enlarged) for the 21-point
// landmark model (handlandmark-lite, 224x224); the landmarks are mapped back to the frame and
// classified by the gesture rules. Both models are TF.js graphs converted to ONNX at set-up.
#include <sys/stat.h>

#include <array>
#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

constexpr int kPalmSide = 256;
constexpr int kLandmarkSide = 224;
constexpr int kAnchors = 2944;
constexpr int kPalmValues = 19;  // score, box (cx, cy, w, h), 7 key points (x, y)
constexpr float kPalmThreshold = 0.7F;
constexpr float kPresenceThreshold = 0.5F;

// SSD anchors of the palm model: strides 8, 16, 32 on a 256 input with 2, 2 and 6 anchors per
// cell (MediaPipe's 5 layers, the last three sharing stride 32); centres only (w = h = 1).
std::vector<cv::Point2f> PalmAnchors() {
  std::vector<cv::Point2f> anchors;
  anchors.reserve(kAnchors);
  for (const auto& [stride, per_cell] : {std::pair{8, 2}, std::pair{16, 2}, std::pair{32, 6}}) {
    const int cells = kPalmSide / stride;
    for (int y = 0; y < cells; ++y) {
      for (int x = 0; x < cells; ++x) {
        for (int a = 0; a < per_cell; ++a) {
          anchors.emplace_back((static_cast<float>(x) + 0.5F) / static_cast<float>(cells),
                               (static_cast<float>(y) + 0.5F) / static_cast<float>(cells));
        }
      }
    }
  }
  return anchors;
}

float Sigmoid(float x) { return 1.0F / (1.0F + std::exp(-x)); }

struct Palm {
  cv::Rect2f box;                 // frame pixels
  std::vector<cv::Point2f> keys;  // 7 palm key points, frame pixels
  float score = 0;
};

class Detector : public HandDetector {
 public:
  Detector(const cv::dnn::Net& palm, const cv::dnn::Net& landmarks)
      : palm_(palm), landmarks_(landmarks), anchors_(PalmAnchors()) {}

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Error(ErrorCode::kInvalidArgument, "hands: need a non-empty BGR image");
    }
    std::vector<Detection> out;
    try {
      // A hand that fills the frame (a close-up at a kiosk) is too big for the palm model:
      // when the whole frame finds nothing, look again with the frame shrunk into a margin.
      std::vector<Palm> palms = Palms(bgr, 0);
      if (palms.empty()) palms = Palms(bgr, 0.3F);
      for (const Palm& p : palms) {
        auto hand = Landmarks(bgr, p);
        if (hand) out.push_back(std::move(*hand));
      }
    } catch (const cv::Exception& e) {
      return Error(ErrorCode::kInternal, std::string("hands: ") + e.what());
    }
    return out;
  }

 private:
  // Letterboxes the frame into 256x256 (one affine warp) leaving `margin` of the long side
  // free on each side, runs the palm model, decodes.
  std::vector<Palm> Palms(const cv::Mat& bgr, float margin) {
    const float scale = static_cast<float>(kPalmSide) /
                        (static_cast<float>(std::max(bgr.cols, bgr.rows)) * (1 + 2 * margin));
    const float dx = (kPalmSide - scale * static_cast<float>(bgr.cols)) / 2;
    const float dy = (kPalmSide - scale * static_cast<float>(bgr.rows)) / 2;
    const cv::Matx23f m(scale, 0, dx, 0, scale, dy);
    cv::Mat square;
    cv::warpAffine(bgr, square, m, {kPalmSide, kPalmSide}, cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    cv::cvtColor(square, square, cv::COLOR_BGR2RGB);
    cv::Mat input;
    square.convertTo(input, CV_32F, 2.0 / 255.0, -1.0);  // [-1, 1], as the model was trained
    const std::array<int, 4> dims = {1, kPalmSide, kPalmSide, 3};
    palm_.setInput(cv::Mat(4, dims.data(), CV_32F, input.ptr<float>()));
    const cv::Mat raw = palm_.forward().clone();
    if (raw.total() != static_cast<size_t>(kAnchors) * kPalmValues) return {};
    const float* r = raw.ptr<float>();
    std::vector<cv::Rect> boxes;
    std::vector<float> scores;
    std::vector<Palm> all;
    const auto to_frame = [&](float x, float y) {  // 256-square pixels -> frame pixels
      return cv::Point2f((x - dx) / scale, (y - dy) / scale);
    };
    for (int i = 0; i < kAnchors; ++i) {
      const float* v = r + static_cast<ptrdiff_t>(i) * kPalmValues;
      const float score = Sigmoid(v[0]);
      if (score < kPalmThreshold) continue;
      const cv::Point2f c(v[1] + anchors_[i].x * kPalmSide, v[2] + anchors_[i].y * kPalmSide);
      const cv::Point2f tl = to_frame(c.x - v[3] / 2, c.y - v[4] / 2);
      const cv::Point2f br = to_frame(c.x + v[3] / 2, c.y + v[4] / 2);
      Palm p;
      p.box = cv::Rect2f(tl, br);
      p.score = score;
      for (int k = 0; k < 7; ++k) {
        p.keys.push_back(to_frame(v[5 + 2 * k] + anchors_[i].x * kPalmSide,
                                  v[6 + 2 * k] + anchors_[i].y * kPalmSide));
      }
      boxes.emplace_back(p.box);
      scores.push_back(score);
      all.push_back(std::move(p));
    }
    std::vector<int> keep;
    cv::dnn::NMSBoxes(boxes, scores, kPalmThreshold, 0.3F, keep);
    std::vector<Palm> palms;
    palms.reserve(keep.size());
    for (const int k : keep) palms.push_back(all[static_cast<size_t>(k)]);
    return palms;
  }

  // The rotated crop around a palm, the landmark model, the landmarks back in the frame.
  std::optional<Detection> Landmarks(const cv::Mat& bgr, const Palm& p) {
    // Rotation that puts the middle finger's base (key 2) straight above the wrist (key 0).
    const cv::Point2f up = p.keys[2] - p.keys[0];
    const float angle = std::atan2(up.x, -up.y);  // radians, clockwise from "up"
    const float side = std::max(p.box.width, p.box.height);
    const cv::Point2f centre(p.box.x + p.box.width / 2, p.box.y + p.box.height / 2);
    // Shift half a box towards the fingers and enlarge 2.6x: the whole hand, not just the palm.
    const cv::Point2f dir(std::sin(angle), -std::cos(angle));
    const cv::Point2f c = centre + dir * (0.5F * side);
    const float crop = 2.6F * side;
    // Affine map frame -> crop: rotate by -angle about c, scale to 224, centre.
    const float s = kLandmarkSide / crop;
    const float cs = std::cos(angle) * s;
    const float sn = std::sin(angle) * s;
    const cv::Matx23f m(cs, sn, kLandmarkSide / 2.0F - cs * c.x - sn * c.y, -sn, cs,
                        kLandmarkSide / 2.0F + sn * c.x - cs * c.y);
    cv::Mat patch;
    cv::warpAffine(bgr, patch, m, {kLandmarkSide, kLandmarkSide}, cv::INTER_LINEAR,
                   cv::BORDER_CONSTANT);
    cv::cvtColor(patch, patch, cv::COLOR_BGR2RGB);
    cv::Mat input;
    patch.convertTo(input, CV_32F, 1.0 / 255.0);
    const std::array<int, 4> dims = {1, kLandmarkSide, kLandmarkSide, 3};
    landmarks_.setInput(cv::Mat(4, dims.data(), CV_32F, input.ptr<float>()));
    std::vector<cv::Mat> outs;
    const std::vector<std::string> names = {"Identity:0", "Identity_1:0"};
    landmarks_.forward(outs, names);
    if (outs.size() != 2 || outs[0].total() != 63 || outs[1].total() != 1) return std::nullopt;
    float presence = outs[1].ptr<float>()[0];
    if (presence < 0 || presence > 1) presence = Sigmoid(presence);
    if (presence < kPresenceThreshold) return std::nullopt;
    cv::Matx23f inv;
    cv::invertAffineTransform(m, inv);
    Detection d;
    d.kind = "hand";
    d.format = "mediapipe-palm+landmarks";
    d.score = p.score;
    const float* lm = outs[0].ptr<float>();
    for (int i = 0; i < 21; ++i) {
      const cv::Vec3f q(lm[3 * i], lm[3 * i + 1], 1.0F);
      d.points.emplace_back(inv.row(0).dot(q.t()), inv.row(1).dot(q.t()));
    }
    d.box = cv::boundingRect(d.points);
    auto g = ClassifyGesture(d.points);
    d.label = g ? std::string(GestureName(*g)) : "none";
    d.attributes["presence"] = std::to_string(presence);
    return d;
  }

  cv::dnn::Net palm_;
  cv::dnn::Net landmarks_;
  std::vector<cv::Point2f> anchors_;
};

}  // namespace

Result<std::unique_ptr<HandDetector>> HandDetector::Create(const ModelPaths& paths) {
  struct stat st {};
  if (stat(paths.hand_detector_onnx.c_str(), &st) != 0 ||
      stat(paths.hand_landmarks_onnx.c_str(), &st) != 0) {
    return Error(ErrorCode::kFailedPrecondition,
                 "converted hand models missing (" + paths.hand_detector_onnx +
                     "): run scripts/setup.sh (setup.d/40-vision.sh converts them)");
  }
  try {
    return std::unique_ptr<HandDetector>(
        std::make_unique<Detector>(cv::dnn::readNetFromONNX(paths.hand_detector_onnx),
                                   cv::dnn::readNetFromONNX(paths.hand_landmarks_onnx)));
  } catch (const cv::Exception& e) {
    return Error(ErrorCode::kFailedPrecondition, std::string("hand models: ") + e.what());
  }
}

}  // namespace storevisor::vision
