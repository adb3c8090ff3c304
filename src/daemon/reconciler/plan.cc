#include "daemon/reconciler/plan.h"

#include <algorithm>
#include <map>
#include <set>

namespace storevisor::daemon {

std::string_view StepActionName(StepAction action) {
  switch (action) {
    case StepAction::kCreate:
      return "create";
    case StepAction::kUpdate:
      return "update";
    case StepAction::kReplace:
      return "replace";
    case StepAction::kDelete:
      return "delete";
  }
  return "create";
}

nlohmann::json Plan::ToJson() const {
  nlohmann::json steps_json = nlohmann::json::array();
  for (const auto& s : steps) {
    steps_json.push_back(
        {{"action", StepActionName(s.action)}, {"name", s.name}, {"reason", s.reason}});
  }
  return {{"steps", steps_json}, {"held", held}};
}

Plan ComputePlan(const Profile& desired, const std::vector<WorkloadRecord>& records) {
  std::map<std::string, const WorkloadRecord*> by_name;
  for (const auto& r : records) by_name[r.name] = &r;
  Plan plan;
  for (const auto& group : StartGroups(desired)) {
    for (const auto& name : group) {
      const Workload& w = *desired.Find(name);
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        plan.steps.push_back({StepAction::kCreate, name, "new workload"});
        continue;
      }
      const WorkloadRecord& r = *it->second;
      if (r.desired != "running") {
        plan.held.push_back(name + ": " + r.desired + " by the operator");
        continue;
      }
      const std::string runtime = RuntimeHash(w);
      if (r.runtime_hash.empty()) {
        plan.steps.push_back(
            {StepAction::kCreate, name,
             r.last_error.empty() ? "not created yet" : "retrying after: " + r.last_error});
      } else if (r.runtime_hash != runtime) {
        if (w.update == UpdateStrategy::kManual) {
          std::string note = name;
          note += ": changed, waiting for `storevisor restart ";
          note += name;
          note += "` (update: manual)";
          plan.held.push_back(std::move(note));
        } else {
          plan.steps.push_back({StepAction::kReplace, name, "its instance settings changed"});
        }
      } else if (r.spec_hash != SpecHash(w)) {
        plan.steps.push_back({StepAction::kUpdate, name, "supervision settings changed"});
      }
    }
  }
  // Deletions last, in reverse name order (their dependants are gone with them).
  std::vector<std::string> gone;
  for (const auto& r : records) {
    if (desired.Find(r.name) == nullptr) gone.push_back(r.name);
  }
  std::sort(gone.rbegin(), gone.rend());
  for (const auto& name : gone)
    plan.steps.push_back({StepAction::kDelete, name, "not in the profile"});
  return plan;
}

std::vector<std::vector<std::string>> StartGroups(const Profile& profile) {
  std::map<std::string, int> depth;
  // The profile has no cycles (ParseProfile checked), so this relaxation ends within
  // |workloads| rounds.
  for (const auto& w : profile.workloads) depth[w.name] = 0;
  for (size_t round = 0; round < profile.workloads.size(); ++round) {
    bool changed = false;
    for (const auto& w : profile.workloads) {
      for (const auto& dep : w.after) {
        if (depth.count(dep) != 0 && depth[w.name] < depth[dep] + 1) {
          depth[w.name] = depth[dep] + 1;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  std::vector<std::vector<std::string>> groups;
  for (const auto& w : profile.workloads) {
    size_t d = static_cast<size_t>(depth[w.name]);
    if (groups.size() <= d) groups.resize(d + 1);
    groups[d].push_back(w.name);
  }
  return groups;
}

int64_t BackoffMs(const Restart& restart, int64_t consecutive_failures) {
  int64_t delay = restart.backoff_initial_ms;
  int64_t doublings = consecutive_failures;
  if (delay == 0) {
    // initial 0s: the first restart at once, then doubling from 10 ms, so a crash loop
    // still slows down.
    if (consecutive_failures == 0) return 0;
    delay = 10;
    doublings = consecutive_failures - 1;
  }
  for (int64_t i = 0; i < doublings && delay < restart.backoff_max_ms; ++i) delay *= 2;
  return std::min(delay, restart.backoff_max_ms);
}

bool ShouldRestart(const Restart& restart, int64_t exit_code, bool unhealthy,
                   int64_t restarts_so_far) {
  switch (restart.policy) {
    case RestartPolicy::kNever:
      return false;
    case RestartPolicy::kAlways:
      return true;
    case RestartPolicy::kOnFailure:
      if (exit_code == 0 && !unhealthy) return false;
      return restart.max_retries == 0 || restarts_so_far < restart.max_retries;
  }
  return false;
}

}  // namespace storevisor::daemon
