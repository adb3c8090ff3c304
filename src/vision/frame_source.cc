// Frame sources: still images (a file or a directory of them), video files, RTSP and V4L2
// cameras through OpenCV's videoio.
#include <algorithm>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <vector>

#include "vision/pipeline_internal.h"

namespace storevisor::vision::internal {
namespace {

// How long an RTSP camera may stay silent (at open or between frames) before it counts as lost.
constexpr int kNetworkSourceTimeoutMs = 5000;

class ImageSource : public FrameSource {
 public:
  ImageSource(std::vector<std::string> files, bool loop) : files_(std::move(files)), loop_(loop) {}

  Result<std::optional<cv::Mat>> Next() override {
    if (next_ >= files_.size()) {
      if (!loop_) return std::optional<cv::Mat>();
      next_ = 0;
    }
    const std::string& path = files_[next_++];
    auto img = ReadImageFile(path);
    if (!img && img.error().code() == ErrorCode::kNotFound) {
      // The file went away: the source is gone (an unmounted share, a camera's spool dir).
      return Error(ErrorCode::kUnavailable, img.error().message());
    }
    if (!img) return Error(ErrorCode::kInvalidArgument, img.error().message());
    return std::optional<cv::Mat>(std::move(*img));
  }

 private:
  std::vector<std::string> files_;
  bool loop_;
  size_t next_ = 0;
};

class VideoSource : public FrameSource {
 public:
  explicit VideoSource(SourceConfig config) : config_(std::move(config)) {}
  cv::VideoCapture& capture() { return cap_; }

  Result<std::optional<cv::Mat>> Next() override {
    cv::Mat frame;
    if (cap_.read(frame) && !frame.empty()) return ToBgr(std::move(frame));
    if (config_.type == "video") {
      if (!config_.loop) return std::optional<cv::Mat>();
      cap_.set(cv::CAP_PROP_POS_FRAMES, 0);
      if (cap_.read(frame) && !frame.empty()) return ToBgr(std::move(frame));
    }
    return Error(ErrorCode::kUnavailable,
                 config_.type + " " + config_.path + ": no frame (source gone or closed)");
  }

 private:
  static Result<std::optional<cv::Mat>> ToBgr(cv::Mat frame) {
    if (frame.type() == CV_8UC1) cv::cvtColor(frame, frame, cv::COLOR_GRAY2BGR);
    if (frame.type() != CV_8UC3) return Error(ErrorCode::kInvalidArgument, "frame is not 8-bit");
    return std::optional<cv::Mat>(std::move(frame));
  }

  SourceConfig config_;
  cv::VideoCapture cap_;
};

Result<std::vector<std::string>> ListImages(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    if (!std::filesystem::exists(path, ec)) {
      return Error(ErrorCode::kUnavailable, "images " + path + ": no such file or directory");
    }
    return std::vector<std::string>{path};
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  if (ec) return Error(ErrorCode::kUnavailable, "images " + path + ": " + ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) return Error(ErrorCode::kUnavailable, "images " + path + ": no files");
  return files;
}

}  // namespace

Result<std::unique_ptr<FrameSource>> FrameSource::Open(const SourceConfig& config) {
  if (config.type == "images") {
    SV_ASSIGN_OR_RETURN(auto files, ListImages(config.path));
    return std::unique_ptr<FrameSource>(
        std::make_unique<ImageSource>(std::move(files), config.loop));
  }
  const int api = config.type == "v4l2" ? cv::CAP_V4L2 : cv::CAP_FFMPEG;
  // FFmpeg's defaults wait 30 s for a network camera that stopped sending before a read
  // fails; a lost camera must be reported (source_lost) and retried within seconds.
  std::vector<int> params;
  if (config.type == "rtsp") {
    params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, kNetworkSourceTimeoutMs,
              cv::CAP_PROP_READ_TIMEOUT_MSEC, kNetworkSourceTimeoutMs};
  }
  auto source = std::make_unique<VideoSource>(config);
  try {
    source->capture().open(config.path, api, params);
  } catch (const cv::Exception& e) {
    return Error(ErrorCode::kUnavailable, config.type + " " + config.path + ": " + e.what());
  }
  if (!source->capture().isOpened()) {
    return Error(ErrorCode::kUnavailable,
                 config.type + " " + config.path + ": cannot open (missing, unsupported or busy)");
  }
  return std::unique_ptr<FrameSource>(std::move(source));
}

void Annotate(cv::Mat* frame, const std::vector<Detection>& ds, const std::string& caption) {
  for (const auto& d : ds) {
    const cv::Scalar color = d.kind == "face"      ? cv::Scalar(0, 200, 0)
                             : d.kind == "product" ? cv::Scalar(200, 120, 0)
                                                   : cv::Scalar(0, 0, 230);
    if (d.points.size() == 4 && d.kind != "face") {
      std::vector<cv::Point> poly(d.points.begin(), d.points.end());
      cv::polylines(*frame, poly, true, color, 2);
    } else {
      cv::rectangle(*frame, cv::Rect(d.box), color, 2);
    }
    cv::putText(*frame, d.kind == "face" ? "face" : d.label,
                cv::Point(static_cast<int>(d.box.x), std::max(12, static_cast<int>(d.box.y) - 4)),
                cv::FONT_HERSHEY_SIMPLEX, 0.45, color, 1);
  }
  cv::putText(*frame, caption, {6, frame->rows - 8}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(255, 255, 255), 1);
}

}  // namespace storevisor::vision::internal
