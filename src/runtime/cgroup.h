// The cgroupfs manager for v1, v2 and the hybrid layout. Like crun, the *mode* (detected
// with statfs) is separate from the manager; hybrid is driven as v1 because its cgroup2
// mount holds no controller a container needs (here only hugetlb).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "runtime/runtime.h"

namespace storevisor::runtime {

class Cgroup {
 public:
  // Makes the cgroup `path` ("/storevisor/ID") in every hierarchy (v1: each controller
  // directory, including name=systemd; v2: one directory with controllers enabled above).
  static Result<Cgroup> Create(CgroupMode mode, const std::string& path,
                               const std::string& mount_root = "/sys/fs/cgroup");
  // Create in two steps: the directories it will have (nothing made yet), so that they can
  // be recorded before anything exists on the host, then Make().
  static Result<Cgroup> Plan(CgroupMode mode, const std::string& path,
                             const std::string& mount_root = "/sys/fs/cgroup");
  Status Make() const;
  // Re-opens a cgroup from the directories recorded in a container's state.
  static Cgroup FromDirs(CgroupMode mode, std::vector<std::string> dirs, std::string rel);
  const std::string& rel() const { return rel_; }

  CgroupMode mode() const { return mode_; }
  // Absolute directories, one per v1 hierarchy (plus one under the cgroup2 mount on
  // hybrid) or a single v2 one.
  const std::vector<std::string>& dirs() const { return dirs_; }

  // warnings (optional) gets what was asked but could not be applied without failing the
  // container (memory.kernel on a kernel that keeps the file but ignores writes).
  Status Apply(const Resources& resources, const std::vector<Device>& devices,
               std::vector<std::string>* warnings = nullptr) const;
  // skip_unified: the process was cloned into the v2 directory already (CLONE_INTO_CGROUP).
  Status AddProcess(pid_t pid, bool skip_unified = false) const;
  // The cgroup2 directory: the only one on v2, the one under the cgroup2 mount on hybrid
  // (where device programs attach), "" on pure v1.
  std::string UnifiedDir() const;
  Result<CgroupStats> Stats() const;
  // How many processes the memory controller OOM-killed (one file read, for exit records).
  uint64_t OomKills() const;
  Result<std::vector<pid_t>> Pids() const;
  // Freezes (pause) or thaws (resume) every process of the cgroup and waits until the
  // kernel reports it done: v1's freezer.state where a freezer hierarchy exists, else
  // cgroup.freeze of the cgroup2 directory (v2, or hybrid without a v1 freezer).
  Status Freeze(bool frozen) const;
  // Whether the cgroup is frozen (false when it has no freezer).
  bool Frozen() const;
  // Signals every process until none is left (or a few rounds passed, for non-fatal signals).
  Status Signal(int sig) const;
  // Removes the cgroup (children first) in every hierarchy, and the parents made for it
  // if they are now empty. Waits briefly for exiting processes to leave.
  Status Destroy() const;
  // The directory of the hierarchy that has `controller` ("memory"), or "".
  std::string DirFor(std::string_view controller) const;

 private:
  Cgroup(CgroupMode mode, std::vector<std::string> dirs, std::string rel)
      : mode_(mode), dirs_(std::move(dirs)), rel_(std::move(rel)) {}
  Status ApplyV1(const Resources& r, const std::vector<Device>& devices,
                 std::vector<std::string>* warnings) const;
  Status ApplyV2(const Resources& r, const std::vector<Device>& devices) const;

  CgroupMode mode_;
  std::vector<std::string> dirs_;
  std::string rel_;  // the path below each hierarchy's root
};

// Writes one cgroup file; the error names the file and the value.
Status WriteCgroupFile(const std::string& file, std::string_view value);

}  // namespace storevisor::runtime
