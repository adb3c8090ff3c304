#include "daemon/core/decide.h"

#include <algorithm>

#include "daemon/reconciler/plan.h"

namespace storevisor::daemon::core {

namespace {

Action Simple(ActionType type, const std::string& name, std::string reason) {
  Action a;
  a.type = type;
  a.name = name;
  a.reason = std::move(reason);
  return a;
}

Action CreateAction(const std::string& name, std::string verb, std::string reason) {
  Action a = Simple(ActionType::kCreate, name, std::move(reason));
  a.verb = std::move(verb);
  return a;
}

Action RemoveAction(const std::string& name, AfterRemove then, std::string verb,
                    std::string reason) {
  Action a = Simple(ActionType::kRemove, name, std::move(reason));
  a.then = then;
  a.verb = std::move(verb);
  return a;
}

// One Decide call: the inputs, and the decision being built.
class Decider {
 public:
  Decider(const Desired& desired, const Observed& observed, int64_t now)
      : desired_(desired), observed_(observed), now_(now) {}

  Decision Run() {
    if (observed_.trial && observed_.trial->generation == desired_.generation) {
      // A failed trial is the whole decision: the next one is made for the restored
      // generation, so nothing more of the failed one is started.
      DecideTrial(*observed_.trial);
      if (!d_.actions.empty() && d_.actions.back().type == ActionType::kRollBack) {
        return std::move(d_);
      }
    }
    DecideNetworks();
    for (const auto& [name, s] : observed_.workloads) {
      if (desired_.profile.Find(name) == nullptr) DecideGone(s);
    }
    for (const auto& w : desired_.profile.workloads) {
      auto it = observed_.workloads.find(w.name);
      if (it == observed_.workloads.end()) {
        if (CanCreate(w)) Add(CreateAction(w.name, "created", "new workload"));
      } else {
        DecideDesired(w, it->second);
      }
    }
    return std::move(d_);
  }

 private:
  void Add(Action a) { d_.actions.push_back(std::move(a)); }
  void WakeAt(int64_t t) {
    if (t > now_) d_.wake_at_ms = std::min(d_.wake_at_ms, t);
  }
  bool Due(int64_t t) {
    if (t <= now_) return true;
    WakeAt(t);
    return false;
  }
  bool NetworksReady() const { return observed_.networks_key == desired_.NetworksKey(); }

  void DecideNetworks() {
    if (NetworksReady() || observed_.networks_busy) return;
    if (Due(observed_.networks_retry_at_ms)) {
      Add(Simple(ActionType::kSetUpNetworks, "",
                 "generation " + std::to_string(desired_.generation)));
    }
  }

  // A workload no longer in the profile: its instance goes, then its record.
  void DecideGone(const WorkloadState& s) {
    if (s.op != Op::kNone) return;  // a create under way finishes first, then is removed
    if (Due(s.retry_at_ms)) {
      Add(RemoveAction(s.name, AfterRemove::kDelete, "", "not in the profile"));
    }
  }

  // Creation waits for the generation's networks and for every after: entry that holds it.
  bool CanCreate(const Workload& w) const {
    if (!NetworksReady()) return false;
    for (const auto& dep : w.after) {
      const AfterRule rule = RuleOf(w, dep);
      if (rule.holds != AfterHolds::kStart) continue;
      if (!DependencyMet(desired_, observed_, dep, rule.condition)) return false;
    }
    return true;
  }

  bool HealthGateMet(const Workload& spec) const {
    for (const auto& dep : spec.after) {
      const AfterRule rule = RuleOf(spec, dep);
      if (rule.holds == AfterHolds::kHealth &&
          !DependencyMet(desired_, observed_, dep, rule.condition)) {
        return false;
      }
    }
    return true;
  }

  void DecideDesired(const Workload& w, const WorkloadState& s) {
    if (s.op != Op::kNone) return;  // one driver call at a time per workload
    if (s.intent != Intent::kRunning) {
      // The operator's hold: no instance, and nothing left of one.
      if ((s.phase != Phase::kStopped || s.leftover) && Due(s.retry_at_ms)) {
        Add(RemoveAction(s.name, AfterRemove::kHold, "",
                         std::string(IntentName(s.intent)) + " by the operator"));
      }
      return;
    }
    if (s.restart_requested) return DecideOperatorRestart(w, s);
    switch (s.phase) {
      case Phase::kRunning:
        return DecideRunning(w, s);
      case Phase::kExited:
        return DecideExited(w, s);
      case Phase::kPending:
      case Phase::kFailed:
        if (Due(s.retry_at_ms) && CanCreate(w)) {
          Add(CreateAction(
              s.name, s.next_verb.empty() ? "created" : s.next_verb,
              s.last_error.empty() ? "no instance" : "retrying after: " + s.last_error));
        }
        return;
      case Phase::kStopped:
        if (CanCreate(w)) {
          Add(CreateAction(s.name, s.next_verb.empty() ? "started" : s.next_verb,
                           "the hold ended"));
        }
        return;
      case Phase::kCreating:
        // Left by a daemon that stopped mid-create: the core inspects it when it loads.
        return;
    }
  }

  void DecideOperatorRestart(const Workload& w, const WorkloadState& s) {
    if (s.phase == Phase::kPending || s.phase == Phase::kStopped || s.phase == Phase::kFailed) {
      if (CanCreate(w)) {
        Add(CreateAction(s.name, "restarted", "restart by the operator"));
      }
      return;
    }
    Add(RemoveAction(s.name, AfterRemove::kRecreate, "restarted", "restart by the operator"));
  }

  void DecideRunning(const Workload& w, const WorkloadState& s) {
    if (s.ended) {
      Add(Simple(ActionType::kInspect, s.name, "a process of it ended"));
      return;
    }
    if (s.runtime_hash != desired_.RuntimeHashOf(w) && w.update != UpdateStrategy::kManual) {
      // The old instance keeps running until what the new one needs is there.
      if (CanCreate(w)) {
        Add(RemoveAction(s.name, AfterRemove::kRecreate, "replaced",
                         "its instance settings changed"));
      }
      return;
    }
    if (s.spec_hash != desired_.SpecHashOf(w) && s.runtime_hash == desired_.RuntimeHashOf(w)) {
      Add(Simple(ActionType::kUpdateSpec, s.name, "supervision settings changed"));
      return;  // the checks below go by the updated settings
    }
    DecideHealth(s);
  }

  void DecideHealth(const WorkloadState& s) {
    const HealthCheck& check = s.spec.health;
    if (check.type == HealthType::kNone) return;
    if (s.health_failures >= std::max(1, check.retries)) {
      Add(Simple(ActionType::kMarkUnhealthy, s.name, s.check_detail));
      if (s.spec.restart.policy != RestartPolicy::kNever && s.started_at_ms > 0) {
        // An unhealthy instance is replaced like one that exited with a failure.
        Add(RemoveAction(s.name, AfterRemove::kExited, "", "unhealthy"));
      }
      return;
    }
    if (s.check_ok && s.health != Health::kHealthy && HealthGateMet(s.spec)) {
      Add(Simple(ActionType::kMarkHealthy, s.name, ""));
    }
    if (!s.check_running && Due(s.next_check_ms)) {
      Add(Simple(ActionType::kRunCheck, s.name, ""));
    }
  }

  void DecideExited(const Workload& w, const WorkloadState& s) {
    if (s.leftover) {
      // Judged ended while some of it may run on (its shim died, not its processes).
      Add(RemoveAction(s.name, AfterRemove::kExited, "", "what is left of it"));
      return;
    }
    if (s.runtime_hash != desired_.RuntimeHashOf(w) && w.update != UpdateStrategy::kManual) {
      // It ended while a new spec was waiting: the new spec runs, without a backoff.
      if (CanCreate(w)) {
        Add(CreateAction(s.name, "replaced", "its instance settings changed"));
      }
      return;
    }
    if (!s.restart_scheduled && !s.gave_up) {
      const Restart& policy = s.spec.restart;
      if (ShouldRestart(policy, s.exit_code, s.health == Health::kUnhealthy, s.restarts)) {
        const int64_t failures = now_ - s.started_at_ms > kStableMs ? 0 : s.failures;
        const int64_t delay = BackoffMs(policy, failures);
        Action a = Simple(ActionType::kScheduleRestart, s.name,
                          "restarts in " + std::to_string(delay) + " ms");
        a.at_ms = now_ + delay;
        a.failures = failures + 1;
        Add(std::move(a));
      } else {
        Add(Simple(ActionType::kGiveUp, s.name, GiveUpReason(s)));
      }
      return;
    }
    if (s.restart_scheduled && Due(s.retry_at_ms) && CanCreate(w)) {
      Add(CreateAction(s.name, "restarted", "its restart policy"));
    }
  }

  // A generation on trial: committed once what it changed stayed healthy for commitAfter,
  // rolled back as soon as one of them fails (or is not healthy in time).
  void DecideTrial(const Trial& t) {
    if (!NetworksReady() && !observed_.networks_busy && !observed_.networks_error.empty()) {
      Add(Simple(ActionType::kRollBack, "", "its networks failed: " + observed_.networks_error));
      return;
    }
    const int64_t ready_by = t.since_ms + t.commit_after_ms + kTrialReadyMs;
    bool all_ready = NetworksReady();
    int64_t commit_at = now_;
    for (const auto& name : t.changed) {
      const Workload* w = desired_.profile.Find(name);
      if (w == nullptr) continue;
      auto it = observed_.workloads.find(name);
      if (it != observed_.workloads.end()) {
        if (auto failure = TrialFailure(desired_, t, *w, it->second)) {
          Add(Simple(ActionType::kRollBack, name, *failure));
          return;
        }
      }
      const std::optional<int64_t> since =
          it == observed_.workloads.end() ? std::nullopt : HealthySince(*w, it->second);
      if (!since) {
        all_ready = false;
        if (now_ >= ready_by) {
          Add(Simple(ActionType::kRollBack, name,
                     name + " was not healthy within " +
                         std::to_string((t.commit_after_ms + kTrialReadyMs) / 1000) + " s"));
          return;
        }
        continue;
      }
      commit_at = std::max(commit_at, *since + t.commit_after_ms);
    }
    if (!all_ready) {
      WakeAt(ready_by);
      return;
    }
    if (Due(commit_at)) {
      Add(Simple(ActionType::kCommit, "",
                 t.changed.empty()
                     ? "it changed no workload"
                     : std::to_string(t.changed.size()) + " changed workload(s) " + "healthy for " +
                           std::to_string(t.commit_after_ms / 1000) + " s"));
    }
  }

  // Since when w's instance of the desired spec runs healthy (or runs, without a check);
  // nullopt while it does not. Held by the operator or done with status 0: not judged.
  std::optional<int64_t> HealthySince(const Workload& w, const WorkloadState& s) const {
    if (s.intent != Intent::kRunning) return now_;
    if (s.phase == Phase::kExited && s.gave_up && s.exit_code == 0) return now_;
    if (s.phase != Phase::kRunning || s.op != Op::kNone || s.ended || s.leftover ||
        s.runtime_hash != desired_.RuntimeHashOf(w)) {
      return std::nullopt;
    }
    if (s.spec.health.type == HealthType::kNone) return s.started_at_ms;
    if (s.health != Health::kHealthy) return std::nullopt;
    return s.healthy_since_ms;
  }

  static std::string GiveUpReason(const WorkloadState& s) {
    const Restart& policy = s.spec.restart;
    if (policy.policy == RestartPolicy::kNever) return "restart policy never";
    if (s.exit_code == 0 && s.health != Health::kUnhealthy) return "it exited with status 0";
    return "it was restarted " + std::to_string(s.restarts) + " times (maxRetries " +
           std::to_string(policy.max_retries) + ")";
  }

  const Desired& desired_;
  const Observed& observed_;
  const int64_t now_;
  Decision d_;
};

}  // namespace

std::string_view ActionName(ActionType type) {
  switch (type) {
    case ActionType::kCreate:
      return "create";
    case ActionType::kRemove:
      return "remove";
    case ActionType::kInspect:
      return "inspect";
    case ActionType::kRunCheck:
      return "check";
    case ActionType::kSetUpNetworks:
      return "networks";
    case ActionType::kScheduleRestart:
      return "schedule-restart";
    case ActionType::kGiveUp:
      return "give-up";
    case ActionType::kMarkHealthy:
      return "mark-healthy";
    case ActionType::kMarkUnhealthy:
      return "mark-unhealthy";
    case ActionType::kUpdateSpec:
      return "update-spec";
    case ActionType::kCommit:
      return "commit";
    case ActionType::kRollBack:
      return "roll-back";
  }
  return "unknown";
}

Decision Decide(const Desired& desired, const Observed& observed, int64_t now_ms) {
  return Decider(desired, observed, now_ms).Run();
}

bool CheckFailureCounts(const WorkloadState& s, int64_t now_ms) {
  const HealthCheck& check = s.spec.health;
  const int64_t up = now_ms - s.started_at_ms;
  if (up < check.start_period_ms) return false;
  return !(s.health == Health::kStarting && up < check.interval_ms * check.retries);
}

int64_t NextCheckDelayMs(const HealthCheck& check, Health health) {
  return health == Health::kStarting ? std::min<int64_t>(check.interval_ms, kStartingProbeMs)
                                     : check.interval_ms;
}

std::optional<std::string> TrialFailure(const Desired& desired, const Trial& trial,
                                        const Workload& w, const WorkloadState& s) {
  if (s.intent != Intent::kRunning) return std::nullopt;
  auto before = trial.instances_before.find(w.name);
  const bool made_in_trial =
      s.instance > (before == trial.instances_before.end() ? 0 : before->second);
  const bool updated_in_place =
      s.runtime_hash == desired.RuntimeHashOf(w) && s.spec_hash == desired.SpecHashOf(w);
  if (!made_in_trial && !updated_in_place) return std::nullopt;
  auto counted = trial.failures.find(w.name);
  const int failures = counted == trial.failures.end() ? 0 : counted->second;
  if (s.phase == Phase::kFailed && failures >= kTrialFailures) {
    return w.name + " did not start: " + s.last_error;
  }
  const HealthCheck& check = s.spec.health;
  auto unhealthy = [&] {
    return w.name + " failed " + std::to_string(std::max(1, check.retries)) +
           " health checks: " + s.check_detail;
  };
  if (s.phase == Phase::kRunning && check.type != HealthType::kNone &&
      (s.health == Health::kUnhealthy || s.health_failures >= std::max(1, check.retries))) {
    return unhealthy();
  }
  // An exit is counted when the core judges it (restart or not): this one may not be yet.
  const bool judged = s.restart_scheduled || s.gave_up;
  if (s.phase == Phase::kExited && !s.leftover && failures + (judged ? 0 : 1) >= kTrialFailures &&
      !(s.exit_code == 0 && s.spec.restart.policy != RestartPolicy::kAlways)) {
    if (s.health == Health::kUnhealthy) return unhealthy();
    return w.name + " exited with status " + std::to_string(s.exit_code);
  }
  return std::nullopt;
}

bool DependencyMet(const Desired& desired, const Observed& observed, const std::string& dep,
                   AfterCondition condition) {
  auto it = observed.workloads.find(dep);
  if (it == observed.workloads.end()) return false;
  const WorkloadState& d = it->second;
  if (d.op != Op::kNone || d.phase != Phase::kRunning || d.intent != Intent::kRunning || d.ended ||
      d.leftover || d.restart_requested) {
    return false;
  }
  // Failed enough checks to be judged unhealthy (and replaced) in this very decision.
  if (d.spec.health.type != HealthType::kNone &&
      d.health_failures >= std::max(1, d.spec.health.retries)) {
    return false;
  }
  // An instance about to be replaced is not judged: its successor is what counts.
  if (const Workload* spec = desired.profile.Find(dep);
      spec != nullptr && spec->update != UpdateStrategy::kManual &&
      d.runtime_hash != desired.RuntimeHashOf(*spec)) {
    return false;
  }
  return condition == AfterCondition::kStarted || d.health == Health::kNone ||
         d.health == Health::kHealthy;
}

}  // namespace storevisor::daemon::core
