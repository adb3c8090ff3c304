// The effects of storevisord's core on the host: driver calls, health probes, the
// generation's networks, and which processes to watch. Runs on the owner's pools.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/log.h"
#include "daemon/core/owner.h"
#include "daemon/drivers/driver.h"
#include "daemon/store/store.h"

namespace storevisor::daemon {

// How long a Remove waits for an instance to stop before it is killed.
inline constexpr int kStopTimeoutMs = 5000;

class DaemonEffects : public core::EffectRunner {
 public:
  DaemonEffects(Store& store, const Logger& logger,
                const std::map<std::string, std::unique_ptr<Driver>>& drivers)
      : store_(store), logger_(logger), drivers_(drivers) {}

  core::Observation Run(const core::Effect& effect) override;
  std::vector<Pid> WatchPids(const core::Effect& effect) override;

 private:
  Driver* DriverFor(WorkloadKind kind) const;
  Status Check(const core::Effect& effect, Driver& driver);
  Status SetUpNetworks(const Profile& profile);
  // The sv-* bridges this daemon made (state store meta "bridges"), and their update.
  std::set<std::string> RecordedBridges();
  Status RecordBridges(const std::set<std::string>& bridges);

  Store& store_;
  Logger logger_;
  const std::map<std::string, std::unique_ptr<Driver>>& drivers_;
};

}  // namespace storevisor::daemon
