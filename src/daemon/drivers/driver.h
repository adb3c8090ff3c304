// The one interface the reconciler and supervisor use for every workload kind, so they
// never see QEMU, runc or namespaces. Engines are driven through their command lines (as
// containerd drives runc): their processes outlive the daemon, which re-adopts them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "daemon/profile/profile.h"

namespace storevisor::daemon {

struct InstanceInfo {
  bool running = false;
  int64_t pid = 0;           // the workload's main process (container init, QEMU)
  int64_t exit_code = -1;    // when not running: its status (128+signal when killed), -1 unknown
  std::string driver_state;  // opaque JSON kept in the workload's record
  // Not running as it should although some of it may (a container whose shim died): the
  // daemon removes what is left and says why.
  std::string problem;
};

struct ExecOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Where a workload is attached on one profile network.
struct NetAttachment {
  std::string network;
  std::string bridge;
  std::string address;  // a.b.c.d
  int prefix = 24;
  std::string gateway;
};

// A process whose end means the instance ended.
struct WatchedPid {
  int64_t pid = 0;
  uint64_t start_ticks = 0;  // /proc/PID/stat's start time, to tell a reused pid (0: unknown)
  std::string what;          // "process", "shim", "qemu"
};

class Driver {
 public:
  virtual ~Driver() = default;
  // The processes to watch for an instance described by driver_state: by default the
  // {"pid", "start_ticks"} it recorded.
  virtual std::vector<WatchedPid> WatchPids(const std::string& driver_state) const;
  // Makes and starts a fresh instance, first removing any leftover of the same name.
  virtual Result<InstanceInfo> Create(const Workload& workload,
                                      const std::vector<NetAttachment>& nets) = 0;
  // What runs now, from the driver's own state (files, pids, the engine's state command).
  virtual Result<InstanceInfo> Inspect(const std::string& name,
                                       const std::string& driver_state) = 0;
  // Stops (SIGTERM, then SIGKILL after timeout_ms) and removes the instance; idempotent.
  virtual Status Remove(const std::string& name, const std::string& driver_state,
                        int timeout_ms) = 0;
  virtual Result<ExecOutput> Exec(const std::string& name, const std::string& driver_state,
                                  const std::vector<std::string>& argv, int timeout_ms) = 0;
  // The workload's console/stdout log (the newest file; older ones end in .1).
  virtual std::string LogPath(const std::string& name) const = 0;
  // The network namespace a health probe must connect from ("" for the host's).
  virtual std::string NetnsPath(const std::string& name, int64_t pid) const = 0;
  // Kinds with a screen (legacy-vm, docs/legacy-vm.md); the others are kUnsupported.
  // Writes what the screen shows now to png_path.
  virtual Status Screenshot(const std::string& /*name*/, const std::string& /*png_path*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload has no screen");
  }
  // The `screen` health check: not blank, and OCR reads check.screen_text when given.
  virtual Status CheckScreen(const std::string& /*name*/, const HealthCheck& /*check*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload has no screen");
  }
  // The unix socket of the workload's VNC server.
  virtual Result<std::string> DisplaySocket(const std::string& /*name*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload has no display");
  }
  // USB hot-plug (legacy-vm): a host device into the running VM under QEMU device id
  // device_id, and out again.
  virtual Status UsbAttach(const std::string& /*name*/, const std::string& /*device_id*/,
                           const std::string& /*usb_id*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload takes no USB devices");
  }
  virtual Status UsbDetach(const std::string& /*name*/, const std::string& /*device_id*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload takes no USB devices");
  }
  // The engine's own view of a running instance, for /metrics: microvm `storevisor-vm
  // status -o json` ({"status", "accel", "counters": {...}}, docs/vm.md); kUnsupported for
  // kinds whose engine reports none.
  virtual Result<nlohmann::json> EngineStatus(const std::string& /*name*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload has no engine counters");
  }
  // Housekeeping of a running instance, every few seconds (the console log's cap for VMs,
  // whose QEMU writes it and never rotates it).
  virtual void Maintain(const std::string& /*name*/) {}
  // The unix socket of the workload's serial console (input and output; microvm).
  virtual Result<std::string> ConsoleSocket(const std::string& /*name*/) {
    return Error(ErrorCode::kUnsupported, "this kind of workload has no interactive console");
  }
};

// True when pid runs (not a zombie) and, if start_ticks > 0, is the same process as then.
bool ProcessAlive(int64_t pid, uint64_t start_ticks = 0);
// Field 22 of /proc/pid/stat (start time in clock ticks since boot), 0 when gone.
uint64_t ProcessStartTicks(int64_t pid);
// The instance a QEMU-backed driver recorded as {"pid", "start_ticks", ...}: running while
// that very process lives (a reused pid does not count). Unreadable state: not running.
InstanceInfo InstanceFromPidState(const std::string& driver_state);
// The pids a driver recorded in its state: {"pid", "start_ticks"} and, with shim_key, the
// shim's ({shim_key, "shim_start_ticks"}).
std::vector<WatchedPid> WatchPidsFromState(const std::string& driver_state, const char* shim_key);
// A log QEMU itself writes (a microVM's console, a legacy VM's serial port; opened
// O_APPEND): past max_bytes it is copied to PATH.1 and truncated in place (QEMU keeps its
// descriptor). Bytes written between the copy and the truncation are lost, as with
// logrotate's copytruncate.
Status RotateCopyTruncate(const std::string& path, uint64_t max_bytes);
inline constexpr uint64_t kConsoleLogMaxBytes = 1u << 20;

}  // namespace storevisor::daemon
