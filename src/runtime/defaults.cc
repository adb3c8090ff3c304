// Built-in JSON documents (runc-style default spec, default seccomp profile) and small
// value helpers of the public API.
#include <csignal>
#include <cstring>

#include "runtime/runtime.h"

namespace storevisor::runtime {

using json = nlohmann::json;

nlohmann::json DefaultSpecJson() {
  json caps = json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", true},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env",
         {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "storevisor"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
        {{"destination", "/dev/shm"},
         {"type", "tmpfs"},
         {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"},
         {"type", "mqueue"},
         {"source", "mqueue"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/sys"},
         {"type", "sysfs"},
         {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}},
        {{"destination", "/sys/fs/cgroup"},
         {"type", "cgroup"},
         {"source", "cgroup"},
         {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}}}},
      {"linux",
       {{"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
        {"namespaces",
         {{{"type", "pid"}},
          {{"type", "network"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}},
          {{"type", "cgroup"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
}

nlohmann::json DefaultSeccompProfileJson() {
  // A deny list rather than Docker's long allow list: services built for the store run
  // whatever their language runtime needs, and what is refused here is exactly what no
  // service needs (module loading, kexec, reboot, clock setting, keyrings, BPF, perf,
  // mount API, namespace creation, tracing other processes, old ABIs).
  json denied = json::array({"acct",
                             "add_key",
                             "bpf",
                             "clock_adjtime",
                             "clock_settime",
                             "create_module",
                             "delete_module",
                             "finit_module",
                             "fsconfig",
                             "fsmount",
                             "fsopen",
                             "fspick",
                             "get_kernel_syms",
                             "init_module",
                             "ioperm",
                             "iopl",
                             "kcmp",
                             "kexec_file_load",
                             "kexec_load",
                             "keyctl",
                             "lookup_dcookie",
                             "mount",
                             "move_mount",
                             "nfsservctl",
                             "open_by_handle_at",
                             "open_tree",
                             "perf_event_open",
                             "pivot_root",
                             "process_vm_readv",
                             "process_vm_writev",
                             "ptrace",
                             "query_module",
                             "quotactl",
                             "reboot",
                             "request_key",
                             "setns",
                             "settimeofday",
                             "stime",
                             "swapoff",
                             "swapon",
                             "sysfs",
                             "syslog",
                             "umount",
                             "umount2",
                             "unshare",
                             "uselib",
                             "userfaultfd",
                             "ustat",
                             "vm86",
                             "vm86old",
                             "adjtimex",
                             "_sysctl"});
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
          {"syscalls", {{{"names", denied}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
}

std::string_view CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kLegacy:
      return "legacy";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kUnified:
      return "unified";
  }
  return "?";
}

std::string_view StatusName(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::kCreating:
      return "creating";
    case ContainerStatus::kCreated:
      return "created";
    case ContainerStatus::kRunning:
      return "running";
    case ContainerStatus::kStopped:
      return "stopped";
    case ContainerStatus::kPaused:
      return "paused";
  }
  return "?";
}

nlohmann::json ContainerState::ToJson() const {
  json j = {{"ociVersion", "1.0.2"},
            {"id", id},
            {"status", StatusName(status)},
            {"pid", status == ContainerStatus::kStopped ? 0 : pid},
            {"bundle", bundle},
            {"rootfs", bundle + "/rootfs"},
            {"created", created},
            {"owner", ""}};
  j["annotations"] = annotations;
  if (exit.known) {
    j["storevisor"] = {
        {"exitCode", exit.exit_code}, {"signal", exit.signal}, {"oomKilled", exit.oom_killed}};
  }
  return j;
}

Result<int> ParseSignal(std::string_view name) {
  if (name.empty()) return Error(ErrorCode::kInvalidArgument, "empty signal name");
  if (name.find_first_not_of("0123456789") == std::string_view::npos) {
    if (name.size() > 3) return Error(ErrorCode::kInvalidArgument, "invalid signal number");
    int n = std::stoi(std::string(name));
    if (n < 1 || n > SIGRTMAX) {
      return Error(ErrorCode::kInvalidArgument, "signal " + std::string(name) + " out of range");
    }
    return n;
  }
  std::string_view bare = name.substr(0, 3) == "SIG" ? name.substr(3) : name;
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = ::sigabbrev_np(s);
    if (abbrev != nullptr && bare == abbrev) return s;
  }
  return Error(ErrorCode::kInvalidArgument, "unknown signal '" + std::string(name) + "'");
}

uint64_t CpuSharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t BlkioWeightToIoWeight(uint64_t weight) {
  if (weight == 0) return 0;
  if (weight < 10) weight = 10;
  if (weight > 1000) weight = 1000;
  return 1 + ((weight - 10) * 9999) / 990;
}

}  // namespace storevisor::runtime
