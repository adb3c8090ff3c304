// The owner's loop with real processes: an exit reaches the core through a pidfd on the
// loop's epoll (no polling), the restart runs on the worker pool, commands are answered
// from the loop, and Stop joins everything.
#include "daemon/core/owner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "common/child_process.h"
#include "daemon/core/testing.h"

namespace storevisor::daemon::core {
namespace {

constexpr char kProfile[] = R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: t}
spec:
  workloads:
    - name: sleeper
      kind: container
      rootfs: /srv/sleeper
      command: [/bin/sleep, "1000"]
      restart:
        policy: always
        backoff: {initial: 0s, max: 1s}
)";

// Instances are real processes (sleep), made and ended as a driver would.
class ProcessRunner : public EffectRunner {
 public:
  ~ProcessRunner() override {
    std::lock_guard lock(mu_);
    for (auto& [pid, child] : children_) (void)child.Kill(SIGKILL);
  }

  Observation Run(const Effect& e) override {
    Observation o;
    o.name = e.name;
    o.instance = e.instance;
    std::lock_guard lock(mu_);
    switch (e.type) {
      case Effect::Type::kSetUpNetworks:
        o.type = Observation::Type::kNetworks;
        o.generation = e.generation;
        o.networks_key = e.networks_key;
        return o;
      case Effect::Type::kCreate: {
        o.type = Observation::Type::kCreated;
        SpawnOptions spawn;
        spawn.argv = {"/bin/sleep", "1000"};
        auto child = ChildProcess::Spawn(spawn);
        if (!child) {
          o.status = std::move(child).error();
          return o;
        }
        o.info.running = true;
        o.info.pid = child->pid();
        o.info.driver_state = "{\"pid\":" + std::to_string(child->pid()) + "}";
        children_.emplace(child->pid(), std::move(*child));
        return o;
      }
      case Effect::Type::kInspect: {
        o.type = Observation::Type::kInspected;
        auto it = children_.find(PidOf(e.driver_state));
        if (it == children_.end()) return o;
        auto status = it->second.Wait(std::chrono::milliseconds(1000));
        if (!status) {
          o.info.running = true;
          return o;
        }
        o.info.exit_code = status->exited ? status->exit_code : 128 + status->term_signal;
        children_.erase(it);
        return o;
      }
      case Effect::Type::kRemove: {
        o.type = Observation::Type::kRemoved;
        auto it = children_.find(PidOf(e.driver_state));
        if (it != children_.end()) {
          (void)it->second.Kill(SIGKILL);
          (void)it->second.Wait();
          children_.erase(it);
        }
        return o;
      }
      default:
        o.type = Observation::Type::kChecked;
        o.check_ok = true;
        return o;
    }
  }

  std::vector<Pid> WatchPids(const Effect& e) override {
    return {{PidOf(e.driver_state), 0, "process"}};
  }

 private:
  static int64_t PidOf(const std::string& state) {
    const auto colon = state.find(':');
    return colon == std::string::npos ? 0 : std::strtoll(state.c_str() + colon + 1, nullptr, 10);
  }
  std::mutex mu_;
  std::map<int64_t, ChildProcess> children_;
};

// Waits (a test may) for what the owner publishes to satisfy pred.
template <typename Pred>
bool WaitFor(Owner& owner, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(*owner.snapshot())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

const WorkloadState* Sleeper(const Snapshot& s) {
  auto it = s.workloads.find("sleeper");
  return it == s.workloads.end() ? nullptr : &it->second;
}

TEST(OwnerTest, AKilledProcessIsSeenThroughItsPidfdAndRestarted) {
  MemoryStore store;
  Logger logger(-1);
  ProcessRunner runner;
  Owner owner(store, logger, runner, OwnerOptions{});
  ASSERT_TRUE(owner.Start().has_value());
  ApplyCommand cmd;
  cmd.request.yaml = kProfile;
  auto profile = ParseProfile(kProfile, "t.yaml");
  ASSERT_TRUE(profile.has_value()) << profile.error().message();
  cmd.profile = *profile;
  auto applied = owner.Apply(cmd);
  ASSERT_TRUE(applied.has_value()) << applied.error().message();
  EXPECT_EQ(applied->generation, 1);
  ASSERT_TRUE(WaitFor(owner, [](const Snapshot& s) {
    const auto* w = Sleeper(s);
    return w != nullptr && w->phase == Phase::kRunning;
  }));
  const int64_t first = Sleeper(*owner.snapshot())->pid;
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(first), SIGKILL), 0);
  ASSERT_TRUE(WaitFor(owner, [first](const Snapshot& s) {
    const auto* w = Sleeper(s);
    return w != nullptr && w->phase == Phase::kRunning && w->pid != first;
  }));
  EXPECT_EQ(Sleeper(*owner.snapshot())->restarts, 1);
  // The operator's stop is answered once the instance is gone.
  ASSERT_TRUE(owner.Operator(OperatorVerb::kStop, "sleeper").has_value());
  EXPECT_EQ(Sleeper(*owner.snapshot())->phase, Phase::kStopped);
  owner.Stop();
  EXPECT_EQ(owner.Operator(OperatorVerb::kStart, "sleeper").error().code(),
            ErrorCode::kUnavailable);
  bool exited = false;
  for (const auto& e : store.events()) {
    exited = exited || e.message == "sleeper exited with status 137";
  }
  EXPECT_TRUE(exited);
}

}  // namespace
}  // namespace storevisor::daemon::core
