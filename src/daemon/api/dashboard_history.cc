// The dashboard's usage history (dashboard_history.h).
#include "daemon/api/dashboard_history.h"

#include <chrono>
#include <set>

#include "api/json.h"

namespace storevisor::daemon {

void UsageHistory::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void UsageHistory::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void UsageHistory::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto workloads = sample_();
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (workloads) Record(now, *workloads);
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

void UsageHistory::Record(int64_t now_ms, const std::vector<api::WorkloadStatus>& workloads) {
  std::lock_guard lock(mu_);
  std::set<std::string> present;
  for (const auto& w : workloads) {
    present.insert(w.name);
    auto it = series_.find(w.name);
    if (it == series_.end()) {
      if (series_.size() >= max_workloads_) continue;
      it = series_.emplace(w.name, std::deque<Point>()).first;
    }
    const bool running = w.state == "running";
    it->second.push_back(
        Point{now_ms, running ? w.cpu_percent : 0.0, running ? w.memory_bytes : uint64_t{0}});
    while (it->second.size() > points_) it->second.pop_front();
  }
  std::erase_if(series_, [&present](const auto& kv) { return present.count(kv.first) == 0; });
}

Result<std::string> UsageHistory::Json(const std::string& name) const {
  nlohmann::json points = nlohmann::json::array();
  {
    std::lock_guard lock(mu_);
    auto it = series_.find(name);
    if (it == series_.end()) {
      return Error(ErrorCode::kNotFound, "no usage history for '" + name + "'");
    }
    for (const auto& p : it->second) points.push_back({p.time_ms, p.cpu_percent, p.memory_bytes});
  }
  return api::Dump(
      nlohmann::json{{"name", name}, {"intervalMs", interval_ms_}, {"points", points}});
}

}  // namespace storevisor::daemon
