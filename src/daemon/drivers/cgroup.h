// Cgroups for processes the daemon does not start through an OCI runtime (QEMU): the
// profile's cpuset, memory limit and CPU quota, on cgroup v1, v2 or hybrid (v1 controllers
// plus a v2 mount that holds none of them), detected at run time. Containers get theirs
// from the runtime through the OCI spec's cgroupsPath; both live under /storevisor/daemon.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::daemon {

enum class CgroupLayout { kNone, kV1, kV2, kHybrid };
std::string_view CgroupLayoutName(CgroupLayout layout);

// Looks at mount_root (normally /sys/fs/cgroup): v2 when it is itself a cgroup2 root
// (cgroup.controllers there), v1 when it holds v1 controller folders (memory, cpuset, cpu),
// hybrid when those sit beside a v2 mount at unified/.
CgroupLayout DetectCgroupLayout(const std::string& mount_root = "/sys/fs/cgroup");

struct CgroupLimits {
  std::string cpuset;         // "0-1"; empty: not pinned
  double cpus = 0;            // CPU quota in CPUs; 0: none
  uint64_t memory_bytes = 0;  // 0: none
};

// One step of making a cgroup: mkdir `dir` (when value is empty and file is empty) or
// write `value` to dir/file.
struct CgroupWrite {
  std::string dir;
  std::string file;
  std::string value;
};

// The folders to make and the files to write, in order, for the cgroup `path`
// ("/storevisor/daemon/pos") with these limits; pure, unit-tested. Limits go to the
// controllers that own them (v1: cpuset, memory, cpu; v2: one folder, with the parents'
// cgroup.subtree_control enabling them). `parent_cpus`/`parent_mems` seed the v1 cpuset
// parents, which start empty.
std::vector<CgroupWrite> PlanCgroup(CgroupLayout layout, const std::string& mount_root,
                                    const std::string& path, const CgroupLimits& limits,
                                    const std::string& parent_cpus, const std::string& parent_mems);

// The cgroup every workload of the daemon gets, whatever its kind; the runtime's own default
// (/storevisor-<id>) is outside /storevisor, so the two never collide.
inline constexpr std::string_view kDaemonCgroupParent = "/storevisor/daemon";
inline std::string WorkloadCgroupPath(const std::string& name) {
  return std::string(kDaemonCgroupParent) + "/" + name;
}

// Makes the cgroup and moves pid (all its threads) into it. v1 memory charges move along.
Status PlaceInCgroup(const std::string& path, const CgroupLimits& limits, int64_t pid,
                     const std::string& mount_root = "/sys/fs/cgroup");

// A QEMU process (microVM or legacy VM) into WorkloadCgroupPath(name): the profile's cpuset,
// a CPU quota of `cpus`, and a memory limit of the guest's RAM plus what QEMU itself needs
// (device model, VGA memory, TCG translation cache: 206-251 MiB RSS measured for a 256 MiB
// guest). Returns the cgroup's path, or "" when the host has no cgroups to limit with.
Result<std::string> PlaceQemuInWorkloadCgroup(const std::string& name, const std::string& cpuset,
                                              double cpus, uint64_t guest_memory_bytes,
                                              int64_t pid);

// The cgroup's folders that exist for path, one per controller hierarchy ("" when none).
std::vector<std::string> CgroupDirs(const std::string& path,
                                    const std::string& mount_root = "/sys/fs/cgroup");

// Every hierarchy's mount under mount_root (v2: mount_root itself; v1 and hybrid: each
// controller folder, unified/ included).
std::vector<std::string> CgroupHierarchies(const std::string& mount_root = "/sys/fs/cgroup");

// What a cgroup has used: CPU time of all its processes (v1 cpuacct.usage, v2 cpu.stat
// usage_usec) and the memory charged to it (v1 memory.usage_in_bytes, v2 memory.current).
struct ResourceUsage {
  uint64_t cpu_ns = 0;
  uint64_t memory_bytes = 0;
};
// kNotFound when the cgroup (or its accounting files) does not exist; hybrid reads the v1
// controllers, like the writers.
Result<ResourceUsage> ReadCgroupUsage(const std::string& path,
                                      const std::string& mount_root = "/sys/fs/cgroup");

// One process alone (process_info.cc): utime+stime+cutime+cstime of /proc/pid/stat and its
// VmRSS; for a workload that has no cgroup of its own. kNotFound when it is gone.
Result<ResourceUsage> ReadProcessUsage(int64_t pid);

// Removes the cgroup's folders (they must be empty of processes); idempotent.
void RemoveCgroup(const std::string& path, const std::string& mount_root = "/sys/fs/cgroup");

// rmdir of path ("/storevisor/daemon") and then of each parent, deepest first, in every
// hierarchy, stopping at the first that is not empty. Only for when the daemon has no
// workload left: a concurrent create could lose its freshly made parent.
void PruneEmptyCgroups(const std::string& path, const std::string& mount_root = "/sys/fs/cgroup");

}  // namespace storevisor::daemon
