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
    ASSERT_TRUE((*store)->AddEvent(Event{0, 0, "kv", "started", "pid 42", "", "", ""}).has_value());
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

GenerationRecord Gen(const std::string& yaml, const std::string& key) {
  GenerationRecord g;
  g.digest = "sha256:" + yaml;
  g.idempotency_key = key;
  g.profile_name = "demo";
  g.file = "demo.yaml";
  g.yaml = yaml;
  g.identity = "unix:uid=0";
  g.applied_at_ms = 1000;
  return g;
}

Event Applied(int64_t generation) {
  Event e;
  e.ts_ms = 1000;
  e.type = "applied";
  e.message = "generation " + std::to_string(generation);
  return e;
}

TEST_F(StateStoreTest, ApplyIsOneTransactionNumberedAfterTheLast) {
  auto store = StateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.has_value());
  auto& s = **store;
  // A store written before the generations table counts on from its meta "generation".
  ASSERT_TRUE(s.SetMeta("generation", "4").has_value());
  auto first = s.CommitApply(Gen("a", "key-1"), 50, Applied);
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(first->generation, 5);
  auto second = s.CommitApply(Gen("b", ""), 50, Applied);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->generation, 6);
  EXPECT_EQ(**s.GetMeta("profile"), "b");
  EXPECT_EQ(**s.GetMeta("profile_file"), "demo.yaml");
  EXPECT_EQ(**s.GetMeta("generation"), "6");
  auto events = s.EventsSince(0, 10);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].message, "generation 6");
  auto by_key = s.FindGeneration("key-1");
  ASSERT_TRUE(by_key.has_value() && by_key->has_value());
  EXPECT_EQ((*by_key)->generation, 5);
  EXPECT_EQ((*by_key)->yaml, "a");
  auto by_digest = s.FindGeneration("sha256:b");
  ASSERT_TRUE(by_digest.has_value() && by_digest->has_value());
  EXPECT_EQ((*by_digest)->generation, 6);
  EXPECT_FALSE(s.FindGeneration("key-2")->has_value());
  // An empty key never matches the applies made without one.
  EXPECT_FALSE(s.FindGeneration("")->has_value());
}

TEST_F(StateStoreTest, AFailedApplyLeavesNothing) {
  auto store = StateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.has_value());
  auto& s = **store;
  ASSERT_TRUE(s.CommitApply(Gen("a", ""), 50, Applied).has_value());
  // The event's insert, the transaction's last write, fails: what came before it rolls back.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE events", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto failed = s.CommitApply(Gen("b", "k"), 50, Applied);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(**s.GetMeta("profile"), "a");
  EXPECT_EQ(**s.GetMeta("generation"), "1");
  EXPECT_FALSE(s.FindGeneration("k")->has_value());
}

TEST_F(StateStoreTest, ATrialEndsCommittedOrRolledBackToTheLastCommitted) {
  auto store = StateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.has_value());
  auto& s = **store;
  ASSERT_TRUE(s.CommitApply(Gen("a", ""), 50, Applied).has_value());
  EXPECT_EQ((*s.GetGeneration(1))->outcome, kOutcomeTrial);
  Event committed;
  committed.ts_ms = 2000;
  committed.type = "committed";
  ASSERT_TRUE(s.EndTrial(1, kOutcomeCommitted, "", 2000, 0, committed).has_value());
  ASSERT_TRUE(s.CommitApply(Gen("b", ""), 50, Applied).has_value());
  // A newer apply during a trial supersedes it.
  ASSERT_TRUE(s.CommitApply(Gen("c", ""), 50, Applied).has_value());
  EXPECT_EQ((*s.GetGeneration(2))->outcome, kOutcomeSuperseded);
  EXPECT_EQ((*s.GetGeneration(2))->reason, "generation 3 was applied during its trial");
  auto base = s.LastCommitted(3);
  ASSERT_TRUE(base.has_value() && base->has_value());
  EXPECT_EQ((*base)->generation, 1);
  Event rolled;
  rolled.ts_ms = 3000;
  rolled.type = "rolled-back";
  rolled.message = "generation 3 rolled back to generation 1: kv exited with status 1";
  ASSERT_TRUE(s.EndTrial(3, kOutcomeRolledBack, "kv exited with status 1", 3000, 1, rolled));
  // The outcome, the restored profile and the event, together.
  auto g3 = *s.GetGeneration(3);
  EXPECT_EQ(g3->outcome, kOutcomeRolledBack);
  EXPECT_EQ(g3->reason, "kv exited with status 1");
  EXPECT_EQ(g3->decided_at_ms, 3000);
  EXPECT_EQ(**s.GetMeta("profile"), "a");
  EXPECT_EQ(**s.GetMeta("generation"), "1");
  EXPECT_EQ(s.EventsSince(0, 10)->back().type, "rolled-back");
  // The next apply is numbered after every generation, not after the restored one.
  EXPECT_EQ(s.CommitApply(Gen("d", ""), 50, Applied)->generation, 4);
  auto list = s.ListGenerations(2);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].generation, 4);
  EXPECT_EQ((*list)[1].generation, 3);
  // A generation that is not kept cannot be restored, and nothing changes.
  EXPECT_FALSE(s.EndTrial(4, kOutcomeRolledBack, "x", 4000, 99, rolled).has_value());
  EXPECT_EQ((*s.GetGeneration(4))->outcome, kOutcomeTrial);
  EXPECT_EQ(**s.GetMeta("profile"), "d");
}

TEST_F(StateStoreTest, OldGenerationsArePrunedButNotTheLastCommitted) {
  auto store = StateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.has_value());
  auto& s = **store;
  ASSERT_TRUE(s.CommitApply(Gen("g1", ""), 3, Applied).has_value());
  ASSERT_TRUE(s.EndTrial(1, kOutcomeCommitted, "", 1000, 0, Applied(1)).has_value());
  for (int i = 2; i <= 8; ++i) {
    ASSERT_TRUE(s.CommitApply(Gen("g" + std::to_string(i), ""), 3, Applied).has_value());
  }
  auto list = s.ListGenerations(100);
  ASSERT_TRUE(list.has_value());
  std::vector<int64_t> kept;
  for (const auto& g : *list) kept.push_back(g.generation);
  EXPECT_EQ(kept, (std::vector<int64_t>{8, 7, 6, 1}));
}

}  // namespace
}  // namespace storevisor::daemon
