// Helpers the drivers share: liveness of processes this daemon did not start (or started
// before a restart), and the cap of the logs QEMU writes itself.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/drivers/cgroup.h"
#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

namespace {

// The fields after "(comm)" of /proc/pid/stat; comm may contain spaces and parentheses.
std::string StatTail(int64_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat) return "";
  size_t close = stat->rfind(')');
  return close == std::string::npos ? "" : stat->substr(close + 2);
}

}  // namespace

Result<ResourceUsage> ReadProcessUsage(int64_t pid) {
  const std::string tail = pid > 0 ? StatTail(pid) : "";
  auto status = ReadFile("/proc/" + std::to_string(pid) + "/status", 16384);
  if (tail.empty() || !status) {
    return Error(ErrorCode::kNotFound, "no process " + std::to_string(pid));
  }
  // tail starts at field 3 (state): utime(14) stime(15) cutime(16) cstime(17).
  uint64_t ticks = 0;
  size_t pos = 0;
  for (int field = 3; field <= 17 && pos != std::string::npos; ++field) {
    if (field >= 14) ticks += std::strtoull(tail.c_str() + pos, nullptr, 10);
    pos = tail.find(' ', pos);
    if (pos != std::string::npos) ++pos;
  }
  ResourceUsage u;
  const uint64_t hz = static_cast<uint64_t>(std::max(1L, ::sysconf(_SC_CLK_TCK)));
  u.cpu_ns = ticks * (1000000000ULL / hz);
  const size_t rss = status->find("VmRSS:");
  if (rss != std::string::npos) {
    u.memory_bytes = std::strtoull(status->c_str() + rss + 6, nullptr, 10) * 1024;
  }
  return u;
}

uint64_t ProcessStartTicks(int64_t pid) {
  if (pid <= 0) return 0;
  std::string tail = StatTail(pid);
  // tail starts at field 3 (state); starttime is field 22.
  size_t pos = 0;
  for (int field = 3; field < 22 && pos != std::string::npos; ++field) {
    pos = tail.find(' ', pos);
    if (pos != std::string::npos) ++pos;
  }
  if (pos == std::string::npos) return 0;
  return std::strtoull(tail.c_str() + pos, nullptr, 10);
}

bool ProcessAlive(int64_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  std::string tail = StatTail(pid);
  if (tail.empty() || tail[0] == 'Z' || tail[0] == 'X') return false;
  return start_ticks == 0 || ProcessStartTicks(pid) == start_ticks;
}

InstanceInfo InstanceFromPidState(const std::string& driver_state) {
  InstanceInfo info;
  info.driver_state = driver_state;
  auto j = nlohmann::json::parse(driver_state.empty() ? "{}" : driver_state, nullptr, false);
  // Checked types: json::value() throws on a mismatch, and a corrupt record must not.
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) return info;
  info.pid = j["pid"].get<int64_t>();
  uint64_t ticks = 0;
  if (j.contains("start_ticks") && j["start_ticks"].is_number_unsigned()) {
    ticks = j["start_ticks"].get<uint64_t>();
  }
  info.running = ProcessAlive(info.pid, ticks);
  return info;
}

namespace {

// pid and start ticks under the given keys of a driver's state (0 when absent or mistyped).
WatchedPid PidAt(const nlohmann::json& j, const char* pid_key, const char* ticks_key,
                 const char* what) {
  WatchedPid p;
  p.what = what;
  if (!j.is_object()) return p;
  auto pid = j.find(pid_key);
  if (pid != j.end() && pid->is_number_integer()) p.pid = pid->get<int64_t>();
  auto ticks = j.find(ticks_key);
  if (ticks != j.end() && ticks->is_number_unsigned()) p.start_ticks = ticks->get<uint64_t>();
  return p;
}

}  // namespace

std::vector<WatchedPid> WatchPidsFromState(const std::string& driver_state, const char* shim_key) {
  auto j = nlohmann::json::parse(driver_state.empty() ? "{}" : driver_state, nullptr, false);
  std::vector<WatchedPid> out;
  WatchedPid main = PidAt(j, "pid", "start_ticks", "process");
  if (main.pid > 0) out.push_back(main);
  if (shim_key != nullptr) {
    WatchedPid shim = PidAt(j, shim_key, "shim_start_ticks", "shim");
    if (shim.pid > 0) out.push_back(shim);
  }
  return out;
}

std::vector<WatchedPid> Driver::WatchPids(const std::string& driver_state) const {
  return WatchPidsFromState(driver_state, nullptr);
}

Status RotateCopyTruncate(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) <= max_bytes) {
    return Ok();
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + path);
  // Only the newest max_bytes go to .1: the cap holds also after the log grew unrotated
  // while the daemon was down. QEMU may append meanwhile, hence room for twice that.
  if (::lseek(fd.get(), st.st_size - static_cast<off_t>(max_bytes), SEEK_SET) < 0) {
    return ErrnoError("lseek " + path);
  }
  SV_ASSIGN_OR_RETURN(std::string text, ReadAll(fd.get(), max_bytes * 2));
  SV_TRY(WriteFileAtomic(path + ".1", text));
  if (::truncate(path.c_str(), 0) != 0) return ErrnoError("truncate " + path);
  return Ok();
}

}  // namespace storevisor::daemon
