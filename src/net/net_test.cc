#include "net/net.h"

#include <gtest/gtest.h>

namespace storevisor::net {
namespace {

TEST(NetTest, IsolatesNetworksUnlessAllowedAndPublishesPorts) {
  std::string rules = FirewallRules({{"back", "10.88.1.0/24", {}},
                                     {"front", "10.88.2.0/24", {"back"}},
                                     {"cam", "10.88.3.0/24", {}}},
                                    {{18080, "10.88.1.3", 8080}});
  EXPECT_NE(rules.find("iifname \"sv-front\" oifname \"sv-back\" accept"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"sv-back\" oifname \"sv-front\" accept"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"sv-cam\" oifname \"sv-back\" drop"), std::string::npos);
  EXPECT_NE(rules.find("iifname \"sv-front\" oifname \"sv-cam\" drop"), std::string::npos);
  EXPECT_NE(rules.find("tcp dport 18080 dnat to 10.88.1.3:8080"), std::string::npos);
  EXPECT_EQ(BridgeName("back"), "sv-back");
}

}  // namespace
}  // namespace storevisor::net
