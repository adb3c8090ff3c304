// Host networking for store profiles: a Linux bridge per profile network (its first
// address is the gateway), isolation between networks and published ports with nftables
// (table inet storevisor). Everything created here is removed by RemoveBridge/Flush.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"

namespace storevisor::net {

std::string BridgeName(const std::string& network);  // "sv-<network>"

// Creates (or keeps) bridge sv-<network> with gateway/prefix on it, up.
Status EnsureBridge(const std::string& network, const std::string& gateway_cidr);
Status RemoveBridge(const std::string& network);

struct FirewallNetwork {
  std::string name;
  std::string subnet;
  std::vector<std::string> allow;
};
struct PublishedPort {
  int host_port = 0;
  std::string address;  // the workload's
  int port = 0;
};

// The nftables ruleset text for these networks and ports (pure, unit-tested).
std::string FirewallRules(const std::vector<FirewallNetwork>& networks,
                          const std::vector<PublishedPort>& ports);
// Replaces table inet storevisor (and ip storevisor-nat) with the rules; enables forwarding.
Status ApplyFirewall(const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports);
Status FlushFirewall();

}  // namespace storevisor::net
