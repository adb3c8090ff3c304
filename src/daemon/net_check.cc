#include "daemon/net_check.h"

namespace storevisor::daemon {

net::ProfileNetworks ProfileNetworksOf(const Profile& next, const Profile* current,
                                       const std::set<std::string>& own_bridges) {
  net::ProfileNetworks out;
  out.file = next.file;
  for (const Network& n : next.networks) out.networks.push_back({n.name, n.subnet, n.line});
  for (size_t i = 0; i < next.workloads.size(); ++i) {
    const Workload& w = next.workloads[i];
    for (size_t j = 0; j < w.ports.size(); ++j) {
      out.ports.push_back(
          {w.ports[j].host, w.name,
           "spec.workloads[" + std::to_string(i) + "].ports[" + std::to_string(j) + "].host",
           w.ports[j].line > 0 ? w.ports[j].line : w.line});
    }
  }
  out.own_bridges.assign(own_bridges.begin(), own_bridges.end());
  if (current != nullptr) {
    for (const Workload& w : current->workloads) {
      for (const PortMapping& p : w.ports) out.own_ports.emplace(p.host, w.name);
    }
  }
  return out;
}

Status CheckNetworksAtApply(const Profile& next, const Profile* current,
                            const std::set<std::string>& own_bridges, const net::HostProbe& host) {
  return net::CheckProfileNetworks(ProfileNetworksOf(next, current, own_bridges), host);
}

}  // namespace storevisor::daemon
