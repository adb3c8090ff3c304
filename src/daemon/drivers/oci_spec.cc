// config.json for a container workload. The defaults follow `runc spec` (capabilities,
// masked and read-only paths) plus the runtime's default seccomp profile (as Docker and
// podman give every container one); limits come from the profile.
#include <cmath>

#include "daemon/drivers/cgroup.h"
#include "daemon/drivers/container_driver.h"
#include "runtime/runtime.h"

namespace storevisor::daemon {

namespace {

nlohmann::json DefaultMounts() {
  using J = nlohmann::json;
  return J::array({
      J{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      J{{"destination", "/dev"},
        {"type", "tmpfs"},
        {"source", "tmpfs"},
        {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      J{{"destination", "/dev/pts"},
        {"type", "devpts"},
        {"source", "devpts"},
        {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
      J{{"destination", "/dev/shm"},
        {"type", "tmpfs"},
        {"source", "shm"},
        {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      J{{"destination", "/dev/mqueue"},
        {"type", "mqueue"},
        {"source", "mqueue"},
        {"options", {"nosuid", "noexec", "nodev"}}},
      J{{"destination", "/sys"},
        {"type", "sysfs"},
        {"source", "sysfs"},
        {"options", {"nosuid", "noexec", "nodev", "ro"}}},
      J{{"destination", "/tmp"},
        {"type", "tmpfs"},
        {"source", "tmpfs"},
        {"options", {"nosuid", "nodev", "mode=1777", "size=65536k"}}},
      J{{"destination", "/run"},
        {"type", "tmpfs"},
        {"source", "tmpfs"},
        {"options", {"nosuid", "nodev", "mode=755", "size=16384k"}}},
  });
}

nlohmann::json Resources(const Workload& w) {
  nlohmann::json r = nlohmann::json::object();
  if (w.memory_bytes > 0) r["memory"] = {{"limit", w.memory_bytes}};
  nlohmann::json cpu = nlohmann::json::object();
  constexpr int64_t kPeriod = 100000;
  cpu["period"] = kPeriod;
  cpu["quota"] = static_cast<int64_t>(std::llround(w.cpus * kPeriod));
  if (!w.cpuset.empty()) cpu["cpus"] = w.cpuset;
  r["cpu"] = cpu;
  r["pids"] = {{"limit", 1024}};
  return r;
}

}  // namespace

nlohmann::json MakeOciSpec(const Workload& w, const std::string& rootfs,
                           const std::string& netns_path, const std::string& hostname) {
  using J = nlohmann::json;
  J env = J::array({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"});
  for (const auto& [k, v] : w.env) {
    std::string entry = k;
    entry += "=";
    entry += v;
    env.push_back(std::move(entry));
  }
  J caps = J::array({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                     "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"});
  J mounts = DefaultMounts();
  for (const auto& m : w.mounts) {
    if (m.source.empty()) {
      mounts.push_back({{"destination", m.target},
                        {"type", "tmpfs"},
                        {"source", "tmpfs"},
                        {"options", {"nosuid", "nodev", "mode=755", "size=65536k"}}});
    } else {
      J opts = J::array({"rbind", "rprivate"});
      if (m.read_only) opts.push_back("ro");
      mounts.push_back(
          {{"destination", m.target}, {"type", "bind"}, {"source", m.source}, {"options", opts}});
    }
  }
  J net = {{"type", "network"}};
  if (!netns_path.empty()) net["path"] = netns_path;
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", w.command},
        {"env", env},
        {"cwd", w.workdir.empty() ? "/" : w.workdir},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", J::array()}}},
        {"rlimits", J::array({J{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true}}},
      {"root", {{"path", rootfs}, {"readonly", true}}},
      {"hostname", hostname},
      {"mounts", mounts},
      {"linux",
       {{"cgroupsPath", WorkloadCgroupPath(w.name)},
        {"resources", Resources(w)},
        {"namespaces", J::array({J{{"type", "pid"}}, J{{"type", "ipc"}}, J{{"type", "uts"}},
                                 J{{"type", "mount"}}, net})},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
        // In the spec, not a runtime flag: whichever OCI runtime the daemon is set to use
        // (storevisor-runtime, runc) filters the workload's syscalls the same way.
        {"seccomp", runtime::DefaultSeccompProfileJson()}}},
  };
}

}  // namespace storevisor::daemon
