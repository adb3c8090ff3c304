// LegacyVm without QEMU: re-adoption of stale or corrupt state dirs and their cleanup.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/sv-legacy-state-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  bool Exists(const std::string& name) const {
    return ::access((dir_ + "/" + name).c_str(), F_OK) == 0;
  }
  std::string dir_;
};

TEST_F(StateDirTest, EmptyDirHasNoVm) {
  auto vm = LegacyVm::Attach(dir_);
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(vm.error().message().find("no meta.json"), std::string::npos);
}

TEST_F(StateDirTest, DeadPidIsNotAdoptedAndItsLeftoversAreCleaned) {
  // pid 1 exists but is not QEMU: a recycled pid must not be taken for the VM.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/meta.json", R"({"pid":1,"accel":"tcg","accel_reason":"x",
      "created_taps":[],"started_unix_ms":0,"vnc":""})")
                  .has_value());
  for (const char* f : {"qmp.sock", "qmp-events.sock", "vnc.sock", "qemu.pid"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/" + f, "").has_value());
  }
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/disk0.qcow2", "keep").has_value());
  auto vm = LegacyVm::Attach(dir_);
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(vm.error().message().find("is not running (pid 1 is gone)"), std::string::npos);
  ASSERT_TRUE(CleanupStateDir(dir_).has_value());
  for (const char* f : {"qmp.sock", "qmp-events.sock", "vnc.sock", "qemu.pid", "meta.json"}) {
    EXPECT_FALSE(Exists(f)) << f;
  }
  EXPECT_TRUE(Exists("disk0.qcow2")) << "the VM's disk overlay outlives a stop";
}

TEST_F(StateDirTest, CorruptMetaIsAClearError) {
  for (const char* bad : {"", "{", "[]", R"({"pid":"x"})", R"({"pid":2})"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/meta.json", bad).has_value());
    auto vm = LegacyVm::Attach(dir_);
    ASSERT_FALSE(vm.has_value()) << bad;
    EXPECT_EQ(vm.error().code(), ErrorCode::kGuestFault) << bad;
    EXPECT_NE(vm.error().message().find("meta.json"), std::string::npos) << vm.error().message();
  }
}

}  // namespace
}  // namespace storevisor::legacy
