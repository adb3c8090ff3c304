// Storevisor's OCI container runtime: the one public header of src/runtime.
//
// A library first (the daemon may link it and start containers in-process), with a thin
// runc-compatible CLI (storevisor-runtime) on top. The flow follows the OCI runtime spec:
// ParseSpec() validates a bundle's config.json into a Spec; Runtime::Create() builds the
// namespaces, cgroups and root filesystem and leaves the container's init blocked before
// execve; Start() lets it run; State()/Kill()/Delete() manage it; Run() does all in one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::runtime {

// ---------------------------------------------------------------------------------------
// The OCI runtime spec (config.json), validated. Field names follow the spec.

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct Mount {
  std::string destination;  // absolute, inside the container
  std::string type;         // "bind", "proc", "tmpfs", ... (empty: bind when options say so)
  std::string source;
  std::vector<std::string> options;
};

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Capability numbers (CAP_*) per set.
struct Capabilities {
  std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
};

struct Process {
  bool terminal = false;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  User user;
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile;  // not implemented: refused when set
  std::string selinux_label;     // not implemented: refused when set
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout_s;
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

enum class NamespaceType { kPid, kNetwork, kMount, kIpc, kUts, kUser, kCgroup };

struct Namespace {
  NamespaceType type = NamespaceType::kPid;
  std::string path;  // empty: create a new one; else join this one
};

struct Device {
  char type = 'c';  // 'c', 'b', 'u', 'p'
  std::string path;
  int64_t major = 0;
  int64_t minor = 0;
  uint32_t file_mode = 0666;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct DeviceRule {
  bool allow = false;
  char type = 'a';     // 'a', 'c', 'b'
  int64_t major = -1;  // -1: any
  int64_t minor = -1;
  std::string access = "rwm";
};

struct Resources {
  std::vector<DeviceRule> devices;
  std::optional<int64_t> memory_limit, memory_reservation, memory_swap;
  // cgroup v1 only (memory.kmem.limit_in_bytes, memory.kmem.tcp.limit_in_bytes): refused on
  // v2 and where the kernel ignores the write (kmem limits, Linux 6.x), never dropped.
  std::optional<int64_t> memory_kernel, memory_kernel_tcp;
  std::optional<uint64_t> memory_swappiness;
  bool disable_oom_killer = false;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> cpu_quota;
  std::optional<uint64_t> cpu_period;
  std::string cpuset_cpus, cpuset_mems;
  std::optional<int64_t> pids_limit;
  std::optional<uint16_t> blkio_weight;
  std::map<std::string, std::string> unified;  // cgroup v2 files, written as given
  // Present in the spec but not implemented (net_cls/net_prio, hugetlb): create and update
  // refuse them rather than pretend (see RefuseUnimplemented in container.cc).
  bool has_network = false;
  bool has_hugepage_limits = false;
};

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // SCMP_CMP_EQ, ...
};

struct SeccompRule {
  std::vector<std::string> names;
  std::string action;
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string default_action;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;
  std::vector<std::string> flags;
  std::vector<SeccompRule> syscalls;
};

struct Spec {
  std::string oci_version;
  std::string root_path;  // as written: relative paths are relative to the bundle
  bool root_readonly = false;
  std::optional<Process> process;
  std::string hostname, domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  // linux
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<Device> devices;
  std::string cgroups_path;
  Resources resources;
  std::string rootfs_propagation;
  std::string mount_label;  // SELinux, not implemented: refused when set
  std::vector<std::string> masked_paths, readonly_paths;
  std::map<std::string, std::string> sysctl;
  std::optional<Seccomp> seccomp;

  bool HasNamespace(NamespaceType t) const;
  const Namespace* FindNamespace(NamespaceType t) const;
};

// Limits on untrusted config: bigger files or lists are refused before any work.
inline constexpr size_t kMaxSpecBytes = 4u << 20;
inline constexpr size_t kMaxJsonDepth = 64;

// Parses and validates config.json text. Errors name the field path and, for syntax
// errors, the line: "config.json:3: process.args[1]: must be a string".
Result<Spec> ParseSpec(std::string_view json_text, std::string_view file_name = "config.json");
// Parses a process.json (for exec --process).
Result<Process> ParseProcess(std::string_view json_text,
                             std::string_view file_name = "process.json");
// runc-compatible `spec` output: a config for a busybox-like rootfs in "rootfs".
// linux.resources as `update --resources FILE` takes it (runc's format).
Result<Resources> ParseResourcesJson(std::string_view json_text,
                                     std::string_view file_name = "resources.json");
nlohmann::json DefaultSpecJson();
// The seccomp profile the daemon applies to workloads that bring none: allow by default,
// refuse (EPERM) syscalls a service never needs and that widen the kernel's attack surface.
nlohmann::json DefaultSeccompProfileJson();
// What `features` prints: the runtime-spec's features document (features.md), listing only
// what this runtime implements.
nlohmann::json FeaturesJson();

// ---------------------------------------------------------------------------------------
// cgroups

enum class CgroupMode { kLegacy, kHybrid, kUnified };
std::string_view CgroupModeName(CgroupMode mode);
// Detected once per call with statfs (no /proc reads): unified (cgroup2 at /sys/fs/cgroup),
// hybrid (v1 controllers plus cgroup2 at /sys/fs/cgroup/unified) or legacy (v1 only).
Result<CgroupMode> DetectCgroupMode(const std::string& mount_root = "/sys/fs/cgroup");

// Every cgroup migration (a write to cgroup.procs, which v1 needs per container) takes the
// kernel-wide cgroup_threadgroup_rwsem for writing, and by default that waits for an RCU
// grace period: milliseconds, the largest single cost of a container start on v1. The
// cgroup2 mount option `favordynmods` (Linux 6.0+) makes the kernel keep the rwsem in its
// slow-reader mode instead, so migrations do not wait, at a small cost to every fork/exit.
// It is kernel-wide (it speeds up every runtime on the host), so it is a host choice:
// storevisord turns it on at start; `storevisor-runtime favordynmods on|off`.
// Whether the cgroup2 mount (mount_root, or mount_root/unified in hybrid) carries it.
Result<bool> CgroupFavorDynmods(const std::string& mount_root = "/sys/fs/cgroup");
// Remounts that cgroup2 mount with or without it, keeping its other options and flags.
// kUnsupported on legacy hosts (no cgroup2 mount) or kernels without the option.
Status SetCgroupFavorDynmods(bool on, const std::string& mount_root = "/sys/fs/cgroup");

struct CgroupStats {
  uint64_t memory_usage = 0;
  uint64_t memory_max_usage = 0;
  uint64_t memory_limit = 0;
  uint64_t oom_kills = 0;
  uint64_t cpu_usage_ns = 0;
  uint64_t pids_current = 0;
};

// v1 <-> v2 value translations (as crun and runc do them).
uint64_t CpuSharesToWeight(uint64_t shares);
uint64_t BlkioWeightToIoWeight(uint64_t weight);

// ---------------------------------------------------------------------------------------
// Containers

// kPaused: running (or created) with its cgroup frozen by Pause (runc's "paused").
enum class ContainerStatus { kCreating, kCreated, kRunning, kStopped, kPaused };
std::string_view StatusName(ContainerStatus s);

struct ExitInfo {
  bool known = false;  // false: nobody recorded how it ended
  int exit_code = 0;   // 128+signal when killed, as a shell reports it
  int signal = 0;
  bool oom_killed = false;
};

struct ContainerState {
  std::string id;
  ContainerStatus status = ContainerStatus::kStopped;
  pid_t pid = 0;
  std::string bundle;
  std::string created;  // RFC 3339
  std::map<std::string, std::string> annotations;
  ExitInfo exit;  // filled for stopped containers when a monitor recorded it
  // The OCI state JSON (runc's shape: ociVersion, id, status, pid, bundle, rootfs, created,
  // annotations), plus "storevisor" with the exit record when known.
  nlohmann::json ToJson() const;
};

struct CreateOptions {
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  int preserve_fds = 0;
  // Fork a tiny per-container monitor (setsid, subreaper) as the parent of the container's
  // init, which records the exit status in the state dir: for callers that have no
  // subreaper of their own. storevisord does not use it (its shim, like podman's conmon,
  // is the subreaper that reaps the init and records the exit).
  bool monitor = false;
  // Apply DefaultSeccompProfileJson() when the spec has no linux.seccomp.
  bool default_seccomp = false;
};

struct ExecOptions {
  Process process;
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  int preserve_fds = 0;
};

class Runtime {
 public:
  // root: the state directory (runc's --root), created on demand.
  explicit Runtime(std::string root = "/run/storevisor-runtime");

  const std::string& root() const { return root_; }

  Status Create(const std::string& id, const CreateOptions& options);
  Status Start(const std::string& id);
  // create + start + wait; returns the container's exit (128+signal if killed) and removes
  // the container. The OOM flag is set when the memory cgroup killed something.
  Result<ExitInfo> Run(const std::string& id, const CreateOptions& options);
  Result<ContainerState> State(const std::string& id) const;
  Result<std::vector<ContainerState>> List() const;
  Status Kill(const std::string& id, int signal, bool all = false);
  Status Delete(const std::string& id, bool force = false);
  // Runs a process in the container's namespaces and cgroup; waits unless detach.
  Result<ExitInfo> Exec(const std::string& id, const ExecOptions& options);
  Result<CgroupStats> Stats(const std::string& id) const;
  // Freezes every process of a running or created container (runc's pause) / thaws a
  // paused one: the cgroup v1 freezer, or cgroup.freeze on v2.
  Status Pause(const std::string& id);
  Status Resume(const std::string& id);
  // The container's processes as the host sees them (runc's ps): its cgroup's cgroup.procs.
  Result<std::vector<pid_t>> Pids(const std::string& id) const;
  // Changes a live container's cgroup limits (memory, cpu, cpuset, pids, blkio, unified):
  // only the fields set are written. Device rules are not changed (refused), like runc.
  Status Update(const std::string& id, const Resources& resources);

 private:
  std::string root_;
};

// "KILL", "SIGKILL", "9" -> 9.
Result<int> ParseSignal(std::string_view name);

}  // namespace storevisor::runtime
