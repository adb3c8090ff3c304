#include "daemon/core/core.h"

#include <algorithm>
#include <utility>

#include "daemon/reconciler/plan.h"

namespace storevisor::daemon::core {

namespace {

constexpr int kMaxDecideRounds = 64;  // each round's actions change what the next one sees

// The word of a failed create in events ("create later failed: ...").
std::string FailedVerb(const std::string& verb) {
  if (verb == "replaced") return "replace";
  if (verb == "restarted") return "restart";
  if (verb == "started") return "start";
  return "create";
}

// The processes of s's instance, to be watched by the loop.
Effect WatchEffect(const WorkloadState& s) {
  Effect watch;
  watch.type = Effect::Type::kWatch;
  watch.name = s.name;
  watch.instance = s.instance;
  watch.kind = s.kind;
  watch.driver_state = s.driver_state;
  watch.pid = s.pid;
  return watch;
}

int64_t NetworksBackoffMs(int64_t failures) {
  int64_t delay = 1000;
  for (int64_t i = 1; i < failures && delay < 30000; ++i) delay *= 2;
  return std::min<int64_t>(delay, 30000);
}

}  // namespace

std::string_view EffectName(Effect::Type type) {
  switch (type) {
    case Effect::Type::kCreate:
      return "create";
    case Effect::Type::kRemove:
      return "remove";
    case Effect::Type::kInspect:
      return "inspect";
    case Effect::Type::kCheck:
      return "check";
    case Effect::Type::kSetUpNetworks:
      return "networks";
    case Effect::Type::kWatch:
      return "watch";
    case Effect::Type::kPrune:
      return "prune";
  }
  return "unknown";
}

Core::Core(Store& store, const Logger& logger, CoreOptions options)
    : store_(store), logger_(logger), options_(options) {}

WorkloadState* Core::Find(const std::string& name) {
  auto it = observed_.workloads.find(name);
  return it == observed_.workloads.end() ? nullptr : &it->second;
}

void Core::Emit(const std::string& workload, const std::string& type, const std::string& message,
                int64_t now) {
  Event e;
  e.ts_ms = now;
  e.workload = workload;
  e.type = type;
  e.message = message;
  events_.push_back({std::move(e), std::nullopt});
  logger_.Info("daemon", message, {{"workload", workload}, {"event", type}});
}

void Core::CountTrialFailure(const std::string& name) {
  if (!observed_.trial) return;
  const auto& changed = observed_.trial->changed;
  if (std::find(changed.begin(), changed.end(), name) != changed.end()) {
    observed_.trial->failures[name]++;
  }
}

void Core::CommitDesired() {
  committed_ = std::make_shared<const Profile>(desired_.profile);
  committed_generation_ = desired_.generation;
}

void Core::StartTrial(const Profile* base_of_changes, int64_t now) {
  Trial t;
  t.generation = desired_.generation;
  t.since_ms = now;
  t.commit_after_ms = desired_.profile.commit_after_ms;
  t.changed = ChangedWorkloads(base_of_changes, desired_.profile);
  for (const auto& name : t.changed) {
    const WorkloadState* s = Find(name);
    t.instances_before[name] = s != nullptr ? s->instance : 0;
  }
  t.base_generation = committed_generation_;
  t.base = committed_;
  observed_.trial = std::move(t);
}

// A daemon stopped during a trial goes on with it: the window starts again from now, and
// what its workloads did while the daemon was away is judged as they are found.
Status Core::ResumeTrial(int64_t now) {
  SV_ASSIGN_OR_RETURN(auto current, store_.GetGeneration(desired_.generation));
  if (!current) {
    // A store from before generations were kept: what it enforced counts as committed.
    CommitDesired();
    return Ok();
  }
  SV_ASSIGN_OR_RETURN(auto committed, store_.LastCommitted(desired_.generation + 1));
  if (committed && committed->generation == desired_.generation) {
    CommitDesired();
  } else if (committed) {
    auto base = ParseProfile(committed->yaml, committed->file);
    if (!base) {
      logger_.Error("daemon", "generation " + std::to_string(committed->generation) +
                                  " cannot be a rollback's base: " + base.error().message());
    } else {
      committed_ = std::make_shared<const Profile>(std::move(*base));
      committed_generation_ = committed->generation;
    }
  }
  if (current->outcome != kOutcomeTrial) return Ok();
  StartTrial(committed_.get(), now);
  Emit("", "trial",
       "generation " + std::to_string(desired_.generation) +
           " is on trial again (storevisord restarted during its trial)",
       now);
  return Ok();
}

void Core::EndTrial(const Action& a, int64_t now) {
  if (!observed_.trial) return;
  const Trial t = std::move(*observed_.trial);
  observed_.trial.reset();
  Event e;
  e.ts_ms = now;
  e.workload = a.name;
  TrialEnd end;
  end.generation = t.generation;
  end.reason = a.reason;
  const std::string gen = "generation " + std::to_string(t.generation);
  if (a.type == ActionType::kCommit) {
    end.outcome = kOutcomeCommitted;
    e.type = "committed";
    e.message = gen + " committed: " + a.reason;
    CommitDesired();
  } else if (t.base == nullptr || !desired_.profile.auto_rollback) {
    end.outcome = kOutcomeFailed;
    e.type = "trial-failed";
    e.message = gen + " failed its trial (" +
                (t.base == nullptr ? "nothing was committed before it"
                                   : "the profile says rollback: never") +
                "): " + a.reason;
  } else {
    end.outcome = kOutcomeRolledBack;
    end.restore_to = t.base_generation;
    e.type = "rolled-back";
    e.message =
        gen + " rolled back to generation " + std::to_string(t.base_generation) + ": " + a.reason;
    desired_.profile = *t.base;
    desired_.generation = t.base_generation;
    desired_.Index();
    observed_.networks_error.clear();
    // Creates of the failed generation decided in this same step have not left the core
    // yet: they are withdrawn, and the restored generation decides anew.
    std::erase_if(pending_effects_, [&](const Effect& effect) {
      WorkloadState* s = effect.type == Effect::Type::kCreate ? Find(effect.name) : nullptr;
      if (s == nullptr || s->instance != effect.instance || s->op != Op::kCreate) return false;
      s->op = Op::kNone;
      s->phase = Phase::kPending;
      Dirty(s->name);
      return true;
    });
    // What failed is replaced by what ran before at once, not after its backoff.
    for (const auto& name : t.changed) {
      WorkloadState* s = Find(name);
      if (s == nullptr) continue;
      s->failures = 0;
      s->retry_at_ms = 0;
      s->gave_up = false;
      s->restart_scheduled = false;
      s->next_verb = "replaced";  // by the restored spec, not a restart of the failed one
      // Service comes back sooner when the failed instance does not get its grace period
      // (a server that ignores SIGTERM would hold the rollback for 5 s).
      s->discard = s->phase == Phase::kRunning;
    }
  }
  logger_.Info("daemon", e.message, {{"event", e.type}});
  events_.push_back({std::move(e), std::move(end)});
}

Status Core::Load(int64_t now) {
  SV_ASSIGN_OR_RETURN(auto yaml, store_.GetMeta("profile"));
  SV_ASSIGN_OR_RETURN(auto file, store_.GetMeta("profile_file"));
  SV_ASSIGN_OR_RETURN(auto generation, store_.GetMeta("generation"));
  if (yaml) {
    // A stored profile was valid when it was applied; one that no longer parses (a newer
    // validation) leaves the daemon without a desired state rather than with an empty one,
    // which would remove everything.
    auto profile = ParseProfile(*yaml, file.value_or("profile.yaml"));
    if (!profile) return std::move(profile).error().Context("the stored profile");
    desired_.profile = std::move(*profile);
    desired_.Index();
    desired_.generation = generation ? std::strtoll(generation->c_str(), nullptr, 10) : 1;
    SV_TRY(ResumeTrial(now));
  }
  SV_ASSIGN_OR_RETURN(auto records, store_.List());
  for (const auto& r : records) {
    auto state = FromRecord(r);
    if (!state) {
      logger_.Error("daemon", "record left alone: " + state.error().message(),
                    {{"workload", r.name}});
      continue;
    }
    WorkloadState& s = observed_.workloads[r.name] = std::move(*state);
    if (s.health == Health::kHealthy) s.healthy_since_ms = now;
    // A record the store could not update (a full disk) may be older than what runs: an
    // instance it does not know of is removed before anything else is done with it.
    s.leftover = s.phase != Phase::kRunning && s.phase != Phase::kCreating;
    if (s.phase == Phase::kRunning || s.phase == Phase::kCreating) {
      // What runs now is the driver's to say: adopted, or lost while the daemon was away.
      s.op = Op::kInspect;
      s.loading = true;
      Effect e;
      e.type = Effect::Type::kInspect;
      e.name = s.name;
      e.instance = s.instance;
      e.kind = s.kind;
      e.driver_state = s.driver_state;
      pending_effects_.push_back(std::move(e));
    }
  }
  wake_at_ms_ = now;
  return Ok();
}

void Core::Apply(ApplyCommand cmd, int64_t now, const ApplyDone& done) {
  api::ApplyResponse out;
  out.profile = cmd.profile.name;
  out.dry_run = cmd.request.dry_run;
  out.digest = cmd.digest;
  if (!cmd.request.dry_run && !cmd.request.idempotency_key.empty()) {
    // A retry of an apply whose answer was lost: the first one's generation, nothing new.
    auto earlier = store_.FindGeneration(cmd.request.idempotency_key);
    if (!earlier) return done(std::move(earlier).error());
    if (*earlier && (*earlier)->idempotency_key == cmd.request.idempotency_key) {
      out.generation = (*earlier)->generation;
      out.duplicate = true;
      return done(std::move(out));
    }
  }
  // An apply states the operator's intent anew: earlier stop/rm holds end with it (a dry
  // run, `diff`, shows them held).
  std::vector<WorkloadRecord> records;
  std::vector<std::string> lifted;
  for (const auto& [name, s] : observed_.workloads) {
    WorkloadRecord r = ToRecord(s);
    if (!cmd.request.dry_run && s.intent != Intent::kRunning && cmd.profile.Find(name) != nullptr) {
      r.desired = "running";
      lifted.push_back(name);
    }
    records.push_back(std::move(r));
  }
  const Plan plan = ComputePlan(cmd.profile, records);
  for (const auto& step : plan.steps) {
    out.steps.push_back({std::string(StepActionName(step.action)), step.name, step.reason});
  }
  out.held = plan.held;
  if (cmd.request.dry_run) return done(std::move(out));
  GenerationRecord g;
  g.digest = cmd.digest;
  g.idempotency_key = cmd.request.idempotency_key;
  g.profile_name = cmd.profile.name;
  g.file = cmd.request.file;
  g.yaml = cmd.request.yaml;
  g.identity = cmd.request.identity;
  g.applied_at_ms = now;
  g.restores = cmd.restores;
  const int64_t restores = cmd.restores;
  const std::string name = cmd.profile.name;
  const size_t steps = plan.steps.size();
  auto stored = store_.CommitApply(g, options_.keep_generations, [&](int64_t generation) {
    Event e;
    e.ts_ms = now;
    e.type = "applied";
    e.message = "profile " + name + " generation " + std::to_string(generation) +
                (restores != 0 ? " (generation " + std::to_string(restores) + " again)" : "") +
                ": " + std::to_string(steps) + " step(s)";
    return e;
  });
  if (!stored) return done(std::move(stored).error());
  for (const auto& n : lifted) {
    WorkloadState& s = observed_.workloads[n];
    s.intent = Intent::kRunning;
    s.next_verb = "created";
    Dirty(n);
  }
  // Judged against the last committed generation: a trial that replaces another still on
  // trial answers for that one's changes too.
  desired_.generation = stored->generation;
  desired_.profile = std::move(cmd.profile);
  desired_.Index();
  observed_.networks_error.clear();
  StartTrial(committed_.get(), now);
  out.generation = stored->generation;
  logger_.Info("daemon", "profile " + name + " generation " + std::to_string(out.generation),
               {{"event", "applied"}});
  done(std::move(out));
}

void Core::Operator(OperatorVerb verb, const std::string& name, int64_t now, Done done) {
  const Workload* w = desired_.profile.Find(name);
  WorkloadState* s = Find(name);
  const bool starts = verb == OperatorVerb::kStart || verb == OperatorVerb::kRestart;
  if (starts && w == nullptr) {
    return done(Error(ErrorCode::kNotFound, "no workload named '" + name + "' in the profile"));
  }
  if (!starts && s == nullptr) {
    return done(Error(ErrorCode::kNotFound, "no workload named '" + name + "'"));
  }
  if (starts && s == nullptr) {
    // In the profile, never made yet (its after: entries hold it): the command makes it now.
    s = &observed_.workloads[name];
    s->name = name;
    s->kind = w->kind;
    s->spec = *w;
    s->spec_json = WorkloadToJson(*w).dump();
  }
  if (verb == OperatorVerb::kStart && s->intent == Intent::kRunning &&
      s->phase == Phase::kRunning) {
    return done(Error(ErrorCode::kConflict, name + " is already running"));
  }
  switch (verb) {
    case OperatorVerb::kStop:
      if (w != nullptr) s->intent = Intent::kStopped;
      break;
    case OperatorVerb::kRemove:
      if (w != nullptr) s->intent = Intent::kRemoved;
      break;
    case OperatorVerb::kStart:
      // A start after a stop begins with a clean backoff.
      s->intent = Intent::kRunning;
      s->failures = 0;
      s->retry_at_ms = 0;
      s->gave_up = false;
      s->restart_scheduled = false;
      s->next_verb = "replaced";  // by the restored spec, not a restart of the failed one
      s->next_verb = "started";
      if (s->phase == Phase::kExited || s->phase == Phase::kFailed) s->phase = Phase::kPending;
      break;
    case OperatorVerb::kRestart:
      s->intent = Intent::kRunning;
      s->restarts++;
      s->restart_requested = true;
      s->gave_up = false;
      s->restart_scheduled = false;
      s->retry_at_ms = 0;
      break;
  }
  Dirty(name);  // the intent is written before anything acts on it
  waiters_.push_back({verb, name, s->instance, now + options_.command_timeout_ms, std::move(done)});
}

void Core::Observe(Observation o, int64_t now) {
  if (o.type == Observation::Type::kNetworks) {
    observed_.networks_busy = false;
    if (o.status) {
      observed_.networks_key = o.networks_key;
      observed_.networks_failures = 0;
      observed_.networks_error.clear();
      return;
    }
    observed_.networks_failures++;
    observed_.networks_error = o.status.error().message();
    const int64_t delay = NetworksBackoffMs(observed_.networks_failures);
    observed_.networks_retry_at_ms = now + delay;
    Emit("", "failed",
         "networks of generation " + std::to_string(o.generation) + " failed: " +
             o.status.error().message() + "; retrying in " + std::to_string(delay) + " ms",
         now);
    return;
  }
  WorkloadState* s = Find(o.name);
  if (s == nullptr || s->instance != o.instance) return;  // about an instance long gone
  switch (o.type) {
    case Observation::Type::kCreated:
      if (s->op == Op::kCreate) OnCreated(*s, o, now, &pending_effects_);
      return;
    case Observation::Type::kRemoved:
      if (s->op == Op::kRemove) OnRemoved(*s, o, now);
      return;
    case Observation::Type::kInspected:
      if (s->op == Op::kInspect) OnInspected(*s, o, now);
      return;
    case Observation::Type::kChecked:
      OnChecked(*s, o, now);
      return;
    case Observation::Type::kProcessEnded:
      if (s->phase == Phase::kRunning) s->ended = true;
      return;
    case Observation::Type::kNetworks:
      return;
  }
}

void Core::OnCreated(WorkloadState& s, const Observation& o, int64_t now,
                     std::vector<Effect>* effects) {
  s.op = Op::kNone;
  Dirty(s.name);
  if (!o.status) {
    s.phase = Phase::kFailed;
    s.last_error = o.status.error().message();
    const int64_t delay = BackoffMs(s.spec.restart, s.failures);
    s.failures++;
    CountTrialFailure(s.name);
    s.retry_at_ms = now + delay;
    Emit(s.name, "failed",
         FailedVerb(s.next_verb) + " " + s.name + " failed: " + s.last_error + "; retrying in " +
             std::to_string(delay) + " ms",
         now);
    return;
  }
  s.phase = Phase::kRunning;
  s.runtime_hash = RuntimeHash(s.spec);
  s.spec_hash = SpecHash(s.spec);
  s.pid = o.info.pid;
  s.driver_state = o.info.driver_state;
  s.started_at_ms = now;
  s.exit_code = -1;
  s.last_error.clear();
  s.health = s.spec.health.type == HealthType::kNone ? Health::kNone : Health::kStarting;
  s.check_ok = false;
  s.health_failures = 0;
  s.next_check_ms = now + s.spec.health.start_period_ms;
  s.restart_scheduled = false;
  s.gave_up = false;
  s.retry_at_ms = 0;
  const std::string verb = s.next_verb.empty() ? "created" : s.next_verb;
  s.next_verb.clear();
  Emit(s.name, verb, s.name + " " + verb + " (pid " + std::to_string(s.pid) + ")", now);
  effects->push_back(WatchEffect(s));
}

void Core::OnRemoved(WorkloadState& s, const Observation& o, int64_t now) {
  s.op = Op::kNone;
  if (!o.status) {
    s.retry_at_ms = now + kRemoveRetryMs;
    Emit(s.name, "failed",
         "remove of " + s.name + " failed: " + o.status.error().message() + "; retrying in " +
             std::to_string(kRemoveRetryMs) + " ms",
         now);
    return;
  }
  s.pid = 0;
  s.leftover = false;
  s.ended = false;
  s.retry_at_ms = 0;
  Dirty(s.name);
  switch (s.after_remove) {
    case AfterRemove::kDelete: {
      const std::string name = s.name;
      observed_.workloads.erase(name);  // s is gone from here on
      dirty_.erase(name);
      deleted_.insert(name);
      Emit(name, "deleted", name + " deleted", now);
      if (observed_.workloads.empty()) {
        Effect prune;
        prune.type = Effect::Type::kPrune;
        pending_effects_.push_back(std::move(prune));
      }
      return;
    }
    case AfterRemove::kHold:
      s.phase = Phase::kStopped;
      s.health = Health::kNone;
      if (s.intent == Intent::kRemoved) {
        s.runtime_hash.clear();
        released_.insert(s.name);
        Emit(s.name, "removed", s.name + " removed by the operator (until the next apply)", now);
      } else {
        Emit(s.name, "stopped", s.name + " stopped by the operator", now);
      }
      return;
    case AfterRemove::kRecreate:
      s.phase = Phase::kPending;
      s.runtime_hash.clear();
      s.health = Health::kNone;
      return;
    case AfterRemove::kExited:
      s.phase = Phase::kExited;
      return;
  }
}

void Core::OnInspected(WorkloadState& s, const Observation& o, int64_t now) {
  s.op = Op::kNone;
  const bool loading = std::exchange(s.loading, false);
  const bool running = o.status && o.info.running;
  if (running && s.phase == Phase::kRunning) {
    s.pid = o.info.pid;
    if (loading) {
      Emit(s.name, "adopted", s.name + " still runs: adopted pid " + std::to_string(s.pid), now);
      Dirty(s.name);
      s.next_check_ms = now;
    }
    // Watched anew: a watch that fired is gone, and what ended may have been one of several.
    pending_effects_.push_back(WatchEffect(s));
    return;
  }
  s.ended = false;
  Dirty(s.name);
  if (s.phase == Phase::kCreating) {
    // Half-made when the daemon stopped: made again (the driver removes what is left).
    s.phase = Phase::kFailed;
    s.runtime_hash.clear();
    s.retry_at_ms = 0;
    Emit(s.name, "lost", s.name + " was being created when storevisord stopped", now);
    return;
  }
  s.phase = Phase::kExited;
  s.exit_code = o.status ? o.info.exit_code : -1;
  s.pid = 0;
  s.check_running = false;
  if (o.status && !o.info.problem.empty()) {
    // Its processes may run on without what watched them: removed before anything else.
    s.leftover = true;
    Emit(s.name, "lost", s.name + ": " + o.info.problem, now);
  } else if (loading) {
    Emit(s.name, "lost", s.name + " was not running when storevisord started", now);
  } else {
    Emit(s.name, "exited", s.name + " exited with status " + std::to_string(s.exit_code), now);
  }
}

void Core::OnChecked(WorkloadState& s, const Observation& o, int64_t now) {
  s.check_running = false;
  if (s.phase != Phase::kRunning) return;
  if (o.check_ok) {
    s.check_ok = true;
    s.health_failures = 0;
  } else {
    s.check_ok = false;
    s.check_detail = o.detail;
    if (CheckFailureCounts(s, now)) s.health_failures++;
  }
  s.next_check_ms = now + NextCheckDelayMs(s.spec.health, s.health);
}

Result<std::vector<NetAttachment>> Core::Attach(const Workload& w) {
  std::vector<NetAttachment> out;
  for (const auto& name : w.networks) {
    for (const auto& n : desired_.profile.networks) {
      if (n.name != name) continue;
      SV_ASSIGN_OR_RETURN(Ipv4Subnet subnet, ParseSubnet(n.subnet));
      SV_ASSIGN_OR_RETURN(std::string addr, store_.AllocateAddress(n.name, n.subnet, w.name));
      out.push_back({n.name, "sv-" + n.name, addr, subnet.prefix, Ipv4ToString(subnet.base + 1)});
    }
  }
  return out;
}

void Core::StartCreate(const Action& a, int64_t now, std::vector<Effect>* effects) {
  const Workload* w = desired_.profile.Find(a.name);
  if (w == nullptr) return;
  WorkloadState& s = observed_.workloads[a.name];
  s.name = w->name;
  s.kind = w->kind;
  s.spec = *w;
  s.spec_json = WorkloadToJson(*w).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  s.instance++;
  s.phase = Phase::kCreating;
  // Made again before the store could delete its earlier record (a full disk): the record
  // is rewritten instead, and the addresses it keeps are this instance's.
  deleted_.erase(s.name);
  released_.erase(s.name);
  s.runtime_hash.clear();  // no instance until the driver made one
  s.pid = 0;
  s.next_verb = a.verb;
  s.restart_requested = false;
  s.ended = false;
  s.leftover = false;
  s.check_running = false;
  Dirty(s.name);
  auto nets = Attach(*w);
  if (!nets) {
    s.op = Op::kCreate;  // OnCreated expects the call it answers
    Observation failed;
    failed.status = std::move(nets).error();
    OnCreated(s, failed, now, effects);
    return;
  }
  // Containers get their address in their namespace, microVMs through their guest agent.
  const bool addressed = w->kind == WorkloadKind::kContainer || w->kind == WorkloadKind::kMicroVm;
  s.address = nets->empty() || !addressed ? "" : (*nets)[0].address;
  s.op = Op::kCreate;
  Effect e;
  e.type = Effect::Type::kCreate;
  e.name = s.name;
  e.instance = s.instance;
  e.verb = a.verb;
  e.kind = s.kind;
  e.workload = *w;
  e.nets = std::move(*nets);
  effects->push_back(std::move(e));
}

void Core::StartRemove(const Action& a, std::vector<Effect>* effects) {
  WorkloadState* s = Find(a.name);
  if (s == nullptr) return;
  s->op = Op::kRemove;
  s->after_remove = a.then;
  const bool at_once = std::exchange(s->discard, false);
  s->check_running = false;
  if (!a.verb.empty()) s->next_verb = a.verb;
  if (a.verb == "restarted") s->restart_requested = false;
  Effect e;
  e.type = Effect::Type::kRemove;
  e.name = s->name;
  e.instance = s->instance;
  e.kind = s->kind;
  e.driver_state = s->driver_state;
  e.at_once = at_once;
  effects->push_back(std::move(e));
}

void Core::ApplyAction(const Action& a, int64_t now, std::vector<Effect>* effects) {
  WorkloadState* s = Find(a.name);
  switch (a.type) {
    case ActionType::kCreate:
      return StartCreate(a, now, effects);
    case ActionType::kRemove:
      return StartRemove(a, effects);
    case ActionType::kCommit:
    case ActionType::kRollBack:
      return EndTrial(a, now);
    case ActionType::kSetUpNetworks: {
      observed_.networks_busy = true;
      Effect e;
      e.type = Effect::Type::kSetUpNetworks;
      e.generation = desired_.generation;
      e.networks_key = desired_.NetworksKey();
      e.profile = std::make_shared<const Profile>(desired_.profile);
      effects->push_back(std::move(e));
      return;
    }
    default:
      break;
  }
  if (s == nullptr) return;
  switch (a.type) {
    case ActionType::kInspect: {
      s->op = Op::kInspect;
      s->ended = false;  // news of an end that comes during the call asks for another
      Effect e;
      e.type = Effect::Type::kInspect;
      e.name = s->name;
      e.instance = s->instance;
      e.kind = s->kind;
      e.driver_state = s->driver_state;
      effects->push_back(std::move(e));
      return;
    }
    case ActionType::kRunCheck: {
      s->check_running = true;
      Effect e;
      e.type = Effect::Type::kCheck;
      e.name = s->name;
      e.instance = s->instance;
      e.kind = s->kind;
      e.workload = s->spec;
      e.driver_state = s->driver_state;
      e.pid = s->pid;
      e.address = s->address;
      effects->push_back(std::move(e));
      return;
    }
    case ActionType::kScheduleRestart:
      CountTrialFailure(s->name);
      s->restart_scheduled = true;
      s->retry_at_ms = a.at_ms;
      s->failures = a.failures;
      s->restarts++;
      Dirty(s->name);
      Emit(s->name, "backoff", s->name + " " + a.reason, now);
      return;
    case ActionType::kGiveUp:
      s->gave_up = true;
      CountTrialFailure(s->name);
      Emit(s->name, "gave-up", s->name + " is not restarted: " + a.reason, now);
      return;
    case ActionType::kMarkHealthy:
      s->health = Health::kHealthy;
      s->healthy_since_ms = now;
      Dirty(s->name);
      Emit(s->name, "healthy", s->name + " is healthy", now);
      return;
    case ActionType::kMarkUnhealthy:
      Emit(s->name, "unhealthy",
           s->name + " failed " + std::to_string(s->health_failures) +
               " health checks in a row: " + a.reason,
           now);
      s->health = Health::kUnhealthy;
      s->health_failures = 0;
      Dirty(s->name);
      return;
    case ActionType::kUpdateSpec: {
      const Workload* w = desired_.profile.Find(a.name);
      if (w == nullptr) return;
      s->spec = *w;
      s->spec_json =
          WorkloadToJson(*w).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      s->spec_hash = SpecHash(*w);
      Dirty(s->name);
      Emit(s->name, "updated", s->name + " updated in place (" + a.reason + ")", now);
      return;
    }
    default:
      return;
  }
}

std::optional<Status> Core::WaiterOutcome(const Waiter& w) const {
  auto it = observed_.workloads.find(w.name);
  if (it == observed_.workloads.end()) {
    if (w.verb == OperatorVerb::kStop || w.verb == OperatorVerb::kRemove) return Ok();
    return Error(ErrorCode::kNotFound, "'" + w.name + "' was deleted meanwhile");
  }
  const WorkloadState& s = it->second;
  switch (w.verb) {
    case OperatorVerb::kStop:
    case OperatorVerb::kRemove:
      if (s.intent == Intent::kRunning) {
        return Error(ErrorCode::kConflict, w.name + " was started again meanwhile");
      }
      if (s.phase == Phase::kStopped && s.op == Op::kNone) return Ok();
      return std::nullopt;
    case OperatorVerb::kStart:
    case OperatorVerb::kRestart:
      if (s.intent != Intent::kRunning) {
        return Error(ErrorCode::kConflict, w.name + " was stopped meanwhile");
      }
      if (s.instance <= w.instance_before || s.op != Op::kNone) return std::nullopt;
      if (s.phase == Phase::kRunning) return Ok();
      if (s.phase == Phase::kFailed) return Error(ErrorCode::kFailedPrecondition, s.last_error);
      return std::nullopt;
  }
  return std::nullopt;
}

void Core::SettleWaiters(int64_t now) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    std::optional<Status> outcome = WaiterOutcome(*it);
    if (!outcome && now >= it->deadline_ms) {
      outcome = Error(ErrorCode::kTimeout, it->name + " is not there yet after " +
                                               std::to_string(options_.command_timeout_ms / 1000) +
                                               " s (its after: entries or backoff hold it)");
    }
    if (!outcome) {
      ++it;
      continue;
    }
    Done done = std::move(it->done);
    it = waiters_.erase(it);
    done(std::move(*outcome));
  }
}

void Core::Flush(int64_t now) {
  if (store_failing_ && now < store_retry_at_ms_) return;
  auto fail = [&](const Error& e) {
    store_write_failures_++;
    store_retry_at_ms_ = now + options_.store_retry_ms;
    if (!store_failing_) {
      store_failing_ = true;
      // Supervision goes on from memory; what could not be written waits for space.
      logger_.Error("daemon", "state store: " + e.message() + "; records wait in memory");
      Emit("", "store-failed", "state store cannot write (" + e.message() + "); retrying", now);
    }
  };
  for (auto it = dirty_.begin(); it != dirty_.end();) {
    const WorkloadState* s = Find(*it);
    if (s != nullptr) {
      if (Status st = store_.Put(ToRecord(*s)); !st) return fail(st.error());
    }
    it = dirty_.erase(it);
  }
  for (auto it = deleted_.begin(); it != deleted_.end();) {
    if (Status st = store_.Delete(*it); !st) return fail(st.error());
    released_.insert(*it);
    it = deleted_.erase(it);
  }
  for (auto it = released_.begin(); it != released_.end();) {
    if (Status st = store_.ReleaseAddresses(*it); !st) return fail(st.error());
    it = released_.erase(it);
  }
  if (store_failing_) {
    store_failing_ = false;
    Emit("", "store-recovered", "state store writes again; the records kept in memory are stored",
         now);
  }
  while (!events_.empty()) {
    const PendingEvent& p = events_.front();
    if (p.trial_end) {
      const TrialEnd& end = *p.trial_end;
      if (Status st = store_.EndTrial(end.generation, end.outcome, end.reason, p.event.ts_ms,
                                      end.restore_to, p.event);
          !st) {
        return fail(st.error());
      }
    } else if (auto id = store_.AddEvent(p.event); !id) {
      return fail(id.error());
    }
    events_.pop_front();
    events_written_++;
  }
}

std::vector<Effect> Core::Step(int64_t now) {
  Decision last;
  for (int round = 0; round < kMaxDecideRounds; ++round) {
    last = Decide(desired_, observed_, now);
    if (last.actions.empty()) break;
    for (const auto& a : last.actions) ApplyAction(a, now, &pending_effects_);
    last.wake_at_ms = now;  // not settled yet: decide again at once if the rounds run out
  }
  SettleWaiters(now);
  Flush(now);
  int64_t wake = last.wake_at_ms;
  for (const auto& w : waiters_) wake = std::min(wake, w.deadline_ms);
  if (store_failing_) wake = std::min(wake, store_retry_at_ms_);
  wake_at_ms_ = wake;
  return std::exchange(pending_effects_, {});
}

void Core::Shutdown() {
  for (auto& w : waiters_) w.done(Error(ErrorCode::kUnavailable, "storevisord is stopping"));
  waiters_.clear();
}

}  // namespace storevisor::daemon::core
