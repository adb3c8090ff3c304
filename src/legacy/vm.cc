// Running legacy VMs: prepare the state dir, start QEMU daemonized, re-adopt it, and
// control it over QMP (the VM engine's client).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "legacy/legacy.h"
#include "net/net.h"

namespace storevisor::legacy {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

int64_t UnixMillis() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// /proc/PID/stat's state letter; 0 when the process does not exist.
char ProcessState(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat) return 0;
  auto close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return 0;
  return (*stat)[close + 2];
}

// Alive and still the program we started (a recycled pid runs something else).
bool ProcessAliveAs(pid_t pid, std::string_view program) {
  if (pid <= 0) return false;
  char state = ProcessState(pid);
  if (state == 0 || state == 'Z' || state == 'X') return false;
  auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline", 1 << 16);
  return cmdline && cmdline->find(program) != std::string::npos;
}

// Waits for pid to end (zombie counts: init reaps daemonized QEMU, not us).
bool WaitGone(pid_t pid, std::string_view program, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto pidfd = OpenPidFd(pid);
  while (ProcessAliveAs(pid, program)) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (pidfd) {
      // A pidfd polls readable when the process exits; zombies too, so recheck the state.
      pollfd p{pidfd->get(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
      if ((p.revents & POLLIN) != 0) return true;
    } else {
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  return true;
}

Result<pid_t> ReadPidFile(const std::string& path) {
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 64));
  char* end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  if (pid <= 1 || pid > 1 << 30 || end == text.c_str()) {
    return Error(ErrorCode::kGuestFault, path + ": not a pid: \"" + text + "\"");
  }
  return static_cast<pid_t>(pid);
}

json MetaToJson(const VmMeta& m) {
  return json{{"pid", m.pid},
              {"accel", AccelName(m.accel)},
              {"accel_reason", m.accel_reason},
              {"created_taps", m.created_taps},
              {"started_unix_ms", m.started_unix_ms},
              {"vnc", m.vnc}};
}

Result<VmMeta> LoadMeta(const std::string& path) {
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 16));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(ErrorCode::kGuestFault, path + ": not JSON");
  VmMeta m;
  try {
    m.pid = j.at("pid").get<pid_t>();
    m.accel = j.at("accel").get<std::string>() == "kvm" ? Accel::kKvm : Accel::kTcg;
    m.accel_reason = j.at("accel_reason").get<std::string>();
    m.created_taps = j.at("created_taps").get<std::vector<std::string>>();
    m.started_unix_ms = j.at("started_unix_ms").get<int64_t>();
    m.vnc = j.at("vnc").get<std::string>();
  } catch (const json::exception& e) {
    return Error(ErrorCode::kGuestFault, path + ": " + e.what());
  }
  return m;
}

Status CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::skip_existing, ec);
  if (ec) return Error(ErrorCode::kIo, "copy " + from + " to " + to + ": " + ec.message());
  return Ok();
}

Status RunTool(const std::vector<std::string>& argv, const std::string& what) {
  SV_ASSIGN_OR_RETURN(CommandOutput out, RunCommand(argv, std::chrono::seconds(60)));
  if (!out.status.success()) {
    return Error(ErrorCode::kIo,
                 what + ": " + argv[0] + " " + out.status.ToString() + ": " + out.err);
  }
  return Ok();
}

Status PrepareOverlays(const LegacyVmConfig& c, const VmPaths& p) {
  for (size_t i = 0; i < c.disks.size(); ++i) {
    const std::string& overlay = p.disk_overlays[i];
    if (overlay.empty() || ::access(overlay.c_str(), F_OK) == 0) continue;  // kept across runs
    std::string base = std::filesystem::absolute(c.disks[i].path).string();
    const char* fmt = c.disks[i].format == DiskFormat::kQcow2 ? "qcow2" : "raw";
    SV_TRY(RunTool({"qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", base, overlay},
                   "disks[" + std::to_string(i) + "]: creating the overlay"));
  }
  return Ok();
}

Status DeleteTap(const std::string& tap) {
  SV_TRY_CTX(net::DeleteLink(tap), "deleting tap " + tap);
  return Ok();
}

Result<std::vector<std::string>> CreateTaps(const LegacyVmConfig& c) {
  std::vector<std::string> created;
  for (size_t i = 0; i < c.nics.size(); ++i) {
    const auto& n = c.nics[i];
    if (n.bridge.empty()) continue;
    // In-process (src/net): the tap made persistent, on the bridge, up; no `ip` run.
    Status s = net::EnsureTap(n.tap, n.bridge);
    if (s) {
      created.push_back(n.tap);
    } else {
      for (const auto& t : created) (void)DeleteTap(t);
      return std::move(s).error().Context("nics[" + std::to_string(i) + "]: tap " + n.tap + " on " +
                                          n.bridge);
    }
  }
  return created;
}

Status StartSwtpm(const VmPaths& p) {
  SV_TRY(MakeDirs(p.swtpm_dir, 0700));
  ::unlink(p.swtpm_socket.c_str());
  SV_TRY(RunTool({"swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + p.swtpm_dir, "--ctrl",
                  "type=unixio,path=" + p.swtpm_socket, "--pid", "file=" + p.swtpm_pidfile,
                  "--terminate", "--daemon"},
                 "tpm: starting swtpm"));
  for (int i = 0; i < 100 && ::access(p.swtpm_socket.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  return Ok();
}

void StopSwtpm(const VmPaths& p) {
  auto pid = ReadPidFile(p.swtpm_pidfile);
  if (pid && ProcessAliveAs(*pid, "swtpm")) {
    ::kill(*pid, SIGTERM);
    (void)WaitGone(*pid, "swtpm", milliseconds(2000));
  }
  ::unlink(p.swtpm_pidfile.c_str());
  ::unlink(p.swtpm_socket.c_str());
}

// Spawns QEMU; with -daemonize the first process exits once the VM is set up (or with
// QEMU's error), so waiting for it is waiting for "started or refused".
Result<pid_t> SpawnQemu(const std::vector<std::string>& argv, const VmPaths& p) {
  SV_ASSIGN_OR_RETURN(UniqueFd log, OpenFile(p.qemu_log, O_WRONLY | O_CREAT | O_TRUNC, 0600));
  SpawnOptions so;
  so.argv = argv;
  so.stdout_fd = log.get();
  so.stderr_fd = log.get();
  so.new_session = true;
  SV_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(so));
  SV_ASSIGN_OR_RETURN(ExitStatus status, child.Wait(std::chrono::seconds(120)));
  if (!status.success()) {
    std::string message = ReadFile(p.qemu_log, 1 << 16).value_or("");
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return Error(ErrorCode::kFailedPrecondition,
                 "QEMU refused to start (" + status.ToString() + "): " + message);
  }
  return ReadPidFile(p.pidfile);
}

Accel FromEngine(vm::Accel a) { return a == vm::Accel::kKvm ? Accel::kKvm : Accel::kTcg; }

vm::AccelMode ToEngine(AccelChoice c) {
  switch (c) {
    case AccelChoice::kKvm:
      return vm::AccelMode::kKvm;
    case AccelChoice::kTcg:
      return vm::AccelMode::kTcg;
    case AccelChoice::kAuto:
      break;
  }
  return vm::AccelMode::kAuto;
}

std::string VncAddress(const LegacyVmConfig& c, const VmPaths& p) {
  switch (c.vnc.listen) {
    case VncListen::kUnix:
      return "unix:" + p.vnc_socket;
    case VncListen::kLoopback:
      return "127.0.0.1:" + std::to_string(5900 + c.vnc.display);
    case VncListen::kNone:
      break;
  }
  return "";
}

// device_add arguments for a usb-host device.
json UsbHostArgs(const UsbHostConfig& u) {
  json args;
  if (u.vendor_id) {
    args["vendorid"] = *u.vendor_id;
    args["productid"] = *u.product_id;
  } else if (u.address) {
    args["hostbus"] = u.bus.value_or(0);
    args["hostaddr"] = *u.address;
  } else {
    args["hostbus"] = u.bus.value_or(0);
    args["hostport"] = u.port;
  }
  return args;
}

}  // namespace

Result<LegacyVm> LegacyVm::Start(const LegacyVmConfig& config, const std::string& state_dir) {
  SV_TRY(Validate(config, HostLimitsNow()));
  if (state_dir.empty() || state_dir.find(',') != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 "state dir \"" + state_dir + "\": must be set and contain no comma");
  }
  std::string dir = std::filesystem::absolute(state_dir).lexically_normal().string();
  if (auto running = Attach(dir)) {
    return Error(ErrorCode::kAlreadyExists, "a legacy VM already runs in " + dir + " (pid " +
                                                std::to_string(running->pid()) + ")");
  }
  SV_TRY(MakeDirs(dir, 0700));
  SV_TRY(CleanupStateDir(dir));
  LegacyVm vm;
  vm.config_ = config;
  vm.paths_ = PathsFor(dir, config);
  const VmPaths& p = vm.paths_;
  // The config holds the VNC password: readable by root only.
  SV_TRY(WriteFileAtomic(p.config_file, ConfigToJson(config, true), 0600));
  if (config.firmware == Firmware::kOvmf) {
    SV_TRY(CopyFile(
        config.firmware_vars.empty() ? "/usr/share/OVMF/OVMF_VARS_4M.fd" : config.firmware_vars,
        p.ovmf_vars));
  }
  SV_TRY(PrepareOverlays(config, p));
  vm::AccelChoice accel = vm::ChooseAccel(ToEngine(config.accel));
  vm.meta_.accel = FromEngine(accel.accel);
  vm.meta_.accel_reason = accel.reason;
  vm.meta_.vnc = VncAddress(config, p);
  SV_ASSIGN_OR_RETURN(vm.meta_.created_taps, CreateTaps(config));
  // Everything below undoes what was set up when a later step fails.
  auto undo = [&vm]() {
    for (const auto& t : vm.meta_.created_taps) (void)DeleteTap(t);
    StopSwtpm(vm.paths_);
  };
  if (config.tpm) {
    if (Status s = StartSwtpm(p); !s) {
      undo();
      return std::move(s).error();
    }
  }
  auto pid = SpawnQemu(BuildCommandLine(config, p, vm.meta_.accel), p);
  if (!pid) {
    undo();
    return std::move(pid).error().Context("vm " + config.name);
  }
  vm.meta_.pid = *pid;
  vm.meta_.started_unix_ms = UnixMillis();
  // meta.json first: from here on a killed starter leaves a VM that Attach can adopt.
  SV_TRY(WriteFileAtomic(p.meta_file, MetaToJson(vm.meta_).dump(2), 0600));
  if (!config.vnc.password.empty()) {
    auto set = vm.Qmp("set_password", {{"protocol", "vnc"}, {"password", config.vnc.password}});
    if (!set) {
      (void)vm.Stop(milliseconds(0));
      return std::move(set).error().Context("setting the VNC password");
    }
  }
  return vm;
}

Result<LegacyVm> LegacyVm::Attach(const std::string& state_dir) {
  std::string dir = std::filesystem::absolute(state_dir).lexically_normal().string();
  LegacyVm vm;
  auto meta = LoadMeta(dir + "/meta.json");
  if (!meta) {
    if (meta.error().code() == ErrorCode::kNotFound) {
      return Error(ErrorCode::kNotFound, "no legacy VM in " + dir + " (no meta.json)");
    }
    return std::move(meta).error();
  }
  vm.meta_ = *meta;
  if (!ProcessAliveAs(vm.meta_.pid, "qemu-system")) {
    return Error(ErrorCode::kNotFound, "the legacy VM in " + dir + " is not running (pid " +
                                           std::to_string(vm.meta_.pid) + " is gone)");
  }
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/config.json", 1 << 20));
  SV_ASSIGN_OR_RETURN(vm.config_, ParseConfig(text, dir + "/config.json"));
  vm.paths_ = PathsFor(dir, vm.config_);
  return vm;
}

bool LegacyVm::Alive() const { return ProcessAliveAs(meta_.pid, "qemu-system"); }

Result<json> LegacyVm::Qmp(const std::string& command, const json& arguments,
                           milliseconds timeout) {
  // Another short-lived client may hold the monitor: QEMU answers us once it leaves.
  SV_ASSIGN_OR_RETURN(vm::QmpClient client, vm::QmpClient::Connect(paths_.qmp_socket, timeout));
  return client.Execute(command, arguments, timeout);
}

Result<std::string> LegacyVm::QueryStatus() {
  SV_ASSIGN_OR_RETURN(json st, Qmp("query-status"));
  if (!st.is_object() || !st.contains("status") || !st["status"].is_string()) {
    return Error(ErrorCode::kGuestFault, "query-status: unexpected answer " + st.dump());
  }
  return st["status"].get<std::string>();
}

Result<StopResult> LegacyVm::Stop(milliseconds timeout) {
  auto start = Clock::now();
  StopResult r;
  r.was_running = Alive();
  if (r.was_running) {
    // system_powerdown presses the ACPI power button; a guest that handles it powers off
    // and QEMU (run without -no-shutdown) exits.
    bool asked = Qmp("system_powerdown").has_value();
    r.clean = asked && WaitGone(meta_.pid, "qemu-system", timeout);
    if (!r.clean) {
      auto pidfd = OpenPidFd(meta_.pid);
      if (pidfd) {
        (void)::syscall(SYS_pidfd_send_signal, pidfd->get(), SIGKILL, nullptr, 0);
      }
      r.killed = true;
      if (!WaitGone(meta_.pid, "qemu-system", milliseconds(10000))) {
        return Error(ErrorCode::kTimeout,
                     "QEMU pid " + std::to_string(meta_.pid) + " survived SIGKILL for 10 s");
      }
    }
  }
  events_.reset();
  SV_TRY(CleanupStateDir(paths_.state_dir));
  r.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return r;
}

Status LegacyVm::Reset() {
  SV_TRY(Qmp("system_reset"));
  return Ok();
}

Status LegacyVm::Pause() {
  SV_TRY(Qmp("stop"));
  return Ok();
}

Status LegacyVm::Resume() {
  SV_TRY(Qmp("cont"));
  return Ok();
}

Status LegacyVm::Screenshot(const std::string& png_path) {
  if (config_.vga == VgaModel::kNone) {
    return Error(ErrorCode::kFailedPrecondition,
                 "vm " + config_.name + " has no graphics card (\"vga\": \"none\")");
  }
  // QEMU writes the file itself: give it an absolute path.
  std::string path = std::filesystem::absolute(png_path).string();
  SV_TRY_CTX(Qmp("screendump", {{"filename", path}, {"format", "png"}}, milliseconds(30000)),
             "screendump");
  return Ok();
}

Result<Image> LegacyVm::Screen() {
  if (config_.vga == VgaModel::kNone) {
    return Error(ErrorCode::kFailedPrecondition,
                 "vm " + config_.name + " has no graphics card (\"vga\": \"none\")");
  }
  std::string path = paths_.state_dir + "/screen.ppm";
  SV_TRY_CTX(Qmp("screendump", {{"filename", path}}, milliseconds(30000)), "screendump");
  // 16384 x 16384 x 3 is ParsePpm's ceiling; real screens are far smaller.
  auto data = ReadFile(path, 64u << 20);
  ::unlink(path.c_str());
  if (!data) return std::move(data).error();
  return ParsePpm(*data);
}

Result<ScreenCheck> LegacyVm::CheckScreen(const std::string& expect_text) {
  SV_ASSIGN_OR_RETURN(Image image, Screen());
  ScreenCheck check;
  check.blank = IsBlank(image);
  if (expect_text.empty() || check.blank) {
    check.matched = !check.blank && expect_text.empty();
    return check;
  }
  std::string pgm_path = paths_.state_dir + "/screen-ocr.pgm";
  SV_TRY(WriteFileAtomic(pgm_path, PrepareForOcr(image, 2), 0600));
  auto text = RecognizeText(pgm_path);
  ::unlink(pgm_path.c_str());
  if (!text) return std::move(text).error();
  check.text = *text;
  check.matched = TextContains(check.text, expect_text);
  return check;
}

Result<ScreenCheck> LegacyVm::WaitForScreenText(const std::string& text, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  ScreenCheck last;
  while (true) {
    if (!Alive()) return Error(ErrorCode::kUnavailable, "vm " + config_.name + ": QEMU ended");
    auto check = CheckScreen(text);
    if (!check) return std::move(check).error();
    if (check->matched) return *check;
    last = *check;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(milliseconds(250));
  }
  return Error(ErrorCode::kTimeout,
               "vm " + config_.name + ": \"" + text + "\" not on the screen after " +
                   std::to_string(timeout.count()) + " ms (blank: " + (last.blank ? "yes" : "no") +
                   "; OCR read: " + last.text.substr(0, 200) + ")");
}

Status LegacyVm::UsbAttach(const std::string& device_id, const std::string& usb_id) {
  auto parsed = ParseUsbHotplugId(usb_id);
  if (!parsed) return std::move(parsed).error().Context("usb id");
  json args = UsbHostArgs(*parsed);
  args["driver"] = "usb-host";
  args["bus"] = "usb.0";
  args["id"] = device_id;
  if (config_.usb.empty() && config_.vnc.listen == VncListen::kNone) {
    return Error(
        ErrorCode::kFailedPrecondition,
        "vm " + config_.name + " has no USB controller (give it a usb device or a VNC display)");
  }
  SV_TRY_CTX(Qmp("device_add", args), "device_add usb-host " + usb_id);
  return Ok();
}

Status LegacyVm::UsbDetach(const std::string& device_id) {
  SV_TRY_CTX(Qmp("device_del", {{"id", device_id}}), "device_del " + device_id);
  return Ok();
}

Status LegacyVm::SubscribeEvents() {
  if (events_) return Ok();
  SV_ASSIGN_OR_RETURN(vm::QmpClient client,
                      vm::QmpClient::Connect(paths_.qmp_events_socket, milliseconds(10000)));
  events_.emplace(std::move(client));
  return Ok();
}

Result<std::optional<LegacyEvent>> LegacyVm::NextEvent(milliseconds timeout) {
  SV_TRY(SubscribeEvents());
  SV_ASSIGN_OR_RETURN(std::optional<vm::QmpEvent> event, events_->WaitEvent(timeout));
  if (!event) return std::optional<LegacyEvent>();
  return std::optional<LegacyEvent>(LegacyEvent{event->name, event->data.dump()});
}

Status CleanupStateDir(const std::string& state_dir) {
  auto meta = LoadMeta(state_dir + "/meta.json");
  if (meta && ProcessAliveAs(meta->pid, "qemu-system")) {
    return Error(ErrorCode::kConflict, "the legacy VM in " + state_dir + " still runs (pid " +
                                           std::to_string(meta->pid) + ")");
  }
  if (meta) {
    for (const auto& tap : meta->created_taps) {
      if (::access(("/sys/class/net/" + tap).c_str(), F_OK) == 0) (void)DeleteTap(tap);
    }
  }
  LegacyVmConfig none;
  VmPaths p = PathsFor(state_dir, none);
  StopSwtpm(p);
  for (const auto& f : {p.qmp_socket, p.qmp_events_socket, p.vnc_socket, p.pidfile, p.meta_file}) {
    ::unlink(f.c_str());
  }
  return Ok();
}

}  // namespace storevisor::legacy
