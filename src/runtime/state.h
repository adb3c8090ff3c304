// The per-container record under <root>/<id>/: state.json (written atomically: a crash
// leaves the old or the new record), exec.fifo while created, exit.json once a monitor
// saw the init end. Liveness is checked against the init's start time, so a recycled pid
// is never mistaken for the container.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace storevisor::runtime {

struct StateRecord {
  std::string id;
  std::string bundle;
  std::string created;
  pid_t pid = 0;
  uint64_t pid_start = 0;  // /proc/<pid>/stat field 22
  pid_t creator = 0;       // the runtime process while status is "creating"
  bool creating = true;
  bool monitor = false;
  CgroupMode cgroup_mode = CgroupMode::kLegacy;
  std::string cgroup_rel;
  std::vector<std::string> cgroup_dirs;
  std::map<std::string, std::string> annotations;
  nlohmann::json poststart = nlohmann::json::array();  // hooks, as in config.json
  nlohmann::json poststop = nlohmann::json::array();
};

std::string ContainerDir(const std::string& root, const std::string& id);
Status ValidateId(const std::string& id);
Status WriteState(const std::string& root, const StateRecord& r);
Result<StateRecord> ReadState(const std::string& root, const std::string& id);
// Start time of a live, non-zombie process; 0 if it is gone or a zombie.
uint64_t ProcessStartTime(pid_t pid);
ContainerStatus ComputeStatus(const std::string& root, const StateRecord& r);
ExitInfo ReadExit(const std::string& root, const std::string& id);
Status WriteExit(const std::string& root, const std::string& id, const ExitInfo& e);
std::string Rfc3339Now();
// Write-and-rename without fsync: the record must survive a crash of this process (readers
// see old or new), not a power cut, after which no container is left to describe.
Status WriteFast(const std::string& path, std::string_view data);

}  // namespace storevisor::runtime
