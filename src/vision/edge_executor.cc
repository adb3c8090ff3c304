#include "vision/pipeline_internal.h"

namespace storevisor::vision::internal {

EdgeExecutor::EdgeExecutor(int workers) : workers_(std::max(1, workers)) {
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { Worker(); });
}

EdgeExecutor::~EdgeExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::future<Result<std::vector<Detection>>> EdgeExecutor::Submit(DetectFn job) {
  std::packaged_task<Result<std::vector<Detection>>()> task(std::move(job));
  auto fut = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return fut;
}

double EdgeExecutor::EstimatedLatencyMs() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Jobs ahead (queued + running), spread over the workers, plus the job itself.
  const double ahead = static_cast<double>(queue_.size() + busy_) / workers_;
  return (ahead + 1.0) * mean_service_ms_;
}

size_t EdgeExecutor::QueueLength() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void EdgeExecutor::Worker() {
  for (;;) {
    std::packaged_task<Result<std::vector<Detection>>()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      busy_++;
    }
    const auto start = Clock::now();
    task();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::lock_guard<std::mutex> lock(mu_);
    busy_--;
    mean_service_ms_ = mean_service_ms_ == 0 ? ms : 0.8 * mean_service_ms_ + 0.2 * ms;
  }
}

std::string_view PlacementReasonCode(PlacementReason r) {
  switch (r) {
    case PlacementReason::kConfiguredEdge:
      return "configured_edge";
    case PlacementReason::kConfiguredCloud:
      return "configured_cloud";
    case PlacementReason::kCloudUnavailable:
      return "cloud_unavailable";
    case PlacementReason::kEdgeWithinTarget:
      return "edge_within_target";
    case PlacementReason::kEdgeOverTarget:
      return "edge_over_target";
    case PlacementReason::kEdgeRecovered:
      return "edge_recovered";
    case PlacementReason::kEdgeStillBusy:
      return "edge_still_busy";
    case PlacementReason::kCloudSlow:
      return "cloud_slow";
    case PlacementReason::kCloudNoBetter:
      return "cloud_no_better";
  }
  return "unknown";
}

PlacementDecision DecidePlacement(const PlacementInput& in) {
  using R = PlacementReason;
  if (in.configured == Placement::kEdge)
    return {Placement::kEdge, R::kConfiguredEdge, "configured edge"};
  if (in.configured == Placement::kCloud) {
    if (in.cloud_available) return {Placement::kCloud, R::kConfiguredCloud, "configured cloud"};
    return {Placement::kEdge, R::kCloudUnavailable,
            "cloud unavailable (" + in.cloud_state + "), edge fallback"};
  }
  const std::string est = std::to_string(static_cast<int>(in.edge_estimate_ms)) + "ms";
  const std::string target = std::to_string(static_cast<int>(in.target_ms)) + "ms";
  if (!in.cloud_available) {
    return {Placement::kEdge, R::kCloudUnavailable,
            "cloud unavailable (" + in.cloud_state + "), edge estimate " + est};
  }
  const double cloud_ms = in.cloud_latency_ms;
  const std::string cloud = std::to_string(static_cast<int>(cloud_ms)) + "ms";
  if (in.current == Placement::kCloud) {
    if (cloud_ms > in.target_ms && in.edge_estimate_ms < cloud_ms) {
      return {Placement::kEdge, R::kCloudSlow,
              "cloud latency " + cloud + " over target " + target + ", edge estimate " + est};
    }
    if (in.edge_estimate_ms < 0.7 * in.target_ms) {
      return {Placement::kEdge, R::kEdgeRecovered,
              "edge estimate " + est + " back under 70% of target " + target};
    }
    return {Placement::kCloud, R::kEdgeStillBusy,
            "edge estimate " + est + " over 70% of target " + target};
  }
  if (in.edge_estimate_ms > in.target_ms) {
    const bool cloud_known_slow =
        cloud_ms > 0 && cloud_ms >= 0.7 * in.target_ms && cloud_ms >= 0.7 * in.edge_estimate_ms;
    if (cloud_known_slow) {
      return {Placement::kEdge, R::kCloudNoBetter,
              "edge estimate " + est + " over target " + target + " but cloud latency " + cloud +
                  " is no better"};
    }
    return {Placement::kCloud, R::kEdgeOverTarget,
            "edge estimate " + est + " over target " + target};
  }
  return {Placement::kEdge, R::kEdgeWithinTarget,
          "edge estimate " + est + " within target " + target};
}

}  // namespace storevisor::vision::internal
