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

PlacementDecision DecidePlacement(const PlacementInput& in) {
  if (in.configured == Placement::kEdge) return {Placement::kEdge, "configured edge"};
  if (in.configured == Placement::kCloud) {
    if (in.cloud_available) return {Placement::kCloud, "configured cloud"};
    return {Placement::kEdge, "cloud unavailable (" + in.cloud_state + "), edge fallback"};
  }
  const std::string est = std::to_string(static_cast<int>(in.edge_estimate_ms)) + "ms";
  const std::string target = std::to_string(static_cast<int>(in.target_ms)) + "ms";
  if (!in.cloud_available) {
    return {Placement::kEdge, "cloud unavailable (" + in.cloud_state + "), edge estimate " + est};
  }
  const double cloud_ms = in.cloud_latency_ms;
  const std::string cloud = std::to_string(static_cast<int>(cloud_ms)) + "ms";
  if (in.current == Placement::kCloud) {
    if (cloud_ms > in.target_ms && in.edge_estimate_ms < cloud_ms) {
      return {Placement::kEdge,
              "cloud latency " + cloud + " over target " + target + ", edge estimate " + est};
    }
    if (in.edge_estimate_ms < 0.7 * in.target_ms) {
      return {Placement::kEdge, "edge estimate " + est + " back under 70% of target " + target};
    }
    return {Placement::kCloud, "edge estimate " + est + " over 70% of target " + target};
  }
  if (in.edge_estimate_ms > in.target_ms) {
    const bool cloud_known_slow =
        cloud_ms > 0 && cloud_ms >= 0.7 * in.target_ms && cloud_ms >= 0.7 * in.edge_estimate_ms;
    if (cloud_known_slow) {
      return {Placement::kEdge, "edge estimate " + est + " over target " + target +
                                    " but cloud latency " + cloud + " is no better"};
    }
    return {Placement::kCloud, "edge estimate " + est + " over target " + target};
  }
  return {Placement::kEdge, "edge estimate " + est + " within target " + target};
}

}  // namespace storevisor::vision::internal
