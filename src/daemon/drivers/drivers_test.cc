#include <gtest/gtest.h>
#include <unistd.h>

#include "daemon/drivers/container_driver.h"
#include "daemon/drivers/microvm_driver.h"

namespace storevisor::daemon {
namespace {

Workload Sample() {
  auto p = ParseProfile(
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: t}\nspec:\n"
      "  workloads:\n"
      "    - {name: kv, kind: container, image: kv, command: [redis-server], cpus: 0.5,\n"
      "       cpuset: '1', memory: 64Mi, env: {A: b}, mounts: [{target: /data}]}\n"
      "    - {name: pos, kind: microvm, kernel: /k, initrd: /i, cpus: 1.5, memory: 300Mi, ksm: "
      "true}\n",
      "t.yaml");
  EXPECT_TRUE(p.has_value()) << p.error().message();
  return p->workloads[0];
}

TEST(DriversTest, OciSpecCarriesLimitsEnvAndNetns) {
  auto spec = MakeOciSpec(Sample(), "/img/rootfs", "/run/netns/sv-kv", "kv");
  EXPECT_EQ(spec["process"]["args"][0], "redis-server");
  EXPECT_EQ(spec["process"]["env"][1], "A=b");
  EXPECT_EQ(spec["root"]["path"], "/img/rootfs");
  EXPECT_TRUE(spec["root"]["readonly"].get<bool>());
  EXPECT_EQ(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
  EXPECT_EQ(spec["linux"]["resources"]["cpu"]["quota"], 50000);
  EXPECT_EQ(spec["linux"]["resources"]["cpu"]["cpus"], "1");
  EXPECT_EQ(spec["linux"]["namespaces"][4]["path"], "/run/netns/sv-kv");
  EXPECT_EQ(spec["mounts"].back()["destination"], "/data");
  EXPECT_EQ(spec["mounts"].back()["type"], "tmpfs");
}

TEST(DriversTest, VmConfigFollowsTheVmEngineSchema) {
  auto p = ParseProfile(
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: t}\nspec:\n"
      "  workloads:\n"
      "    - {name: pos, kind: microvm, kernel: /k, initrd: /i, cpus: 1.5, memory: 300Mi, ksm: "
      "true}\n",
      "t.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  auto j = MakeVmConfig(p->workloads[0], "/s/console.log", {"svt1"});
  EXPECT_EQ(j["cpus"], 2);
  EXPECT_EQ(j["memory_mib"], 300);
  EXPECT_EQ(j["serial"], "file:/s/console.log");
  EXPECT_EQ(j["nets"][0]["tap"], "svt1");
  EXPECT_TRUE(j["mem_merge"].get<bool>());
}

TEST(DriversTest, ProcessLiveness) {
  EXPECT_TRUE(ProcessAlive(::getpid()));
  const uint64_t ticks = ProcessStartTicks(::getpid());
  EXPECT_GT(ticks, 0u);
  EXPECT_TRUE(ProcessAlive(::getpid(), ticks));
  EXPECT_FALSE(ProcessAlive(::getpid(), ticks + 1));  // same pid, another process
  EXPECT_FALSE(ProcessAlive(0));
}

}  // namespace
}  // namespace storevisor::daemon
