// microVMs through the VM engine's command line (storevisor-vm, issue 4): `run --detach`
// leaves QEMU running on its own (its pid, QMP and agent sockets in a state directory), so a
// daemon restart re-adopts it from that directory; status, exec (guest agent) and stop.
#pragma once

#include <mutex>
#include <string>

#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

struct MicroVmDriverOptions {
  std::string tool;          // storevisor-vm
  std::string state_dir;     // one folder per VM
  std::string snapshot_dir;  // <workload>-<key>/ per snapshotted VM (guest RAM + device state)
  std::string ksm_run_file = "/sys/kernel/mm/ksm/run";  // "" leaves KSM alone
};

// Starts the host's ksmd (writes 1 to run_file) unless it runs; fine when the kernel has no KSM.
Status EnsureKsmRunning(const std::string& run_file);

class MicroVmDriver : public Driver {
 public:
  explicit MicroVmDriver(MicroVmDriverOptions options) : opt_(std::move(options)) {}
  Result<InstanceInfo> Create(const Workload& workload,
                              const std::vector<NetAttachment>& nets) override;
  Result<InstanceInfo> Inspect(const std::string& name, const std::string& driver_state) override;
  void Maintain(const std::string& name) override;
  Status Remove(const std::string& name, const std::string& driver_state, int timeout_ms) override;
  Result<ExecOutput> Exec(const std::string& name, const std::string& driver_state,
                          const std::vector<std::string>& argv, int timeout_ms) override;
  std::string LogPath(const std::string& name) const override;
  Result<std::string> ConsoleSocket(const std::string& name) override;
  // `storevisor-vm status -o json`: QEMU's counters through QMP (one call at a time: QEMU's
  // QMP socket serves one client, so concurrent scrapes take turns).
  Result<nlohmann::json> EngineStatus(const std::string& name) override;
  std::string NetnsPath(const std::string& /*name*/, int64_t /*pid*/) const override { return ""; }

 private:
  std::string Dir(const std::string& name) const { return opt_.state_dir + "/" + name; }
  std::string ConsoleSocketPath(const std::string& name) const {
    return Dir(name) + "/console.sock";
  }
  // The snapshot of this workload's config, taken once (`storevisor-vm snapshot`, a cold
  // boot) and reused by every later start while the key (config + input stamps) holds.
  Result<std::string> EnsureSnapshot(const Workload& w, const nlohmann::json& config,
                                     const std::string& config_file);
  // Gives the guest its IPAM addresses (eth0 = first network) and default route.
  Status ConfigureGuestNetwork(const std::string& name, const std::vector<NetAttachment>& nets);
  std::string SnapshotKey(const Workload& w, const nlohmann::json& config) const;
  MicroVmDriverOptions opt_;
  std::mutex snapshot_mu_;
  std::mutex status_mu_;
};

// Runs argv in a guest through the agent socket of its QEMU, in this process (no
// storevisor-vm exec process), polling its status every 10 ms; the command's status is the
// result (128+signal when killed).
Result<ExecOutput> AgentExec(const std::string& agent_socket, const std::vector<std::string>& argv,
                             int timeout_ms);

// The storevisor-vm config (docs/vm.md) for a workload: pure, unit-tested. With a
// console_socket the serial port also takes input there (QEMU still logs to console_log).
nlohmann::json MakeVmConfig(const Workload& workload, const std::string& console_log,
                            const std::vector<std::string>& taps,
                            const std::string& console_socket = "");

}  // namespace storevisor::daemon
