#include "daemon/store/state_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/files.h"

namespace storevisor::daemon {
namespace {

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sv-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string dir_;
};

TEST_F(StateStoreTest, RecordsSurviveReopening) {
  {
    auto store = StateStore::Open(dir_ + "/state.db");
    ASSERT_TRUE(store.has_value()) << store.error().message();
    WorkloadRecord r;
    r.name = "kv";
    r.pid = 42;
    r.phase = "running";
    ASSERT_TRUE((*store)->Put(r).has_value());
    ASSERT_TRUE((*store)->SetMeta("profile", "yaml").has_value());
    ASSERT_TRUE((*store)->AddEvent("kv", "started", "pid 42").has_value());
  }
  auto store = StateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.has_value());
  auto r = (*store)->Get("kv");
  ASSERT_TRUE(r.has_value() && r->has_value());
  EXPECT_EQ((*r)->pid, 42);
  EXPECT_EQ((*r)->phase, "running");
  EXPECT_EQ(**(*store)->GetMeta("profile"), "yaml");
  auto events = (*store)->EventsSince(0, 10);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].message, "pid 42");
  EXPECT_FALSE((*(*store)->Get("nope")).has_value());
}

TEST_F(StateStoreTest, IpamHandsOutStableDistinctAddresses) {
  auto store = StateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.has_value());
  auto& s = **store;
  EXPECT_EQ(*s.AllocateAddress("back", "10.88.1.0/24", "kv"), "10.88.1.2");
  EXPECT_EQ(*s.AllocateAddress("back", "10.88.1.0/24", "inv"), "10.88.1.3");
  EXPECT_EQ(*s.AllocateAddress("back", "10.88.1.0/24", "kv"), "10.88.1.2");
  ASSERT_TRUE(s.ReleaseAddresses("kv").has_value());
  EXPECT_EQ(*s.AllocateAddress("back", "10.88.1.0/24", "pos"), "10.88.1.2");
  EXPECT_EQ(*s.AllocateAddress("tiny", "10.0.0.0/30", "a"), "10.0.0.2");
  EXPECT_FALSE(s.AllocateAddress("tiny", "10.0.0.0/30", "b").has_value());
}

}  // namespace
}  // namespace storevisor::daemon
