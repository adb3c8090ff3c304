// The effects of storevisord's core on the host: driver calls, health probes, the
// generation's networks, and which processes to watch. Runs on the owner's pools.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/log.h"
#include "daemon/core/owner.h"
#include "daemon/drivers/driver.h"
#include "daemon/store/store.h"
#include "net/net.h"

namespace storevisor::daemon {

// How long a Remove waits for an instance to stop before it is killed.
inline constexpr int kStopTimeoutMs = 5000;

class DaemonEffects : public core::EffectRunner {
 public:
  // `nft_table`: this daemon's nftables table (net::DefaultTableName of its state dir).
  DaemonEffects(Store& store, const Logger& logger,
                const std::map<std::string, std::unique_ptr<Driver>>& drivers,
                std::string nft_table)
      : store_(store), logger_(logger), drivers_(drivers), nft_table_(std::move(nft_table)) {
    // Held open: closing a libnftables context costs an RCU grace period (docs/daemon.md).
    if (auto nft = net::Nftables::Open()) nft_.emplace(std::move(*nft));
  }

  core::Observation Run(const core::Effect& effect) override;
  std::vector<Pid> WatchPids(const core::Effect& effect) override;
  // The sv-* bridges this daemon made (state store meta "bridges").
  std::set<std::string> RecordedBridges();

 private:
  Driver* DriverFor(WorkloadKind kind) const;
  Status Check(const core::Effect& effect, Driver& driver);
  Status SetUpNetworks(const Profile& profile);
  Status RecordBridges(const std::set<std::string>& bridges);

  Store& store_;
  Logger logger_;
  const std::map<std::string, std::unique_ptr<Driver>>& drivers_;
  std::string nft_table_;
  std::optional<net::Nftables> nft_;
};

}  // namespace storevisor::daemon
