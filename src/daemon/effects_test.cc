#include "daemon/effects.h"

#include <gtest/gtest.h>

namespace storevisor::daemon {
namespace {

Profile Parse(const std::string& update, const std::string& network) {
  const std::string text =
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: t}\nspec:\n"
      "  networks: [{name: " +
      network +
      ", subnet: 10.77.1.0/24}]\n"
      "  workloads:\n"
      "    - {name: pos, kind: container, image: a:1, networks: [" +
      network + "]" + update +
      "}\n"
      "    - {name: kv, kind: container, image: b:1, networks: [" +
      network + "]}\n";
  auto p = ParseProfile(text, "store.yaml");
  EXPECT_TRUE(p) << p.error().message();
  return p ? *p : Profile{};
}

TEST(KeptNetworksTest, AManualInstanceKeepsTheNetworkItIsOn) {
  const Profile old = Parse(", update: manual", "lanold");
  const Profile next = Parse(", update: manual", "lannew");
  const std::vector<InstanceOnNetworks> instances = {
      {"pos", RuntimeHash(*old.Find("pos")), old.Find("pos")},
      {"kv", RuntimeHash(*old.Find("kv")), old.Find("kv")}};
  // pos (manual) is kept on lanold; kv is replaced onto lannew.
  auto kept = KeptInstances(next, instances);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].name, "pos");
  auto nets = KeptNetworks(next, old.networks, kept);
  ASSERT_EQ(nets.size(), 1u);
  EXPECT_EQ(nets[0].name, "lanold");
  EXPECT_EQ(nets[0].subnet, "10.77.1.0/24");
  // Once pos runs from the new spec, nothing is kept.
  EXPECT_TRUE(
      KeptInstances(next, {{"pos", RuntimeHash(*next.Find("pos")), next.Find("pos")}}).empty());
  // Without update: manual, pos is replaced: nothing is kept.
  const Profile recreate = Parse("", "lannew");
  EXPECT_TRUE(KeptInstances(recreate, instances).empty());
  // A network the next profile declares is its own, not a kept one.
  EXPECT_TRUE(KeptNetworks(old, old.networks, kept).empty());
}

}  // namespace
}  // namespace storevisor::daemon
