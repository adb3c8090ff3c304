#include "net/net.h"

#include <gtest/gtest.h>

#include "net/check.h"

namespace storevisor::net {
namespace {

TEST(NetTest, IsolatesNetworksUnlessAllowedAndPublishesPorts) {
  std::string rules = FirewallRules("storevisor-0badcafe",
                                    {{"back", "10.88.1.0/24", {}},
                                     {"front", "10.88.2.0/24", {"back"}},
                                     {"cam", "10.88.3.0/24", {}}},
                                    {{18080, "10.88.1.3", 8080}});
  EXPECT_EQ(rules.rfind("table inet storevisor-0badcafe {\n", 0), 0u);
  EXPECT_NE(rules.find("iifname \"sv-front\" oifname \"sv-back\" accept"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"sv-back\" oifname \"sv-front\" accept"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"sv-cam\" oifname \"sv-back\" drop"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"sv-front\" oifname \"sv-cam\" drop"), std::string::npos);
  EXPECT_NE(rules.find("    tcp dport 18080 dnat ip to 10.88.1.3:8080\n"), std::string::npos);
  EXPECT_NE(rules.find("ip daddr 127.0.0.1 tcp dport 18080 dnat ip to 10.88.1.3:8080"),
            std::string::npos);
  EXPECT_NE(rules.find("ip saddr 10.88.3.0/24 oifname != \"sv-cam\" masquerade"),
            std::string::npos);
  // One table holds everything: no second table of another name.
  EXPECT_EQ(rules.find("table", 1), std::string::npos);
  EXPECT_EQ(BridgeName("back"), "sv-back");
  EXPECT_EQ(FirewallRules({}, {}).rfind("table inet storevisor {", 0), 0u);
}

TEST(NetTest, TableNamesComeFromTheStateDirectory) {
  const std::string a = DefaultTableName("/var/lib/storevisor");
  EXPECT_EQ(a.size(), std::string("storevisor-").size() + 8);
  EXPECT_EQ(a.rfind("storevisor-", 0), 0u);
  EXPECT_EQ(a, DefaultTableName("/var/lib/storevisor/"));
  EXPECT_NE(a, DefaultTableName("/tmp/e2e/state"));
  EXPECT_TRUE(CheckTableName(a));
  EXPECT_TRUE(CheckTableName("sv_test-2"));
  for (const char* bad : {"", "1abc", "a b", "a;delete table inet x", "a\"", "a\n",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    Status st = CheckTableName(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  }
}

class FakeHost : public HostProbe {
 public:
  std::vector<HostAddress> addresses;
  std::vector<BoundPort> bound;
  Result<std::vector<HostAddress>> Addresses() const override { return addresses; }
  Result<std::vector<BoundPort>> BoundPorts() const override { return bound; }
};

ProfileNetworks Demo() {
  ProfileNetworks p;
  p.file = "store.yaml";
  p.networks = {{"front", "10.88.0.0/16", 8}, {"back", "10.89.1.0/24", 12}};
  p.ports = {{18080, "kv", "spec.workloads[1].ports[0].host", 30}};
  return p;
}

TEST(NetCheckTest, AcceptsAProfileThatFitsTheHost) {
  FakeHost host;
  host.addresses = {{"lo", "127.0.0.1", 8}, {"eth0", "192.0.2.2", 24}};
  host.bound = {{"tcp", "0.0.0.0", 22}, {"udp", "0.0.0.0", 18081}};
  EXPECT_TRUE(CheckProfileNetworks(Demo(), host));
}

TEST(NetCheckTest, RefusesSubnetsOverlappingEachOther) {
  ProfileNetworks p = Demo();
  p.networks[1].subnet = "10.88.1.0/24";
  Status st = CheckProfileNetworks(p, FakeHost());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.error().message(),
            "store.yaml:12: spec.networks[1].subnet: 10.88.1.0/24 overlaps network 'front' "
            "(10.88.0.0/16, line 8)");
  p.networks[1].subnet = "10.88.0.0/16";  // the same subnet twice
  EXPECT_FALSE(CheckProfileNetworks(p, FakeHost()));
  p.networks[1].subnet = "10.0.0.0/8";  // a wider one after
  EXPECT_FALSE(CheckProfileNetworks(p, FakeHost()));
  p.networks[1].subnet = "10.87.255.0/24";  // adjacent: fine
  EXPECT_TRUE(CheckProfileNetworks(p, FakeHost()));
}

TEST(NetCheckTest, RefusesSubnetsOverlappingAHostAddressButNotItsOwnBridges) {
  ProfileNetworks p = Demo();
  FakeHost host;
  host.addresses = {{"wlan0", "10.88.7.9", 24}, {"sv-back", "10.89.1.1", 24}};
  Status st = CheckProfileNetworks(p, host);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "store.yaml:8: spec.networks[0].subnet: 10.88.0.0/16 overlaps 10.88.7.9/24 on "
            "wlan0, an address already on this host; choose another subnet");
  host.addresses.erase(host.addresses.begin());
  // sv-back is another daemon's bridge (not in own_bridges): refused too.
  st = CheckProfileNetworks(p, host);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("spec.networks[1].subnet: 10.89.1.0/24 overlaps 10.89.1.1"),
            std::string::npos);
  p.own_bridges = {"sv-back"};
  EXPECT_TRUE(CheckProfileNetworks(p, host));
  // A host network wider than the subnet overlaps it as well.
  host.addresses = {{"eth1", "10.1.2.3", 8}};
  EXPECT_FALSE(CheckProfileNetworks(p, host));
}

TEST(NetCheckTest, RefusesAPortBoundByAnotherProcessTcpOrUdpAnyAddress) {
  ProfileNetworks p = Demo();
  for (const BoundPort& b :
       {BoundPort{"tcp", "0.0.0.0", 18080}, BoundPort{"tcp6", "::1", 18080},
        BoundPort{"udp", "127.0.0.1", 18080}, BoundPort{"udp6", "::", 18080}}) {
    FakeHost host;
    host.bound = {b};
    Status st = CheckProfileNetworks(p, host);
    ASSERT_FALSE(st) << b.protocol;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(st.error().message().rfind("store.yaml:30: spec.workloads[1].ports[0].host: host "
                                         "port 18080 is already bound by another process (" +
                                             b.protocol + " ",
                                         0),
              0u)
        << st.error().message();
  }
  FakeHost host;
  host.bound = {{"tcp", "0.0.0.0", 18080}};
  // This daemon publishes it for the same workload: fine; for another one: not.
  p.own_ports = {{18080, "kv"}};
  EXPECT_TRUE(CheckProfileNetworks(p, host));
  p.own_ports = {{18080, "web"}};
  EXPECT_FALSE(CheckProfileNetworks(p, host));
}

TEST(NetCheckTest, ReadsProcNetSockets) {
  const std::string tcp =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
      "   1: 0200000A:D431 0100000A:0016 01 00000000:00000000 00:00000000 00000000     0\n";
  auto ports = ParseProcNetSockets(tcp, "tcp");
  ASSERT_EQ(ports.size(), 1u);  // the established connection is not a listener
  EXPECT_EQ(ports[0].address, "127.0.0.1");
  EXPECT_EQ(ports[0].port, 8080);
  EXPECT_EQ(ParseProcNetSockets(tcp, "udp").size(), 2u);  // UDP: every bound socket
  const std::string tcp6 =
      "  sl  local_address                         remote_address                        st\n"
      "   0: 00000000000000000000000001000000:4E98 00000000000000000000000000000000:0000 0A\n";
  ports = ParseProcNetSockets(tcp6, "tcp6");
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].address, "::1");
  EXPECT_EQ(ports[0].port, 20120);
}

TEST(NetCheckTest, SkipsNastyProcNetLines) {
  for (const char* text :
       {"", ":", "   0: zz:1F90 00:0 0A\n", "   0: 0100007F:FFFFF 0 0A\n", "0: 0100007F: 0 0A\n",
        "   0: 0100007F:0000 00000000:0000 0A\n", "   0: 0100007F 00000000:0000 0A\n",
        "   0: 0100007F:1F90\n", "   0: 0100007F0:1F90 0 0A\n"}) {
    EXPECT_TRUE(ParseProcNetSockets(text, "tcp").empty()) << text;
    EXPECT_TRUE(ParseProcNetSockets(text, "tcp6").empty()) << text;
  }
}

}  // namespace
}  // namespace storevisor::net
