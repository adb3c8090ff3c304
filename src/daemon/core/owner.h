// The one owner of storevisord's state: a single thread around one epoll that feeds the
// core its commands and observations and runs its effects. Exits arrive as pidfds on that
// epoll, results of driver calls and probes come back from two bounded worker pools, and
// the loop sleeps until the core's next deadline: nothing polls. API threads send commands
// and wait for the answer (as Firecracker's API thread sends actions to the VMM thread);
// readers take the snapshot published after every step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/thread_pool.h"
#include "common/unique_fd.h"
#include "daemon/core/core.h"

namespace storevisor::daemon::core {

// Runs the effects the loop hands out: the daemon's drivers, probes and networks (a fake in
// tests). Run is called on a pool thread and may block; WatchPids on the loop's thread.
class EffectRunner {
 public:
  virtual ~EffectRunner() = default;
  virtual Observation Run(const Effect& effect) = 0;
  // The processes whose end means the instance ended (a container's init and its shim; a
  // VM's QEMU), each with its start time in clock ticks (0: unknown) to tell a reused pid.
  struct Pid {
    int64_t pid = 0;
    uint64_t start_ticks = 0;
    std::string what;  // "process", "shim"
  };
  virtual std::vector<Pid> WatchPids(const Effect& effect) = 0;
};

// What readers see: the state as of the last step.
struct Snapshot {
  std::map<std::string, WorkloadState> workloads;
  int64_t generation = 0;
  std::string profile_name;
  std::shared_ptr<const Profile> profile;  // the desired generation's
  bool store_failing = false;
  uint64_t store_write_failures = 0;
};

struct OwnerOptions {
  size_t workers = 8;  // driver calls (creates may take seconds: a VM boots)
  size_t probes = 4;   // health checks, apart so that slow creates never starve them
  CoreOptions core;
  std::function<int64_t()> now_ms;  // the clock (wall clock in milliseconds)
  // Housekeeping of what runs (log caps), on the worker pool every housekeeping_ms: not a
  // state poll, the core learns nothing from it.
  std::function<void(const Snapshot&)> housekeeping;
  int64_t housekeeping_ms = 5000;
};

class Owner {
 public:
  Owner(Store& store, const Logger& logger, EffectRunner& runner, OwnerOptions options);
  ~Owner();
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;

  // Loads the state and starts the loop.
  Status Start();
  // Stops the loop and the pools (running calls finish; workloads keep running).
  void Stop();

  // Commands: sent to the loop; block until it answered.
  Result<api::ApplyResponse> Apply(ApplyCommand command);
  Status Operator(OperatorVerb verb, const std::string& name);

  std::shared_ptr<const Snapshot> snapshot() const;
  // Blocks until more than `seen` events were written, or timeout_ms passed, or the loop
  // stops; returns the count written so far.
  uint64_t WaitEvents(uint64_t seen, int timeout_ms);
  uint64_t events_written() const;
  // An event was stored outside the core (posted by a service, a QMP event): wakes waiters.
  void NotifyEvents();

 private:
  using Task = std::function<void(Core&, int64_t now)>;
  void Post(Task task);
  void Loop();
  void Dispatch(Effect effect);
  void Watch(const Effect& effect);
  void OnPidfd(int fd);
  void Publish();

  Logger logger_;
  EffectRunner& runner_;
  OwnerOptions options_;
  Core core_;  // touched only by the loop's thread (and by Start before it runs)

  std::mutex mu_;  // guards inbox_ and drained_
  std::deque<Task> inbox_;
  bool drained_ = false;  // the loop is gone: a task posted now is answered at once
  UniqueFd epoll_;
  UniqueFd wake_;  // an eventfd: something is in the inbox
  struct Watched {
    std::string name;
    uint64_t instance = 0;
    std::string what;
  };
  std::map<int, std::pair<UniqueFd, Watched>> watches_;  // by pidfd number (loop thread only)
  // Answers to commands, given once the step that settled them is published (a client that
  // reads `ps` right after its answer sees what it asked for). Loop thread only.
  std::vector<std::function<void()>> answers_;
  std::atomic<bool> stopping_{false};
  int64_t next_housekeeping_ms_ = 0;  // loop thread only
  std::atomic<bool> housekeeping_busy_{false};

  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::condition_variable events_cv_;
  uint64_t events_written_ = 0;  // guarded by snapshot_mu_: events stored, from any source
  uint64_t core_events_ = 0;     // guarded by snapshot_mu_: the core's count at the last step

  ThreadPool workers_;
  ThreadPool probes_;
  std::thread loop_;
};

}  // namespace storevisor::daemon::core
