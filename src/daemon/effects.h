// The effects of storevisord's core on the host: driver calls, health probes, the
// generation's networks, and which processes to watch. Runs on the owner's pools.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/log.h"
#include "daemon/core/owner.h"
#include "daemon/drivers/driver.h"
#include "daemon/store/store.h"
#include "net/net.h"

namespace storevisor::daemon {

// How long a Remove waits for an instance to stop before it is killed.
inline constexpr int kStopTimeoutMs = 5000;

// An instance that exists now, as the networks' set-up sees it.
struct InstanceOnNetworks {
  std::string name;
  std::string runtime_hash;  // of the spec it was made from
  const Workload* spec = nullptr;
};
// The instances `next` keeps although its spec for them changed (`update: manual`): they run
// as made from their old spec, on its networks, until the operator replaces them.
std::vector<InstanceOnNetworks> KeptInstances(const Profile& next,
                                              const std::vector<InstanceOnNetworks>& instances);
// The networks of the previous set-up that kept instances still use and `next` does not
// declare: their bridges and rules stay until no kept instance uses them.
std::vector<Network> KeptNetworks(const Profile& next, const std::vector<Network>& previous,
                                  const std::vector<InstanceOnNetworks>& kept);

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
  // Where the networks' set-up reads which instances exist (the owner's snapshot): an
  // `update: manual` instance keeps the networks it is on (docs/daemon.md).
  using SnapshotSource = std::function<std::shared_ptr<const core::Snapshot>()>;
  void SetSnapshotSource(SnapshotSource source) { snapshot_source_ = std::move(source); }
  // Housekeeping: once no kept instance uses a kept network any more (the operator replaced
  // it), the networks are set up again for `profile` without it.
  void ReleaseKeptNetworks(const core::Snapshot& snap);

 private:
  Driver* DriverFor(WorkloadKind kind) const;
  Status Check(const core::Effect& effect, Driver& driver);
  Status SetUpNetworks(const Profile& profile, int64_t generation);
  Status SetUpNetworksLocked(const Profile& profile, int64_t generation,
                             const core::Snapshot* snap);
  Status RecordBridges(const std::set<std::string>& bridges);
  // The networks the last set-up made (meta "networks"), kept ones included.
  std::vector<Network> RecordedNetworks();
  Status RecordNetworks(const std::vector<Network>& networks);

  Store& store_;
  Logger logger_;
  const std::map<std::string, std::unique_ptr<Driver>>& drivers_;
  std::string nft_table_;
  std::optional<net::Nftables> nft_;
  SnapshotSource snapshot_source_;
  std::mutex networks_mu_;  // one set-up at a time (the owner's, or housekeeping's)
  bool keeping_ = false;    // guarded by networks_mu_: the last set-up kept networks
  // guarded by networks_mu_: the networks set up last (core::Desired::NetworksKey), so that
  // a snapshot of another profile's networks never undoes them; keyed by content, not by
  // generation: a re-apply or a rollback to the same networks is the same set-up.
  std::string set_up_key_;
};

}  // namespace storevisor::daemon
