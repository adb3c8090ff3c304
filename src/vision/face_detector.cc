// Face detection: BlazeFace (MediaPipe's short-range model, ONNX from npm) through cv::dnn,
// with anchor decoding and non-max suppression here in C++; Haar cascade as the fallback.
#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

constexpr int kInput = 128;  // the front model's square input
constexpr int kKeyPoints = 6;

// The model's two heads: a 16x16 grid with 2 anchors per cell and an 8x8 grid with 6.
struct Head {
  int cells;
  int anchors;
  int scores_output;  // index into the forward() outputs
  int boxes_output;
};
constexpr std::array<Head, 2> kHeads = {{{16, 2, 0, 2}, {8, 6, 1, 3}}};

float Sigmoid(float x) { return 1.0F / (1.0F + std::exp(-x)); }

Status CheckFrame(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    return Error(ErrorCode::kInvalidArgument, "face detector needs a non-empty 8-bit BGR image");
  }
  return Ok();
}

class BlazeFaceDetector : public FaceDetector {
 public:
  BlazeFaceDetector(const cv::dnn::Net& net, FaceDetectorOptions options)
      : net_(net), options_(options) {
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    out_names_ = {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"};
  }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    SV_TRY(CheckFrame(bgr));
    std::vector<Detection> candidates;
    SV_TRY(RunSquare(bgr, WholeSquare(bgr.size()), &candidates));
    for (const cv::Rect2f& tile : Tiles(bgr.size())) SV_TRY(RunSquare(bgr, tile, &candidates));
    return Suppress(std::move(candidates));
  }

  Result<FaceScan> ScanStream(const cv::Mat& bgr, FaceStream* stream) override {
    SV_TRY(CheckFrame(bgr));
    const std::vector<cv::Rect2f> tiles = Tiles(bgr.size());
    std::vector<Detection> candidates;
    FaceScan scan;
    for (int square : stream->Plan(bgr.size(), static_cast<int>(tiles.size()))) {
      std::vector<Detection> found;
      SV_TRY(RunSquare(bgr,
                       square == FaceStream::kWholeFrame ? WholeSquare(bgr.size())
                                                         : tiles[static_cast<size_t>(square)],
                       &found));
      auto& boxes = scan.square_boxes.emplace_back();
      for (Detection& d : found) {
        boxes.push_back(d.box);
        candidates.push_back(std::move(d));
      }
    }
    scan.faces = Suppress(std::move(candidates));
    return scan;
  }

 private:
  // The whole frame as one square (letterboxed).
  static cv::Rect2f WholeSquare(cv::Size size) {
    const float side = static_cast<float>(std::max(size.width, size.height));
    return {(size.width - side) / 2, (size.height - side) / 2, side, side};
  }

  std::vector<cv::Rect2f> Tiles(cv::Size size) const {
    if (!options_.tiles) return {};
    return FaceTiles(size);
  }

  Status RunSquare(const cv::Mat& bgr, const cv::Rect2f& sq, std::vector<Detection>* out) {
    // One affine warp does crop, letterbox padding and resize at once.
    const double scale = kInput / static_cast<double>(sq.width);
    cv::Mat m = (cv::Mat_<double>(2, 3) << scale, 0, -sq.x * scale, 0, scale, -sq.y * scale);
    cv::Mat input;
    cv::warpAffine(bgr, input, m, cv::Size(kInput, kInput), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    cv::cvtColor(input, input, cv::COLOR_BGR2RGB);
    // NHWC float in [-1, 1], as MediaPipe feeds it.
    const std::array<int, 4> dims = {1, kInput, kInput, 3};
    cv::Mat blob(4, dims.data(), CV_32F);
    cv::Mat view(kInput, kInput, CV_32FC3, blob.ptr<float>());
    input.convertTo(view, CV_32FC3, 1.0 / 127.5, -1.0);
    std::vector<cv::Mat> outs;
    try {
      net_.setInput(blob);
      net_.forward(outs, out_names_);
    } catch (const cv::Exception& e) {
      return Error(ErrorCode::kInternal, std::string("BlazeFace forward failed: ") + e.what());
    }
    if (outs.size() != 4) return Error(ErrorCode::kInternal, "BlazeFace: expected 4 outputs");
    for (const Head& head : kHeads) Decode(head, outs, sq, out);
    return Ok();
  }

  void Decode(const Head& head, const std::vector<cv::Mat>& outs, const cv::Rect2f& sq,
              std::vector<Detection>* out) const {
    const auto* scores = outs[head.scores_output].ptr<float>();
    const auto* boxes = outs[head.boxes_output].ptr<float>();
    const float to_frame = sq.width;  // normalised [0,1] of the square -> frame pixels
    int index = 0;
    for (int cy = 0; cy < head.cells; ++cy) {
      for (int cx = 0; cx < head.cells; ++cx) {
        const float ax = (cx + 0.5F) / head.cells;
        const float ay = (cy + 0.5F) / head.cells;
        for (int a = 0; a < head.anchors; ++a, ++index) {
          const float score = Sigmoid(scores[index]);
          if (score < options_.score_threshold) continue;
          const float* b = boxes + static_cast<ptrdiff_t>(index) * 16;
          const float cxn = ax + b[0] / kInput;
          const float cyn = ay + b[1] / kInput;
          const float wn = b[2] / kInput;
          const float hn = b[3] / kInput;
          Detection d{"face",
                      "face",
                      "blazeface",
                      score,
                      cv::Rect2f(sq.x + (cxn - wn / 2) * to_frame, sq.y + (cyn - hn / 2) * to_frame,
                                 wn * to_frame, hn * to_frame),
                      {},
                      {}};
          for (int k = 0; k < kKeyPoints; ++k) {
            d.points.emplace_back(sq.x + (ax + b[4 + 2 * k] / kInput) * to_frame,
                                  sq.y + (ay + b[5 + 2 * k] / kInput) * to_frame);
          }
          out->push_back(std::move(d));
        }
      }
    }
  }

  std::vector<Detection> Suppress(std::vector<Detection> candidates) const {
    std::vector<cv::Rect> boxes;
    std::vector<float> scores;
    for (const auto& d : candidates) {
      boxes.emplace_back(d.box);
      scores.push_back(d.score);
    }
    std::vector<int> keep;
    cv::dnn::NMSBoxes(boxes, scores, options_.score_threshold, options_.nms_iou, keep);
    std::vector<Detection> result;
    result.reserve(keep.size());
    for (int i : keep) result.push_back(std::move(candidates[i]));
    return result;
  }

  cv::dnn::Net net_;
  FaceDetectorOptions options_;
  std::vector<std::string> out_names_;
};

class HaarFaceDetector : public FaceDetector {
 public:
  explicit HaarFaceDetector(const cv::CascadeClassifier& cascade) : cascade_(cascade) {}

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    SV_TRY(CheckFrame(bgr));
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    cv::equalizeHist(gray, gray);
    std::vector<cv::Rect> faces;
    std::vector<int> levels;
    std::vector<double> weights;
    cascade_.detectMultiScale(gray, faces, levels, weights, 1.1, 5, 0, cv::Size(24, 24), cv::Size(),
                              true);
    std::vector<Detection> out;
    for (size_t i = 0; i < faces.size(); ++i) {
      // Cascade weights are unbounded margins; squash them into 0..1 for a comparable score.
      const float score = i < weights.size() ? Sigmoid(static_cast<float>(weights[i])) : 0.5F;
      out.push_back({"face", "face", "haar", score, cv::Rect2f(faces[i]), {}, {}});
    }
    return out;
  }

 private:
  cv::CascadeClassifier cascade_;
};

// Tile origins along one axis of `length`: evenly spread from 0 to length - tile with steps of
// at most kMaxStride of a tile.
std::vector<float> TileOrigins(float length, float tile) {
  constexpr float kMaxStride = 0.75F;
  const float span = std::max(0.0F, length - tile);
  const int steps = static_cast<int>(std::ceil(span / (tile * kMaxStride) - 1e-4F));
  std::vector<float> origins;
  for (int i = 0; i <= steps; ++i) origins.push_back(steps == 0 ? 0 : span * i / steps);
  return origins;
}

}  // namespace

std::vector<cv::Rect2f> FaceTiles(cv::Size size) {
  std::vector<cv::Rect2f> squares;
  // Two rows (of a landscape frame) overlapping by a quarter of a tile span the short side:
  // 1.75 tiles. (Half the short side, as before, needs three rows for any overlap at all.)
  const float tile = static_cast<float>(std::min(size.width, size.height)) / 1.75F;
  if (tile < kInput) return squares;
  for (float y : TileOrigins(static_cast<float>(size.height), tile)) {
    for (float x : TileOrigins(static_cast<float>(size.width), tile)) {
      squares.emplace_back(x, y, tile, tile);
    }
  }
  return squares;
}

Result<FaceScan> FaceDetector::ScanStream(const cv::Mat& bgr, FaceStream* stream) {
  stream->Plan(bgr.size(), 0);  // no tiles: the whole frame on every frame
  SV_ASSIGN_OR_RETURN(std::vector<Detection> faces, Detect(bgr));
  std::vector<cv::Rect2f> boxes;
  boxes.reserve(faces.size());
  for (const Detection& d : faces) boxes.push_back(d.box);
  return FaceScan{std::move(faces), {std::move(boxes)}};
}

Result<std::unique_ptr<FaceDetector>> FaceDetector::Create(const ModelPaths& models,
                                                           const FaceDetectorOptions& options) {
  if (options.backend == FaceBackend::kHaar) {
    cv::CascadeClassifier cascade;
    if (!cascade.load(models.haar_cascade)) {
      return Error(ErrorCode::kFailedPrecondition,
                   "cannot load Haar cascade " + models.haar_cascade);
    }
    return std::unique_ptr<FaceDetector>(std::make_unique<HaarFaceDetector>(cascade));
  }
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(models.blazeface_onnx);
    if (net.empty()) throw cv::Exception(0, "empty network", "", "", 0);
    return std::unique_ptr<FaceDetector>(std::make_unique<BlazeFaceDetector>(net, options));
  } catch (const cv::Exception& e) {
    return Error(ErrorCode::kFailedPrecondition,
                 "cannot load BlazeFace model " + models.blazeface_onnx + ": " + e.what());
  }
}

}  // namespace storevisor::vision
