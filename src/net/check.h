// Apply-time checks of a profile's networks against each other and against the host: a
// published host port another process already holds, subnets overlapping each other or an
// address already on the host. Pure over a HostProbe, so tests give it a made-up host.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::net {

struct HostAddress {
  std::string interface;
  std::string address;  // IPv4, dotted
  int prefix = 32;
};
struct BoundPort {
  std::string protocol;  // tcp, tcp6, udp, udp6
  std::string address;   // the local address, as printed ("0.0.0.0", "::1")
  int port = 0;
};

// What the checks read of the host.
class HostProbe {
 public:
  virtual ~HostProbe() = default;
  virtual Result<std::vector<HostAddress>> Addresses() const = 0;  // IPv4 only
  virtual Result<std::vector<BoundPort>> BoundPorts() const = 0;   // TCP listening, UDP bound
};

// This host, in the calling thread's network namespace: getifaddrs and /proc/net/{tcp,udp}{,6}.
class SystemHostProbe final : public HostProbe {
 public:
  Result<std::vector<HostAddress>> Addresses() const override;
  Result<std::vector<BoundPort>> BoundPorts() const override;
};

// The sockets of a /proc/net/{tcp,udp}{,6} file: for tcp only listening ones (pure).
std::vector<BoundPort> ParseProcNetSockets(std::string_view text, std::string_view protocol);

struct ProfileNetwork {  // spec.networks[i], i its index
  std::string name;
  std::string subnet;  // a.b.c.d/len
  int line = 0;
};
struct ProfilePort {
  int host = 0;
  std::string workload;
  std::string field;  // e.g. "spec.workloads[2].ports[0].host"
  int line = 0;
};
struct ProfileNetworks {
  std::string file;  // for messages
  std::vector<ProfileNetwork> networks;
  std::vector<ProfilePort> ports;
  // Bridges this daemon made: their addresses are its own, not another's.
  std::vector<std::string> own_bridges;
  // Host ports this daemon publishes now, and for which workload: a port bound on the host
  // is fine for the same workload.
  std::map<int, std::string> own_ports;
};

// Ok, or kInvalidArgument "file:line: field: what" for the first problem found.
Status CheckProfileNetworks(const ProfileNetworks& profile, const HostProbe& host);

}  // namespace storevisor::net
