// ParseProfile: YAML text -> validated Profile. Each section has its own small reader;
// every error goes through YamlContext so it names file:line: field path.
#include "daemon/profile/profile.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "daemon/profile/yaml_reader.h"

namespace storevisor::daemon {

Status CheckReferences(const YamlContext& ctx, const Profile& profile);  // check.cc
// legacy_fields.cc
Status ParseLegacyFields(const YamlContext& ctx, const YamlMap& map, Workload* w);
Status ParseLegacyDisk(const YamlContext& ctx, const YamlMap& disk, WorkloadKind kind,
                       DiskSpec* out);
Status ParseScreenHealth(const YamlContext& ctx, const YamlMap& health, HealthCheck* h);

namespace {

std::string Index(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

bool ValidName(std::string_view name, size_t max) {
  if (name.empty() || name.size() > max || name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Status CheckName(const YamlContext& ctx, const YamlMap& map, const std::string& name, size_t max) {
  if (ValidName(name, max)) return Ok();
  return ctx.Fail(*map.Get("name"), map.Path("name"),
                  "expected lower-case letters, digits and '-' (at most " + std::to_string(max) +
                      " characters), got '" + name + "'");
}

// A path relative to the profile's folder becomes absolute, so the daemon (whose working
// directory is not the operator's) finds it.
std::string ResolvePath(const std::string& file, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  size_t slash = file.rfind('/');
  if (file.empty() || file[0] != '/' || slash == std::string::npos) return path;
  return file.substr(0, slash + 1) + path;
}

Result<Restart> ParseRestart(const YamlContext& ctx, const YAML::Node& node,
                             const std::string& path) {
  Restart restart;
  std::string policy;
  const YAML::Node* policy_node = &node;
  std::optional<YamlMap> map;
  if (node.IsScalar()) {
    policy = node.Scalar();
  } else {
    SV_ASSIGN_OR_RETURN(map, YamlMap::Open(ctx, node, path, {"policy", "backoff", "maxRetries"}));
    SV_ASSIGN_OR_RETURN(policy, map->String("policy", true));
    SV_ASSIGN_OR_RETURN(restart.max_retries, map->Int("maxRetries", 0, 1000000, 0));
    if (auto backoff = map->Get("backoff")) {
      SV_ASSIGN_OR_RETURN(auto b,
                          YamlMap::Open(ctx, *backoff, map->Path("backoff"), {"initial", "max"}));
      SV_ASSIGN_OR_RETURN(restart.backoff_initial_ms, b.Duration("initial", 500));
      SV_ASSIGN_OR_RETURN(restart.backoff_max_ms, b.Duration("max", 30000));
      // initial 0s restarts at once the first time (the doubling then starts at 10ms).
      if (restart.backoff_initial_ms < 0 || restart.backoff_max_ms < restart.backoff_initial_ms ||
          restart.backoff_max_ms < 10) {
        return ctx.Fail(*backoff, map->Path("backoff"),
                        "expected 0s <= initial <= max, max at least 10ms (for example initial: "
                        "500ms, max: 30s)");
      }
    }
  }
  if (policy == "always") {
    restart.policy = RestartPolicy::kAlways;
  } else if (policy == "on-failure") {
    restart.policy = RestartPolicy::kOnFailure;
  } else if (policy == "never") {
    restart.policy = RestartPolicy::kNever;
  } else {
    return ctx.Fail(map ? *map->Get("policy") : *policy_node, map ? path + ".policy" : path,
                    "expected always, on-failure or never, got '" + policy + "'");
  }
  return restart;
}

// A TCP probe's send/expect strings: a request line and the start of its answer.
constexpr size_t kMaxProbeBytes = 256;

Result<HealthCheck> ParseHealth(const YamlContext& ctx, const YAML::Node& node,
                                const std::string& path) {
  SV_ASSIGN_OR_RETURN(auto map, YamlMap::Open(ctx, node, path,
                                              {"exec", "http", "tcp", "screen", "interval",
                                               "timeout", "retries", "startPeriod"}));
  HealthCheck h;
  int kinds = static_cast<int>(map.Has("exec")) + static_cast<int>(map.Has("http")) +
              static_cast<int>(map.Has("tcp")) + static_cast<int>(map.Has("screen"));
  if (kinds != 1) return ctx.Fail(node, path, "expected exactly one of exec, http, tcp or screen");
  if (map.Has("screen")) {
    SV_TRY(ParseScreenHealth(ctx, map, &h));
  } else if (map.Has("exec")) {
    h.type = HealthType::kExec;
    SV_ASSIGN_OR_RETURN(h.exec, map.StringList("exec"));
    if (h.exec.empty()) return ctx.Fail(*map.Get("exec"), map.Path("exec"), "expected a command");
  } else {
    const bool http = map.Has("http");
    h.type = http ? HealthType::kHttp : HealthType::kTcp;
    std::string sub = http ? "http" : "tcp";
    auto opened =
        http ? YamlMap::Open(ctx, *map.Get(sub), map.Path(sub), {"port", "path"})
             : YamlMap::Open(ctx, *map.Get(sub), map.Path(sub), {"port", "send", "expect"});
    if (!opened) return std::move(opened).error();
    const YamlMap& probe = *opened;
    if (!probe.Has("port"))
      return ctx.Fail(probe.node(), probe.Path("port"), "required field is missing");
    SV_ASSIGN_OR_RETURN(int64_t port, probe.Int("port", 1, 65535, 0));
    h.port = static_cast<int>(port);
    SV_ASSIGN_OR_RETURN(h.path, probe.String("path", false, "/"));
    if (h.path.empty() || h.path[0] != '/') {
      return ctx.Fail(*probe.Get("path"), probe.Path("path"), "expected a path starting with /");
    }
    SV_ASSIGN_OR_RETURN(h.send, probe.String("send", false));
    SV_ASSIGN_OR_RETURN(h.expect, probe.String("expect", false));
    const std::string too_long = "expected at most " + std::to_string(kMaxProbeBytes) + " bytes";
    if (h.send.size() > kMaxProbeBytes)
      return ctx.Fail(*probe.Get("send"), probe.Path("send"), too_long);
    if (h.expect.size() > kMaxProbeBytes)
      return ctx.Fail(*probe.Get("expect"), probe.Path("expect"), too_long);
  }
  SV_ASSIGN_OR_RETURN(h.interval_ms, map.Duration("interval", 2000));
  SV_ASSIGN_OR_RETURN(h.timeout_ms, map.Duration("timeout", 1000));
  SV_ASSIGN_OR_RETURN(int64_t retries, map.Int("retries", 1, 100, 3));
  h.retries = static_cast<int>(retries);
  SV_ASSIGN_OR_RETURN(h.start_period_ms, map.Duration("startPeriod", 0));
  if (h.interval_ms < 100 || h.timeout_ms < 10 || h.timeout_ms > h.interval_ms) {
    return ctx.Fail(node, path, "expected interval >= 100ms and 10ms <= timeout <= interval");
  }
  return h;
}

// after: [NAME | {name: NAME, condition: healthy|started, holds: start|health}]
Status ParseAfter(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  auto node = map.Get("after");
  if (!node) return Ok();
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *node, map.Path("after")));
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string path = Index(map.Path("after"), i);
    std::string name;
    AfterRule rule;
    if (!items[i].IsMap()) {
      SV_ASSIGN_OR_RETURN(name, ScalarText(ctx, items[i], path));
    } else {
      SV_ASSIGN_OR_RETURN(auto m,
                          YamlMap::Open(ctx, items[i], path, {"name", "condition", "holds"}));
      SV_ASSIGN_OR_RETURN(name, m.String("name", true));
      SV_ASSIGN_OR_RETURN(std::string condition, m.String("condition", false, "healthy"));
      SV_ASSIGN_OR_RETURN(std::string holds, m.String("holds", false, "start"));
      if (condition != "healthy" && condition != "started") {
        return ctx.Fail(*m.Get("condition"), m.Path("condition"),
                        "expected healthy or started, got '" + condition + "'");
      }
      if (holds != "start" && holds != "health") {
        return ctx.Fail(*m.Get("holds"), m.Path("holds"),
                        "expected start or health, got '" + holds + "'");
      }
      rule.condition = condition == "started" ? AfterCondition::kStarted : AfterCondition::kHealthy;
      rule.holds = holds == "health" ? AfterHolds::kHealth : AfterHolds::kStart;
    }
    for (const auto& seen : w->after) {
      if (seen == name) return ctx.Fail(items[i], path, "'" + name + "' is listed twice");
    }
    if (!(rule == AfterRule{})) w->after_rules[name] = rule;
    w->after.push_back(std::move(name));
  }
  return Ok();
}

Status ParseMounts(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  auto node = map.Get("mounts");
  if (!node) return Ok();
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *node, map.Path("mounts")));
  for (size_t i = 0; i < items.size(); ++i) {
    std::string path = Index(map.Path("mounts"), i);
    SV_ASSIGN_OR_RETURN(auto m,
                        YamlMap::Open(ctx, items[i], path, {"source", "target", "readOnly"}));
    MountSpec spec;
    SV_ASSIGN_OR_RETURN(spec.source, m.String("source", false));
    SV_ASSIGN_OR_RETURN(spec.target, m.String("target", true));
    SV_ASSIGN_OR_RETURN(spec.read_only, m.Bool("readOnly", false));
    if (spec.target.empty() || spec.target[0] != '/' ||
        spec.target.find("..") != std::string::npos) {
      return ctx.Fail(items[i], path + ".target", "expected an absolute path without '..'");
    }
    spec.source = ResolvePath(ctx.file(), spec.source);
    w->mounts.push_back(std::move(spec));
  }
  return Ok();
}

Status ParsePorts(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  auto node = map.Get("ports");
  if (!node) return Ok();
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *node, map.Path("ports")));
  for (size_t i = 0; i < items.size(); ++i) {
    SV_ASSIGN_OR_RETURN(
        auto p, YamlMap::Open(ctx, items[i], Index(map.Path("ports"), i), {"host", "container"}));
    if (!p.Has("host") || !p.Has("container")) {
      return ctx.Fail(items[i], Index(map.Path("ports"), i), "expected host: and container: ports");
    }
    SV_ASSIGN_OR_RETURN(int64_t host, p.Int("host", 1, 65535, 0));
    SV_ASSIGN_OR_RETURN(int64_t container, p.Int("container", 1, 65535, 0));
    w->ports.push_back(
        {static_cast<int>(host), static_cast<int>(container), YamlContext::Line(items[i])});
  }
  return Ok();
}

Status ParseEnv(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  auto node = map.Get("env");
  if (!node) return Ok();
  if (!node->IsMap()) return ctx.Fail(*node, map.Path("env"), "expected a mapping NAME: value");
  for (auto it = node->begin(); it != node->end(); ++it) {
    SV_ASSIGN_OR_RETURN(std::string key, ScalarText(ctx, it->first, map.Path("env")));
    std::string path = map.Path("env") + "." + key;
    if (key.empty() || key.find('=') != std::string::npos) {
      return ctx.Fail(it->first, path, "environment names must be non-empty and contain no '='");
    }
    SV_ASSIGN_OR_RETURN(std::string value, ScalarText(ctx, it->second, path));
    if (!w->env.emplace(key, value).second) return ctx.Fail(it->first, path, "field given twice");
  }
  return Ok();
}

Status ParseDisks(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  auto node = map.Get("disks");
  if (!node) return Ok();
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *node, map.Path("disks")));
  for (size_t i = 0; i < items.size(); ++i) {
    SV_ASSIGN_OR_RETURN(auto d, YamlMap::Open(ctx, items[i], Index(map.Path("disks"), i),
                                              {"path", "readOnly", "format", "overlay"}));
    DiskSpec disk;
    SV_ASSIGN_OR_RETURN(disk.path, d.String("path", true));
    SV_ASSIGN_OR_RETURN(disk.read_only, d.Bool("readOnly", false));
    SV_TRY(ParseLegacyDisk(ctx, d, w->kind, &disk));
    disk.path = ResolvePath(ctx.file(), disk.path);
    w->disks.push_back(std::move(disk));
  }
  return Ok();
}

Result<WorkloadKind> ParseKind(const YamlContext& ctx, const YamlMap& map, std::string* role) {
  SV_ASSIGN_OR_RETURN(std::string kind, map.String("kind", true));
  if (kind == "container") return WorkloadKind::kContainer;
  if (kind == "microvm") return WorkloadKind::kMicroVm;
  if (kind == "legacy-vm") return WorkloadKind::kLegacyVm;
  if (kind == "vision") {  // the vision service is a container with a role
    *role = "vision";
    return WorkloadKind::kContainer;
  }
  return ctx.Fail(*map.Get("kind"), map.Path("kind"),
                  "expected microvm, legacy-vm, container or vision, got '" + kind + "'");
}

Status CheckKindFields(const YamlContext& ctx, const YamlMap& map, const Workload& w) {
  const bool vm = w.kind != WorkloadKind::kContainer;
  for (const char* field : {"image", "rootfs", "env", "workdir", "mounts"}) {
    if (vm && map.Has(field)) {
      return ctx.Fail(*map.Get(field), map.Path(field), "only containers have this field");
    }
  }
  for (const char* field : {"kernel", "initrd", "cmdline", "disks", "snapshot", "ksm"}) {
    if (!vm && map.Has(field)) {
      return ctx.Fail(*map.Get(field), map.Path(field),
                      "only microvm and legacy-vm have this field");
    }
  }
  if (w.kind != WorkloadKind::kMicroVm && map.Has("tracing")) {
    return ctx.Fail(*map.Get("tracing"), map.Path("tracing"), "only microvm has this field");
  }
  if (!vm && w.image.empty() == w.rootfs.empty()) {
    return ctx.Fail(map.node(), map.Path("image"),
                    "a container needs exactly one of image or rootfs");
  }
  if (!vm && !w.rootfs.empty() && w.command.empty()) {
    return ctx.Fail(map.node(), map.Path("command"), "a container on a rootfs needs a command");
  }
  if (w.kind == WorkloadKind::kMicroVm && w.kernel.empty()) {
    return ctx.Fail(map.node(), map.Path("kernel"), "a microvm needs a kernel");
  }
  if (w.kind == WorkloadKind::kLegacyVm && w.disks.empty() && w.kernel.empty()) {
    return ctx.Fail(map.node(), map.Path("disks"), "a legacy-vm needs a disk or a kernel");
  }
  return Ok();
}

Status ParseResources(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  SV_ASSIGN_OR_RETURN(w->cpus, map.Double("cpus", 0.01, 256, 1.0));
  SV_ASSIGN_OR_RETURN(w->cpuset, map.String("cpuset", false));
  if (map.Has("cpuset")) {
    auto cpus = ParseCpuset(w->cpuset);
    if (!cpus) return ctx.Fail(*map.Get("cpuset"), map.Path("cpuset"), cpus.error().message());
  }
  const uint64_t fallback = w->kind == WorkloadKind::kContainer ? 0 : 256ULL << 20;
  SV_ASSIGN_OR_RETURN(w->memory_bytes, map.Size("memory", fallback));
  if (w->kind != WorkloadKind::kContainer && w->memory_bytes < (128ULL << 20)) {
    // Debian's kernel reset-loops with less (see docs/vm.md).
    return ctx.Fail(*map.Get("memory"), map.Path("memory"), "a VM needs at least 128Mi");
  }
  if (map.Has("memory") && w->memory_bytes < (4ULL << 20)) {
    return ctx.Fail(*map.Get("memory"), map.Path("memory"), "expected at least 4Mi");
  }
  return Ok();
}

Result<Workload> ParseWorkload(const YamlContext& ctx, const YAML::Node& node,
                               const std::string& path) {
  SV_ASSIGN_OR_RETURN(
      auto map, YamlMap::Open(ctx, node, path,
                              {"name", "kind", "role", "image", "rootfs", "command", "env",
                               "workdir", "mounts", "ports", "kernel", "initrd", "cmdline", "disks",
                               "snapshot", "ksm", "tracing", "cpus", "cpuset", "memory", "networks",
                               "restart", "health", "after", "update",
                               // legacy-vm (legacy_fields.cc)
                               "machine", "firmware", "firmwareCode", "firmwareVars", "devices",
                               "vga", "vnc", "tpm", "usb"}));
  Workload w;
  w.line = YamlContext::Line(node);
  SV_ASSIGN_OR_RETURN(w.name, map.String("name", true));
  SV_TRY(CheckName(ctx, map, w.name, 40));
  SV_ASSIGN_OR_RETURN(w.kind, ParseKind(ctx, map, &w.role));
  SV_ASSIGN_OR_RETURN(w.role, map.String("role", false, w.role));
  SV_ASSIGN_OR_RETURN(w.image, map.String("image", false));
  SV_ASSIGN_OR_RETURN(w.rootfs, map.String("rootfs", false));
  w.rootfs = ResolvePath(ctx.file(), w.rootfs);
  SV_ASSIGN_OR_RETURN(w.command, map.StringList("command"));
  SV_TRY(ParseEnv(ctx, map, &w));
  SV_ASSIGN_OR_RETURN(w.workdir, map.String("workdir", false));
  SV_TRY(ParseMounts(ctx, map, &w));
  SV_TRY(ParsePorts(ctx, map, &w));
  SV_ASSIGN_OR_RETURN(w.kernel, map.String("kernel", false));
  w.kernel = ResolvePath(ctx.file(), w.kernel);
  SV_ASSIGN_OR_RETURN(w.initrd, map.String("initrd", false));
  w.initrd = ResolvePath(ctx.file(), w.initrd);
  SV_ASSIGN_OR_RETURN(w.cmdline, map.String("cmdline", false));
  SV_TRY(ParseDisks(ctx, map, &w));
  SV_ASSIGN_OR_RETURN(w.snapshot, map.Bool("snapshot", false));
  SV_ASSIGN_OR_RETURN(w.ksm, map.Bool("ksm", false));
  SV_ASSIGN_OR_RETURN(w.tracing, map.Bool("tracing", false));
  SV_TRY(ParseResources(ctx, map, &w));
  SV_ASSIGN_OR_RETURN(w.networks, map.StringList("networks"));
  if (auto restart = map.Get("restart")) {
    SV_ASSIGN_OR_RETURN(w.restart, ParseRestart(ctx, *restart, map.Path("restart")));
  }
  if (auto health = map.Get("health")) {
    SV_ASSIGN_OR_RETURN(w.health, ParseHealth(ctx, *health, map.Path("health")));
  }
  SV_TRY(ParseAfter(ctx, map, &w));
  SV_ASSIGN_OR_RETURN(std::string update, map.String("update", false, "recreate"));
  if (update != "recreate" && update != "manual") {
    return ctx.Fail(*map.Get("update"), map.Path("update"),
                    "expected recreate or manual, got '" + update + "'");
  }
  w.update = update == "manual" ? UpdateStrategy::kManual : UpdateStrategy::kRecreate;
  SV_TRY(CheckKindFields(ctx, map, w));
  SV_TRY(ParseLegacyFields(ctx, map, &w));
  w.legacy.firmware_code = ResolvePath(ctx.file(), w.legacy.firmware_code);
  w.legacy.firmware_vars = ResolvePath(ctx.file(), w.legacy.firmware_vars);
  return w;
}

Result<Network> ParseNetwork(const YamlContext& ctx, const YAML::Node& node,
                             const std::string& path) {
  SV_ASSIGN_OR_RETURN(auto map, YamlMap::Open(ctx, node, path, {"name", "subnet", "allow"}));
  Network n;
  n.line = YamlContext::Line(node);
  SV_ASSIGN_OR_RETURN(n.name, map.String("name", true));
  SV_TRY(CheckName(ctx, map, n.name, 10));  // bridge "sv-<name>" fits IFNAMSIZ
  SV_ASSIGN_OR_RETURN(n.subnet, map.String("subnet", true));
  if (auto subnet = ParseSubnet(n.subnet); !subnet || subnet->prefix > 29) {
    return ctx.Fail(
        *map.Get("subnet"), map.Path("subnet"),
        "expected an IPv4 subnet such as 10.88.1.0/24 (prefix 8 to 29), got '" + n.subnet + "'");
  }
  SV_ASSIGN_OR_RETURN(n.allow, map.StringList("allow"));
  return n;
}

Status ParseSpec(const YamlContext& ctx, const YAML::Node& node, Profile* p) {
  SV_ASSIGN_OR_RETURN(
      auto spec, YamlMap::Open(ctx, node, "spec",
                               {"limits", "commitAfter", "rollback", "networks", "workloads"}));
  SV_ASSIGN_OR_RETURN(p->commit_after_ms, spec.Duration("commitAfter", 60000));
  SV_ASSIGN_OR_RETURN(std::string rollback, spec.String("rollback", false, "auto"));
  if (rollback != "auto" && rollback != "never") {
    return ctx.Fail(*spec.Get("rollback"), spec.Path("rollback"),
                    "expected auto or never, got '" + rollback + "'");
  }
  p->auto_rollback = rollback == "auto";
  if (auto limits = spec.Get("limits")) {
    SV_ASSIGN_OR_RETURN(
        auto l, YamlMap::Open(ctx, *limits, "spec.limits", {"cpuOvercommit", "memoryOvercommit"}));
    SV_ASSIGN_OR_RETURN(p->cpu_overcommit, l.Double("cpuOvercommit", 0.1, 64, 1.0));
    SV_ASSIGN_OR_RETURN(p->memory_overcommit, l.Double("memoryOvercommit", 0.1, 64, 1.0));
  }
  if (auto nets = spec.Get("networks")) {
    SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *nets, "spec.networks"));
    for (size_t i = 0; i < items.size(); ++i) {
      SV_ASSIGN_OR_RETURN(auto net, ParseNetwork(ctx, items[i], Index("spec.networks", i)));
      p->networks.push_back(std::move(net));
    }
  }
  auto workloads = spec.Get("workloads");
  if (!workloads) return ctx.Fail(node, "spec.workloads", "required field is missing");
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *workloads, "spec.workloads"));
  for (size_t i = 0; i < items.size(); ++i) {
    SV_ASSIGN_OR_RETURN(auto w, ParseWorkload(ctx, items[i], Index("spec.workloads", i)));
    p->workloads.push_back(std::move(w));
  }
  return CheckReferences(ctx, *p);
}

Status ParseDocument(const YamlContext& ctx, const YAML::Node& root, Profile* p) {
  SV_ASSIGN_OR_RETURN(auto top,
                      YamlMap::Open(ctx, root, "", {"apiVersion", "kind", "metadata", "spec"}));
  SV_ASSIGN_OR_RETURN(std::string api, top.String("apiVersion", true));
  if (api != kApiVersion) {
    return ctx.Fail(
        *top.Get("apiVersion"), "apiVersion",
        "unsupported version '" + api + "'; this storevisord reads " + std::string(kApiVersion));
  }
  SV_ASSIGN_OR_RETURN(std::string kind, top.String("kind", true));
  if (kind != "StoreProfile") {
    return ctx.Fail(*top.Get("kind"), "kind", "expected StoreProfile, got '" + kind + "'");
  }
  auto meta_node = top.Get("metadata");
  if (!meta_node) return ctx.Fail(root, "metadata", "required field is missing");
  SV_ASSIGN_OR_RETURN(auto meta,
                      YamlMap::Open(ctx, *meta_node, "metadata", {"name", "store", "device"}));
  SV_ASSIGN_OR_RETURN(p->name, meta.String("name", true));
  SV_TRY(CheckName(ctx, meta, p->name, 63));
  SV_ASSIGN_OR_RETURN(p->store, meta.String("store", false));
  SV_ASSIGN_OR_RETURN(p->device, meta.String("device", false));
  auto spec = top.Get("spec");
  if (!spec) return ctx.Fail(root, "spec", "required field is missing");
  return ParseSpec(ctx, *spec, p);
}

}  // namespace

Result<Profile> ParseProfile(std::string_view text, std::string_view file) {
  YamlContext ctx{std::string(file)};
  if (text.size() > kMaxProfileBytes) {
    return ctx.FailAtLine(0, "", "profile is larger than 1 MiB");
  }
  if (!IsValidUtf8(text)) return ctx.FailAtLine(0, "", "profile is not valid UTF-8 text");
  Profile profile;
  profile.file = std::string(file);
  try {
    YAML::Node root = YAML::Load(std::string(text));
    SV_TRY(ParseDocument(ctx, root, &profile));
  } catch (const YAML::Exception& e) {
    return ctx.FailAtLine(e.mark.is_null() ? 0 : e.mark.line + 1, "", "YAML: " + e.msg);
  } catch (const std::exception& e) {
    return ctx.FailAtLine(0, "", std::string("YAML: ") + e.what());
  }
  return profile;
}

}  // namespace storevisor::daemon
