// legacy-vm workloads through the legacy VM engine (issue 6, docs/legacy-vm.md).
//
// Lifecycle goes through `storevisor-legacy`'s command line, as microVMs go through
// `storevisor-vm`: `run --detach` leaves a daemonized QEMU (and swtpm, taps, overlays) behind
// a state directory, so a daemon restart re-adopts it by pid and start time. What is read
// from a running VM (screen, screenshots, QMP events) goes over its QMP sockets with the
// engine's library: an event listener is a long-lived socket that must end with the daemon,
// which a helper process would not do after a `kill -9`.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

struct LegacyDriverOptions {
  std::string tool;       // storevisor-legacy
  std::string state_dir;  // one folder per VM
  // Receives QMP events as daemon events (workload, type "qmp-<event>", message).
  std::function<void(const std::string&, const std::string&, const std::string&)> on_event;
};

class LegacyVmDriver : public Driver {
 public:
  explicit LegacyVmDriver(LegacyDriverOptions options);
  ~LegacyVmDriver() override;
  LegacyVmDriver(const LegacyVmDriver&) = delete;
  LegacyVmDriver& operator=(const LegacyVmDriver&) = delete;

  Result<InstanceInfo> Create(const Workload& workload,
                              const std::vector<NetAttachment>& nets) override;
  Result<InstanceInfo> Inspect(const std::string& name, const std::string& driver_state) override;
  void Maintain(const std::string& name) override;
  Status Remove(const std::string& name, const std::string& driver_state, int timeout_ms) override;
  Result<ExecOutput> Exec(const std::string& name, const std::string& driver_state,
                          const std::vector<std::string>& argv, int timeout_ms) override;
  std::string LogPath(const std::string& name) const override;
  std::string NetnsPath(const std::string& /*name*/, int64_t /*pid*/) const override { return ""; }
  Status Screenshot(const std::string& name, const std::string& png_path) override;
  Status CheckScreen(const std::string& name, const HealthCheck& check) override;
  Result<std::string> DisplaySocket(const std::string& name) override;
  Status UsbAttach(const std::string& name, const std::string& device_id,
                   const std::string& usb_id) override;
  Status UsbDetach(const std::string& name, const std::string& device_id) override;

 private:
  struct Listener;
  std::string Dir(const std::string& name) const { return opt_.state_dir + "/" + name; }
  std::string RunDir(const std::string& name) const { return Dir(name) + "/run"; }
  void StartListener(const std::string& name);
  void StopListener(const std::string& name);

  LegacyDriverOptions opt_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Listener>> listeners_;
};

// The storevisor-legacy config (docs/legacy-vm.md) for a workload: pure, unit-tested.
// taps[i] is created on nets[i].bridge by storevisor-legacy.
nlohmann::json MakeLegacyConfig(const Workload& workload, const std::vector<NetAttachment>& nets,
                                const std::vector<std::string>& taps);
// The tap of NIC `index` of a legacy VM (at most 15 characters).
std::string LegacyTapName(const std::string& name, size_t index);
// Refuses, at apply time and before anything starts, a legacy-vm that QEMU would refuse
// (missing firmware or disk, wrong disk format, OVMF build mismatch, beyond the host):
// "file:line: spec.workloads[i].field: what".
Status CheckLegacyWorkloads(const Profile& profile);

}  // namespace storevisor::daemon
