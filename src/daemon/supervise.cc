// The supervisor: adopts what runs after a daemon restart, notices exits, runs health
// checks, restarts with capped exponential backoff, samples CPU and memory.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/files.h"
#include "daemon/daemon.h"
#include "daemon/drivers/cgroup.h"
#include "daemon/health.h"

namespace storevisor::daemon {

namespace {

constexpr int64_t kTickMs = 200;
// While a workload has not passed its first health check, it is probed and ticked this
// often: dependants wait for "healthy", so its first success should be seen promptly.
constexpr int64_t kStartingProbeMs = 50;
constexpr int64_t kStableMs = 10000;  // up this long: the backoff starts over

Result<Workload> SpecOf(const WorkloadRecord& r) {
  // The record keeps the spec it was made from; the desired profile may already differ.
  auto j = nlohmann::json::parse(r.spec_json.empty() ? "{}" : r.spec_json, nullptr, false);
  if (!j.is_object()) return Error(ErrorCode::kInternal, "bad spec in record " + r.name);
  Workload w;
  w.name = r.name;
  const auto& res = j.value("restart", nlohmann::json::object());
  const std::string policy = res.value("policy", "always");
  w.restart.policy = policy == "never"        ? RestartPolicy::kNever
                     : policy == "on-failure" ? RestartPolicy::kOnFailure
                                              : RestartPolicy::kAlways;
  w.restart.backoff_initial_ms = res.value("backoffInitialMs", int64_t{500});
  w.restart.backoff_max_ms = res.value("backoffMaxMs", int64_t{30000});
  w.restart.max_retries = res.value("maxRetries", 0);
  const auto& h = j.value("health", nlohmann::json::object());
  const std::string type = h.value("type", "none");
  w.health.type = type == "exec"     ? HealthType::kExec
                  : type == "http"   ? HealthType::kHttp
                  : type == "tcp"    ? HealthType::kTcp
                  : type == "screen" ? HealthType::kScreen
                                     : HealthType::kNone;
  w.health.screen_text = h.value("screenText", "");
  w.health.exec = h.value("exec", std::vector<std::string>{});
  w.health.port = h.value("port", 0);
  w.health.path = h.value("path", "/");
  w.health.interval_ms = h.value("intervalMs", int64_t{2000});
  w.health.timeout_ms = h.value("timeoutMs", int64_t{1000});
  w.health.retries = h.value("retries", 3);
  w.health.start_period_ms = h.value("startPeriodMs", int64_t{0});
  w.health.send = h.value("send", "");
  w.health.expect = h.value("expect", "");
  w.after = j.value("after", std::vector<std::string>{});
  const auto& rules = j.value("afterRules", nlohmann::json::object());
  for (const auto& [dep, rule] : rules.items()) {
    if (!rule.is_object()) continue;
    AfterRule ar;
    ar.condition = rule.value("condition", "") == "started" ? AfterCondition::kStarted
                                                            : AfterCondition::kHealthy;
    ar.holds = rule.value("holds", "") == "health" ? AfterHolds::kHealth : AfterHolds::kStart;
    w.after_rules[dep] = ar;
  }
  return w;
}

}  // namespace

void Daemon::Adopt() {
  auto records = store_->List();
  if (!records) return;
  for (auto& r : *records) {
    Driver* d = DriverFor(r.kind);
    if (d == nullptr || (r.phase != "running" && r.phase != "creating")) continue;
    auto info = d->Inspect(r.name, r.driver_state);
    if (info && info->running && r.phase == "running") {
      r.pid = info->pid;
      (void)store_->Put(r);
      Event(r.name, "adopted", r.name + " still runs: adopted pid " + std::to_string(info->pid));
      std::lock_guard lock(sup_mu_);
      Sup(r.name).next_check_ms = NowMs();
      continue;
    }
    // Died while the daemon was away, or was half-made: the supervisor or the
    // reconciler takes it from here.
    r.phase = r.phase == "creating" ? "failed" : "exited";
    if (r.phase == "failed") r.runtime_hash.clear();
    r.exit_code = info ? info->exit_code : -1;
    (void)store_->Put(r);
    Event(r.name, "lost", r.name + " was not running when storevisord started");
  }
}

void Daemon::SuperviseLoop() {
  while (!stopping_) {
    auto start = std::chrono::steady_clock::now();
    auto profile = Desired();
    auto records = store_->List();
    bool starting = false;
    if (profile && records) {
      for (const auto& r : *records) {
        SuperviseOne(r, *profile);
        starting = starting || (r.phase == "running" && r.health == "starting");
      }
    }
    // A new instance (StateChanged(true)) wakes the loop at once: its first probe is not
    // left to the next tick.
    std::unique_lock lock(state_mu_);
    state_cv_.wait_until(lock,
                         start + std::chrono::milliseconds(starting ? kStartingProbeMs : kTickMs),
                         [this] { return supervise_kicked_ || stopping_.load(); });
    supervise_kicked_ = false;
  }
}

void Daemon::SuperviseOne(const WorkloadRecord& record, const Profile& profile) {
  if (record.desired != "running") return;
  std::unique_lock lock(LockFor(record.name), std::try_to_lock);
  if (!lock.owns_lock()) return;  // a step or an operator action is on it
  auto fresh = store_->Get(record.name);
  if (!fresh || !fresh->has_value()) return;
  WorkloadRecord r = **fresh;
  Driver* d = DriverFor(r.kind);
  auto spec = SpecOf(r);
  if (d == nullptr || !spec) return;
  const int64_t now = NowMs();
  if (r.phase == "running") {
    auto info = d->Inspect(r.name, r.driver_state);
    if (!info) return;
    if (info->running) {
      SampleUsage(r);
      {
        std::lock_guard sl(sup_mu_);
        Supervision& s = Sup(r.name);
        if (now - r.started_at_ms > kStableMs) s.failures = 0;
      }
      CheckHealth(r, *spec);
      return;
    }
    r.phase = "exited";
    r.exit_code = info->exit_code;
    r.pid = 0;
    (void)store_->Put(r);
    Event(r.name, "exited", r.name + " exited with status " + std::to_string(info->exit_code));
  }
  if (r.phase != "exited") return;
  std::unique_lock sl(sup_mu_);
  Supervision& s = Sup(r.name);
  if (!s.restart_pending) {
    const bool unhealthy = r.health == "unhealthy";
    if (!ShouldRestart(spec->restart, r.exit_code, unhealthy, r.restarts)) return;
    s.restart_pending = true;
    const int64_t delay = BackoffMs(spec->restart, s.failures);
    s.next_action_ms = now + delay;
    s.failures++;
    Event(r.name, "backoff", r.name + " restarts in " + std::to_string(delay) + " ms");
    return;
  }
  if (now < s.next_action_ms) return;
  s.restart_pending = false;
  const Workload* desired = profile.Find(r.name);
  if (desired == nullptr) return;
  sl.unlock();
  r.restarts++;
  (void)store_->Put(r);
  Status st = CreateInstance(*desired, "restarted");
  if (!st) {
    Event(r.name, "failed", "restart of " + r.name + " failed: " + st.error().message());
    auto again = store_->Get(r.name);
    if (again && again->has_value() && (*again)->phase == "failed") {
      (*again)->phase = "exited";
      (void)store_->Put(**again);
    }
  }
}

void Daemon::CheckHealth(const WorkloadRecord& r, const Workload& w) {
  if (w.health.type == HealthType::kNone) return;
  {
    std::lock_guard sl(sup_mu_);
    Supervision& s = Sup(r.name);
    if (s.check_running || NowMs() < s.next_check_ms) return;
    s.check_running = true;
    s.next_check_ms = NowMs() + (r.health == "starting"
                                     ? std::min<int64_t>(w.health.interval_ms, kStartingProbeMs)
                                     : w.health.interval_ms);
  }
  Driver* d = DriverFor(r.kind);
  std::thread([this, d, r, w] {
    Status st = Ok();
    const int timeout = static_cast<int>(w.health.timeout_ms);
    const std::string netns = d->NetnsPath(r.name, r.pid);
    const std::string host = netns.empty() && !r.address.empty() ? r.address : "127.0.0.1";
    switch (w.health.type) {
      case HealthType::kExec: {
        auto out = d->Exec(r.name, r.driver_state, w.health.exec, timeout);
        if (!out) {
          st = std::move(out).error();
        } else if (out->exit_code != 0) {
          st = Error(ErrorCode::kUnavailable, "exec exited " + std::to_string(out->exit_code));
        }
        break;
      }
      case HealthType::kTcp:
        st = ProbeTcp(netns, host, w.health.port, timeout, w.health.send, w.health.expect);
        break;
      case HealthType::kHttp:
        st = ProbeHttp(netns, host, w.health.port, w.health.path, timeout);
        break;
      case HealthType::kScreen:  // OCR takes its time: no timeout but QMP's own (10 s)
        st = d->CheckScreen(r.name, w.health);
        break;
      case HealthType::kNone:
        break;
    }
    OnHealthResult(r.name, st.has_value(), st ? "" : st.error().message());
  }).detach();
}

void Daemon::OnHealthResult(const std::string& name, bool ok, const std::string& detail,
                            bool from_probe) {
  const bool became_healthy = [&] {
    std::unique_lock lock(LockFor(name));
    auto fresh = store_->Get(name);
    std::lock_guard sl(sup_mu_);
    Supervision& s = Sup(name);
    if (from_probe) s.check_running = false;
    if (!from_probe && !s.gated) return false;
    if (!fresh || !fresh->has_value() || (*fresh)->phase != "running") return false;
    WorkloadRecord r = **fresh;
    auto spec = SpecOf(r);
    if (!spec) return false;
    return ApplyHealthResult(&r, *spec, &s, ok, detail);
  }();
  if (!became_healthy) return;
  StateChanged(false);
  PromoteGated();
}

bool Daemon::ApplyHealthResult(WorkloadRecord* r, const Workload& spec, Supervision* s, bool ok,
                               const std::string& detail) {
  const std::string& name = r->name;
  const bool in_grace = NowMs() - r->started_at_ms < spec.health.start_period_ms;
  if (ok) {
    s->health_failures = 0;
    if (r->health == "healthy") return false;
    const std::string waiting = UnmetHealthGate(spec);
    if (!waiting.empty()) {
      if (!s->gated) {
        logger_.Info("supervisor", name + " passed its check; healthy once '" + waiting + "' is",
                     {{"workload", name}});
      }
      s->gated = true;
      return false;
    }
    s->gated = false;
    r->health = "healthy";
    (void)store_->Put(*r);
    Event(name, "healthy", name + " is healthy");
    return true;
  }
  s->gated = false;
  if (in_grace) return false;
  // Fast probes before the first success count only once the instance had the time its
  // checks would have had at the normal interval.
  if (r->health == "starting" &&
      NowMs() - r->started_at_ms < spec.health.interval_ms * spec.health.retries) {
    return false;
  }
  s->health_failures++;
  if (s->health_failures < spec.health.retries) return false;
  r->health = "unhealthy";
  Event(name, "unhealthy",
        name + " failed " + std::to_string(s->health_failures) +
            " health checks in a row: " + detail);
  s->health_failures = 0;
  if (spec.restart.policy != RestartPolicy::kNever && r->started_at_ms > 0) {
    // An unhealthy instance is replaced like one that exited with a failure.
    Driver* d = DriverFor(r->kind);
    if (d != nullptr) (void)d->Remove(name, r->driver_state, 2000);
    r->phase = "exited";
    r->exit_code = -1;
    r->pid = 0;
  }
  (void)store_->Put(*r);
  return false;
}

std::string Daemon::UnmetHealthGate(const Workload& spec) {
  for (const auto& dep : spec.after) {
    const AfterRule rule = RuleOf(spec, dep);
    if (rule.holds == AfterHolds::kHealth && !DependencyMet(dep, rule.condition)) return dep;
  }
  return "";
}

void Daemon::PromoteGated() {
  std::vector<std::string> gated;
  {
    std::lock_guard sl(sup_mu_);
    for (const auto& [name, s] : sup_) {
      if (s.gated) gated.push_back(name);
    }
  }
  // Their own check passed (gated is cleared by a failure); only the gate is looked at again.
  for (const auto& name : gated) OnHealthResult(name, true, "", false);
}

void Daemon::SampleUsage(const WorkloadRecord& r) {
  // The workload's cgroup counts every process in it (a container's execs, QEMU's threads
  // and helpers); the main process alone is the fallback where there is no cgroup.
  std::string source = "cgroup";
  auto usage = ReadCgroupUsage(WorkloadCgroupPath(r.name));
  if (!usage) {
    usage = ReadProcessUsage(r.pid);
    source = "process";
  }
  if (!usage) return;
  std::lock_guard sl(sup_mu_);
  Supervision& s = Sup(r.name);
  const int64_t now = NowMs();
  if (s.usage_source != source) {  // two counters are not comparable: start again
    s.usage_source = source;
    s.last_cpu_sample_ms = 0;
  }
  // A rate over the sampling interval (at least a second, so a 50 ms tick is not noise).
  if (s.last_cpu_sample_ms > 0 && now - s.last_cpu_sample_ms >= 1000) {
    const double used_ns =
        static_cast<double>(usage->cpu_ns - std::min(usage->cpu_ns, s.last_cpu_ns));
    s.cpu_percent = 100.0 * used_ns / (static_cast<double>(now - s.last_cpu_sample_ms) * 1e6);
  }
  if (s.last_cpu_sample_ms == 0 || now - s.last_cpu_sample_ms >= 1000) {
    s.last_cpu_ns = usage->cpu_ns;
    s.last_cpu_sample_ms = now;
  }
  s.memory_bytes = usage->memory_bytes;
}

}  // namespace storevisor::daemon
