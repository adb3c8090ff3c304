// Offload to any KServe v2 server: the frame goes as one JPEG (or PNG) in a BYTES tensor
// (binary data extension), detections come back as boxes/scores/labels, plus the five face
// attribute outputs for face_attributes. Whatever the peer answers
// is parsed with the same checked parsers as requests to our own server.
#include <httplib.h>

#include <algorithm>
#include <opencv2/imgcodecs.hpp>

#include "vision/pipeline_internal.h"

namespace storevisor::vision::internal {
namespace {

constexpr const char* kHeaderLength = "Inference-Header-Content-Length";

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

// The outputs asked for: the three every detector has, and for face_attributes the five
// attribute outputs too, all as binary data. A peer that lacks them answers 400 (a
// cloud_error, the frame runs at the edge) rather than silently dropping the attributes.
nlohmann::json RequestedOutputs(bool attributes) {
  nlohmann::json out = nlohmann::json::array();
  for (const char* name : {"boxes", "scores", "labels"}) {
    out.push_back({{"name", name}, {"parameters", {{"binary_data", true}}}});
  }
  if (attributes) {
    for (auto name : kserve::kAttributeOutputs) {
      out.push_back({{"name", std::string(name)}, {"parameters", {{"binary_data", true}}}});
    }
  }
  return out;
}

}  // namespace

Result<std::vector<Detection>> CloudClient::Call(const std::string& model, const cv::Mat& bgr,
                                                 bool attributes) const {
  std::vector<uint8_t> jpeg;  // or PNG: cloud.frame_format
  const bool png = config_.frame_format == "png";
  if (!cv::imencode(png ? ".png" : ".jpg", bgr, jpeg,
                    png ? std::vector<int>{cv::IMWRITE_PNG_COMPRESSION, 1}
                        : std::vector<int>{cv::IMWRITE_JPEG_QUALITY, 85})) {
    return Error(ErrorCode::kInternal, "cannot encode frame for the cloud");
  }
  const std::string header =
      nlohmann::json{{"inputs",
                      {{{"name", "image"},
                        {"datatype", "BYTES"},
                        {"shape", {1}},
                        {"parameters", {{"binary_data_size", jpeg.size() + 4}}}}}},
                     {"outputs", RequestedOutputs(attributes)}}
          .dump();
  std::string body = header + Le32(static_cast<uint32_t>(jpeg.size()));
  body.append(reinterpret_cast<const char*>(jpeg.data()), jpeg.size());
  httplib::Client client(config_.url);
  const auto timeout = std::chrono::microseconds(static_cast<int64_t>(config_.timeout_ms * 1000));
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  auto res = client.Post("/v2/models/" + model + "/infer",
                         {{kHeaderLength, std::to_string(header.size())}}, body,
                         "application/octet-stream");
  if (!res) {
    return Error(ErrorCode::kUnavailable,
                 "cloud " + config_.url + ": " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    return Error(ErrorCode::kUnavailable, "cloud " + config_.url + ": HTTP " +
                                              std::to_string(res->status) + ": " +
                                              res->body.substr(0, 200));
  }
  std::optional<size_t> hl;
  if (res->has_header(kHeaderLength)) {
    auto parsed = kserve::ParseHeaderLength(res->get_header_value(kHeaderLength));
    if (!parsed) return Error(ErrorCode::kGuestFault, "cloud: " + parsed.error().message());
    hl = *parsed;
  }
  auto tensors = kserve::ParseInferResponse(res->body, hl);
  if (!tensors) return Error(ErrorCode::kGuestFault, "cloud answer: " + tensors.error().message());
  auto ds = kserve::DetectionsFromTensors(*tensors);
  if (!ds) return Error(ErrorCode::kGuestFault, "cloud answer: " + ds.error().message());
  if (attributes && !ds->empty() &&
      std::none_of(tensors->begin(), tensors->end(),
                   [](const kserve::Tensor& t) { return t.name == "gender"; })) {
    return Error(ErrorCode::kGuestFault, "cloud answer: model '" + model +
                                             "' returned no face attribute outputs (gender, "
                                             "gender_score, emotion, emotion_score, age)");
  }
  return ds;
}

Result<std::vector<Detection>> CloudClient::Detect(const std::string& detector,
                                                   const cv::Mat& bgr) {
  auto it = config_.models.find(detector);
  const std::string model = it == config_.models.end() ? detector : it->second;
  const auto start = Clock::now();
  auto result = Call(model, bgr, detector == "face_attributes");
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  Record(result.has_value(), ms);
  return result;
}

void CloudClient::Record(bool ok, double ms) {
  std::lock_guard<std::mutex> lock(mu_);
  mean_ms_ = mean_ms_ == 0 ? ms : 0.8 * mean_ms_ + 0.2 * ms;
  if (ok) {
    failures_ = 0;
    const auto now = Clock::now();
    // A mean older than the freshness window says nothing of the cloud now: start again.
    const bool stale = now - last_ok_ > kCloudLatencyFresh;
    ok_mean_ms_ = ok_mean_ms_ == 0 || stale ? ms : 0.8 * ok_mean_ms_ + 0.2 * ms;
    last_ok_ = now;
    return;
  }
  if (++failures_ >= config_.failures_to_open) {
    open_until_ =
        Clock::now() + std::chrono::microseconds(static_cast<int64_t>(config_.open_ms * 1000));
  }
}

bool CloudClient::Available() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !config_.url.empty() &&
         (failures_ < config_.failures_to_open || Clock::now() >= open_until_);
}

std::string CloudClient::BreakerState() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (config_.url.empty()) return "no cloud configured";
  if (failures_ < config_.failures_to_open) return "closed";
  return Clock::now() >= open_until_ ? "half-open"
                                     : "open after " + std::to_string(failures_) + " failures";
}

double CloudClient::MeanLatencyMs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mean_ms_;
}

double CloudClient::RecentLatencyMs(Clock::duration max_age) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (ok_mean_ms_ == 0 || Clock::now() - last_ok_ > max_age) return 0;
  return ok_mean_ms_;
}

}  // namespace storevisor::vision::internal
