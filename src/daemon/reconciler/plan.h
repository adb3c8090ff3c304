// The reconciler's decisions, as pure functions of (desired profile, recorded state):
// which workloads to create, update in place, replace or delete, and in which order.
// No I/O here, so every decision is unit-tested without a daemon.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/profile/profile.h"
#include "daemon/store/state_store.h"

namespace storevisor::daemon {

enum class StepAction { kCreate, kUpdate, kReplace, kDelete };
std::string_view StepActionName(StepAction action);

struct PlanStep {
  StepAction action;
  std::string name;
  std::string reason;  // why, for `storevisor diff`
};

struct Plan {
  std::vector<PlanStep> steps;
  std::vector<std::string> held;  // changes not applied on purpose (update: manual, stopped)
  nlohmann::json ToJson() const;
};

// Compares each desired workload with its record. A record with no runtime hash has no
// instance yet (never created, or its creation failed) and is created again.
Plan ComputePlan(const Profile& desired, const std::vector<WorkloadRecord>& records);

// Workload names grouped by start order: every workload's after: dependencies are in an
// earlier group. Workloads of one group are independent and may start in parallel.
std::vector<std::vector<std::string>> StartGroups(const Profile& profile);

// Delay before the (failures+1)-th restart: initial * 2^failures, capped at max (initial 0:
// 0 the first time, then 10 ms doubling).
int64_t BackoffMs(const Restart& restart, int64_t consecutive_failures);

// Whether a workload that ended with exit_code (-1: unknown, signal) is to be restarted
// after `restarts_so_far` restarts.
bool ShouldRestart(const Restart& restart, int64_t exit_code, bool unhealthy,
                   int64_t restarts_so_far);

}  // namespace storevisor::daemon
