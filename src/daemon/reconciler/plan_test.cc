#include "daemon/reconciler/plan.h"

#include <gtest/gtest.h>

namespace storevisor::daemon {
namespace {

Profile Demo() {
  auto p = ParseProfile(
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: t}\nspec:\n"
      "  workloads:\n"
      "    - {name: kv, kind: container, image: kv}\n"
      "    - {name: inv, kind: container, image: inv, after: [kv]}\n"
      "    - {name: pay, kind: container, image: pay, after: [kv]}\n"
      "    - {name: pos, kind: container, image: pos, after: [inv, pay]}\n",
      "t.yaml");
  EXPECT_TRUE(p.has_value()) << p.error().message();
  return *p;
}

std::vector<WorkloadRecord> Applied(const Profile& p) {
  std::vector<WorkloadRecord> out;
  for (const auto& w : p.workloads) {
    WorkloadRecord r;
    r.name = w.name;
    r.runtime_hash = RuntimeHash(w);
    r.spec_hash = SpecHash(w);
    r.phase = "running";
    out.push_back(r);
  }
  return out;
}

std::string Describe(const Plan& plan) {
  std::string out;
  for (const auto& s : plan.steps)
    out += std::string(StepActionName(s.action)) + ":" + s.name + " ";
  return out;
}

TEST(PlanTest, EmptyStoreCreatesEverythingInDependencyOrder) {
  EXPECT_EQ(Describe(ComputePlan(Demo(), {})), "create:kv create:inv create:pay create:pos ");
}

TEST(PlanTest, StartGroupsAreTopologicalLevels) {
  auto groups = StartGroups(Demo());
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0], std::vector<std::string>{"kv"});
  EXPECT_EQ(groups[1], (std::vector<std::string>{"inv", "pay"}));
  EXPECT_EQ(groups[2], std::vector<std::string>{"pos"});
}

TEST(PlanTest, ConvergedStoreNeedsNothing) {
  Profile p = Demo();
  EXPECT_TRUE(ComputePlan(p, Applied(p)).steps.empty());
}

TEST(PlanTest, ChangingOneWorkloadTouchesOnlyIt) {
  Profile p = Demo();
  auto records = Applied(p);
  p.workloads[1].env["COLOUR"] = "blue";
  EXPECT_EQ(Describe(ComputePlan(p, records)), "replace:inv ");
  Profile q = Demo();
  q.workloads[2].health.retries = 7;
  EXPECT_EQ(Describe(ComputePlan(q, records)), "update:pay ");
}

TEST(PlanTest, RemovedWorkloadIsDeletedAndFailedCreateIsRetried) {
  Profile p = Demo();
  auto records = Applied(p);
  records[0].runtime_hash.clear();
  records[0].last_error = "image not found";
  WorkloadRecord old;
  old.name = "old";
  old.runtime_hash = "x";
  records.push_back(old);
  Plan plan = ComputePlan(p, records);
  EXPECT_EQ(Describe(plan), "create:kv delete:old ");
  EXPECT_EQ(plan.steps[0].reason, "retrying after: image not found");
}

TEST(PlanTest, ManualUpdatesAndOperatorStopsAreHeld) {
  Profile p = Demo();
  auto records = Applied(p);
  p.workloads[3].update = UpdateStrategy::kManual;
  p.workloads[3].env["X"] = "1";
  records[0].desired = "stopped";
  p.workloads[0].env["Y"] = "2";
  Plan plan = ComputePlan(p, records);
  EXPECT_TRUE(plan.steps.empty()) << Describe(plan);
  ASSERT_EQ(plan.held.size(), 2u);
}

TEST(PlanTest, BackoffDoublesAndIsCapped) {
  Restart r;
  r.backoff_initial_ms = 100;
  r.backoff_max_ms = 1000;
  EXPECT_EQ(BackoffMs(r, 0), 100);
  EXPECT_EQ(BackoffMs(r, 1), 200);
  EXPECT_EQ(BackoffMs(r, 3), 800);
  EXPECT_EQ(BackoffMs(r, 4), 1000);
  EXPECT_EQ(BackoffMs(r, 1000000), 1000);
}

TEST(PlanTest, RestartPolicies) {
  Restart always;
  Restart never;
  never.policy = RestartPolicy::kNever;
  Restart on_failure;
  on_failure.policy = RestartPolicy::kOnFailure;
  on_failure.max_retries = 2;
  EXPECT_TRUE(ShouldRestart(always, 0, false, 50));
  EXPECT_FALSE(ShouldRestart(never, 1, true, 0));
  EXPECT_FALSE(ShouldRestart(on_failure, 0, false, 0));
  EXPECT_TRUE(ShouldRestart(on_failure, 1, false, 1));
  EXPECT_TRUE(ShouldRestart(on_failure, 0, true, 1));
  EXPECT_FALSE(ShouldRestart(on_failure, 1, false, 2));
}

}  // namespace
}  // namespace storevisor::daemon
