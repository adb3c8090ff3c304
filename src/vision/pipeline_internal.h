// Internal pieces of the pipelines (not part of the public API): the shared edge worker
// queue, the cloud client with its circuit breaker, the placement policy and frame sources.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <thread>

#include "vision/vision.h"

namespace storevisor::vision::internal {

using Clock = std::chrono::steady_clock;
using DetectFn = std::function<Result<std::vector<Detection>>()>;

// The edge: a FIFO of detection jobs served by a fixed set of worker threads. Its queue
// length times the mean service time is the latency a new frame would see, which is what
// auto placement compares with a pipeline's target.
class EdgeExecutor {
 public:
  explicit EdgeExecutor(int workers);
  ~EdgeExecutor();
  EdgeExecutor(const EdgeExecutor&) = delete;
  EdgeExecutor& operator=(const EdgeExecutor&) = delete;

  std::future<Result<std::vector<Detection>>> Submit(DetectFn job);
  // Estimated time a job submitted now would take from submit to result, in ms.
  double EstimatedLatencyMs() const;
  size_t QueueLength() const;

 private:
  void Worker();

  int workers_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<Result<std::vector<Detection>>()>> queue_;
  size_t busy_ = 0;
  double mean_service_ms_ = 0;  // exponentially weighted
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A KServe v2 client for one remote endpoint, with a circuit breaker: after N consecutive
// failures it stays open (no requests) for open_ms, then lets one trial request through.
class CloudClient {
 public:
  explicit CloudClient(CloudConfig config) : config_(std::move(config)) {}
  Result<std::vector<Detection>> Detect(const std::string& detector, const cv::Mat& bgr);
  bool Available() const;  // breaker closed, or open long enough for a trial
  std::string BreakerState() const;
  double MeanLatencyMs() const;
  // Mean latency (EWMA) of the successful requests, or 0 when none succeeded within max_age:
  // what auto placement compares with a pipeline's target. Only answers count; failures are
  // the breaker's business.
  double RecentLatencyMs(Clock::duration max_age) const;

 private:
  // attributes: ask for (and require) the face_attributes model's attribute outputs.
  Result<std::vector<Detection>> Call(const std::string& model, const cv::Mat& bgr,
                                      bool attributes) const;
  void Record(bool ok, double ms);

  CloudConfig config_;
  mutable std::mutex mu_;
  int failures_ = 0;
  Clock::time_point open_until_{};
  double mean_ms_ = 0;
  double ok_mean_ms_ = 0;  // successful requests only
  Clock::time_point last_ok_{};
};

// The auto placement policy as a pure function of what is measured, with hysteresis so
// one slow frame does not flip it: offload when the edge estimate exceeds the target, come
// back when it is below 70% of it; fall back to the edge whenever the cloud is unavailable.
// A cloud that answers but slowly: leave it when its recent latency exceeds the target and
// the edge promises better; offload again only when the cloud is clearly better (its recent
// latency under 70% of the target or of the edge estimate) or its latency is no longer known
// (no answer within kCloudLatencyFresh: the next offload is then a probe).
struct PlacementInput {
  Placement configured;
  Placement current;  // kEdge or kCloud
  double edge_estimate_ms;
  double target_ms;
  bool cloud_available;
  std::string cloud_state;
  double cloud_latency_ms = 0;  // recent mean of the cloud's answers; 0 = not known
};
// How long a measured cloud latency counts as recent.
inline constexpr auto kCloudLatencyFresh = std::chrono::seconds(10);
// Why: a small fixed set, so that the metrics' `reason` label has few values (a label with
// live numbers would make a new Prometheus series every frame); the numbers go in `detail`,
// which only events and /pipelines carry.
enum class PlacementReason {
  kConfiguredEdge,    // placement: edge
  kConfiguredCloud,   // placement: cloud, cloud available
  kCloudUnavailable,  // breaker open (or no cloud): edge
  kEdgeWithinTarget,  // auto on the edge, estimate within target
  kEdgeOverTarget,    // auto offloads: edge estimate over target
  kEdgeRecovered,     // auto back from the cloud: estimate under 70% of target
  kEdgeStillBusy,     // auto stays on the cloud: estimate over 70% of target
  kCloudSlow,         // auto back from the cloud: its latency over target, edge better
  kCloudNoBetter,     // auto stays on the edge over target: the cloud is recently no better
};
std::string_view PlacementReasonCode(PlacementReason r);
// Every code, for tests and documentation.
inline constexpr std::array<PlacementReason, 9> kPlacementReasons = {
    PlacementReason::kConfiguredEdge,   PlacementReason::kConfiguredCloud,
    PlacementReason::kCloudUnavailable, PlacementReason::kEdgeWithinTarget,
    PlacementReason::kEdgeOverTarget,   PlacementReason::kEdgeRecovered,
    PlacementReason::kEdgeStillBusy,    PlacementReason::kCloudSlow,
    PlacementReason::kCloudNoBetter};
struct PlacementDecision {
  Placement where;  // kEdge or kCloud
  PlacementReason reason;
  std::string detail;  // the numbers behind it, e.g. "edge estimate 150ms over target 100ms"
};
PlacementDecision DecidePlacement(const PlacementInput& in);

// Frames from a source; Next() fails with kUnavailable when the source is gone (camera
// unplugged, file deleted) and kInvalidArgument for one bad frame that can be skipped.
class FrameSource {
 public:
  static Result<std::unique_ptr<FrameSource>> Open(const SourceConfig& config);
  virtual ~FrameSource() = default;
  // nullopt at the end of a finite source.
  virtual Result<std::optional<cv::Mat>> Next() = 0;
};

// Draws detections on a frame for the MJPEG stream.
void Annotate(cv::Mat* frame, const std::vector<Detection>& ds, const std::string& caption);

}  // namespace storevisor::vision::internal
