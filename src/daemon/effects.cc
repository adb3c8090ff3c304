#include "daemon/effects.h"

#include <thread>

#include "daemon/drivers/cgroup.h"
#include "daemon/health.h"
#include "net/net.h"

namespace storevisor::daemon {

namespace {

core::Observation ObservationFor(const core::Effect& e, core::Observation::Type type) {
  core::Observation o;
  o.type = type;
  o.name = e.name;
  o.instance = e.instance;
  return o;
}

}  // namespace

Driver* DaemonEffects::DriverFor(WorkloadKind kind) const {
  auto it = drivers_.find(std::string(KindName(kind)));
  return it == drivers_.end() ? nullptr : it->second.get();
}

core::Observation DaemonEffects::Run(const core::Effect& e) {
  using Type = core::Effect::Type;
  using Obs = core::Observation::Type;
  if (e.type == Type::kSetUpNetworks) {
    core::Observation o;
    o.type = Obs::kNetworks;
    o.generation = e.generation;
    o.networks_key = e.networks_key;
    o.status = SetUpNetworks(*e.profile, e.generation);
    return o;
  }
  Driver* driver = DriverFor(e.kind);
  const Error no_driver(ErrorCode::kUnsupported,
                        std::string("no driver for kind ") + std::string(KindName(e.kind)));
  switch (e.type) {
    case Type::kCreate: {
      core::Observation o = ObservationFor(e, Obs::kCreated);
      auto info =
          driver != nullptr ? driver->Create(e.workload, e.nets) : Result<InstanceInfo>(no_driver);
      if (info) {
        o.info = std::move(*info);
      } else {
        o.status = std::move(info).error();
      }
      return o;
    }
    case Type::kRemove: {
      core::Observation o = ObservationFor(e, Obs::kRemoved);
      o.status = driver != nullptr
                     ? driver->Remove(e.name, e.driver_state, e.at_once ? 0 : kStopTimeoutMs)
                     : Status(no_driver);
      return o;
    }
    case Type::kInspect: {
      core::Observation o = ObservationFor(e, Obs::kInspected);
      auto info = driver != nullptr ? driver->Inspect(e.name, e.driver_state)
                                    : Result<InstanceInfo>(no_driver);
      if (info) {
        o.info = std::move(*info);
      } else {
        o.status = std::move(info).error();
      }
      return o;
    }
    case Type::kCheck: {
      core::Observation o = ObservationFor(e, Obs::kChecked);
      Status st = driver != nullptr ? Check(e, *driver) : Status(no_driver);
      o.check_ok = st.has_value();
      if (!st) o.detail = st.error().message();
      return o;
    }
    case Type::kPrune: {
      // With no workload left, the empty /storevisor parents go from every hierarchy.
      PruneEmptyCgroups(std::string(kDaemonCgroupParent));
      return ObservationFor(e, Obs::kProcessEnded);  // the loop does not pass it on
    }
    case Type::kSetUpNetworks:
    case Type::kWatch:
      break;
  }
  return ObservationFor(e, Obs::kProcessEnded);  // not reached: the loop runs these itself
}

Status DaemonEffects::Check(const core::Effect& e, Driver& d) {
  const HealthCheck& check = e.workload.health;
  const int timeout = static_cast<int>(check.timeout_ms);
  const std::string netns = d.NetnsPath(e.name, e.pid);
  const std::string host = netns.empty() && !e.address.empty() ? e.address : "127.0.0.1";
  switch (check.type) {
    case HealthType::kExec: {
      SV_ASSIGN_OR_RETURN(ExecOutput out, d.Exec(e.name, e.driver_state, check.exec, timeout));
      if (out.exit_code != 0) {
        return Error(ErrorCode::kUnavailable, "exec exited " + std::to_string(out.exit_code));
      }
      return Ok();
    }
    case HealthType::kTcp:
      return ProbeTcp(netns, host, check.port, timeout, check.send, check.expect);
    case HealthType::kHttp:
      return ProbeHttp(netns, host, check.port, check.path, timeout);
    case HealthType::kScreen:  // OCR takes its time: no timeout but QMP's own (10 s)
      return d.CheckScreen(e.name, check);
    case HealthType::kNone:
      break;
  }
  return Ok();
}

std::vector<core::EffectRunner::Pid> DaemonEffects::WatchPids(const core::Effect& e) {
  std::vector<Pid> out;
  Driver* d = DriverFor(e.kind);
  if (d == nullptr) return out;
  for (const auto& p : d->WatchPids(e.driver_state)) out.push_back({p.pid, p.start_ticks, p.what});
  return out;
}

std::vector<InstanceOnNetworks> KeptInstances(const Profile& next,
                                              const std::vector<InstanceOnNetworks>& instances) {
  std::vector<InstanceOnNetworks> out;
  for (const auto& i : instances) {
    const Workload* w = next.Find(i.name);
    if (w == nullptr || i.spec == nullptr || w->update != UpdateStrategy::kManual) continue;
    if (RuntimeHash(*w) != i.runtime_hash) out.push_back(i);
  }
  return out;
}

std::vector<Network> KeptNetworks(const Profile& next, const std::vector<Network>& previous,
                                  const std::vector<InstanceOnNetworks>& kept) {
  std::set<std::string> used;
  for (const auto& k : kept) {
    for (const auto& n : k.spec->networks) {
      bool declared = false;
      for (const auto& d : next.networks) declared = declared || d.name == n;
      if (!declared) used.insert(n);
    }
  }
  std::vector<Network> out;
  for (const auto& n : previous) {
    if (used.erase(n.name) != 0) out.push_back(n);
  }
  return out;
}

namespace {

std::string NetworksKeyOf(const Profile& profile) {
  core::Desired d;
  d.profile = profile;
  return d.NetworksKey();
}

std::vector<InstanceOnNetworks> InstancesOf(const core::Snapshot* snap) {
  std::vector<InstanceOnNetworks> out;
  if (snap == nullptr) return out;
  for (const auto& [name, s] : snap->workloads) {
    if (!s.runtime_hash.empty()) out.push_back({name, s.runtime_hash, &s.spec});
  }
  return out;
}

}  // namespace

Status DaemonEffects::SetUpNetworks(const Profile& profile, int64_t generation) {
  std::lock_guard lock(networks_mu_);
  auto snap = snapshot_source_ ? snapshot_source_() : nullptr;
  return SetUpNetworksLocked(profile, generation, snap.get());
}

void DaemonEffects::ReleaseKeptNetworks(const core::Snapshot& snap) {
  std::lock_guard lock(networks_mu_);
  // Only for the profile whose networks are set up: an older snapshot must not undo a
  // newer set-up.
  if (!keeping_ || !snap.profile || NetworksKeyOf(*snap.profile) != set_up_key_) return;
  const std::vector<Network> recorded = RecordedNetworks();
  const auto kept =
      KeptNetworks(*snap.profile, recorded, KeptInstances(*snap.profile, InstancesOf(&snap)));
  if (kept.size() + snap.profile->networks.size() >= recorded.size()) return;  // all still used
  if (Status st = SetUpNetworksLocked(*snap.profile, snap.generation, &snap); !st) {
    logger_.Warn("networks",
                 "releasing the networks no kept instance uses: " + st.error().message());
  }
}

Status DaemonEffects::SetUpNetworksLocked(const Profile& profile, int64_t /*generation*/,
                                          const core::Snapshot* snap) {
  // An `update: manual` instance that the profile keeps runs as made from its old spec: its
  // networks (from the previous set-up) and its published ports stay until it is replaced.
  const auto kept_instances = KeptInstances(profile, InstancesOf(snap));
  std::vector<Network> all = profile.networks;
  for (auto& n : KeptNetworks(profile, RecordedNetworks(), kept_instances)) {
    logger_.Info("networks", "network " + n.name +
                                 " kept: an update: manual instance not yet replaced uses it");
    all.push_back(std::move(n));
  }
  std::vector<net::FirewallNetwork> nets;
  std::vector<net::PublishedPort> ports;
  nets.reserve(all.size());
  for (const auto& n : all) nets.push_back({n.name, n.subnet, n.allow});
  for (const auto& desired : profile.workloads) {
    const Workload* w = &desired;
    for (const auto& k : kept_instances) w = k.name == desired.name ? k.spec : w;
    if (w->ports.empty() || w->networks.empty()) continue;
    const Network* n = nullptr;
    for (const auto& candidate : all) {
      if (candidate.name == w->networks[0]) n = &candidate;
    }
    if (n == nullptr) continue;
    SV_ASSIGN_OR_RETURN(std::string addr, store_.AllocateAddress(n->name, n->subnet, w->name));
    for (const auto& p : w->ports) ports.push_back({p.host, addr, p.container});
  }
  // The bridges this daemon made are recorded (meta "bridges") before any is made, so that
  // after a crash it still knows them, and it removes only those: another storevisord on the
  // host (a test's, a second state dir) keeps its own sv-* bridges.
  std::set<std::string> made = RecordedBridges();
  for (const auto& n : all) made.insert(net::BridgeName(n.name));
  SV_TRY(RecordBridges(made));
  // The rules name bridges by interface name and need not wait for them: the firewall
  // transaction runs beside the bridges' set-up.
  Status firewall = Ok();
  std::thread rules([&] {
    firewall = nft_ ? net::ApplyFirewall(*nft_, nft_table_, nets, ports)
                    : net::ApplyFirewall(nft_table_, nets, ports);
  });
  Status bridges = Ok();
  for (const auto& n : all) {
    auto subnet = ParseSubnet(n.subnet);
    if (!subnet) {
      bridges = std::move(subnet).error();
      break;
    }
    bridges = net::EnsureBridge(
        n.name, Ipv4ToString(subnet->base + 1) + "/" + std::to_string(subnet->prefix));
    if (!bridges) break;
  }
  rules.join();
  SV_TRY(bridges);
  // Bridges of networks no longer declared nor kept go away (their rules went with the new
  // tables).
  std::set<std::string> left;
  for (const auto& br : made) {
    bool wanted = false;
    for (const auto& n : all) wanted = wanted || net::BridgeName(n.name) == br;
    if (wanted || !net::RemoveBridge(br.substr(3))) left.insert(br);
  }
  SV_TRY(RecordBridges(left));
  SV_TRY(RecordNetworks(all));
  keeping_ = all.size() > profile.networks.size();
  set_up_key_ = NetworksKeyOf(profile);
  return firewall;
}

std::vector<Network> DaemonEffects::RecordedNetworks() {
  std::vector<Network> out;
  auto text = store_.GetMeta("networks");
  if (!text || !*text) return out;
  auto j = nlohmann::json::parse(**text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& item : j) {
    if (!item.is_object()) continue;
    Network n;
    auto name = item.find("name");
    auto subnet = item.find("subnet");
    auto allow = item.find("allow");
    if (name == item.end() || !name->is_string() || subnet == item.end() || !subnet->is_string())
      continue;
    n.name = name->get<std::string>();
    n.subnet = subnet->get<std::string>();
    if (allow != item.end() && allow->is_array()) {
      for (const auto& a : *allow) {
        if (a.is_string()) n.allow.push_back(a.get<std::string>());
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

Status DaemonEffects::RecordNetworks(const std::vector<Network>& networks) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& n : networks) {
    j.push_back({{"name", n.name}, {"subnet", n.subnet}, {"allow", n.allow}});
  }
  return store_.SetMeta("networks", j.dump());
}

std::set<std::string> DaemonEffects::RecordedBridges() {
  std::set<std::string> out;
  auto text = store_.GetMeta("bridges");
  if (!text || !*text) return out;
  size_t pos = 0;
  const std::string& t = **text;
  while (pos < t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string::npos) nl = t.size();
    if (nl > pos) out.insert(t.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

Status DaemonEffects::RecordBridges(const std::set<std::string>& bridges) {
  std::string text;
  for (const auto& b : bridges) {
    text += b;
    text += '\n';
  }
  return store_.SetMeta("bridges", text);
}

}  // namespace storevisor::daemon
