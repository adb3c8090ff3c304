// Image decoding and detection JSON: the first code every untrusted byte meets.
#include <opencv2/imgcodecs.hpp>

#include "common/files.h"
#include "vision/vision.h"

namespace storevisor::vision {

nlohmann::json DetectionToJson(const Detection& d) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : d.points) points.push_back({p.x, p.y});
  return {{"kind", d.kind},
          {"label", d.label},
          {"format", d.format},
          {"score", d.score},
          {"box", {d.box.x, d.box.y, d.box.width, d.box.height}},
          {"points", points}};
}

nlohmann::json DetectionsToJson(const std::vector<Detection>& ds) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : ds) out.push_back(DetectionToJson(d));
  return out;
}

Result<cv::Mat> DecodeImage(std::span<const uint8_t> bytes, int64_t max_pixels) {
  if (bytes.empty()) return Error(ErrorCode::kInvalidArgument, "image is empty (0 bytes)");
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    return Error(ErrorCode::kInvalidArgument, "image is larger than 2 GiB");
  }
  // cv::imdecode wants a Mat header; it only reads from it.
  const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8UC1,
                    const_cast<uint8_t*>(bytes.data()));  // NOLINT: imdecode does not write
  // Check the header's size before decoding so a tiny file cannot ask for gigapixels.
  cv::Mat img;
  try {
    img = cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Error(ErrorCode::kInvalidArgument, std::string("image cannot be decoded: ") + e.what());
  }
  if (img.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "image cannot be decoded: not a JPEG/PNG/BMP/TIFF/WebP file, or truncated");
  }
  if (static_cast<int64_t>(img.rows) * img.cols > max_pixels) {
    return Error(ErrorCode::kInvalidArgument,
                 "image has " + std::to_string(img.cols) + "x" + std::to_string(img.rows) +
                     " pixels, more than the limit of " + std::to_string(max_pixels));
  }
  return img;
}

Result<cv::Mat> ReadImageFile(const std::string& path) {
  SV_ASSIGN_OR_RETURN(std::string data, ReadFile(path, 256u << 20));
  auto img = DecodeImage(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  if (!img) return std::move(img).error().Context(path);
  return img;
}

}  // namespace storevisor::vision
