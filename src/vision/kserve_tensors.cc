// What the detector models take and give over KServe v2: an image tensor in, three tensors
// (boxes, scores, labels) out. Shared by the server and the cloud-offload client.
#include <array>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "vision/vision.h"

namespace storevisor::vision::kserve {
namespace {

constexpr int64_t kMaxSide = 16384;

Tensor Fp32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  Tensor t{name, DataType::kFp32, std::move(shape), {}, {}};
  t.raw.resize(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(t.raw.data(), v.data(), t.raw.size());
  return t;
}

const Tensor* Find(const std::vector<Tensor>& ts, std::string_view name) {
  for (const auto& t : ts) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace

Result<cv::Mat> ImageFromTensor(const Tensor& t) {
  if (t.datatype == DataType::kBytes) {
    if (t.bytes.size() != 1) {
      return Error(ErrorCode::kInvalidArgument,
                   "input '" + t.name +
                       "': a BYTES image tensor must hold exactly one encoded "
                       "image (shape [1])");
    }
    const std::string& b = t.bytes.front();
    auto img = DecodeImage({reinterpret_cast<const uint8_t*>(b.data()), b.size()});
    if (!img) return std::move(img).error().Context("input '" + t.name + "'");
    return img;
  }
  if (t.datatype != DataType::kUint8) {
    return Error(ErrorCode::kInvalidArgument,
                 "input '" + t.name +
                     "': datatype must be BYTES (encoded JPEG/PNG) or UINT8 "
                     "[H, W, 3], not " +
                     std::string(DataTypeName(t.datatype)));
  }
  std::vector<int64_t> s = t.shape;
  if (s.size() == 4 && s[0] == 1) s.erase(s.begin());
  if (s.size() != 3 || s[2] != 3 || s[0] < 1 || s[1] < 1 || s[0] > kMaxSide || s[1] > kMaxSide) {
    return Error(ErrorCode::kInvalidArgument,
                 "input '" + t.name +
                     "': UINT8 image shape must be [H, W, 3] or [1, H, W, 3] "
                     "with 1 <= H, W <= 16384");
  }
  const auto bytes = static_cast<size_t>(s[0] * s[1] * 3);
  if (t.raw.size() != bytes) {
    return Error(ErrorCode::kInvalidArgument, "input '" + t.name + "': data size mismatch");
  }
  cv::Mat img(static_cast<int>(s[0]), static_cast<int>(s[1]), CV_8UC3);
  std::memcpy(img.data, t.raw.data(), bytes);
  if (t.name == "image_rgb") cv::cvtColor(img, img, cv::COLOR_RGB2BGR);
  return img;
}

std::vector<Tensor> DetectionsToTensors(const std::vector<Detection>& ds) {
  std::vector<float> boxes;
  std::vector<float> scores;
  Tensor labels{"labels", DataType::kBytes, {static_cast<int64_t>(ds.size())}, {}, {}};
  for (const auto& d : ds) {
    boxes.insert(boxes.end(), {d.box.x, d.box.y, d.box.width, d.box.height});
    scores.push_back(d.score);
    labels.bytes.push_back(d.kind + ":" + d.label);
  }
  const auto n = static_cast<int64_t>(ds.size());
  return {Fp32("boxes", {n, 4}, boxes), Fp32("scores", {n}, scores), std::move(labels)};
}

Result<std::vector<Detection>> DetectionsFromTensors(const std::vector<Tensor>& ts) {
  const Tensor* boxes = Find(ts, "boxes");
  const Tensor* scores = Find(ts, "scores");
  const Tensor* labels = Find(ts, "labels");
  if (boxes == nullptr || scores == nullptr || labels == nullptr) {
    return Error(ErrorCode::kGuestFault, "response lacks one of the outputs boxes, scores, labels");
  }
  const size_t n = labels->bytes.size();
  if (boxes->datatype != DataType::kFp32 || scores->datatype != DataType::kFp32 ||
      labels->datatype != DataType::kBytes || boxes->raw.size() != n * 16 ||
      scores->raw.size() != n * 4) {
    return Error(ErrorCode::kGuestFault,
                 "response tensors disagree: boxes FP32 [N,4], scores FP32 [N], labels BYTES [N]");
  }
  std::vector<Detection> out;
  for (size_t i = 0; i < n; ++i) {
    std::array<float, 4> b{};
    std::memcpy(b.data(), boxes->raw.data() + i * 16, 16);
    Detection d;
    std::memcpy(&d.score, scores->raw.data() + i * 4, 4);
    const std::string& l = labels->bytes[i];
    const size_t colon = l.find(':');
    d.kind = colon == std::string::npos ? l : l.substr(0, colon);
    d.label = colon == std::string::npos ? "" : l.substr(colon + 1);
    d.box = cv::Rect2f(b[0], b[1], b[2], b[3]);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace storevisor::vision::kserve
