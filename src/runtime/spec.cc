// config.json -> Spec. Strict about types and values (every error names its field path),
// tolerant of unknown fields (newer spec versions and podman add some; runc ignores them).
//
// Inside this file, a small SpecError exception carries the first problem up to ParseSpec,
// which turns it into a Result: it keeps the many small field readers free of plumbing,
// and no exception ever leaves the file.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <utility>

#include "common/json_depth.h"
#include "runtime/caps.h"
#include "runtime/runtime.h"

namespace storevisor::runtime {

bool Spec::HasNamespace(NamespaceType t) const { return FindNamespace(t) != nullptr; }

const Namespace* Spec::FindNamespace(NamespaceType t) const {
  for (const auto& ns : namespaces) {
    if (ns.type == t) return &ns;
  }
  return nullptr;
}

namespace {

using json = nlohmann::json;

struct SpecError {
  std::string path;
  std::string message;
};

constexpr size_t kMaxListItems = 4096;
constexpr size_t kMaxStringBytes = 64u << 10;

[[noreturn]] void Fail(const std::string& path, std::string message) {
  throw SpecError{path, std::move(message)};
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

const char* TypeName(const json& j) { return j.type_name(); }

const json* Find(const json& obj, std::string_view key) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

void ExpectObject(const json& j, const std::string& path) {
  if (!j.is_object()) Fail(path, std::string("must be an object, not ") + TypeName(j));
}

std::string AsString(const json& j, const std::string& path) {
  if (!j.is_string()) Fail(path, std::string("must be a string, not ") + TypeName(j));
  const auto& s = j.get_ref<const std::string&>();
  if (s.size() > kMaxStringBytes) Fail(path, "is longer than 64 KiB");
  if (s.find('\0') != std::string::npos) Fail(path, "contains a NUL byte");
  return s;
}

std::string GetString(const json& obj, std::string_view key, const std::string& path,
                      bool required = false) {
  const json* j = Find(obj, key);
  if (j == nullptr) {
    if (required) Fail(Join(path, key), "is required");
    return "";
  }
  return AsString(*j, Join(path, key));
}

bool GetBool(const json& obj, std::string_view key, const std::string& path) {
  const json* j = Find(obj, key);
  if (j == nullptr) return false;
  if (!j->is_boolean())
    Fail(Join(path, key), std::string("must be a boolean, not ") + TypeName(*j));
  return j->get<bool>();
}

int64_t AsInt(const json& j, const std::string& path, int64_t min, int64_t max) {
  if (!j.is_number_integer()) {
    Fail(path, std::string("must be an integer, not ") + TypeName(j));
  }
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(max))
      Fail(path, "is too large (max " + std::to_string(max) + ")");
    return static_cast<int64_t>(u);
  }
  int64_t v = j.get<int64_t>();
  if (v < min || v > max) {
    Fail(path, "is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

uint64_t AsU64(const json& j, const std::string& path) {
  if (!j.is_number_integer()) Fail(path, std::string("must be an integer, not ") + TypeName(j));
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  int64_t v = j.get<int64_t>();
  if (v < 0) Fail(path, "must not be negative");
  return static_cast<uint64_t>(v);
}

template <typename T>
std::optional<T> GetInt(const json& obj, std::string_view key, const std::string& path, int64_t min,
                        int64_t max) {
  const json* j = Find(obj, key);
  if (j == nullptr) return std::nullopt;
  return static_cast<T>(AsInt(*j, Join(path, key), min, max));
}

std::optional<uint64_t> GetU64(const json& obj, std::string_view key, const std::string& path) {
  const json* j = Find(obj, key);
  if (j == nullptr) return std::nullopt;
  return AsU64(*j, Join(path, key));
}

// Visits each element of an optional array field.
template <typename F>
void ForEach(const json& obj, std::string_view key, const std::string& path, F&& fn) {
  const json* j = Find(obj, key);
  if (j == nullptr) return;
  std::string p = Join(path, key);
  if (!j->is_array()) Fail(p, std::string("must be an array, not ") + TypeName(*j));
  if (j->size() > kMaxListItems) Fail(p, "has more than 4096 entries");
  for (size_t i = 0; i < j->size(); ++i) fn((*j)[i], Index(p, i));
}

std::vector<std::string> GetStrings(const json& obj, std::string_view key,
                                    const std::string& path) {
  std::vector<std::string> out;
  ForEach(obj, key, path,
          [&](const json& e, const std::string& p) { out.push_back(AsString(e, p)); });
  return out;
}

std::map<std::string, std::string> GetStringMap(const json& obj, std::string_view key,
                                                const std::string& path) {
  std::map<std::string, std::string> out;
  const json* j = Find(obj, key);
  if (j == nullptr) return out;
  std::string p = Join(path, key);
  ExpectObject(*j, p);
  if (j->size() > kMaxListItems) Fail(p, "has more than 4096 entries");
  for (auto it = j->begin(); it != j->end(); ++it)
    out[it.key()] = AsString(it.value(), Join(p, it.key()));
  return out;
}

void RequireAbsolute(const std::string& value, const std::string& path) {
  if (value.empty() || value[0] != '/') Fail(path, "must be an absolute path, got '" + value + "'");
}

IdMapping ParseIdMapping(const json& j, const std::string& path) {
  ExpectObject(j, path);
  IdMapping m;
  auto get = [&](std::string_view key) {
    const json* v = Find(j, key);
    if (v == nullptr) Fail(Join(path, key), "is required");
    return static_cast<uint32_t>(AsInt(*v, Join(path, key), 0, UINT32_MAX));
  };
  m.container_id = get("containerID");
  m.host_id = get("hostID");
  m.size = get("size");
  if (m.size == 0) Fail(Join(path, "size"), "must be at least 1");
  return m;
}

int ParseRlimitType(const std::string& name, const std::string& path) {
  static constexpr std::array<std::pair<std::string_view, int>, 16> kNames = {{
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  }};
  for (const auto& [n, v] : kNames) {
    if (n == name) return v;
  }
  Fail(path, "unknown rlimit '" + name + "'");
}

std::vector<int> ParseCapList(const json& obj, std::string_view key, const std::string& path) {
  std::vector<int> out;
  ForEach(obj, key, path, [&](const json& e, const std::string& p) {
    std::string name = AsString(e, p);
    int cap = CapabilityFromName(name);
    if (cap < 0) Fail(p, "unknown capability '" + name + "'");
    out.push_back(cap);
  });
  return out;
}

User ParseUser(const json& j, const std::string& path) {
  ExpectObject(j, path);
  User u;
  u.uid = GetInt<uint32_t>(j, "uid", path, 0, UINT32_MAX).value_or(0);
  u.gid = GetInt<uint32_t>(j, "gid", path, 0, UINT32_MAX).value_or(0);
  u.umask = GetInt<uint32_t>(j, "umask", path, 0, 0777);
  ForEach(j, "additionalGids", path, [&](const json& e, const std::string& p) {
    u.additional_gids.push_back(static_cast<uint32_t>(AsInt(e, p, 0, UINT32_MAX)));
  });
  if (Find(j, "username") != nullptr) Fail(Join(path, "username"), "is Windows-only");
  return u;
}

Process ParseProcessObject(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Process p;
  p.terminal = GetBool(j, "terminal", path);
  p.args = GetStrings(j, "args", path);
  if (p.args.empty()) Fail(Join(path, "args"), "must name at least the program to run");
  p.env = GetStrings(j, "env", path);
  for (size_t i = 0; i < p.env.size(); ++i) {
    if (p.env[i].find('=') == std::string::npos) {
      Fail(Index(Join(path, "env"), i), "must be KEY=VALUE, got '" + p.env[i] + "'");
    }
  }
  p.cwd = GetString(j, "cwd", path, true);
  RequireAbsolute(p.cwd, Join(path, "cwd"));
  if (const json* u = Find(j, "user")) p.user = ParseUser(*u, Join(path, "user"));
  if (const json* c = Find(j, "capabilities")) {
    std::string cp = Join(path, "capabilities");
    ExpectObject(*c, cp);
    Capabilities caps;
    caps.bounding = ParseCapList(*c, "bounding", cp);
    caps.effective = ParseCapList(*c, "effective", cp);
    caps.inheritable = ParseCapList(*c, "inheritable", cp);
    caps.permitted = ParseCapList(*c, "permitted", cp);
    caps.ambient = ParseCapList(*c, "ambient", cp);
    p.capabilities = std::move(caps);
  }
  ForEach(j, "rlimits", path, [&](const json& e, const std::string& rp) {
    ExpectObject(e, rp);
    Rlimit r;
    r.resource = ParseRlimitType(GetString(e, "type", rp, true), Join(rp, "type"));
    r.soft = GetU64(e, "soft", rp).value_or(0);
    r.hard = GetU64(e, "hard", rp).value_or(0);
    if (r.soft > r.hard) Fail(Join(rp, "soft"), "is above hard");
    p.rlimits.push_back(r);
  });
  p.no_new_privileges = GetBool(j, "noNewPrivileges", path);
  p.oom_score_adj = GetInt<int>(j, "oomScoreAdj", path, -1000, 1000);
  p.apparmor_profile = GetString(j, "apparmorProfile", path);
  p.selinux_label = GetString(j, "selinuxLabel", path);
  return p;
}

Mount ParseMount(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Mount m;
  m.destination = GetString(j, "destination", path, true);
  RequireAbsolute(m.destination, Join(path, "destination"));
  m.type = GetString(j, "type", path);
  m.source = GetString(j, "source", path);
  m.options = GetStrings(j, "options", path);
  bool bind = m.type == "bind" || std::any_of(m.options.begin(), m.options.end(),
                                              [](auto& o) { return o == "bind" || o == "rbind"; });
  if (m.type.empty() && !bind) Fail(Join(path, "type"), "is required unless options say bind");
  if (bind && m.source.empty()) Fail(Join(path, "source"), "is required for a bind mount");
  return m;
}

Hook ParseHook(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Hook h;
  h.path = GetString(j, "path", path, true);
  RequireAbsolute(h.path, Join(path, "path"));
  h.args = GetStrings(j, "args", path);
  h.env = GetStrings(j, "env", path);
  h.timeout_s = GetInt<int>(j, "timeout", path, 1, 3600);
  return h;
}

Hooks ParseHooks(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Hooks h;
  auto list = [&](std::string_view key, std::vector<Hook>& out) {
    ForEach(j, key, path,
            [&](const json& e, const std::string& p) { out.push_back(ParseHook(e, p)); });
  };
  list("prestart", h.prestart);
  list("createRuntime", h.create_runtime);
  list("createContainer", h.create_container);
  list("startContainer", h.start_container);
  list("poststart", h.poststart);
  list("poststop", h.poststop);
  return h;
}

NamespaceType ParseNamespaceType(const std::string& s, const std::string& path) {
  static constexpr std::array<std::pair<std::string_view, NamespaceType>, 7> kTypes = {{
      {"pid", NamespaceType::kPid},
      {"network", NamespaceType::kNetwork},
      {"mount", NamespaceType::kMount},
      {"ipc", NamespaceType::kIpc},
      {"uts", NamespaceType::kUts},
      {"user", NamespaceType::kUser},
      {"cgroup", NamespaceType::kCgroup},
  }};
  for (const auto& [n, t] : kTypes) {
    if (n == s) return t;
  }
  Fail(path, "unknown namespace type '" + s + "' (time namespaces are not supported)");
}

Device ParseDevice(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Device d;
  std::string type = GetString(j, "type", path, true);
  if (type.size() != 1 || std::string_view("cbup").find(type[0]) == std::string_view::npos) {
    Fail(Join(path, "type"), "must be one of c, b, u, p");
  }
  d.type = type[0];
  d.path = GetString(j, "path", path, true);
  RequireAbsolute(d.path, Join(path, "path"));
  d.major = GetInt<int64_t>(j, "major", path, 0, 0xfff).value_or(0);
  d.minor = GetInt<int64_t>(j, "minor", path, 0, 0xfffff).value_or(0);
  d.file_mode = GetInt<uint32_t>(j, "fileMode", path, 0, 07777).value_or(0666);
  d.uid = GetInt<uint32_t>(j, "uid", path, 0, UINT32_MAX).value_or(0);
  d.gid = GetInt<uint32_t>(j, "gid", path, 0, UINT32_MAX).value_or(0);
  return d;
}

DeviceRule ParseDeviceRule(const json& j, const std::string& path) {
  ExpectObject(j, path);
  DeviceRule r;
  const json* allow = Find(j, "allow");
  if (allow == nullptr) Fail(Join(path, "allow"), "is required");
  r.allow = GetBool(j, "allow", path);
  std::string type = GetString(j, "type", path);
  if (!type.empty()) {
    if (type != "a" && type != "b" && type != "c") Fail(Join(path, "type"), "must be a, b or c");
    r.type = type[0];
  }
  r.major = GetInt<int64_t>(j, "major", path, -1, 0xfff).value_or(-1);
  r.minor = GetInt<int64_t>(j, "minor", path, -1, 0xfffff).value_or(-1);
  std::string access = GetString(j, "access", path);
  if (!access.empty()) {
    if (access.find_first_not_of("rwm") != std::string::npos) {
      Fail(Join(path, "access"), "must use only r, w and m");
    }
    r.access = access;
  }
  return r;
}

std::string CheckCpuList(const std::string& s, const std::string& path) {
  if (s.find_first_not_of("0123456789,-") != std::string::npos) {
    Fail(path, "must be a list like 0-2,4, got '" + s + "'");
  }
  return s;
}

Resources ParseResources(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Resources r;
  ForEach(j, "devices", path,
          [&](const json& e, const std::string& p) { r.devices.push_back(ParseDeviceRule(e, p)); });
  if (const json* m = Find(j, "memory")) {
    std::string mp = Join(path, "memory");
    ExpectObject(*m, mp);
    r.memory_limit = GetInt<int64_t>(*m, "limit", mp, -1, INT64_MAX);
    r.memory_reservation = GetInt<int64_t>(*m, "reservation", mp, -1, INT64_MAX);
    r.memory_swap = GetInt<int64_t>(*m, "swap", mp, -1, INT64_MAX);
    r.memory_swappiness = GetInt<uint64_t>(*m, "swappiness", mp, 0, 100);
    r.disable_oom_killer = GetBool(*m, "disableOOMKiller", mp);
    r.memory_kernel = GetInt<int64_t>(*m, "kernel", mp, -1, INT64_MAX);
    r.memory_kernel_tcp = GetInt<int64_t>(*m, "kernelTCP", mp, -1, INT64_MAX);
    if (r.memory_limit && *r.memory_limit > 0 && r.memory_swap && *r.memory_swap > 0 &&
        *r.memory_swap < *r.memory_limit) {
      Fail(Join(mp, "swap"), "is memory+swap and must not be below limit");
    }
  }
  if (const json* c = Find(j, "cpu")) {
    std::string cp = Join(path, "cpu");
    ExpectObject(*c, cp);
    r.cpu_shares = GetU64(*c, "shares", cp);
    r.cpu_quota = GetInt<int64_t>(*c, "quota", cp, -1, INT64_MAX);
    r.cpu_period = GetU64(*c, "period", cp);
    r.cpuset_cpus = CheckCpuList(GetString(*c, "cpus", cp), Join(cp, "cpus"));
    r.cpuset_mems = CheckCpuList(GetString(*c, "mems", cp), Join(cp, "mems"));
  }
  if (const json* p = Find(j, "pids")) {
    std::string pp = Join(path, "pids");
    ExpectObject(*p, pp);
    r.pids_limit = GetInt<int64_t>(*p, "limit", pp, -1, INT64_MAX);
  }
  if (const json* b = Find(j, "blockIO")) {
    std::string bp = Join(path, "blockIO");
    ExpectObject(*b, bp);
    r.blkio_weight = GetInt<uint16_t>(*b, "weight", bp, 10, 1000);
  }
  r.has_network = Find(j, "network") != nullptr;
  if (const json* h = Find(j, "hugepageLimits")) r.has_hugepage_limits = !h->empty();
  r.unified = GetStringMap(j, "unified", path);
  for (const auto& [k, v] : r.unified) {
    if (k.find('/') != std::string::npos || k.find("..") != std::string::npos || k.empty()) {
      Fail(Join(Join(path, "unified"), k), "must be a plain cgroup file name");
    }
  }
  return r;
}

SeccompRule ParseSeccompRule(const json& j, const std::string& path) {
  ExpectObject(j, path);
  SeccompRule r;
  r.names = GetStrings(j, "names", path);
  if (r.names.empty()) Fail(Join(path, "names"), "must name at least one syscall");
  r.action = GetString(j, "action", path, true);
  r.errno_ret = GetInt<uint32_t>(j, "errnoRet", path, 0, 4095);
  ForEach(j, "args", path, [&](const json& e, const std::string& p) {
    ExpectObject(e, p);
    SeccompArg a;
    a.index = GetInt<uint32_t>(e, "index", p, 0, 5).value_or(0);
    a.value = GetU64(e, "value", p).value_or(0);
    a.value_two = GetU64(e, "valueTwo", p).value_or(0);
    a.op = GetString(e, "op", p, true);
    r.args.push_back(a);
  });
  return r;
}

Seccomp ParseSeccomp(const json& j, const std::string& path) {
  ExpectObject(j, path);
  Seccomp s;
  s.default_action = GetString(j, "defaultAction", path, true);
  s.default_errno_ret = GetInt<uint32_t>(j, "defaultErrnoRet", path, 0, 4095);
  s.architectures = GetStrings(j, "architectures", path);
  s.flags = GetStrings(j, "flags", path);
  ForEach(j, "syscalls", path, [&](const json& e, const std::string& p) {
    s.syscalls.push_back(ParseSeccompRule(e, p));
  });
  if (Find(j, "listenerPath") != nullptr) {
    Fail(Join(path, "listenerPath"), "seccomp user notification is not supported");
  }
  return s;
}

void ParseLinux(const json& j, const std::string& path, Spec& spec) {
  ExpectObject(j, path);
  ForEach(j, "namespaces", path, [&](const json& e, const std::string& p) {
    ExpectObject(e, p);
    Namespace ns;
    ns.type = ParseNamespaceType(GetString(e, "type", p, true), Join(p, "type"));
    ns.path = GetString(e, "path", p);
    if (!ns.path.empty()) RequireAbsolute(ns.path, Join(p, "path"));
    if (spec.HasNamespace(ns.type)) Fail(p, "repeats a namespace type");
    spec.namespaces.push_back(ns);
  });
  ForEach(j, "uidMappings", path, [&](const json& e, const std::string& p) {
    spec.uid_mappings.push_back(ParseIdMapping(e, p));
  });
  ForEach(j, "gidMappings", path, [&](const json& e, const std::string& p) {
    spec.gid_mappings.push_back(ParseIdMapping(e, p));
  });
  ForEach(j, "devices", path,
          [&](const json& e, const std::string& p) { spec.devices.push_back(ParseDevice(e, p)); });
  spec.cgroups_path = GetString(j, "cgroupsPath", path);
  if (spec.cgroups_path.find("..") != std::string::npos) {
    Fail(Join(path, "cgroupsPath"), "must not contain '..'");
  }
  if (const json* r = Find(j, "resources"))
    spec.resources = ParseResources(*r, Join(path, "resources"));
  spec.rootfs_propagation = GetString(j, "rootfsPropagation", path);
  spec.mount_label = GetString(j, "mountLabel", path);
  spec.masked_paths = GetStrings(j, "maskedPaths", path);
  spec.readonly_paths = GetStrings(j, "readonlyPaths", path);
  for (const auto& list : {&spec.masked_paths, &spec.readonly_paths}) {
    for (const auto& p : *list) RequireAbsolute(p, Join(path, "maskedPaths/readonlyPaths"));
  }
  spec.sysctl = GetStringMap(j, "sysctl", path);
  for (const auto& [k, v] : spec.sysctl) {
    if (k.find('/') != std::string::npos || k.find("..") != std::string::npos) {
      Fail(Join(Join(path, "sysctl"), k), "must be a dotted sysctl name");
    }
  }
  if (const json* s = Find(j, "seccomp")) spec.seccomp = ParseSeccomp(*s, Join(path, "seccomp"));
  bool has_user = spec.HasNamespace(NamespaceType::kUser);
  if (has_user && spec.FindNamespace(NamespaceType::kUser)->path.empty() &&
      (spec.uid_mappings.empty() || spec.gid_mappings.empty())) {
    Fail(Join(path, "uidMappings"), "a new user namespace needs uid and gid mappings");
  }
}

// nlohmann's parser recurses per nesting level: bound the depth before handing it text,
// so a hostile '[[[[...' cannot exhaust the stack.
void CheckDepth(std::string_view text, std::string_view file) {
  if (JsonNestingDepth(text) > kMaxJsonDepth)
    Fail(std::string(file), "nests deeper than 64 levels");
}

json ParseJsonText(std::string_view text, std::string_view file) {
  if (text.size() > kMaxSpecBytes) Fail(std::string(file), "is larger than 4 MiB");
  CheckDepth(text, file);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    size_t line = 1 + std::count(text.begin(), text.begin() + std::min(e.byte, text.size()), '\n');
    Fail(std::string(file) + ":" + std::to_string(line), std::string("invalid JSON: ") + e.what());
  }
}

Spec ParseSpecJson(const json& j) {
  ExpectObject(j, "");
  Spec spec;
  spec.oci_version = GetString(j, "ociVersion", "", true);
  if (spec.oci_version.rfind("1.", 0) != 0) {
    Fail("ociVersion", "must be 1.x, got '" + spec.oci_version + "'");
  }
  const json* root = Find(j, "root");
  if (root == nullptr) Fail("root", "is required");
  ExpectObject(*root, "root");
  spec.root_path = GetString(*root, "path", "root", true);
  spec.root_readonly = GetBool(*root, "readonly", "root");
  if (const json* p = Find(j, "process")) spec.process = ParseProcessObject(*p, "process");
  spec.hostname = GetString(j, "hostname", "");
  spec.domainname = GetString(j, "domainname", "");
  ForEach(j, "mounts", "",
          [&](const json& e, const std::string& p) { spec.mounts.push_back(ParseMount(e, p)); });
  if (const json* h = Find(j, "hooks")) spec.hooks = ParseHooks(*h, "hooks");
  spec.annotations = GetStringMap(j, "annotations", "");
  if (const json* l = Find(j, "linux")) ParseLinux(*l, "linux", spec);
  if (!spec.hostname.empty() && !spec.HasNamespace(NamespaceType::kUts)) {
    Fail("hostname", "needs a uts namespace in linux.namespaces");
  }
  return spec;
}

std::string Where(std::string_view file, const std::string& path) {
  if (path.empty()) return std::string(file);
  if (path.rfind(std::string(file), 0) == 0) return path;
  return std::string(file) + ": " + path;
}

}  // namespace

Result<Spec> ParseSpec(std::string_view json_text, std::string_view file_name) {
  try {
    return ParseSpecJson(ParseJsonText(json_text, file_name));
  } catch (const SpecError& e) {
    return Error(ErrorCode::kInvalidArgument, Where(file_name, e.path) + ": " + e.message);
  } catch (const json::exception& e) {
    return Error(ErrorCode::kInvalidArgument, std::string(file_name) + ": " + e.what());
  }
}

Result<Resources> ParseResourcesJson(std::string_view json_text, std::string_view file_name) {
  try {
    return ParseResources(ParseJsonText(json_text, file_name), "");
  } catch (const SpecError& e) {
    return Error(ErrorCode::kInvalidArgument, Where(file_name, e.path) + ": " + e.message);
  } catch (const json::exception& e) {
    return Error(ErrorCode::kInvalidArgument, std::string(file_name) + ": " + e.what());
  }
}

Result<Process> ParseProcess(std::string_view json_text, std::string_view file_name) {
  try {
    return ParseProcessObject(ParseJsonText(json_text, file_name), "");
  } catch (const SpecError& e) {
    return Error(ErrorCode::kInvalidArgument, Where(file_name, e.path) + ": " + e.message);
  } catch (const json::exception& e) {
    return Error(ErrorCode::kInvalidArgument, std::string(file_name) + ": " + e.what());
  }
}

}  // namespace storevisor::runtime
