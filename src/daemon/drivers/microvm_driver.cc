#include "daemon/drivers/microvm_driver.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>

#include "common/child_process.h"
#include "common/files.h"

namespace storevisor::daemon {

namespace {

std::string TapName(const std::string& name, size_t index) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "svt%08x%u", h, static_cast<unsigned>(index % 10));
  return buf;
}

Status RunOk(const std::vector<std::string>& argv) {
  SV_ASSIGN_OR_RETURN(CommandOutput out, RunCommand(argv, std::chrono::seconds(20)));
  if (!out.status.success()) {
    return Error(ErrorCode::kIo, argv[0] + " " + argv[1] + ": " + out.err.substr(0, 400));
  }
  return Ok();
}

bool LinkExists(const std::string& name) {
  struct stat st {};
  return ::stat(("/sys/class/net/" + name).c_str(), &st) == 0;
}

}  // namespace

nlohmann::json MakeVmConfig(const Workload& w, const std::string& console_log,
                            const std::vector<std::string>& taps) {
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : w.disks) disks.push_back({{"path", d.path}, {"readonly", d.read_only}});
  nlohmann::json nets = nlohmann::json::array();
  for (const auto& t : taps) nets.push_back({{"tap", t}});
  nlohmann::json j = {
      {"name", w.name},
      {"kernel", w.kernel},
      {"cpus", std::max(1, static_cast<int>(std::ceil(w.cpus)))},
      {"memory_mib", std::max<uint64_t>(128, w.memory_bytes >> 20)},
      {"disks", disks},
      {"nets", nets},
      {"serial", "file:" + console_log},
      {"mem_merge", w.ksm},
  };
  if (!w.initrd.empty()) j["initrd"] = w.initrd;
  if (!w.cmdline.empty()) j["cmdline"] = w.cmdline;
  return j;
}

std::string MicroVmDriver::LogPath(const std::string& name) const {
  return Dir(name) + "/console.log";
}

Result<InstanceInfo> MicroVmDriver::Create(const Workload& w,
                                           const std::vector<NetAttachment>& nets) {
  SV_TRY(Remove(w.name, "", 2000));
  const std::string dir = Dir(w.name);
  SV_TRY(MakeDirs(dir + "/run"));
  std::vector<std::string> taps;
  for (size_t i = 0; i < nets.size(); ++i) {
    const std::string tap = TapName(w.name, i);
    if (!LinkExists(tap)) SV_TRY(RunOk({"ip", "tuntap", "add", "dev", tap, "mode", "tap"}));
    SV_TRY(RunOk({"ip", "link", "set", tap, "master", nets[i].bridge, "up"}));
    taps.push_back(tap);
  }
  SV_TRY(WriteFileAtomic(dir + "/vm.json", MakeVmConfig(w, LogPath(w.name), taps).dump(2)));
  SV_ASSIGN_OR_RETURN(CommandOutput out,
                      RunCommand({opt_.tool, "run", "--config", dir + "/vm.json", "--detach",
                                  "--state-dir", dir + "/run", "-o", "json"},
                                 std::chrono::seconds(120)));
  if (!out.status.success()) {
    return Error(ErrorCode::kFailedPrecondition,
                 "storevisor-vm run: " + out.status.ToString() + ": " + out.err.substr(0, 800));
  }
  auto j = nlohmann::json::parse(out.out, nullptr, false);
  if (!j.is_object() || !j.contains("pid")) {
    return Error(ErrorCode::kGuestFault,
                 "storevisor-vm run printed no pid: " + out.out.substr(0, 200));
  }
  InstanceInfo info;
  info.running = true;
  info.pid = j.value("pid", int64_t{0});
  info.driver_state = nlohmann::json{
      {"pid", info.pid},
      {"start_ticks", ProcessStartTicks(info.pid)},
      {"accel", j.value("accel", "")},
      {"taps", taps}}.dump();
  return info;
}

Result<InstanceInfo> MicroVmDriver::Inspect(const std::string& /*name*/,
                                            const std::string& driver_state) {
  InstanceInfo info;
  info.driver_state = driver_state;
  auto j = nlohmann::json::parse(driver_state.empty() ? "{}" : driver_state, nullptr, false);
  if (!j.is_object()) return info;
  info.pid = j.value("pid", int64_t{0});
  info.running = ProcessAlive(info.pid, j.value("start_ticks", uint64_t{0}));
  return info;
}

Status MicroVmDriver::Remove(const std::string& name, const std::string& /*driver_state*/,
                             int timeout_ms) {
  const std::string dir = Dir(name);
  struct stat st {};
  if (::stat((dir + "/run").c_str(), &st) == 0) {
    (void)RunCommand({opt_.tool, "stop", "--state-dir", dir + "/run", "--timeout",
                      std::to_string(std::max(1, timeout_ms / 1000))},
                     std::chrono::milliseconds(timeout_ms * 3 + 5000));
  }
  for (size_t i = 0; i < 4; ++i) {
    const std::string tap = TapName(name, i);
    if (LinkExists(tap)) (void)RunCommand({"ip", "link", "delete", tap});
  }
  return Ok();
}

Result<ExecOutput> MicroVmDriver::Exec(const std::string& name, const std::string& /*state*/,
                                       const std::vector<std::string>& argv, int timeout_ms) {
  std::vector<std::string> cmd = {opt_.tool,     "exec",
                                  "--state-dir", Dir(name) + "/run",
                                  "--timeout",   std::to_string(std::max(1, timeout_ms / 1000)),
                                  "--"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  SV_ASSIGN_OR_RETURN(CommandOutput out,
                      RunCommand(cmd, std::chrono::milliseconds(timeout_ms + 2000), 1u << 20));
  ExecOutput r;
  r.exit_code = out.status.exited ? out.status.exit_code : 128 + out.status.term_signal;
  r.out = std::move(out.out);
  r.err = std::move(out.err);
  return r;
}

}  // namespace storevisor::daemon
