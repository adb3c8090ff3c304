// Host networking for store profiles, all in-process: links, addresses, routes and named
// network namespaces through rtnetlink (libnl-route-3), taps through /dev/net/tun, and the
// isolation and published-port rules through libnftables. No `ip` or `nft` process, no
// script file.
//
// A Linux bridge per profile network (its first address is the gateway); a container gets
// a named namespace (/run/netns/NAME, as `ip netns` makes them) holding one veth end per
// network; a microVM or legacy VM gets a persistent tap on the bridge. Each daemon's rules
// live in one nftables table of its own (inet family: filter and NAT chains together), so
// two daemons on one host do not replace each other's rules.
//
// Every call works in the calling thread's network namespace (tests run in one of their own).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace storevisor::net {

// --- Links -------------------------------------------------------------------------------

std::string BridgeName(const std::string& network);  // "sv-<network>"

// Whether a link of that name exists (asked over netlink, not /sys, which shows the
// namespace sysfs was mounted in).
bool LinkExists(const std::string& name);
// Deletes the link; absent is fine.
Status DeleteLink(const std::string& name);

// Creates (or keeps) bridge sv-<network> with gateway/prefix on it, up.
Status EnsureBridge(const std::string& network, const std::string& gateway_cidr);
Status RemoveBridge(const std::string& network);

// A persistent tap (no packet-info header, as `ip tuntap add mode tap` makes) attached to
// `bridge` and up; an existing tap of that name is kept and (re)attached.
Status EnsureTap(const std::string& tap, const std::string& bridge);

// --- Named network namespaces ------------------------------------------------------------

inline constexpr const char* kNetnsDir = "/run/netns";
std::string NetnsPath(const std::string& name);  // kNetnsDir + "/" + name
// Makes /run/netns/NAME (fails with kConflict if it exists) holding a new namespace.
Status CreateNetns(const std::string& name);
// Unmounts and removes it; absent is fine. Its veth ends go with it.
Status DeleteNetns(const std::string& name);

// One veth pair: `host` end on `bridge` (up) in this namespace, `inside` end in the
// container's namespace with `address`/`prefix`, up.
struct NamespaceLink {
  std::string host;    // <= 15 characters
  std::string inside;  // e.g. eth0
  std::string bridge;
  std::string address;  // a.b.c.d
  int prefix = 24;
  std::string gateway;  // the first link's is the namespace's default route
};
// (Re)makes namespace `name` with these links and loopback up: an earlier namespace of the
// name and stale host ends are removed first.
Status SetUpNamespace(const std::string& name, const std::vector<NamespaceLink>& links);

// --- Firewall ----------------------------------------------------------------------------

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

// A libnftables context, kept open by its owner (the daemon): closing its netlink socket
// costs the kernel an RCU grace period, 5-20 ms measured here, paid once per object rather
// than once per transaction. Calls are serialized.
class Nftables {
 public:
  static Result<Nftables> Open();
  Nftables(Nftables&&) noexcept;
  Nftables& operator=(Nftables&&) noexcept;
  ~Nftables();
  // Runs nft command text in one transaction; returns what it printed (e.g. for `list`).
  Result<std::string> Run(const std::string& commands);

 private:
  struct Impl;
  explicit Nftables(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The table of the daemon whose state directory this is: "storevisor-" + 8 hex digits of
// a hash of the path, so two daemons on one host (two state directories) get two tables.
std::string DefaultTableName(const std::string& state_dir);
// A table name given as an option: 1 to 64 of [A-Za-z0-9_-], starting with a letter.
Status CheckTableName(const std::string& table);

inline constexpr const char* kLegacyTable = "storevisor";  // the one-table-per-host name

// The nftables ruleset text of table inet `table` for these networks and ports (pure).
std::string FirewallRules(const std::string& table, const std::vector<FirewallNetwork>& networks,
                          const std::vector<PublishedPort>& ports);
// Replaces table inet `table` with the rules in one transaction (no moment without rules);
// enables forwarding. No networks: the table is removed.
Status ApplyFirewall(Nftables& nft, const std::string& table,
                     const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports);
Status FlushFirewall(Nftables& nft, const std::string& table);
// The same with a context of their own (one more grace period per call).
Status ApplyFirewall(const std::string& table, const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports);
Status FlushFirewall(const std::string& table);

// Earlier signatures: table kLegacyTable (one per host). Kept until every caller names its
// table.
std::string FirewallRules(const std::vector<FirewallNetwork>& networks,
                          const std::vector<PublishedPort>& ports);
Status ApplyFirewall(const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports);
Status FlushFirewall();

// Nftables::Run on a context of its own.
Result<std::string> RunNft(const std::string& commands);

}  // namespace storevisor::net
