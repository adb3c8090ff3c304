// What the detector models take and give over KServe v2: an image tensor in, three tensors
// (boxes, scores, labels) out. Shared by the server and the cloud-offload client.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
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

constexpr float kAbsent = -1.0F;
constexpr float kMaxAge = 150.0F;

// An attribute string as a number for the FP32 outputs; absent or unparsable is kAbsent.
float AttributeNumber(const Detection& d, const std::string& key) {
  auto it = d.attributes.find(key);
  if (it == d.attributes.end()) return kAbsent;
  float v = 0;
  const char* end = it->second.data() + it->second.size();
  auto [ptr, ec] = std::from_chars(it->second.data(), end, v);
  return ec == std::errc() && ptr == end ? v : kAbsent;
}

std::string AttributeText(const Detection& d, const std::string& key) {
  auto it = d.attributes.find(key);
  return it == d.attributes.end() ? std::string() : it->second;
}

Status CheckShapeN(const Tensor& t, DataType type, size_t n) {
  if (t.datatype != type || t.shape != std::vector<int64_t>{static_cast<int64_t>(n)}) {
    return Error(ErrorCode::kGuestFault, "response output '" + t.name + "' must be " +
                                             std::string(DataTypeName(type)) + " [" +
                                             std::to_string(n) + "] (one per detection)");
  }
  return Ok();
}

// Reads element i of an FP32 [N] attribute output: kAbsent, or a finite value in [0, max].
Result<std::optional<float>> AttributeValue(const Tensor& t, size_t i, float max) {
  float v = 0;
  std::memcpy(&v, t.raw.data() + i * 4, 4);
  if (v == kAbsent) return std::optional<float>();
  if (!std::isfinite(v) || v < 0 || v > max) {
    return Error(ErrorCode::kGuestFault, "response output '" + t.name + "'[" + std::to_string(i) +
                                             "]: " + std::to_string(v) + " is outside [0, " +
                                             std::to_string(max) + "] and not -1 (absent)");
  }
  return std::optional<float>(v);
}

Status CheckLabel(const Tensor& t, size_t i, std::span<const std::string_view> known) {
  const std::string& v = t.bytes[i];
  if (v.empty() || std::find(known.begin(), known.end(), v) != known.end()) return Ok();
  std::string list;
  for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
  return Error(ErrorCode::kGuestFault, "response output '" + t.name + "'[" + std::to_string(i) +
                                           "]: unknown value (known: " + list + ", or empty)");
}

// Fills face attributes from the five attribute outputs (all present, or none).
Status ReadAttributes(const std::vector<Tensor>& ts, std::vector<Detection>* out) {
  std::array<const Tensor*, kAttributeOutputs.size()> t{};
  size_t present = 0;
  for (size_t k = 0; k < t.size(); ++k) {
    t[k] = Find(ts, kAttributeOutputs[k]);
    present += t[k] != nullptr ? 1 : 0;
  }
  if (present == 0) return Ok();
  if (present != t.size()) {
    return Error(ErrorCode::kGuestFault,
                 "response has some face attribute outputs but not all five (gender, "
                 "gender_score, emotion, emotion_score, age)");
  }
  const size_t n = out->size();
  const auto& [gender, gender_score, emotion, emotion_score, age] = t;
  SV_TRY(CheckShapeN(*gender, DataType::kBytes, n));
  SV_TRY(CheckShapeN(*gender_score, DataType::kFp32, n));
  SV_TRY(CheckShapeN(*emotion, DataType::kBytes, n));
  SV_TRY(CheckShapeN(*emotion_score, DataType::kFp32, n));
  SV_TRY(CheckShapeN(*age, DataType::kFp32, n));
  constexpr std::array<std::string_view, 2> kGenders = {"male", "female"};
  for (size_t i = 0; i < n; ++i) {
    Detection& d = (*out)[i];
    SV_TRY(CheckLabel(*gender, i, kGenders));
    SV_TRY(CheckLabel(*emotion, i, kEmotionLabels));
    SV_ASSIGN_OR_RETURN(auto gs, AttributeValue(*gender_score, i, 1.0F));
    SV_ASSIGN_OR_RETURN(auto es, AttributeValue(*emotion_score, i, 1.0F));
    SV_ASSIGN_OR_RETURN(auto years, AttributeValue(*age, i, kMaxAge));
    if (!gender->bytes[i].empty()) d.attributes["gender"] = gender->bytes[i];
    if (!emotion->bytes[i].empty()) d.attributes["emotion"] = emotion->bytes[i];
    if (gs) d.attributes["gender_score"] = FormatScore(*gs);
    if (es) d.attributes["emotion_score"] = FormatScore(*es);
    if (years) d.attributes["age"] = FormatAge(*years);
  }
  return Ok();
}

}  // namespace

std::string FormatScore(float v) { return std::to_string(v); }

std::string FormatAge(float years) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1f", static_cast<double>(years));
  return buf.data();
}

std::vector<Tensor> AttributesToTensors(const std::vector<Detection>& ds) {
  const auto n = static_cast<int64_t>(ds.size());
  Tensor gender{"gender", DataType::kBytes, {n}, {}, {}};
  Tensor emotion{"emotion", DataType::kBytes, {n}, {}, {}};
  std::vector<float> gender_score;
  std::vector<float> emotion_score;
  std::vector<float> age;
  for (const auto& d : ds) {
    gender.bytes.push_back(AttributeText(d, "gender"));
    emotion.bytes.push_back(AttributeText(d, "emotion"));
    gender_score.push_back(AttributeNumber(d, "gender_score"));
    emotion_score.push_back(AttributeNumber(d, "emotion_score"));
    age.push_back(AttributeNumber(d, "age"));
  }
  return {std::move(gender), Fp32("gender_score", {n}, gender_score), std::move(emotion),
          Fp32("emotion_score", {n}, emotion_score), Fp32("age", {n}, age)};
}

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
  SV_TRY(ReadAttributes(ts, &out));
  return out;
}

}  // namespace storevisor::vision::kserve
