// CPU and memory of each workload over the last hour, kept in memory by the daemon for the
// dashboard's charts (GET /ui/history/{name}): one sample of every workload every interval
// (default 10 s, 360 points: an hour), on a thread of its own that Stop (or the destructor)
// joins. Bounded: at most max_workloads series; a workload gone from the list loses its series.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/types.h"
#include "common/error.h"

namespace storevisor::daemon {

class UsageHistory {
 public:
  using Sampler = std::function<Result<std::vector<api::WorkloadStatus>>()>;
  explicit UsageHistory(Sampler sample, int interval_ms = 10000, size_t points = 360,
                        size_t max_workloads = 256)
      : sample_(std::move(sample)),
        interval_ms_(interval_ms),
        points_(points),
        max_workloads_(max_workloads) {}
  ~UsageHistory() { Stop(); }
  UsageHistory(const UsageHistory&) = delete;
  UsageHistory& operator=(const UsageHistory&) = delete;

  void Start();
  void Stop();
  // One sample of every workload (the thread's step; tests call it directly).
  void Record(int64_t now_ms, const std::vector<api::WorkloadStatus>& workloads);
  // {"name": N, "intervalMs": I, "points": [[time_ms, cpu_percent, memory_bytes], ...]}
  // oldest first; kNotFound for a workload without a series.
  Result<std::string> Json(const std::string& name) const;

 private:
  struct Point {
    int64_t time_ms;
    double cpu_percent;
    uint64_t memory_bytes;
  };
  void Loop();

  Sampler sample_;
  const int interval_ms_;
  const size_t points_;
  const size_t max_workloads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::deque<Point>> series_;
  std::thread thread_;
};

}  // namespace storevisor::daemon
