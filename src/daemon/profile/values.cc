// Value syntaxes shared by profile fields: sizes, durations, cpusets; names of enums;
// the canonical JSON and hashes of a workload.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "daemon/profile/profile.h"

namespace storevisor::daemon {

namespace {

Error Bad(std::string what) { return Error(ErrorCode::kInvalidArgument, std::move(what)); }

// Splits "123abc" into 123 and "abc"; false if there is no number or it overflows.
bool SplitNumber(std::string_view text, uint64_t* number, std::string_view* unit) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (value > (UINT64_MAX - 9) / 10) return false;
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return false;
  *number = value;
  *unit = text.substr(i);
  return true;
}

uint64_t Fnv1a(std::string_view text) {
  uint64_t hash = 1469598103934665603ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::string Hex(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace

Result<Ipv4Subnet> ParseSubnet(std::string_view text) {
  std::string_view rest = text;
  uint32_t addr = 0;
  for (int i = 0; i < 4; ++i) {
    uint64_t octet = 0;
    std::string_view tail;
    if (!SplitNumber(rest, &octet, &tail) || octet > 255 || tail.empty() ||
        tail[0] != (i == 3 ? '/' : '.')) {
      return Bad("expected an IPv4 subnet such as 10.88.1.0/24, got '" + std::string(text) + "'");
    }
    addr = (addr << 8) | static_cast<uint32_t>(octet);
    rest = tail.substr(1);
  }
  uint64_t prefix = 0;
  std::string_view tail;
  if (!SplitNumber(rest, &prefix, &tail) || !tail.empty() || prefix < 8 || prefix > 30) {
    return Bad("expected an IPv4 subnet such as 10.88.1.0/24 (prefix 8 to 30), got '" +
               std::string(text) + "'");
  }
  const uint32_t mask = ~((1u << (32 - prefix)) - 1);
  return Ipv4Subnet{addr & mask, static_cast<int>(prefix)};
}

std::string Ipv4ToString(uint32_t addr) {
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 255) + "." +
         std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255);
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = 1;
    if (c >= 0x80) {
      uint32_t cp = 0;
      if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
      } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
      } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
      } else {
        return false;
      }
      if (i + len > text.size()) return false;
      for (size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(text[i + k]);
        if ((cc & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    }
    i += len;
  }
  return true;
}

std::string_view KindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kMicroVm:
      return "microvm";
    case WorkloadKind::kLegacyVm:
      return "legacy-vm";
    case WorkloadKind::kContainer:
      return "container";
  }
  return "container";
}

std::string_view RestartPolicyName(RestartPolicy policy) {
  switch (policy) {
    case RestartPolicy::kAlways:
      return "always";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kNever:
      return "never";
  }
  return "always";
}

std::string_view HealthTypeName(HealthType type) {
  switch (type) {
    case HealthType::kNone:
      return "none";
    case HealthType::kExec:
      return "exec";
    case HealthType::kHttp:
      return "http";
    case HealthType::kTcp:
      return "tcp";
    case HealthType::kScreen:
      return "screen";
  }
  return "none";
}

std::string_view UpdateStrategyName(UpdateStrategy strategy) {
  return strategy == UpdateStrategy::kManual ? "manual" : "recreate";
}

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t number = 0;
  std::string_view unit;
  if (!SplitNumber(text, &number, &unit)) {
    return Bad("expected a size such as 256Mi, 1Gi or 512M, got '" + std::string(text) + "'");
  }
  static const struct {
    std::string_view unit;
    uint64_t factor;
  } kUnits[] = {{"", 1},           {"k", 1000},        {"K", 1000},        {"M", 1000000},
                {"G", 1000000000}, {"Ki", 1ULL << 10}, {"Mi", 1ULL << 20}, {"Gi", 1ULL << 30},
                {"Ti", 1ULL << 40}};
  for (const auto& u : kUnits) {
    if (u.unit != unit) continue;
    if (number > UINT64_MAX / u.factor) return Bad("size '" + std::string(text) + "' is too big");
    return number * u.factor;
  }
  return Bad("unknown size unit '" + std::string(unit) + "' in '" + std::string(text) +
             "'; use Ki, Mi, Gi, Ti, k, M or G");
}

Result<int64_t> ParseDuration(std::string_view text) {
  uint64_t number = 0;
  std::string_view unit;
  if (!SplitNumber(text, &number, &unit)) {
    return Bad("expected a duration such as 500ms, 2s or 1m, got '" + std::string(text) + "'");
  }
  uint64_t factor = 0;
  if (unit == "ms") factor = 1;
  if (unit == "s" || unit.empty()) factor = 1000;
  if (unit == "m") factor = 60000;
  if (unit == "h") factor = 3600000;
  if (factor == 0) {
    return Bad("unknown duration unit '" + std::string(unit) + "'; use ms, s, m or h");
  }
  constexpr uint64_t kMaxMs = 7ULL * 24 * 3600 * 1000;  // a week is more than any timer needs
  if (number > kMaxMs / factor) return Bad("duration '" + std::string(text) + "' is too long");
  return static_cast<int64_t>(number * factor);
}

Result<std::vector<int>> ParseCpuset(std::string_view text) {
  constexpr uint64_t kMaxCpu = 1023;
  std::set<int> cpus;
  std::string_view rest = text;
  if (rest.empty()) return Bad("expected CPUs such as 0-1,3, got an empty cpuset");
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    uint64_t first = 0;
    std::string_view tail;
    if (!SplitNumber(part, &first, &tail)) break;
    uint64_t last = first;
    if (!tail.empty()) {
      std::string_view tail2;
      if (tail[0] != '-' || !SplitNumber(tail.substr(1), &last, &tail2) || !tail2.empty()) break;
    }
    if (last < first || last > kMaxCpu) {
      return Bad("cpuset '" + std::string(text) + "': range " + std::string(part) +
                 " is reversed or beyond CPU 1023");
    }
    for (uint64_t c = first; c <= last; ++c) cpus.insert(static_cast<int>(c));
    if (comma == std::string_view::npos) return std::vector<int>(cpus.begin(), cpus.end());
  }
  return Bad("expected CPUs such as 0-1,3, got '" + std::string(text) + "'");
}

nlohmann::json LegacyToJson(const Workload& w);  // legacy_fields.cc

nlohmann::json WorkloadToJson(const Workload& w) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : w.mounts) {
    mounts.push_back({{"source", m.source}, {"target", m.target}, {"readOnly", m.read_only}});
  }
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : w.ports) ports.push_back({{"host", p.host}, {"container", p.container}});
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : w.disks) disks.push_back({{"path", d.path}, {"readOnly", d.read_only}});
  nlohmann::json j = {
      {"name", w.name},
      {"kind", KindName(w.kind)},
      {"role", w.role},
      {"image", w.image},
      {"rootfs", w.rootfs},
      {"command", w.command},
      {"env", w.env},
      {"workdir", w.workdir},
      {"mounts", mounts},
      {"ports", ports},
      {"kernel", w.kernel},
      {"initrd", w.initrd},
      {"cmdline", w.cmdline},
      {"disks", disks},
      {"snapshot", w.snapshot},
      {"ksm", w.ksm},
      {"tracing", w.tracing},
      {"cpus", w.cpus},
      {"cpuset", w.cpuset},
      {"memory", w.memory_bytes},
      {"networks", w.networks},
      {"restart",
       {{"policy", RestartPolicyName(w.restart.policy)},
        {"backoffInitialMs", w.restart.backoff_initial_ms},
        {"backoffMaxMs", w.restart.backoff_max_ms},
        {"maxRetries", w.restart.max_retries}}},
      {"health",
       {{"type", HealthTypeName(w.health.type)},
        {"exec", w.health.exec},
        {"port", w.health.port},
        {"path", w.health.path},
        {"intervalMs", w.health.interval_ms},
        {"timeoutMs", w.health.timeout_ms},
        {"retries", w.health.retries},
        {"startPeriodMs", w.health.start_period_ms}}},
      {"after", w.after},
      {"update", UpdateStrategyName(w.update)},
  };
  // Only where used, so the hashes of the other kinds stay what they were.
  if (w.kind == WorkloadKind::kLegacyVm) j["legacy"] = LegacyToJson(w);
  if (w.health.type == HealthType::kScreen) j["health"]["screenText"] = w.health.screen_text;
  if (!w.health.send.empty()) j["health"]["send"] = w.health.send;
  if (!w.health.expect.empty()) j["health"]["expect"] = w.health.expect;
  if (!w.after_rules.empty()) {
    nlohmann::json rules = nlohmann::json::object();
    for (const auto& [dep, rule] : w.after_rules) {
      rules[dep] = {
          {"condition", rule.condition == AfterCondition::kStarted ? "started" : "healthy"},
          {"holds", rule.holds == AfterHolds::kHealth ? "health" : "start"}};
    }
    j["afterRules"] = rules;
  }
  return j;
}

std::string RuntimeHash(const Workload& workload) {
  nlohmann::json j = WorkloadToJson(workload);
  // Supervision settings are applied in place: changing them never restarts anything.
  for (const char* key : {"restart", "health", "after", "afterRules", "update"}) j.erase(key);
  return Hex(Fnv1a(j.dump()));
}

std::string SpecHash(const Workload& workload) {
  return Hex(Fnv1a(WorkloadToJson(workload).dump()));
}

AfterRule RuleOf(const Workload& w, const std::string& dep) {
  auto it = w.after_rules.find(dep);
  return it == w.after_rules.end() ? AfterRule{} : it->second;
}

const Workload* Profile::Find(std::string_view name) const {
  for (const auto& w : workloads) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

}  // namespace storevisor::daemon
