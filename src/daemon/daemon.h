// storevisord: turns the stored store profile into running workloads and keeps them so.
// The public face of src/daemon: options, the Daemon object the API calls into, and the
// entry points used by main().
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/types.h"
#include "common/error.h"
#include "common/log.h"
#include "daemon/core/owner.h"
#include "daemon/drivers/driver.h"
#include "daemon/profile/profile.h"
#include "daemon/store/state_store.h"

namespace storevisor::daemon {

struct DaemonOptions {
  std::string state_dir = "/var/lib/storevisor";
  std::string socket = "/run/storevisor/storevisord.sock";
  std::string tcp;          // "127.0.0.1:7700": also serve TCP (needs token_file)
  std::string token_file;   // bearer token for TCP clients
  std::string runtime;      // OCI runtime binary
  std::string image_root;   // the image store (src/image)
  std::string image_dir;    // directory images, looked up after the image store
  std::string vm_tool;      // storevisor-vm
  std::string legacy_tool;  // storevisor-legacy
  std::string self_exe;     // this binary (for the shim)
  std::string nft_table;    // this daemon's nftables table (empty: from state_dir)
  std::string version = "0.1.0";
};

class DaemonEffects;

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> Create(const DaemonOptions& options, const Logger& logger);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loads the state, re-adopts what runs and starts the owner's loop.
  Status Start();
  void Shutdown();  // stops the loop; workloads keep running

  // API operations (types of src/api: the wire's structs, converted to JSON by the server).
  Result<api::ApplyResponse> Apply(const api::ApplyRequest& request);
  // An apply stored earlier, by its idempotency key or its profile digest (kNotFound if none).
  // (A key of digits is the generation's number.)
  Result<api::GenerationInfo> FindGeneration(const std::string& key_or_digest);
  // The newest generations first (`storevisor history`).
  Result<std::vector<api::GenerationInfo>> Generations(int limit);
  // Applies generation's profile again as a new generation (0: the newest committed one
  // older than the generation enforced now), through the same checks as any apply.
  Result<api::ApplyResponse> Rollback(int64_t generation, const std::string& identity,
                                      const std::string& idempotency_key);
  // The images the applied profile and the existing instances use (`storevisor image rm`
  // refuses them), with the image store and directory this daemon resolves them in.
  api::ImagesInUse ImagesInUse();
  Result<std::vector<api::WorkloadStatus>> Workloads();
  Result<api::WorkloadStatus> WorkloadStatus(const std::string& name);
  Result<std::vector<api::EventRecord>> EventsSince(int64_t after_id, int limit);
  // An event from another service (source, type, time, data validated by the API).
  Result<int64_t> PostEvent(const api::EventRecord& event);
  // Blocks until an event newer than after_id is stored or timeout_ms pass (or shutdown);
  // true when there is one. The SSE stream waits here instead of polling.
  bool WaitForEvents(int64_t after_id, int timeout_ms);
  Status StopWorkload(const std::string& name);
  Status StartWorkload(const std::string& name);
  Status RestartWorkload(const std::string& name);
  Status RemoveWorkload(const std::string& name);
  Result<api::ExecResponse> Exec(const std::string& name, const api::ExecRequest& request);
  Result<std::string> LogPath(const std::string& name);
  // legacy-vm screens (display.cc): a PNG of the screen now; the VNC socket for a client
  // that presents the workload's display token.
  Result<std::string> Screenshot(const std::string& name);
  Result<std::string> DisplaySocket(const std::string& name, const std::string& token);
  // Serial consoles (display.cc): the socket of a running microVM's console, claimed for
  // one client at a time (QEMU's chardev serves one); released when that client is gone.
  Result<std::string> ClaimConsole(const std::string& name);
  // USB hot-plug into a running legacy VM (display.cc); the QEMU device id is UsbDeviceId.
  Result<std::string> UsbAttach(const std::string& name, const std::string& usb_id);
  Status UsbDetach(const std::string& name, const std::string& usb_id);
  void ReleaseConsole(const std::string& name);
  std::string Metrics();
  // box.cc: the machine and the profile running, for GET /v1/box (the dashboard's panel).
  Result<api::BoxInfo> Box();
  // The newest event's id (0: none), from EventsSince alone.
  int64_t LastEventId();
  // A running legacy VM's VNC socket and password for the dashboard's own RFB proxy
  // (api/dashboard_ws.cc), which answers QEMU's VNC authentication itself: the password never
  // leaves the daemon. The dashboard's session stands for the bearer token (no display token).
  struct VncAccess {
    std::string socket;
    std::string password;  // empty: QEMU asks none
  };
  Result<VncAccess> DashboardDisplay(const std::string& name);
  const DaemonOptions& options() const { return opt_; }
  const Logger& logger() const { return logger_; }

 private:
  Daemon(DaemonOptions options, const Logger& logger);
  Result<api::ApplyResponse> ApplyProfile(const api::ApplyRequest& request, int64_t restores);
  api::GenerationInfo InfoOf(const GenerationRecord& g) const;

  // An event of the daemon's own outside the core (QMP events, USB hot-plug), stored now.
  void Event(const std::string& workload, const std::string& type, const std::string& message);
  Driver* DriverFor(const std::string& kind);
  // A workload that runs now, its kind and driver (kNotFound, kConflict otherwise).
  struct Running {
    std::string kind;
    Driver* driver;
    std::string driver_state;
  };
  Result<Running> RunningWorkload(const std::string& name);
  // CPU and memory of a running workload: its cgroup (every process in it), else its main
  // process; the CPU share over the time since the previous reading (at least a second).
  struct Usage {
    std::string source;  // cgroup | process
    double cpu_percent = 0;
    uint64_t memory_bytes = 0;
  };
  Usage SampleUsage(const std::string& name, int64_t pid);
  api::WorkloadStatus StatusOf(const core::WorkloadState& s, int64_t now);

  DaemonOptions opt_;
  Logger logger_;
  std::unique_ptr<StateStore> store_;
  std::map<std::string, std::unique_ptr<Driver>> drivers_;  // by kind name
  std::unique_ptr<DaemonEffects> effects_;
  std::unique_ptr<core::Owner> owner_;
  HostResources host_;
  std::mutex consoles_mu_;
  std::set<std::string> consoles_;  // workloads whose console a client holds
  struct Sample {
    uint64_t cpu_ns = 0;
    int64_t at_ms = 0;
    std::string source;
    double cpu_percent = 0;
  };
  std::mutex usage_mu_;
  std::map<std::string, Sample> usage_;  // the last reading per workload
};

// `storevisord ...` (daemon, shim); returns the exit status.
int DaemonMain(int argc, char** argv);

}  // namespace storevisor::daemon
