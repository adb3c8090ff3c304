// Deterministic simulation of storevisord's core (FoundationDB's way of earning trust in a
// decision core): seeded random sequences of applies, exits, dead shims, health results,
// slow and failing driver calls, a full disk, operator commands and daemon restarts run
// through the real Core with a fake world (drivers, processes, networks) and a fake clock.
// Invariants are checked after every step; once the faults stop, everything must converge
// within a bound. A failure prints its seed: SV_SIM_SEED=<seed> replays exactly that one,
// SV_SIM_SEQUENCES sets how many run (default 10000).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <sstream>

#include "daemon/core/core.h"
#include "daemon/core/testing.h"

namespace storevisor::daemon::core {
namespace {

// The profiles applies pick from: dependencies of both kinds, every restart policy, health
// checks, a replace (db's rootfs), a manual update, networks that come and go.
const char* const kProfiles[] = {
    R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: p0}
spec:
  commitAfter: 5s
  networks:
    - {name: back, subnet: 10.88.1.0/24}
    - {name: front, subnet: 10.88.2.0/24}
  workloads:
    - name: db
      kind: container
      rootfs: /srv/db1
      command: [/bin/true]
      networks: [back]
      restart: {policy: always, backoff: {initial: 100ms, max: 2s}}
      health: {exec: [/bin/true], interval: 1s, retries: 2}
    - name: api
      kind: container
      rootfs: /srv/api
      command: [/bin/true]
      networks: [back, front]
      after: [db]
      restart: {policy: on-failure, backoff: {initial: 200ms, max: 1s}, maxRetries: 4}
      health: {exec: [/bin/true], interval: 1s, retries: 3, startPeriod: 2s}
    - name: web
      kind: container
      rootfs: /srv/web
      command: [/bin/true]
      networks: [front]
      after:
        - {name: api, condition: started, holds: health}
      restart: always
      health: {exec: [/bin/true], interval: 1s}
)",
    R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: p1}
spec:
  networks:
    - {name: back, subnet: 10.88.1.0/24}
  workloads:
    - name: db
      kind: container
      rootfs: /srv/db2
      command: [/bin/true]
      networks: [back]
      restart: {policy: always, backoff: {initial: 100ms, max: 2s}}
      health: {exec: [/bin/true], interval: 1s, retries: 2}
    - name: cache
      kind: container
      rootfs: /srv/cache
      command: [/bin/true]
      networks: [back]
      after:
        - {name: db, condition: started}
      restart: {policy: never}
    - name: api
      kind: container
      rootfs: /srv/api
      command: [/bin/true]
      networks: [back]
      after: [db, cache]
      update: manual
      restart: {policy: on-failure, backoff: {initial: 200ms, max: 1s}, maxRetries: 4}
)",
    R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: p2}
spec:
  workloads:
    - name: web
      kind: container
      rootfs: /srv/web2
      command: [/bin/true]
      restart: {policy: always, backoff: {initial: 0s, max: 500ms}}
)",
    R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: p3}
spec:
  workloads: []
)",
};
constexpr int kProfileCount = 4;
const char* const kNames[] = {"db", "api", "web", "cache"};

constexpr int64_t kFaultMs = 60000;     // faults happen in the first minute
constexpr int64_t kConvergeMs = 90000;  // then everything must settle within this

struct Instance {
  bool alive = false;
  bool shim_alive = false;
  bool healthy = true;
  bool watched = false;
  uint64_t core_instance = 0;  // the instance number the core gave it
};

// A result waiting to come back into the core, or a fault or command to happen.
struct Pending {
  int64_t at = 0;
  uint64_t seq = 0;
  uint64_t epoch = 0;  // results of a daemon that has since restarted are lost with it
  Observation obs;
  std::function<void()> world_change;  // a create's or remove's effect on the world, first
  bool operator>(const Pending& o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

class Simulation {
 public:
  explicit Simulation(uint64_t seed, bool trace = false)
      : rng_(seed), trace_(trace), logger_(trace ? 2 : -1) {}

  // Runs the whole sequence; an empty string when every invariant held.
  std::string Run() {
    NewCore();
    Schedule(0, [this] { ApplyRandom(); });
    ScheduleFaults();
    Schedule(kFaultMs, [this] { store_.full = false; });  // the faults end
    while (failure_.empty()) {
      const int64_t next = NextTime();
      if (next > kFaultMs + kConvergeMs) break;
      now_ = std::max(now_, next);
      RunDue();
      Step();
    }
    if (failure_.empty()) CheckConverged();
    return failure_;
  }

 private:
  // --- the clock and the queue ---
  int64_t NextTime() const {
    int64_t t = core_->WakeAtMs();
    if (!queue_.empty()) t = std::min(t, queue_.top().at);
    return std::max(t, now_);
  }
  void Schedule(int64_t at, std::function<void()> fn) {
    Pending p;
    p.at = at;
    p.seq = seq_++;
    p.epoch = 0;  // world events survive daemon restarts
    p.world_change = std::move(fn);
    queue_.push(std::move(p));
  }
  void Answer(int64_t delay, Observation obs, std::function<void()> world = nullptr) {
    Pending p;
    p.at = now_ + delay;
    p.seq = seq_++;
    p.epoch = epoch_;
    p.obs = std::move(obs);
    p.world_change = std::move(world);
    queue_.push(std::move(p));
  }
  void RunDue() {
    while (!queue_.empty() && queue_.top().at <= now_) {
      Pending p = queue_.top();
      queue_.pop();
      if (p.epoch == 0) {
        p.world_change();
        continue;
      }
      if (p.world_change) p.world_change();
      EndCall(p.obs);
      if (p.obs.type == Observation::Type::kCreated) {
        last_create_failed_[p.obs.name] = !p.obs.status.has_value();
      }
      Trace("observe " + std::to_string(static_cast<int>(p.obs.type)) + " " + p.obs.name + " #" +
            std::to_string(p.obs.instance) + (p.obs.status ? "" : " failed") +
            (p.obs.info.running ? " running" : "") + (p.obs.check_ok ? " ok" : ""));
      core_->Observe(p.obs, now_);
    }
  }

  // --- faults and commands, during the first minute ---
  bool Faulty() const { return now_ < kFaultMs; }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int64_t Between(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  std::string AnyName() { return kNames[Between(0, 3)]; }

  void ScheduleFaults() {
    const int count = static_cast<int>(Between(5, 40));
    for (int i = 0; i < count; ++i) {
      Schedule(Between(0, kFaultMs - 1), [this] { Fault(); });
    }
  }

  void Fault() {
    const int64_t which = Between(0, 9);
    Trace("fault " + std::to_string(which));
    switch (which) {
      case 0:
        return ApplyRandom();
      case 1:
      case 2:
        return Kill(AnyName(), /*shim_only=*/false);
      case 3:
        return Kill(AnyName(), /*shim_only=*/true);
      case 4:
        return SetHealthy(AnyName(), false);
      case 5:
        return OperatorCommand();
      case 6:
        return RestartDaemon();
      case 7:
        store_.full = !store_.full;
        return;
      default:
        return SetHealthy(AnyName(), true);
    }
  }

  void ApplyRandom() {
    const int which = static_cast<int>(Between(0, kProfileCount - 1));
    ApplyCommand cmd;
    cmd.request.yaml = kProfiles[which];
    cmd.request.file = "p.yaml";
    static const std::vector<Result<Profile>> parsed = [] {
      std::vector<Result<Profile>> out;
      for (const char* text : kProfiles) out.push_back(ParseProfile(text, "p.yaml"));
      return out;
    }();
    const auto& profile = parsed[static_cast<size_t>(which)];
    if (!profile) {
      failure_ = "profile " + std::to_string(which) + ": " + profile.error().message();
      return;
    }
    cmd.profile = *profile;
    cmd.digest = std::to_string(which);
    core_->Apply(std::move(cmd), now_, [this](Result<api::ApplyResponse> r) {
      if (r) ResetRetryCounts();  // holds end; on-failure counts go on from the records
    });
  }

  void OperatorCommand() {
    const std::string name = AnyName();
    const auto verb = static_cast<OperatorVerb>(Between(0, 3));
    if (verb == OperatorVerb::kRestart && core_->desired().profile.Find(name) != nullptr) {
      operator_restart_[name] = true;
    }
    if (verb == OperatorVerb::kStart || verb == OperatorVerb::kRestart) restarts_seen_[name] = 0;
    core_->Operator(verb, name, now_, [](Status) {});
  }

  void Kill(const std::string& name, bool shim_only) {
    auto it = world_.find(name);
    if (it == world_.end() || !it->second.alive) return;
    Instance& inst = it->second;
    Trace(std::string("kill ") + name + (shim_only ? " (shim)" : "") +
          (inst.watched ? " watched" : " unwatched"));
    if (shim_only) {
      if (!inst.shim_alive) return;
      inst.shim_alive = false;  // the container's processes run on, unwatched
    } else {
      inst.alive = false;
      inst.shim_alive = false;
      died_at_[name] = now_;
    }
    if (inst.watched) Ended(name, inst.core_instance);
  }

  // An instance removed: its processes end, and a watch on them fires.
  void Vanish(const std::string& name) {
    auto it = world_.find(name);
    if (it == world_.end()) return;
    if (it->second.alive && it->second.watched) Ended(name, it->second.core_instance);
    world_.erase(it);
  }

  void SetHealthy(const std::string& name, bool healthy) {
    auto it = world_.find(name);
    if (it != world_.end()) it->second.healthy = healthy || !Faulty();
  }

  void Ended(const std::string& name, uint64_t instance) {
    Observation o;
    o.type = Observation::Type::kProcessEnded;
    o.name = name;
    o.instance = instance;
    Answer(Between(0, 3), o);
  }

  void RestartDaemon() {
    // kill -9: calls under way die with it (each had done its work or not: a shim already
    // spawned starts its container), the processes and the store stay.
    std::vector<Pending> keep;
    while (!queue_.empty()) {
      Pending p = queue_.top();
      queue_.pop();
      if (p.epoch == epoch_) {
        if (p.world_change && Chance(0.5)) p.world_change();
        continue;
      }
      keep.push_back(std::move(p));
    }
    for (auto& p : keep) queue_.push(std::move(p));
    ++epoch_;
    in_call_.clear();
    for (auto& [name, inst] : world_) inst.watched = false;
    // Records it could not write are lost with it (the on-failure count among them).
    if (core_->store_failing()) ResetRetryCounts();
    NewCore();
  }

  void NewCore() {
    core_ = std::make_unique<Core>(store_, logger_);
    if (Status st = core_->Load(now_); !st) failure_ = "load: " + st.error().message();
  }

  void ResetRetryCounts() { restarts_seen_.clear(); }

  // --- effects: the fake drivers ---
  void Step() {
    auto effects = core_->Step(now_);
    for (auto& e : effects) Issue(e);
    CheckInvariants();
  }

  int64_t CallDelay() {
    if (!Faulty()) return Between(1, 50);
    return Chance(0.1) ? Between(2000, 15000) : Between(1, 300);
  }
  bool CallFails() { return Faulty() && Chance(0.1); }

  void BeginCall(const Effect& e) {
    if (e.type == Effect::Type::kCheck || e.type == Effect::Type::kWatch ||
        e.type == Effect::Type::kSetUpNetworks || e.type == Effect::Type::kPrune) {
      return;
    }
    if (!in_call_.insert(e.name).second) {
      Fail("two driver calls at once for " + e.name + " (" + std::string(EffectName(e.type)) + ")");
    }
  }
  void EndCall(const Observation& o) {
    if (o.type == Observation::Type::kCreated || o.type == Observation::Type::kRemoved ||
        o.type == Observation::Type::kInspected) {
      in_call_.erase(o.name);
    }
  }

  void Issue(const Effect& e) {
    Trace("effect " + std::string(EffectName(e.type)) + " " + e.name + " #" +
          std::to_string(e.instance) + " " + e.verb);
    BeginCall(e);
    switch (e.type) {
      case Effect::Type::kSetUpNetworks:
        return SetUpNetworks(e);
      case Effect::Type::kCreate:
        return Create(e);
      case Effect::Type::kRemove:
        return Remove(e);
      case Effect::Type::kInspect:
        return Inspect(e);
      case Effect::Type::kCheck:
        return Check(e);
      case Effect::Type::kWatch:
        return Watch(e);
      case Effect::Type::kPrune:
        return;
    }
  }

  void SetUpNetworks(const Effect& e) {
    Observation o;
    o.type = Observation::Type::kNetworks;
    o.generation = e.generation;
    o.networks_key = e.networks_key;
    const bool fails = CallFails();
    if (fails) o.status = Error(ErrorCode::kIo, "netlink: busy");
    std::set<std::string> nets;
    for (const auto& n : e.profile->networks) nets.insert(n.name + "=" + n.subnet);
    Answer(CallDelay(), o, [this, fails, nets] {
      if (!fails) networks_ready_ = nets;
    });
  }

  void Create(const Effect& e) {
    CheckCreateAllowed(e);
    Observation o;
    o.type = Observation::Type::kCreated;
    o.name = e.name;
    o.instance = e.instance;
    const bool fails = CallFails();
    if (fails) o.status = Error(ErrorCode::kFailedPrecondition, "runtime create failed");
    o.info.running = !fails;
    o.info.pid = 1000 + static_cast<int64_t>(seq_);
    const std::string name = e.name;
    const uint64_t instance = e.instance;
    Answer(CallDelay(), o, [this, name, instance, fails] {
      Vanish(name);  // the driver removes a leftover of the name first
      Instance& inst = world_[name];
      if (fails) return;
      inst.alive = true;
      inst.shim_alive = true;
      inst.healthy = !Faulty() || Chance(0.8);
      inst.core_instance = instance;
      created_at_[name] = now_;
    });
  }

  void Remove(const Effect& e) {
    Observation o;
    o.type = Observation::Type::kRemoved;
    o.name = e.name;
    o.instance = e.instance;
    const bool fails = CallFails();
    if (fails) o.status = Error(ErrorCode::kIo, "runtime kill failed");
    const std::string name = e.name;
    Answer(CallDelay(), o, [this, name, fails] {
      if (!fails) Vanish(name);
    });
  }

  void Inspect(const Effect& e) {
    Observation o;
    o.type = Observation::Type::kInspected;
    o.name = e.name;
    o.instance = e.instance;
    auto it = world_.find(e.name);
    const bool alive = it != world_.end() && it->second.alive;
    const bool shim = it != world_.end() && it->second.shim_alive;
    o.info.running = alive && shim;
    o.info.exit_code = Chance(0.5) ? 1 : 0;
    if (alive && !shim) o.info.problem = "its shim died";
    if (it != world_.end() && alive && shim) it->second.core_instance = e.instance;
    Answer(CallDelay(), o);
  }

  void Check(const Effect& e) {
    Observation o;
    o.type = Observation::Type::kChecked;
    o.name = e.name;
    o.instance = e.instance;
    auto it = world_.find(e.name);
    o.check_ok = it != world_.end() && it->second.alive && it->second.healthy;
    if (!o.check_ok) o.detail = "exec exited 1";
    Answer(Between(1, 100), o);
  }

  void Watch(const Effect& e) {
    auto it = world_.find(e.name);
    if (it == world_.end() || !it->second.alive || !it->second.shim_alive) {
      Ended(e.name, e.instance);  // gone before the watch was set: pidfd_open fails
      return;
    }
    it->second.watched = true;
    it->second.core_instance = e.instance;
  }

  // --- invariants ---
  void Fail(const std::string& what) {
    if (failure_.empty()) failure_ = "t=" + std::to_string(now_) + " ms: " + what;
  }

  void CheckCreateAllowed(const Effect& e) {
    const Workload* w = core_->desired().profile.Find(e.name);
    if (w == nullptr) return Fail("created " + e.name + ", which is not in the profile");
    auto s = core_->observed().workloads.find(e.name);
    if (s != core_->observed().workloads.end() && s->second.intent != Intent::kRunning) {
      return Fail("created " + e.name + ", which the operator holds");
    }
    for (const auto& net : w->networks) {
      bool ready = false;
      for (const auto& n : core_->desired().profile.networks) {
        if (n.name == net) ready = networks_ready_.count(n.name + "=" + n.subnet) != 0;
      }
      if (!ready) Fail("created " + e.name + " before its network " + net);
    }
    for (const auto& dep : w->after) {
      const AfterRule rule = RuleOf(*w, dep);
      if (rule.holds != AfterHolds::kStart) continue;
      // As the core saw it: running (healthy when asked)...
      auto d = core_->observed().workloads.find(dep);
      const bool seen_running =
          d != core_->observed().workloads.end() && d->second.phase == Phase::kRunning &&
          d->second.op == Op::kNone &&
          (rule.condition == AfterCondition::kStarted || d->second.health == Health::kNone ||
           d->second.health == Health::kHealthy);
      if (!seen_running) Fail("created " + e.name + " before its dependency " + dep + " ran");
      // ...and in the world, not dead for longer than news of an exit can take.
      auto inst = world_.find(dep);
      auto died = died_at_.find(dep);
      if ((inst == world_.end() || !inst->second.alive) && died != died_at_.end() &&
          now_ - died->second > 20000) {
        Fail("created " + e.name + " although its dependency " + dep + " died " +
             std::to_string(now_ - died->second) + " ms ago");
      }
    }
    const bool by_operator = std::exchange(operator_restart_[e.name], false);
    if (e.verb == "restarted" && !by_operator) {
      auto died = died_at_.find(e.name);
      if (died != died_at_.end() && now_ - died->second < w->restart.backoff_initial_ms) {
        Fail("restarted " + e.name + " " + std::to_string(now_ - died->second) +
             " ms after its exit, under its backoff");
      }
      // A create retried after a failed one is not another restart.
      const int seen = std::exchange(last_create_failed_[e.name], false) ? restarts_seen_[e.name]
                                                                         : ++restarts_seen_[e.name];
      if (w->restart.policy == RestartPolicy::kOnFailure && w->restart.max_retries > 0 &&
          seen > w->restart.max_retries) {
        Fail("restarted " + e.name + " " + std::to_string(seen) + " times, over maxRetries");
      }
    }
  }

  void CheckInvariants() {
    // Two calls at once for one workload, creates that are not allowed and restarts under
    // their backoff are caught as the effects are issued; here: a create the core believes
    // under way never coexists with a remove for the same workload in the world's calls.
    for (const auto& [name, s] : core_->observed().workloads) {
      if (s.op != Op::kNone && s.phase == Phase::kStopped && s.op == Op::kCreate) {
        Fail(name + " is being created while stopped");
      }
    }
  }

  // Whether w can be running once faults stop: not held, not given up, and whatever its
  // after: entries hold its start on can be too (a dependency that gave up holds it back).
  bool CanRun(const Profile& p, const std::string& name, int depth = 0) const {
    const Workload* w = p.Find(name);
    if (w == nullptr || depth > 8) return false;
    auto s = core_->observed().workloads.find(name);
    if (s != core_->observed().workloads.end() &&
        (s->second.intent != Intent::kRunning || s->second.gave_up)) {
      return false;
    }
    for (const auto& dep : w->after) {
      const AfterRule rule = RuleOf(*w, dep);
      if (rule.holds == AfterHolds::kStart && !CanRun(p, dep, depth + 1)) return false;
    }
    return true;
  }
  bool CanBeHealthy(const Profile& p, const std::string& name) const {
    const Workload* w = p.Find(name);
    if (w == nullptr || !CanRun(p, name)) return false;
    for (const auto& dep : w->after) {
      if (!CanRun(p, dep)) return false;
    }
    return true;
  }

  void CheckConverged() {
    const Profile& p = core_->desired().profile;
    for (const auto& w : p.workloads) {
      auto s = core_->observed().workloads.find(w.name);
      auto inst = world_.find(w.name);
      const bool alive = inst != world_.end() && inst->second.alive;
      const bool held =
          s != core_->observed().workloads.end() && s->second.intent != Intent::kRunning;
      if (held && alive) return Fail(w.name + " is held but still runs");
      if (!CanRun(p, w.name)) continue;
      if (!alive) return Fail(w.name + " did not converge: not running in the world" + Why(w.name));
      if (!inst->second.shim_alive) return Fail(w.name + " runs with a dead shim");
      if (s->second.phase != Phase::kRunning) {
        return Fail(w.name + " runs but the core says " + std::string(PhaseName(s->second.phase)));
      }
      if (w.health.type != HealthType::kNone && CanBeHealthy(p, w.name) &&
          s->second.health != Health::kHealthy) {
        return Fail(w.name + " did not become healthy: " +
                    std::string(HealthName(s->second.health)) + Why(w.name));
      }
    }
    for (const auto& [name, inst] : world_) {
      if (inst.alive && p.Find(name) == nullptr) Fail(name + " runs but is not in the profile");
    }
    if (core_->store_failing() && !store_.full)
      Fail("the store recovered but the core still fails");
    CheckTrialEnded();
  }

  // Once faults stop, a trial ends within its bound, and the generation enforced is never
  // one that was rolled back or superseded.
  void CheckTrialEnded() {
    if (const auto& t = core_->observed().trial;
        t && now_ >= t->since_ms + t->commit_after_ms + kTrialReadyMs) {
      return Fail("the trial of generation " + std::to_string(t->generation) + " never ended");
    }
    auto g = store_.GetGeneration(core_->desired().generation);
    if (!g || !*g)
      return Fail("generation " + std::to_string(core_->desired().generation) +
                  " is enforced but not stored");
    const std::string& outcome = (*g)->outcome;
    if (outcome == kOutcomeRolledBack || outcome == kOutcomeSuperseded) {
      Fail("generation " + std::to_string((*g)->generation) + " is enforced but " + outcome);
    }
    if (core_->observed().trial && outcome != kOutcomeTrial) {
      Fail("generation " + std::to_string((*g)->generation) + " is on trial but stored " + outcome);
    }
  }

  std::string Why(const std::string& name) const {
    auto s = core_->observed().workloads.find(name);
    if (s == core_->observed().workloads.end()) return " (no state)";
    const WorkloadState& w = s->second;
    std::ostringstream out;
    out << " (phase " << PhaseName(w.phase) << ", op " << static_cast<int>(w.op) << ", health "
        << HealthName(w.health) << ", intent " << IntentName(w.intent) << ", retry_at "
        << w.retry_at_ms << ", networks " << (core_->observed().networks_key ? "set" : "unknown")
        << " gen " << core_->desired().generation << ", error '" << w.last_error << "')";
    return out.str();
  }

  void Trace(const std::string& what) const {
    if (trace_) std::fprintf(stderr, "%8lld  %s\n", static_cast<long long>(now_), what.c_str());
  }

  std::mt19937_64 rng_;
  bool trace_ = false;
  Logger logger_;
  MemoryStore store_;
  std::unique_ptr<Core> core_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t epoch_ = 1;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> queue_;
  std::map<std::string, Instance> world_;
  std::set<std::string> networks_ready_;
  std::set<std::string> in_call_;
  std::map<std::string, int64_t> died_at_;
  std::map<std::string, int64_t> created_at_;
  std::map<std::string, bool> operator_restart_;
  std::map<std::string, int> restarts_seen_;
  std::map<std::string, bool> last_create_failed_;
  std::string failure_;
};

TEST(SimulationTest, RandomFaultSequencesKeepTheInvariantsAndConverge) {
  uint64_t first = 1;
  int count = 10000;
  if (const char* seed = std::getenv("SV_SIM_SEED")) {
    first = std::strtoull(seed, nullptr, 10);
    count = 1;
  } else if (const char* n = std::getenv("SV_SIM_SEQUENCES")) {
    count = std::atoi(n);
  }
  int failed = 0;
  for (int i = 0; i < count && failed < 5; ++i) {
    const uint64_t seed = first + static_cast<uint64_t>(i);
    const std::string failure = Simulation(seed, std::getenv("SV_SIM_TRACE") != nullptr).Run();
    if (!failure.empty()) {
      ++failed;
      ADD_FAILURE() << "seed " << seed << ": " << failure << "\n  replay: SV_SIM_SEED=" << seed;
    }
  }
}

}  // namespace
}  // namespace storevisor::daemon::core
