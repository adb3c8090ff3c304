#include "runtime/cgroup.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>

#include "runtime/mounts.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

namespace storevisor::runtime {
namespace {

TEST(CgroupTest, ValueTranslationsMatchRuncAndCrun) {
  EXPECT_EQ(CpuSharesToWeight(1024), 39u);
  EXPECT_EQ(CpuSharesToWeight(2), 1u);
  EXPECT_EQ(CpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(CpuSharesToWeight(0), 0u);
  EXPECT_EQ(BlkioWeightToIoWeight(10), 1u);
  EXPECT_EQ(BlkioWeightToIoWeight(1000), 10000u);
  EXPECT_EQ(BlkioWeightToIoWeight(500), 4950u);
}

TEST(CgroupTest, DetectsALayout) {
  auto mode = DetectCgroupMode();
  ASSERT_TRUE(mode.has_value()) << mode.error().message();
  EXPECT_FALSE(CgroupModeName(*mode).empty());
  EXPECT_FALSE(DetectCgroupMode("/nonexistent").has_value());
}

TEST(CgroupTest, BadPathsAreRefusedBeforeAnyMkdir) {
  EXPECT_FALSE(Cgroup::Create(CgroupMode::kLegacy, "/a/../b", "/nonexistent").has_value());
  EXPECT_FALSE(Cgroup::Create(CgroupMode::kLegacy, "/", "/nonexistent").has_value());
}

TEST(SignalTest, ParsesNamesAndNumbers) {
  EXPECT_EQ(*ParseSignal("KILL"), SIGKILL);
  EXPECT_EQ(*ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("9"), 9);
  EXPECT_FALSE(ParseSignal("SIGNOPE").has_value());
  EXPECT_FALSE(ParseSignal("99999").has_value());
  EXPECT_FALSE(ParseSignal("").has_value());
}

TEST(MountOptionsTest, SplitsFlagsPropagationAndData) {
  MountFlags f = ParseMountOptions({"nosuid", "ro", "rbind", "rslave", "mode=755", "size=1k"});
  EXPECT_TRUE(f.bind);
  EXPECT_TRUE(f.recursive);
  EXPECT_EQ(f.flags & (MS_NOSUID | MS_RDONLY), static_cast<unsigned long>(MS_NOSUID | MS_RDONLY));
  EXPECT_EQ(f.propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(f.data, "mode=755,size=1k");
  EXPECT_EQ(ParseMountOptions({"ro", "rw"}).flags & MS_RDONLY, 0u);
  EXPECT_EQ(ParsePropagation("bogus"), 0u);
}

TEST(SeccompTest, CompilesTheDefaultProfileAndRefusesBadOnes) {
  auto profile = SeccompFromJson(DefaultSeccompProfileJson());
  ASSERT_TRUE(profile.has_value()) << profile.error().message();
  auto prog = CompileSeccomp(*profile, "");
  ASSERT_TRUE(prog.has_value()) << prog.error().message();
  EXPECT_GT(prog->filter.size(), 10u);
  Seccomp bad = *profile;
  bad.default_action = "SCMP_ACT_DANCE";
  EXPECT_FALSE(CompileSeccomp(bad, "").has_value());
  bad = *profile;
  bad.architectures = {"SCMP_ARCH_Z80"};
  EXPECT_FALSE(CompileSeccomp(bad, "").has_value());
}

}  // namespace
}  // namespace storevisor::runtime
