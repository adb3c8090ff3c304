#include "daemon/core/state.h"

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

namespace storevisor::daemon::core {

namespace {

constexpr std::array<std::pair<Phase, std::string_view>, 6> kPhases = {{
    {Phase::kPending, "pending"},
    {Phase::kCreating, "creating"},
    {Phase::kRunning, "running"},
    {Phase::kExited, "exited"},
    {Phase::kFailed, "failed"},
    {Phase::kStopped, "stopped"},
}};
constexpr std::array<std::pair<Health, std::string_view>, 4> kHealths = {{
    {Health::kNone, "none"},
    {Health::kStarting, "starting"},
    {Health::kHealthy, "healthy"},
    {Health::kUnhealthy, "unhealthy"},
}};
constexpr std::array<std::pair<Intent, std::string_view>, 3> kIntents = {{
    {Intent::kRunning, "running"},
    {Intent::kStopped, "stopped"},
    {Intent::kRemoved, "removed"},
}};

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> Parse(const std::array<std::pair<E, std::string_view>, N>& table,
                       std::string_view text) {
  for (const auto& [v, name] : table) {
    if (name == text) return v;
  }
  return std::nullopt;
}

// Typed reads of one JSON object that never throw: a missing or mistyped field gives the
// fallback (records are written by this daemon; a field of another type means an older or
// damaged record, and the profile's defaults are the best guess).
class Fields {
 public:
  explicit Fields(const nlohmann::json* j) : j_(j != nullptr && j->is_object() ? j : nullptr) {}
  std::string Str(const char* key, const std::string& fallback) const {
    const auto* v = Find(key);
    return v != nullptr && v->is_string() ? v->get_ref<const std::string&>() : fallback;
  }
  int64_t Int(const char* key, int64_t fallback) const {
    const auto* v = Find(key);
    return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : fallback;
  }
  std::vector<std::string> Strings(const char* key) const {
    std::vector<std::string> out;
    const auto* v = Find(key);
    if (v == nullptr || !v->is_array()) return out;
    for (const auto& item : *v) {
      if (item.is_string()) out.push_back(item.get<std::string>());
    }
    return out;
  }
  Fields Object(const char* key) const { return Fields(Find(key)); }
  const nlohmann::json* Find(const char* key) const {
    if (j_ == nullptr) return nullptr;
    auto it = j_->find(key);
    return it == j_->end() ? nullptr : &*it;
  }

 private:
  const nlohmann::json* j_;
};

RestartPolicy PolicyOf(const std::string& text) {
  if (text == "never") return RestartPolicy::kNever;
  if (text == "on-failure") return RestartPolicy::kOnFailure;
  return RestartPolicy::kAlways;
}

HealthType HealthTypeOf(const std::string& text) {
  if (text == "exec") return HealthType::kExec;
  if (text == "http") return HealthType::kHttp;
  if (text == "tcp") return HealthType::kTcp;
  if (text == "screen") return HealthType::kScreen;
  return HealthType::kNone;
}

WorkloadKind KindOf(const std::string& text) {
  if (text == "microvm") return WorkloadKind::kMicroVm;
  if (text == "legacy-vm") return WorkloadKind::kLegacyVm;
  return WorkloadKind::kContainer;
}

}  // namespace

std::string_view PhaseName(Phase phase) { return NameOf(kPhases, phase); }
std::string_view HealthName(Health health) { return NameOf(kHealths, health); }
std::string_view IntentName(Intent intent) { return NameOf(kIntents, intent); }
std::optional<Phase> ParsePhase(std::string_view text) { return Parse(kPhases, text); }
std::optional<Health> ParseHealth(std::string_view text) { return Parse(kHealths, text); }
std::optional<Intent> ParseIntent(std::string_view text) { return Parse(kIntents, text); }

Result<Workload> SpecFromJson(std::string_view json, const std::string& name) {
  auto j = nlohmann::json::parse(json.empty() ? std::string_view("{}") : json, nullptr, false);
  if (!j.is_object())
    return Error(ErrorCode::kInternal, "the record of " + name + " holds no spec");
  const Fields f(&j);
  Workload w;
  w.name = name;
  w.kind = KindOf(f.Str("kind", "container"));
  w.role = f.Str("role", "");
  const Fields restart = f.Object("restart");
  w.restart.policy = PolicyOf(restart.Str("policy", "always"));
  w.restart.backoff_initial_ms = restart.Int("backoffInitialMs", w.restart.backoff_initial_ms);
  w.restart.backoff_max_ms = restart.Int("backoffMaxMs", w.restart.backoff_max_ms);
  w.restart.max_retries = static_cast<int>(restart.Int("maxRetries", 0));
  const Fields h = f.Object("health");
  w.health.type = HealthTypeOf(h.Str("type", "none"));
  w.health.exec = h.Strings("exec");
  w.health.port = static_cast<int>(h.Int("port", 0));
  w.health.path = h.Str("path", "/");
  w.health.screen_text = h.Str("screenText", "");
  w.health.send = h.Str("send", "");
  w.health.expect = h.Str("expect", "");
  w.health.interval_ms = h.Int("intervalMs", w.health.interval_ms);
  w.health.timeout_ms = h.Int("timeoutMs", w.health.timeout_ms);
  w.health.retries = static_cast<int>(h.Int("retries", w.health.retries));
  w.health.start_period_ms = h.Int("startPeriodMs", 0);
  w.after = f.Strings("after");
  w.networks = f.Strings("networks");
  w.update =
      f.Str("update", "recreate") == "manual" ? UpdateStrategy::kManual : UpdateStrategy::kRecreate;
  if (const auto* rules = f.Find("afterRules"); rules != nullptr && rules->is_object()) {
    for (const auto& [dep, rule] : rules->items()) {
      const Fields r(&rule);
      AfterRule ar;
      ar.condition =
          r.Str("condition", "") == "started" ? AfterCondition::kStarted : AfterCondition::kHealthy;
      ar.holds = r.Str("holds", "") == "health" ? AfterHolds::kHealth : AfterHolds::kStart;
      w.after_rules[dep] = ar;
    }
  }
  return w;
}

std::string Desired::NetworksKey() const {
  if (!networks_key.empty()) return networks_key;
  std::string key = "networks";
  for (const auto& n : profile.networks) {
    key += ";" + n.name + "=" + n.subnet + ":";
    for (const auto& a : n.allow) key += a + ",";
  }
  key += "|ports";
  for (const auto& w : profile.workloads) {
    if (w.ports.empty() || w.networks.empty()) continue;
    key += ";" + w.name + "@" + w.networks[0] + ":";
    for (const auto& p : w.ports) {
      key += std::to_string(p.host) + ">" + std::to_string(p.container) + ",";
    }
  }
  return key;
}

void Desired::Index() {
  networks_key.clear();
  networks_key = NetworksKey();
  hashes.clear();
  for (const auto& w : profile.workloads) hashes[w.name] = {RuntimeHash(w), SpecHash(w)};
}

std::string Desired::RuntimeHashOf(const Workload& w) const {
  auto it = hashes.find(w.name);
  return it != hashes.end() ? it->second.first : RuntimeHash(w);
}

std::string Desired::SpecHashOf(const Workload& w) const {
  auto it = hashes.find(w.name);
  return it != hashes.end() ? it->second.second : SpecHash(w);
}

std::vector<std::string> ChangedWorkloads(const Profile* base, const Profile& next) {
  std::vector<std::string> changed;
  for (const auto& w : next.workloads) {
    const Workload* before = base != nullptr ? base->Find(w.name) : nullptr;
    if (before == nullptr || RuntimeHash(*before) != RuntimeHash(w) ||
        SpecHash(*before) != SpecHash(w)) {
      changed.push_back(w.name);
    }
  }
  return changed;
}

WorkloadRecord ToRecord(const WorkloadState& s) {
  WorkloadRecord r;
  r.name = s.name;
  r.kind = std::string(KindName(s.kind));
  r.spec_json = s.spec_json;
  r.runtime_hash = s.runtime_hash;
  r.spec_hash = s.spec_hash;
  r.desired = std::string(IntentName(s.intent));
  r.phase = std::string(PhaseName(s.phase));
  r.health = std::string(HealthName(s.health));
  r.pid = s.pid;
  r.started_at_ms = s.started_at_ms;
  r.restarts = s.restarts;
  r.exit_code = s.exit_code;
  r.last_error = s.last_error;
  r.address = s.address;
  r.driver_state = s.driver_state;
  return r;
}

Result<WorkloadState> FromRecord(const WorkloadRecord& r) {
  WorkloadState s;
  s.name = r.name;
  SV_ASSIGN_OR_RETURN(s.spec, SpecFromJson(r.spec_json, r.name));
  s.spec_json = r.spec_json;
  s.kind = KindOf(r.kind);
  s.spec.kind = s.kind;
  s.runtime_hash = r.runtime_hash;
  s.spec_hash = r.spec_hash;
  auto intent = ParseIntent(r.desired);
  auto phase = ParsePhase(r.phase);
  auto health = ParseHealth(r.health);
  if (!intent || !phase || !health) {
    return Error(ErrorCode::kInternal, "the record of " + r.name + " has an unknown state (" +
                                           r.desired + ", " + r.phase + ", " + r.health + ")");
  }
  s.intent = *intent;
  s.phase = *phase;
  s.health = *health;
  s.pid = r.pid;
  s.started_at_ms = r.started_at_ms;
  s.restarts = r.restarts;
  s.exit_code = r.exit_code;
  s.last_error = r.last_error;
  s.address = r.address;
  s.driver_state = r.driver_state;
  return s;
}

}  // namespace storevisor::daemon::core
