// storevisord: turns the stored store profile into running workloads and keeps them so.
// The public face of src/daemon: options, the Daemon object the API calls into, and the
// entry points used by main().
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "daemon/drivers/driver.h"
#include "daemon/profile/profile.h"
#include "daemon/reconciler/plan.h"
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
  std::string version = "0.1.0";
};

// In-memory supervision state of one workload (rebuilt after a restart).
struct Supervision {
  int64_t failures = 0;          // consecutive, for the backoff
  int64_t next_action_ms = 0;    // restart/retry not before this (wall clock)
  bool restart_pending = false;  // the supervisor is to start it again at next_action_ms
  int health_failures = 0;
  int64_t next_check_ms = 0;
  bool check_running = false;
  // Its own check passed, but an after: entry that holds its health is not met yet.
  bool gated = false;
  uint64_t last_cpu_ns = 0;  // CPU time at last_cpu_sample_ms
  int64_t last_cpu_sample_ms = 0;
  std::string usage_source;  // "cgroup" (all the workload's processes) or "process" (main)
  double cpu_percent = 0;
  uint64_t memory_bytes = 0;
};

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> Create(const DaemonOptions& options, const Logger& logger);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Re-adopts what runs, starts the reconciler and supervisor threads.
  Status Start();
  void Shutdown();  // stops the threads; workloads keep running

  // API operations.
  Result<nlohmann::json> Apply(const std::string& yaml, const std::string& file, bool dry_run);
  Result<nlohmann::json> Workloads();
  Result<nlohmann::json> WorkloadJson(const std::string& name);
  Status StopWorkload(const std::string& name);
  Status StartWorkload(const std::string& name);
  Status RestartWorkload(const std::string& name);
  Status RemoveWorkload(const std::string& name);
  Result<ExecOutput> Exec(const std::string& name, const std::vector<std::string>& argv,
                          int timeout_ms);
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
  StateStore& store() { return *store_; }
  const DaemonOptions& options() const { return opt_; }
  const Logger& logger() const { return logger_; }

 private:
  Daemon(DaemonOptions options, const Logger& logger) : opt_(std::move(options)), logger_(logger) {}

  // reconcile.cc
  Result<Profile> Desired();
  void ReconcileLoop();
  void ConvergeOnce();
  void RunStep(const Profile& profile, const PlanStep& step);
  Status CreateInstance(const Workload& w, const std::string& verb);
  Status DeleteWorkload(const std::string& name);
  Status SetUpNetworks(const Profile& profile);
  // The sv-* bridges this daemon made (state store meta "bridges"), and their update.
  std::set<std::string> RecordedBridges();
  Status RecordBridges(const std::set<std::string>& bridges);
  Status WaitForDependencies(const Workload& w);
  bool DependencyMet(const std::string& dep, AfterCondition condition);
  // Records changed: wakes steps waiting on after: (and the supervisor for a new instance).
  void StateChanged(bool new_instance);
  Result<std::vector<NetAttachment>> Attachments(const Workload& w, const Profile& p);
  void Kick();

  // supervise.cc
  void Adopt();
  void SuperviseLoop();
  void SuperviseOne(const WorkloadRecord& record, const Profile& profile);
  void CheckHealth(const WorkloadRecord& record, const Workload& w);
  // from_probe false: a gated workload's last passing result is looked at again.
  void OnHealthResult(const std::string& name, bool ok, const std::string& detail,
                      bool from_probe = true);
  // Judges one result (LockFor(name) and sup_mu_ held); true when it turned healthy.
  bool ApplyHealthResult(WorkloadRecord* r, const Workload& spec, Supervision* s, bool ok,
                         const std::string& detail);
  std::string UnmetHealthGate(const Workload& spec);
  void PromoteGated();
  void SampleUsage(const WorkloadRecord& record);

  // daemon.cc: start and restart by the operator: the workload as the desired profile has
  // it, its record marked desired=running (restart also counts it), a fresh instance, all
  // under the workload's lock.
  enum class OperatorStart { kStart, kRestart };
  Status RunFromProfile(const std::string& name, OperatorStart how);
  // daemon.cc: with no workload record left, the empty parents /storevisor/daemon and
  // /storevisor go from every cgroup hierarchy (rmdir only).
  void PruneCgroupsIfNoWorkloads();
  Driver* DriverFor(const std::string& kind);
  // A workload that runs now, its kind and driver (kNotFound, kConflict otherwise).
  struct Running {
    std::string kind;
    Driver* driver;
  };
  Result<Running> RunningWorkload(const std::string& name);
  std::mutex& LockFor(const std::string& name);
  Supervision& Sup(const std::string& name);  // sup_mu_ held
  void Event(const std::string& workload, const std::string& type, const std::string& message);

  DaemonOptions opt_;
  Logger logger_;
  std::unique_ptr<StateStore> store_;
  std::map<std::string, std::unique_ptr<Driver>> drivers_;  // by kind name
  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
  std::mutex sup_mu_;
  std::map<std::string, Supervision> sup_;
  std::mutex kick_mu_;
  std::condition_variable kick_cv_;
  bool kicked_ = false;
  // Guards the next three; state_cv_ is notified on every record change that a waiter needs.
  std::mutex state_mu_;
  std::condition_variable state_cv_;
  uint64_t state_gen_ = 0;
  bool supervise_kicked_ = false;
  std::set<std::string> in_flight_;  // steps of the running converge not finished yet
  std::mutex consoles_mu_;
  std::set<std::string> consoles_;  // workloads whose console a client holds
  std::atomic<bool> stopping_{false};
  std::thread reconciler_;
  std::thread supervisor_;
  HostResources host_;
};

// `storevisord ...` (daemon, shim); returns the exit status.
int DaemonMain(int argc, char** argv);

}  // namespace storevisor::daemon
