#include "daemon/net_check.h"

#include <gtest/gtest.h>

namespace storevisor::daemon {
namespace {

class FakeHost : public net::HostProbe {
 public:
  std::vector<net::HostAddress> addresses;
  std::vector<net::BoundPort> bound;
  Result<std::vector<net::HostAddress>> Addresses() const override { return addresses; }
  Result<std::vector<net::BoundPort>> BoundPorts() const override { return bound; }
};

Profile Parse(const std::string& networks, int host_port) {
  const std::string text =
      "apiVersion: storevisor.io/v1\n"  // 1
      "kind: StoreProfile\n"            // 2
      "metadata:\n"                     // 3
      "  name: t\n"                     // 4
      "spec:\n"                         // 5
      "  networks:\n"                   // 6
      "    - name: front\n"             // 7
      "      subnet: 10.88.0.0/16\n" +  // 8
      networks +                        // 9, 10
      "  workloads:\n"                  // 11
      "    - name: kv\n"                // 12
      "      kind: container\n"         // 13
      "      image: storevisor/kv:1\n"  // 14
      "      networks: [front]\n"       // 15
      "      ports:\n"                  // 16
      "        - host: " +
      std::to_string(host_port) +  // 17
      "\n          container: 6379\n";
  auto p = ParseProfile(text, "store.yaml");
  EXPECT_TRUE(p) << p.error().message();
  return p ? *p : Profile{};
}

TEST(NetCheckAtApplyTest, NamesTheFileLineAndFieldOfOverlappingSubnets) {
  Profile p = Parse("    - name: back\n      subnet: 10.88.1.0/24\n", 18080);
  Status st = CheckNetworksAtApply(p, nullptr, {}, FakeHost());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.error().message(),
            "store.yaml:9: spec.networks[1].subnet: 10.88.1.0/24 overlaps network 'front' "
            "(10.88.0.0/16, line 7)");
}

TEST(NetCheckAtApplyTest, NamesThePortsLineAndAcceptsThisDaemonsOwnPort) {
  Profile p = Parse("    - name: back\n      subnet: 10.89.1.0/24\n", 18080);
  FakeHost host;
  host.bound = {{"tcp", "0.0.0.0", 18080}};
  Status st = CheckNetworksAtApply(p, nullptr, {}, host);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message().rfind(
                "store.yaml:17: spec.workloads[0].ports[0].host: host port 18080 is already "
                "bound by another process (tcp 0.0.0.0:18080)",
                0),
            0u)
      << st.error().message();
  EXPECT_TRUE(CheckNetworksAtApply(p, &p, {}, host));  // published by this daemon for kv
  host.bound.clear();
  host.addresses = {{"sv-front", "10.88.0.1", 16}};
  EXPECT_FALSE(CheckNetworksAtApply(p, nullptr, {}, host));
  EXPECT_TRUE(CheckNetworksAtApply(p, nullptr, {"sv-front"}, host));
}

}  // namespace
}  // namespace storevisor::daemon
