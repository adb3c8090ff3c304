// microVMs through the VM engine's command line (storevisor-vm, issue 4): `run --detach`
// leaves QEMU running on its own (its pid, QMP and agent sockets in a state directory), so a
// daemon restart re-adopts it from that directory; status, exec (guest agent) and stop.
#pragma once

#include <string>

#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

struct MicroVmDriverOptions {
  std::string tool;       // storevisor-vm
  std::string state_dir;  // one folder per VM
};

class MicroVmDriver : public Driver {
 public:
  explicit MicroVmDriver(MicroVmDriverOptions options) : opt_(std::move(options)) {}
  Result<InstanceInfo> Create(const Workload& workload,
                              const std::vector<NetAttachment>& nets) override;
  Result<InstanceInfo> Inspect(const std::string& name, const std::string& driver_state) override;
  Status Remove(const std::string& name, const std::string& driver_state, int timeout_ms) override;
  Result<ExecOutput> Exec(const std::string& name, const std::string& driver_state,
                          const std::vector<std::string>& argv, int timeout_ms) override;
  std::string LogPath(const std::string& name) const override;
  std::string NetnsPath(const std::string& /*name*/, int64_t /*pid*/) const override { return ""; }

 private:
  std::string Dir(const std::string& name) const { return opt_.state_dir + "/" + name; }
  MicroVmDriverOptions opt_;
};

// The storevisor-vm config (docs/vm.md) for a workload: pure, unit-tested.
nlohmann::json MakeVmConfig(const Workload& workload, const std::string& console_log,
                            const std::vector<std::string>& taps);

}  // namespace storevisor::daemon
