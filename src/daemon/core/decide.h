// storevisord's decisions as one pure function: given the desired generation, the observed
// state of every workload and the time, which actions to take. No I/O, no clock, no locks:
// every rule (dependency order and after: gates, restart policies with capped backoff and
// maxRetries, health retries and startPeriod, operator holds, replacing changed workloads)
// is unit-tested on its own and run under a deterministic simulation (docs/daemon.md,
// "The core").
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/state.h"

namespace storevisor::daemon::core {

enum class ActionType {
  // Effects: the owner runs them through the drivers; results come back as observations.
  kCreate,         // a fresh instance of the desired spec (the driver removes leftovers)
  kRemove,         // stop and remove the instance; `then` says what follows
  kInspect,        // ask the driver what runs (after a watched process ended, or at start)
  kRunCheck,       // one health check of the running instance
  kSetUpNetworks,  // the desired generation's bridges and rules
  // State changes: the core records them (and their events) at once.
  kScheduleRestart,  // an exit is to be restarted at at_ms (the backoff)
  kGiveUp,           // an exit is not restarted (policy, maxRetries)
  kMarkHealthy,
  kMarkUnhealthy,
  kUpdateSpec,  // supervision settings changed: applied in place, no restart
  // The generation on trial (Observed::trial): every workload it changed stayed healthy
  // for commitAfter, or one failed (`reason` says which and how): back to the base.
  kCommit,
  kRollBack,
};
std::string_view ActionName(ActionType type);

struct Action {
  ActionType type = ActionType::kCreate;
  std::string name;                           // the workload ("" for networks)
  std::string verb;                           // kCreate: created|started|restarted|replaced
  AfterRemove then = AfterRemove::kRecreate;  // kRemove
  int64_t at_ms = 0;                          // kScheduleRestart
  std::string reason;                         // for events: why
  int64_t failures = 0;                       // kScheduleRestart: the backoff's new exponent

  bool operator==(const Action& o) const {
    return type == o.type && name == o.name && verb == o.verb && then == o.then &&
           at_ms == o.at_ms && reason == o.reason && failures == o.failures;
  }
};

struct Decision {
  std::vector<Action> actions;
  // When something falls due (a backoff, a check) if nothing happens before.
  int64_t wake_at_ms = std::numeric_limits<int64_t>::max();
};

// A workload that ran at least this long before it exited starts its backoff over.
inline constexpr int64_t kStableMs = 10000;
// While a workload has not passed its first health check it is probed this often:
// dependants wait for "healthy", so its first success should be seen promptly.
inline constexpr int64_t kStartingProbeMs = 50;
// A failed Remove is tried again after this long.
inline constexpr int64_t kRemoveRetryMs = 1000;

Decision Decide(const Desired& desired, const Observed& observed, int64_t now_ms);

// The rules the core applies when a result comes in (pure too, so tested with the rest).
// Whether a failed check of this instance counts toward `retries`: not within startPeriod,
// and fast probes before the first success only once the instance had the time its checks
// would have had at the normal interval.
bool CheckFailureCounts(const WorkloadState& s, int64_t now_ms);
// The delay before the next check after one finished.
int64_t NextCheckDelayMs(const HealthCheck& check, Health health);
// Why the trial's workload has failed it (nullopt: it has not). Only what the generation
// made is judged: instances created during the trial, or one updated in place to it.
std::optional<std::string> TrialFailure(const Desired& desired, const Trial& trial,
                                        const Workload& w, const WorkloadState& s);
// Whether what `dep` names satisfies w's after: rule for it (running, of the desired spec,
// and healthy unless the rule asks only for started).
bool DependencyMet(const Desired& desired, const Observed& observed, const std::string& dep,
                   AfterCondition condition);

}  // namespace storevisor::daemon::core
