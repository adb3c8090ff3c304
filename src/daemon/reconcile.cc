// Apply and the reconciler: desired profile + records -> plan -> steps, in start order,
// independent workloads in parallel. Each step records what it did before and after, so
// a daemon killed mid-step finds a consistent record and finishes the job on restart.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "daemon/daemon.h"
#include "daemon/drivers/legacy_driver.h"
#include "net/net.h"

namespace storevisor::daemon {

namespace {

constexpr int kStopTimeoutMs = 5000;
constexpr int kDependencyWaitMs = 120000;

}  // namespace

void Daemon::Event(const std::string& workload, const std::string& type,
                   const std::string& message) {
  (void)store_->AddEvent(workload, type, message);
  logger_.Info("daemon", message, {{"workload", workload}, {"event", type}});
}

std::mutex& Daemon::LockFor(const std::string& name) {
  std::lock_guard lock(locks_mu_);
  auto& m = locks_[name];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

Supervision& Daemon::Sup(const std::string& name) { return sup_[name]; }

Driver* Daemon::DriverFor(const std::string& kind) {
  auto it = drivers_.find(kind);
  return it == drivers_.end() ? nullptr : it->second.get();
}

void Daemon::Kick() {
  {
    std::lock_guard lock(kick_mu_);
    kicked_ = true;
  }
  kick_cv_.notify_all();
}

Result<Profile> Daemon::Desired() {
  SV_ASSIGN_OR_RETURN(auto yaml, store_->GetMeta("profile"));
  SV_ASSIGN_OR_RETURN(auto file, store_->GetMeta("profile_file"));
  if (!yaml) return Profile{};
  return ParseProfile(*yaml, file.value_or("profile.yaml"));
}

Result<nlohmann::json> Daemon::Apply(const std::string& yaml, const std::string& file,
                                     bool dry_run) {
  SV_ASSIGN_OR_RETURN(Profile profile, ParseProfile(yaml, file));
  SV_TRY(CheckOvercommit(profile, host_));
  SV_TRY(CheckLegacyWorkloads(profile));
  for (const auto& w : profile.workloads) {
    if (DriverFor(std::string(KindName(w.kind))) == nullptr) {
      return Error(ErrorCode::kUnsupported,
                   file + ":" + std::to_string(w.line) + ": workload '" + w.name + "': kind " +
                       std::string(KindName(w.kind)) + " has no driver in this storevisord");
    }
  }
  SV_ASSIGN_OR_RETURN(auto records, store_->List());
  if (!dry_run) {
    // An apply states the operator's intent anew: earlier stop/rm overrides end here.
    for (auto& r : records) {
      if (r.desired != "running" && profile.Find(r.name) != nullptr) {
        std::lock_guard lock(LockFor(r.name));
        auto fresh = store_->Get(r.name);
        if (fresh && fresh->has_value()) {
          (*fresh)->desired = "running";
          SV_TRY(store_->Put(**fresh));
          r.desired = "running";
        }
      }
    }
  }
  Plan plan = ComputePlan(profile, records);
  if (!dry_run) {
    SV_ASSIGN_OR_RETURN(auto gen, store_->GetMeta("generation"));
    const int64_t generation = gen ? std::strtoll(gen->c_str(), nullptr, 10) + 1 : 1;
    SV_TRY(store_->SetMeta("profile_file", file));
    SV_TRY(store_->SetMeta("profile", yaml));
    SV_TRY(store_->SetMeta("generation", std::to_string(generation)));
    Event("", "applied",
          "profile " + profile.name + " generation " + std::to_string(generation) + ": " +
              std::to_string(plan.steps.size()) + " step(s)");
    Kick();
  }
  nlohmann::json out = plan.ToJson();
  out["profile"] = profile.name;
  out["dryRun"] = dry_run;
  return out;
}

void Daemon::ReconcileLoop() {
  while (!stopping_) {
    ConvergeOnce();
    std::unique_lock lock(kick_mu_);
    kick_cv_.wait_for(lock, std::chrono::seconds(1),
                      [this] { return kicked_ || stopping_.load(); });
    kicked_ = false;
  }
}

Status Daemon::SetUpNetworks(const Profile& profile) {
  std::vector<net::FirewallNetwork> nets;
  std::vector<net::PublishedPort> ports;
  for (const auto& n : profile.networks) nets.push_back({n.name, n.subnet, n.allow});
  for (const auto& w : profile.workloads) {
    if (w.ports.empty() || w.networks.empty()) continue;
    const Network* n = nullptr;
    for (const auto& net : profile.networks) {
      if (net.name == w.networks[0]) n = &net;
    }
    SV_ASSIGN_OR_RETURN(std::string addr, store_->AllocateAddress(n->name, n->subnet, w.name));
    for (const auto& p : w.ports) ports.push_back({p.host, addr, p.container});
  }
  // The rules name bridges by interface name and need not wait for them: the nft
  // transaction runs beside the bridges' `ip` calls (each is a process on apply's path).
  // The bridges this daemon made are recorded (meta "bridges") before any is made, so that
  // after a crash it still knows them, and it removes only those: another storevisord on the
  // host (a test's, a second state dir) keeps its own sv-* bridges.
  std::set<std::string> made = RecordedBridges();
  for (const auto& n : profile.networks) made.insert(net::BridgeName(n.name));
  SV_TRY(RecordBridges(made));
  Status firewall = Ok();
  std::thread rules([&] { firewall = net::ApplyFirewall(nets, ports); });
  Status bridges = Ok();
  for (const auto& n : profile.networks) {
    auto subnet = ParseSubnet(n.subnet);
    if (!subnet) {
      bridges = std::move(subnet).error();
      break;
    }
    bridges = net::EnsureBridge(
        n.name, Ipv4ToString(subnet->base + 1) + "/" + std::to_string(subnet->prefix));
    if (!bridges) break;
  }
  rules.join();
  SV_TRY(bridges);
  // Bridges of networks no longer declared go away (their rules went with the new tables).
  std::set<std::string> kept;
  for (const auto& br : made) {
    bool wanted = false;
    for (const auto& n : profile.networks) wanted = wanted || net::BridgeName(n.name) == br;
    if (wanted || !net::RemoveBridge(br.substr(3))) kept.insert(br);
  }
  SV_TRY(RecordBridges(kept));
  return firewall;
}

std::set<std::string> Daemon::RecordedBridges() {
  std::set<std::string> out;
  auto text = store_->GetMeta("bridges");
  if (!text || !*text) return out;
  size_t pos = 0;
  const std::string& t = **text;
  while (pos < t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string::npos) nl = t.size();
    if (nl > pos) out.insert(t.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

Status Daemon::RecordBridges(const std::set<std::string>& bridges) {
  std::string text;
  for (const auto& b : bridges) {
    text += b;
    text += '\n';
  }
  return store_->SetMeta("bridges", text);
}

void Daemon::ConvergeOnce() {
  auto profile = Desired();
  if (!profile) {
    logger_.Error("reconciler", "stored profile does not parse: " + profile.error().message());
    return;
  }
  auto records = store_->List();
  if (!records) return;
  Plan plan = ComputePlan(*profile, *records);
  if (plan.steps.empty()) return;
  if (auto st = SetUpNetworks(*profile); !st) {
    logger_.Error("reconciler", "networks: " + st.error().message());
  }
  std::vector<std::thread> deletes;
  for (const auto& step : plan.steps) {
    if (step.action == StepAction::kDelete) {
      deletes.emplace_back([this, &profile, step] { RunStep(*profile, step); });
    }
  }
  for (auto& t : deletes) t.join();
  // Every other step starts at once and waits in WaitForDependencies for what its after:
  // entries hold, so a chain costs only what its links need (a dependant of `started`
  // does not wait for its dependency's health) and independent workloads run side by side.
  {
    std::lock_guard lock(state_mu_);
    for (const auto& step : plan.steps) {
      if (step.action != StepAction::kDelete) in_flight_.insert(step.name);
    }
  }
  std::vector<std::thread> workers;
  for (const auto& step : plan.steps) {
    if (step.action == StepAction::kDelete) continue;
    workers.emplace_back([this, &profile, step] {
      RunStep(*profile, step);
      {
        std::lock_guard lock(state_mu_);
        in_flight_.erase(step.name);
      }
      StateChanged(false);
      PromoteGated();
    });
  }
  for (auto& t : workers) t.join();
}

void Daemon::StateChanged(bool new_instance) {
  {
    std::lock_guard lock(state_mu_);
    ++state_gen_;
    supervise_kicked_ = supervise_kicked_ || new_instance;
  }
  state_cv_.notify_all();
}

bool Daemon::DependencyMet(const std::string& dep, AfterCondition condition) {
  {
    // A dependency with a step of this converge still running (being replaced) is not
    // judged by the record of its old instance.
    std::lock_guard lock(state_mu_);
    if (in_flight_.count(dep) != 0) return false;
  }
  auto r = store_->Get(dep);
  if (!r || !r->has_value()) return false;
  const WorkloadRecord& rec = **r;
  if (rec.phase != "running") return false;
  return condition == AfterCondition::kStarted || rec.health == "none" || rec.health == "healthy";
}

Status Daemon::WaitForDependencies(const Workload& w) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kDependencyWaitMs);
  for (const auto& dep : w.after) {
    const AfterRule rule = RuleOf(w, dep);
    if (rule.holds != AfterHolds::kStart) continue;  // holds only its health (supervise.cc)
    while (true) {
      uint64_t seen = 0;
      {
        std::lock_guard lock(state_mu_);
        seen = state_gen_;
      }
      if (DependencyMet(dep, rule.condition)) break;
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline || stopping_) {
        return Error(ErrorCode::kTimeout,
                     "waited 120 s for '" + dep + "' to be running" +
                         (rule.condition == AfterCondition::kHealthy ? " and healthy" : ""));
      }
      // Woken by every record change the daemon makes; the bound covers anything else.
      std::unique_lock lock(state_mu_);
      state_cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(200)),
                           [&] { return state_gen_ != seen || stopping_.load(); });
    }
  }
  return Ok();
}

Result<std::vector<NetAttachment>> Daemon::Attachments(const Workload& w, const Profile& p) {
  std::vector<NetAttachment> out;
  for (const auto& name : w.networks) {
    for (const auto& n : p.networks) {
      if (n.name != name) continue;
      SV_ASSIGN_OR_RETURN(Ipv4Subnet subnet, ParseSubnet(n.subnet));
      SV_ASSIGN_OR_RETURN(std::string addr, store_->AllocateAddress(n.name, n.subnet, w.name));
      out.push_back(
          {n.name, net::BridgeName(n.name), addr, subnet.prefix, Ipv4ToString(subnet.base + 1)});
    }
  }
  return out;
}

Status Daemon::CreateInstance(const Workload& w, const std::string& verb) {
  Driver* driver = DriverFor(std::string(KindName(w.kind)));
  SV_ASSIGN_OR_RETURN(auto existing, store_->Get(w.name));
  WorkloadRecord r = existing.value_or(WorkloadRecord{});
  if (!r.runtime_hash.empty() || !r.driver_state.empty()) {
    SV_TRY(driver->Remove(w.name, r.driver_state, kStopTimeoutMs));
  }
  r.name = w.name;
  r.kind = std::string(KindName(w.kind));
  r.spec_json = WorkloadToJson(w).dump();
  r.phase = "creating";
  r.runtime_hash.clear();  // no instance until Create succeeds
  r.pid = 0;
  SV_TRY(store_->Put(r));
  auto profile = Desired();
  std::vector<NetAttachment> nets;
  if (profile) {
    auto attached = Attachments(w, *profile);
    if (!attached) return std::move(attached).error();
    nets = std::move(*attached);
  }
  auto info = driver->Create(w, nets);
  if (!info) {
    r.phase = "failed";
    r.last_error = info.error().message();
    SV_TRY(store_->Put(r));
    return std::move(info).error();
  }
  r.phase = "running";
  r.runtime_hash = RuntimeHash(w);
  r.spec_hash = SpecHash(w);
  r.pid = info->pid;
  r.driver_state = info->driver_state;
  r.started_at_ms = NowMs();
  r.exit_code = -1;
  r.last_error.clear();
  r.health = w.health.type == HealthType::kNone ? "none" : "starting";
  // Containers get it in their namespace, microVMs through their guest agent (drivers).
  const bool addressed = w.kind == WorkloadKind::kContainer || w.kind == WorkloadKind::kMicroVm;
  r.address = nets.empty() || !addressed ? "" : nets[0].address;
  SV_TRY(store_->Put(r));
  {
    std::lock_guard lock(sup_mu_);
    Supervision& s = Sup(w.name);
    s.health_failures = 0;
    s.restart_pending = false;
    s.gated = false;
    s.next_check_ms = NowMs() + w.health.start_period_ms;
  }
  StateChanged(true);  // the supervisor probes the new instance now, not at its next tick
  Event(w.name, verb, w.name + " " + verb + " (pid " + std::to_string(info->pid) + ")");
  return Ok();
}

Status Daemon::DeleteWorkload(const std::string& name) {
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!r) return Ok();
  if (Driver* d = DriverFor(r->kind)) SV_TRY(d->Remove(name, r->driver_state, kStopTimeoutMs));
  SV_TRY(store_->ReleaseAddresses(name));
  SV_TRY(store_->Delete(name));
  {
    std::lock_guard lock(sup_mu_);
    sup_.erase(name);
  }
  PruneCgroupsIfNoWorkloads();
  Event(name, "deleted", name + " deleted");
  return Ok();
}

void Daemon::RunStep(const Profile& profile, const PlanStep& step) {
  const Workload* w = profile.Find(step.name);
  if (step.action != StepAction::kDelete && w == nullptr) return;
  if (step.action == StepAction::kCreate) {
    std::lock_guard lock(sup_mu_);
    if (Sup(step.name).next_action_ms > NowMs()) return;  // a failed create backs off
  }
  Status st = Ok();
  if (step.action == StepAction::kCreate || step.action == StepAction::kReplace) {
    st = WaitForDependencies(*w);
  }
  std::unique_lock lock(LockFor(step.name));
  if (st && (step.action == StepAction::kCreate || step.action == StepAction::kReplace)) {
    // The plan was made from records read without this lock: while the step waited for it
    // (or for its dependencies), the supervisor (a restart) or the operator (start, restart,
    // stop, rm) may have acted. A record that now holds an instance of this very spec, or
    // that the operator holds, needs nothing: creating again would kill a fresh instance.
    auto fresh = store_->Get(step.name);
    if (fresh && fresh->has_value() &&
        ((*fresh)->desired != "running" || (*fresh)->runtime_hash == RuntimeHash(*w))) {
      return;
    }
  }
  if (st) {
    switch (step.action) {
      case StepAction::kCreate:
        st = CreateInstance(*w, "created");
        break;
      case StepAction::kReplace:
        st = CreateInstance(*w, "replaced");
        break;
      case StepAction::kUpdate: {
        auto r = store_->Get(step.name);
        if (r && r->has_value()) {
          (*r)->spec_hash = SpecHash(*w);
          (*r)->spec_json = WorkloadToJson(*w).dump();
          st = store_->Put(**r);
          if (st)
            Event(step.name, "updated", step.name + " updated in place (" + step.reason + ")");
        }
        break;
      }
      case StepAction::kDelete:
        st = DeleteWorkload(step.name);
        break;
    }
  }
  if (!st) {
    int64_t delay = 0;
    {
      std::lock_guard sl(sup_mu_);
      Supervision& s = Sup(step.name);
      delay = w != nullptr ? BackoffMs(w->restart, s.failures) : 1000;
      s.failures++;
      s.next_action_ms = NowMs() + delay;
    }
    auto r = store_->Get(step.name);
    if (r && r->has_value()) {
      (*r)->last_error = st.error().message();
      if ((*r)->phase == "creating") (*r)->phase = "failed";
      (void)store_->Put(**r);
    }
    Event(step.name, "failed",
          std::string(StepActionName(step.action)) + " " + step.name + " failed: " +
              st.error().message() + "; retrying in " + std::to_string(delay) + " ms");
  }
}

}  // namespace storevisor::daemon
