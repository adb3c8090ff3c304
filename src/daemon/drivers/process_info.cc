// Liveness of processes this daemon did not start (or started before a restart).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/files.h"
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

}  // namespace storevisor::daemon
