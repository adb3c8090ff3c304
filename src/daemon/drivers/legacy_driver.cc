#include "daemon/drivers/legacy_driver.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "daemon/drivers/cgroup.h"
#include "legacy/legacy.h"

namespace storevisor::daemon {

namespace {

constexpr std::chrono::seconds kStartTimeout{180};

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// "disks[0].path: ..." from the engine's Validate -> the profile's own field names.
std::string ProfileField(const std::string& engine_path) {
  static constexpr std::pair<const char*, const char*> kRenames[] = {
      {"firmware_code", "firmwareCode"},
      {"firmware_vars", "firmwareVars"},
      {"memory_mib", "memory"},
      {"nics", "networks"}};
  for (const auto& [from, to] : kRenames) {
    const std::string f(from);
    if (engine_path.rfind(f, 0) == 0) return to + engine_path.substr(f.size());
  }
  return engine_path;
}

}  // namespace

struct LegacyVmDriver::Listener {
  std::atomic<bool> stop{false};
  std::thread thread;
};

std::string LegacyTapName(const std::string& name, size_t index) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "svl%08x%u", h, static_cast<unsigned>(index % 10));
  return buf;
}

nlohmann::json MakeLegacyConfig(const Workload& w, const std::vector<NetAttachment>& nets,
                                const std::vector<std::string>& taps) {
  const LegacySpec& s = w.legacy;
  const bool emulated = s.devices == "emulated";
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : w.disks) {
    disks.push_back({{"path", d.path},
                     {"format", d.format},
                     {"bus", emulated ? "ide" : "virtio"},
                     {"read_only", d.read_only},
                     {"overlay", d.overlay}});
  }
  nlohmann::json nics = nlohmann::json::array();
  for (size_t i = 0; i < nets.size() && i < taps.size(); ++i) {
    nics.push_back(
        {{"model", emulated ? "e1000" : "virtio"}, {"tap", taps[i]}, {"bridge", nets[i].bridge}});
  }
  nlohmann::json vnc = {{"listen", s.vnc_listen}};
  if (s.vnc_listen == "loopback") vnc["display"] = s.vnc_display;
  if (!s.vnc_password.empty()) vnc["password"] = s.vnc_password;
  nlohmann::json usb = nlohmann::json::array();
  for (const auto& id : s.usb) usb.push_back({{"id", id}});
  nlohmann::json j = {
      {"name", w.name},
      {"machine", s.machine},
      {"firmware", s.firmware},
      {"cpus", std::max(1, static_cast<int>(std::ceil(w.cpus)))},
      {"memory_mib", std::max<uint64_t>(128, w.memory_bytes >> 20)},
      {"disks", disks},
      {"nics", nics},
      {"vga", s.vga},
      {"vnc", vnc},
      {"tpm", s.tpm},
      {"usb", usb},
  };
  if (!s.firmware_code.empty()) j["firmware_code"] = s.firmware_code;
  if (!s.firmware_vars.empty()) j["firmware_vars"] = s.firmware_vars;
  return j;
}

Status CheckLegacyWorkloads(const Profile& profile) {
  const legacy::HostLimits host = legacy::HostLimitsNow();
  for (size_t i = 0; i < profile.workloads.size(); ++i) {
    const Workload& w = profile.workloads[i];
    if (w.kind != WorkloadKind::kLegacyVm) continue;
    // Networks are left out: their bridges are made by the reconciler, after apply.
    const std::string where = profile.file + ":" + std::to_string(w.line) + ": spec.workloads[" +
                              std::to_string(i) + "].";
    auto config = legacy::ParseConfig(MakeLegacyConfig(w, {}, {}).dump(), "");
    Status st = config ? legacy::Validate(*config, host) : Status(std::move(config).error());
    if (st) continue;
    std::string msg = st.error().message();
    if (msg.rfind(": ", 0) == 0) msg = msg.substr(2);  // ParseConfig's empty origin
    const size_t colon = msg.find(": ");
    const std::string field = colon == std::string::npos ? "" : msg.substr(0, colon);
    return Error(
        ErrorCode::kInvalidArgument,
        where + ProfileField(field) + (colon == std::string::npos ? msg : msg.substr(colon)));
  }
  return Ok();
}

LegacyVmDriver::LegacyVmDriver(LegacyDriverOptions options) : opt_(std::move(options)) {}

LegacyVmDriver::~LegacyVmDriver() {
  std::map<std::string, std::unique_ptr<Listener>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(listeners_);
  }
  for (auto& [name, l] : all) {
    l->stop = true;
    if (l->thread.joinable()) l->thread.join();
  }
}

std::string LegacyVmDriver::LogPath(const std::string& name) const {
  return RunDir(name) + "/serial.log";
}

// One thread per running VM on its event monitor (qmp-events.sock): QMP events become
// daemon events until QEMU ends, the VM is removed or the daemon stops.
void LegacyVmDriver::StartListener(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& slot = listeners_[name];
  if (slot && !slot->stop) return;
  if (slot && slot->thread.joinable()) slot->thread.join();
  slot = std::make_unique<Listener>();
  Listener* l = slot.get();
  const std::string dir = RunDir(name);
  l->thread = std::thread([this, l, name, dir] {
    auto vm = legacy::LegacyVm::Attach(dir);
    if (!vm || !vm->SubscribeEvents()) {
      l->stop = true;
      return;
    }
    while (!l->stop) {
      auto event = vm->NextEvent(std::chrono::milliseconds(300));
      if (!event) break;  // the monitor closed: QEMU ended
      if (!*event || !opt_.on_event) continue;
      std::string type = "qmp-" + (*event)->name;
      for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string data = (*event)->data_json;
      opt_.on_event(name, type,
                    name + ": QMP " + (*event)->name + (data == "null" ? "" : " " + data));
    }
    l->stop = true;
  });
}

void LegacyVmDriver::StopListener(const std::string& name) {
  std::unique_ptr<Listener> l;
  {
    std::lock_guard lock(mu_);
    auto it = listeners_.find(name);
    if (it == listeners_.end()) return;
    l = std::move(it->second);
    listeners_.erase(it);
  }
  l->stop = true;
  if (l->thread.joinable()) l->thread.join();
}

Result<InstanceInfo> LegacyVmDriver::Create(const Workload& w,
                                            const std::vector<NetAttachment>& nets) {
  SV_TRY(Remove(w.name, "", 2000));
  const std::string dir = Dir(w.name);
  SV_TRY(MakeDirs(RunDir(w.name), 0700));
  std::vector<std::string> taps;
  for (size_t i = 0; i < nets.size(); ++i) taps.push_back(LegacyTapName(w.name, i));
  const nlohmann::json config = MakeLegacyConfig(w, nets, taps);
  // Overlays are the VM's own writes and survive restarts, but not a change of its disks:
  // an overlay over another base would show a corrupt disk.
  const std::string disks_key = config["disks"].dump();
  if (ReadFile(dir + "/disks.key", 1 << 16).value_or("") != disks_key) {
    for (size_t i = 0; i < 16; ++i) {
      ::unlink((RunDir(w.name) + "/disk" + std::to_string(i) + ".qcow2").c_str());
    }
    SV_TRY(WriteFileAtomic(dir + "/disks.key", disks_key, 0600));
  }
  // 0600: it holds the VNC password.
  SV_TRY(WriteFileAtomic(dir + "/vm.json", config.dump(2), 0600));
  SV_ASSIGN_OR_RETURN(CommandOutput out,
                      RunCommand({opt_.tool, "run", "--config", dir + "/vm.json", "--detach",
                                  "--state-dir", RunDir(w.name), "-o", "json"},
                                 kStartTimeout));
  if (!out.status.success()) {
    return Error(ErrorCode::kFailedPrecondition,
                 "storevisor-legacy run: " + out.status.ToString() + ": " + out.err.substr(0, 800));
  }
  auto j = nlohmann::json::parse(out.out, nullptr, false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) {
    return Error(ErrorCode::kGuestFault,
                 "storevisor-legacy run printed no pid: " + out.out.substr(0, 200));
  }
  InstanceInfo info;
  info.running = true;
  info.pid = j["pid"].get<int64_t>();
  // QEMU into the workload's cgroup, as for microVMs: the profile's cpuset pins the old POS
  // to its cores, and the memory limit keeps a runaway guest from taking the box.
  auto cgroup = PlaceQemuInWorkloadCgroup(w.name, w.cpuset, w.cpus, w.memory_bytes, info.pid);
  if (!cgroup) {
    (void)Remove(w.name, "", 2000);
    return std::move(cgroup).error().Context("cgroup of " + w.name);
  }
  // The engine's answer is read with checked types: a field of another type is left empty.
  auto text = [&j](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  info.driver_state = nlohmann::json{
      {"pid", info.pid},
      {"start_ticks", ProcessStartTicks(info.pid)},
      {"accel", text("accel")},
      {"vnc", text("vnc")},
      {"cgroup", *cgroup}}.dump();
  StartListener(w.name);
  return info;
}

Result<InstanceInfo> LegacyVmDriver::Inspect(const std::string& name,
                                             const std::string& driver_state) {
  Maintain(name);
  InstanceInfo info = InstanceFromPidState(driver_state);
  // A re-adopted VM (after a daemon restart) gets its event listener back here.
  if (info.running) StartListener(name);
  return info;
}

void LegacyVmDriver::Maintain(const std::string& name) {
  // QEMU writes the serial log and never rotates it: its cap is kept here, as for microVMs.
  (void)RotateCopyTruncate(LogPath(name), kConsoleLogMaxBytes);
}

Status LegacyVmDriver::Remove(const std::string& name, const std::string& /*driver_state*/,
                              int timeout_ms) {
  const std::string run = RunDir(name);
  if (Exists(run)) {
    // ACPI power-down first (a POS OS deserves a clean shutdown), then kill.
    auto out = RunCommand({opt_.tool, "stop", "--state-dir", run, "--timeout",
                           std::to_string(std::max(1, timeout_ms / 1000)), "-o", "json"},
                          std::chrono::milliseconds(timeout_ms * 2 + 10000));
    if (!out) return std::move(out).error().Context("storevisor-legacy stop");
    // 0: powered off; 21: killed after the timeout; 3: nothing ran. All leave it stopped.
    const int code = out->status.exited ? out->status.exit_code : -1;
    if (code != 0 && code != 21 && code != 3) {
      return Error(ErrorCode::kIo, "storevisor-legacy stop: " + out->status.ToString() + ": " +
                                       out->err.substr(0, 400));
    }
  }
  StopListener(name);
  RemoveCgroup(WorkloadCgroupPath(name));
  return Ok();
}

Result<ExecOutput> LegacyVmDriver::Exec(const std::string& name, const std::string& /*state*/,
                                        const std::vector<std::string>& /*argv*/,
                                        int /*timeout_ms*/) {
  return Error(ErrorCode::kUnsupported,
               name +
                   " is a legacy-vm: its old OS has no guest agent to run commands; use a "
                   "screen health check or `storevisor screenshot`");
}

Status LegacyVmDriver::Screenshot(const std::string& name, const std::string& png_path) {
  SV_ASSIGN_OR_RETURN(legacy::LegacyVm vm, legacy::LegacyVm::Attach(RunDir(name)));
  return vm.Screenshot(png_path);
}

Status LegacyVmDriver::CheckScreen(const std::string& name, const HealthCheck& check) {
  SV_ASSIGN_OR_RETURN(legacy::LegacyVm vm, legacy::LegacyVm::Attach(RunDir(name)));
  SV_ASSIGN_OR_RETURN(legacy::ScreenCheck result, vm.CheckScreen(check.screen_text));
  if (result.blank) return Error(ErrorCode::kUnavailable, "the screen is blank");
  if (!result.matched) {
    std::string read = result.text.substr(0, 120);
    for (char& c : read) c = c == '\n' ? ' ' : c;
    return Error(ErrorCode::kUnavailable, "OCR did not read \"" + check.screen_text +
                                              "\" on the screen (read: " + read + ")");
  }
  return Ok();
}

Status LegacyVmDriver::UsbAttach(const std::string& name, const std::string& device_id,
                                 const std::string& usb_id) {
  SV_ASSIGN_OR_RETURN(legacy::LegacyVm vm, legacy::LegacyVm::Attach(RunDir(name)));
  return vm.UsbAttach(device_id, usb_id);
}

Status LegacyVmDriver::UsbDetach(const std::string& name, const std::string& device_id) {
  SV_ASSIGN_OR_RETURN(legacy::LegacyVm vm, legacy::LegacyVm::Attach(RunDir(name)));
  return vm.UsbDetach(device_id);
}

Result<std::string> LegacyVmDriver::DisplaySocket(const std::string& name) {
  SV_ASSIGN_OR_RETURN(legacy::LegacyVm vm, legacy::LegacyVm::Attach(RunDir(name)));
  const std::string& vnc = vm.meta().vnc;
  if (vnc.rfind("unix:", 0) != 0) {
    return Error(ErrorCode::kUnsupported,
                 name +
                     ": the display is served through the daemon only for vnc.listen: unix "
                     "(this VM's VNC is " +
                     (vnc.empty() ? std::string("off") : vnc) + ")");
  }
  return vnc.substr(5);
}

}  // namespace storevisor::daemon
