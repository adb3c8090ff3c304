// One test per rule of Decide, asserting the exact actions.
#include "daemon/core/decide.h"

#include <gtest/gtest.h>

#include "daemon/reconciler/plan.h"

namespace storevisor::daemon::core {

void PrintTo(const Action& a, std::ostream* os) {
  *os << ActionName(a.type) << "(" << a.name << ", verb '" << a.verb << "', then "
      << static_cast<int>(a.then) << ", at " << a.at_ms << ", failures " << a.failures << ", '"
      << a.reason << "')";
}

namespace {

// A profile of containers a (no check), b (exec check, after a), c (after b, started,
// holds health) on one network, with the restart settings the tests need.
constexpr char kProfile[] = R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: t}
spec:
  networks:
    - {name: back, subnet: 10.88.1.0/24}
  workloads:
    - name: a
      kind: container
      rootfs: /srv/a
      command: [/bin/true]
      networks: [back]
      restart:
        policy: on-failure
        backoff: {initial: 100ms, max: 1s}
        maxRetries: 3
    - name: b
      kind: container
      rootfs: /srv/b
      command: [/bin/true]
      after: [a]
      health:
        exec: [/bin/true]
        interval: 1s
        retries: 2
        startPeriod: 5s
    - name: c
      kind: container
      rootfs: /srv/c
      command: [/bin/true]
      after:
        - {name: b, condition: started, holds: health}
      health:
        exec: [/bin/true]
        interval: 1s
)";

class DecideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = ParseProfile(kProfile, "t.yaml");
    ASSERT_TRUE(p.has_value()) << p.error().message();
    desired_.generation = 1;
    desired_.profile = *p;
    observed_.networks_key = desired_.NetworksKey();
  }

  // A running instance of the desired spec, as the core leaves it after a create.
  WorkloadState& Running(const std::string& name, int64_t started_at = 0) {
    const Workload& w = *desired_.profile.Find(name);
    WorkloadState& s = observed_.workloads[name];
    s.name = name;
    s.kind = w.kind;
    s.spec = w;
    s.runtime_hash = RuntimeHash(w);
    s.spec_hash = SpecHash(w);
    s.phase = Phase::kRunning;
    s.health = w.health.type == HealthType::kNone ? Health::kNone : Health::kStarting;
    s.started_at_ms = started_at;
    s.pid = 100;
    s.instance = 1;
    s.next_check_ms = started_at + w.health.start_period_ms;
    return s;
  }

  std::vector<Action> Actions(int64_t now) { return Decide(desired_, observed_, now).actions; }
  Decision DecideFor(const std::string& name, int64_t now) {
    Decision d = Decide(desired_, observed_, now);
    std::erase_if(d.actions, [&](const Action& a) { return a.name != name; });
    return d;
  }
  // The actions about one workload (the others of the profile go their own way).
  std::vector<Action> ActionsFor(const std::string& name, int64_t now) {
    std::vector<Action> out;
    for (auto& a : Actions(now)) {
      if (a.name == name) out.push_back(std::move(a));
    }
    return out;
  }

  static Action Act(ActionType type, const std::string& name, const std::string& reason = "") {
    Action a;
    a.type = type;
    a.name = name;
    a.reason = reason;
    return a;
  }
  static Action Create(const std::string& name, const std::string& verb,
                       const std::string& reason) {
    Action a = Act(ActionType::kCreate, name, reason);
    a.verb = verb;
    return a;
  }
  static Action Remove(const std::string& name, AfterRemove then, const std::string& verb,
                       const std::string& reason) {
    Action a = Act(ActionType::kRemove, name, reason);
    a.then = then;
    a.verb = verb;
    return a;
  }

  Desired desired_;
  Observed observed_;
};

TEST_F(DecideTest, NetworksComeFirstAndHoldEveryCreate) {
  observed_.networks_key.reset();
  EXPECT_EQ(Actions(0), std::vector<Action>{Act(ActionType::kSetUpNetworks, "", "generation 1")});
  observed_.networks_busy = true;
  EXPECT_TRUE(Actions(0).empty());
  // A failed set-up is retried at its time, not before.
  observed_.networks_busy = false;
  observed_.networks_retry_at_ms = 500;
  auto d = Decide(desired_, observed_, 0);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_EQ(d.wake_at_ms, 500);
}

TEST_F(DecideTest, CreatesInDependencyOrder) {
  // b waits for a running and healthy; c's after: holds only its health, so it starts too.
  EXPECT_EQ(Actions(0), (std::vector<Action>{Create("a", "created", "new workload"),
                                             Create("c", "created", "new workload")}));
  Running("a");
  Running("c");
  EXPECT_EQ(ActionsFor("b", 0), std::vector<Action>{Create("b", "created", "new workload")});
  // a is running but not healthy yet (it has no check: "none" counts as healthy); make b's
  // own dependency unhealthy and b waits.
  observed_.workloads.erase("b");
  observed_.workloads["a"].health = Health::kUnhealthy;
  EXPECT_TRUE(ActionsFor("b", 0).empty());
}

TEST_F(DecideTest, ADependencyBeingReplacedHoldsItsDependants) {
  Running("a");
  desired_.profile.workloads[0].rootfs = "/srv/a2";  // a is to be replaced
  // b is not created on the strength of a's old instance; a's replacement goes first.
  EXPECT_EQ(ActionsFor("a", 0), std::vector<Action>{Remove("a", AfterRemove::kRecreate, "replaced",
                                                           "its instance settings changed")});
}

TEST_F(DecideTest, CrashLoopBacksOffDoublingToItsCapAndStopsAtMaxRetries) {
  WorkloadState& a = Running("a", 0);
  a.phase = Phase::kExited;
  a.exit_code = 1;
  const int64_t expected[] = {100, 200, 400};
  for (int i = 0; i < 3; ++i) {
    const int64_t now = 1000 * (i + 1);
    a.restarts = i;
    a.failures = i;
    a.started_at_ms = now - 10;  // ran only briefly
    a.restart_scheduled = false;
    auto actions = ActionsFor("a", now);
    ASSERT_EQ(actions.size(), 1u) << i;
    EXPECT_EQ(actions[0].type, ActionType::kScheduleRestart);
    EXPECT_EQ(actions[0].at_ms, now + expected[i]);
    EXPECT_EQ(actions[0].failures, i + 1);
    EXPECT_EQ(actions[0].reason, "restarts in " + std::to_string(expected[i]) + " ms");
  }
  // The cap: 100 ms * 2^5 is over 1 s.
  a.restarts = 0;
  a.failures = 5;
  a.started_at_ms = 9990;
  EXPECT_EQ(ActionsFor("a", 10000)[0].at_ms, 11000);
  // maxRetries 3 reached: no restart.
  a.restarts = 3;
  EXPECT_EQ(ActionsFor("a", 10000),
            std::vector<Action>{
                Act(ActionType::kGiveUp, "a", "it was restarted 3 times (maxRetries 3)")});
}

TEST_F(DecideTest, ARestartWaitsForItsBackoffThenCreates) {
  WorkloadState& a = Running("a");
  a.phase = Phase::kExited;
  a.restart_scheduled = true;
  a.retry_at_ms = 700;
  auto d = DecideFor("a", 600);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_EQ(d.wake_at_ms, 700);
  EXPECT_EQ(ActionsFor("a", 700),
            std::vector<Action>{Create("a", "restarted", "its restart policy")});
}

TEST_F(DecideTest, ALongRunStartsTheBackoffOver) {
  WorkloadState& a = Running("a", 0);
  a.phase = Phase::kExited;
  a.exit_code = 1;
  a.failures = 4;
  auto actions = ActionsFor("a", kStableMs + 1);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].at_ms, kStableMs + 1 + 100);
  EXPECT_EQ(actions[0].failures, 1);
}

TEST_F(DecideTest, OnFailureDoesNotRestartACleanExit) {
  WorkloadState& a = Running("a");
  a.phase = Phase::kExited;
  a.exit_code = 0;
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Act(ActionType::kGiveUp, "a", "it exited with status 0")});
}

TEST_F(DecideTest, AnEndedProcessIsInspectedFirst) {
  WorkloadState& a = Running("a");
  a.ended = true;
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Act(ActionType::kInspect, "a", "a process of it ended")});
}

TEST_F(DecideTest, ADeadShimsLeftoversAreRemovedBeforeTheRestart) {
  WorkloadState& a = Running("a");
  a.phase = Phase::kExited;
  a.leftover = true;
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Remove("a", AfterRemove::kExited, "", "what is left of it")});
}

TEST_F(DecideTest, ChecksWaitForStartPeriodAndRunAtTheirTime) {
  Running("a");
  WorkloadState& b = Running("b", 0);
  Running("c");
  observed_.workloads["c"].check_running = true;
  auto d = Decide(desired_, observed_, 1000);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_EQ(d.wake_at_ms, 5000);  // startPeriod 5s
  EXPECT_EQ(Actions(5000), std::vector<Action>{Act(ActionType::kRunCheck, "b")});
  b.check_running = true;
  EXPECT_TRUE(Actions(5000).empty());  // one check at a time
}

TEST_F(DecideTest, FailuresCountOnlyOutsideStartPeriodAndTheFirstInterval) {
  WorkloadState& b = Running("b", 0);
  EXPECT_FALSE(CheckFailureCounts(b, 4999));  // startPeriod
  // Starting: fast probes do not count until interval * retries (2 s) have passed...
  b.spec.health.start_period_ms = 0;
  EXPECT_FALSE(CheckFailureCounts(b, 1999));
  EXPECT_TRUE(CheckFailureCounts(b, 2000));
  // ...and once healthy every failure counts.
  b.health = Health::kHealthy;
  EXPECT_TRUE(CheckFailureCounts(b, 1));
  EXPECT_EQ(NextCheckDelayMs(b.spec.health, Health::kStarting), kStartingProbeMs);
  EXPECT_EQ(NextCheckDelayMs(b.spec.health, Health::kHealthy), 1000);
}

TEST_F(DecideTest, HealthFlappingNeedsRetriesInARow) {
  Running("a");
  WorkloadState& b = Running("b", 1);
  b.health = Health::kHealthy;
  b.check_running = true;
  b.health_failures = 1;  // one failure: retries is 2
  EXPECT_TRUE(ActionsFor("b", 6000).empty());
  b.health_failures = 2;
  EXPECT_EQ(ActionsFor("b", 6000), (std::vector<Action>{
                                       Act(ActionType::kMarkUnhealthy, "b", ""),
                                       Remove("b", AfterRemove::kExited, "", "unhealthy"),
                                   }));
  // A success resets the count (the core does that), and a passing check marks it healthy.
  b.health_failures = 0;
  b.health = Health::kUnhealthy;
  b.check_ok = true;
  EXPECT_EQ(ActionsFor("b", 6000), std::vector<Action>{Act(ActionType::kMarkHealthy, "b", "")});
}

TEST_F(DecideTest, AnUnhealthyWorkloadWithRestartNeverKeepsRunning) {
  Running("a");
  desired_.profile.workloads[1].restart.policy = RestartPolicy::kNever;
  WorkloadState& b = Running("b");
  b.check_running = true;
  b.health_failures = 2;
  EXPECT_EQ(ActionsFor("b", 6000), std::vector<Action>{Act(ActionType::kMarkUnhealthy, "b", "")});
}

TEST_F(DecideTest, HoldsHealthGatesOnlyTheHealthyMark) {
  Running("a");
  WorkloadState& b = Running("b");
  b.op = Op::kCreate;  // b is not running (being made): c's gate (b started) is not met
  WorkloadState& c = Running("c");
  c.check_ok = true;
  c.check_running = true;
  EXPECT_TRUE(ActionsFor("c", 0).empty());
  b.op = Op::kNone;
  EXPECT_EQ(ActionsFor("c", 0), std::vector<Action>{Act(ActionType::kMarkHealthy, "c", "")});
}

TEST_F(DecideTest, OperatorHoldsRemoveTheInstanceAndStay) {
  WorkloadState& a = Running("a");
  a.intent = Intent::kStopped;
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Remove("a", AfterRemove::kHold, "", "stopped by the operator")});
  a.phase = Phase::kStopped;
  // Held: nothing is created again, whatever its restart policy, until the hold ends.
  EXPECT_TRUE(ActionsFor("a", 100000).empty());
  a.intent = Intent::kRunning;
  a.next_verb = "started";
  EXPECT_EQ(ActionsFor("a", 0), std::vector<Action>{Create("a", "started", "the hold ended")});
}

TEST_F(DecideTest, AHoldPlacedDuringACreateWaitsForTheCreate) {
  WorkloadState& a = Running("a");
  a.phase = Phase::kCreating;
  a.op = Op::kCreate;
  a.intent = Intent::kRemoved;
  EXPECT_TRUE(ActionsFor("a", 0).empty());
  a.op = Op::kNone;
  a.phase = Phase::kRunning;
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Remove("a", AfterRemove::kHold, "", "removed by the operator")});
}

TEST_F(DecideTest, OperatorRestartRemovesThenCreates) {
  WorkloadState& a = Running("a");
  a.restart_requested = true;
  EXPECT_EQ(ActionsFor("a", 0), std::vector<Action>{Remove("a", AfterRemove::kRecreate, "restarted",
                                                           "restart by the operator")});
  a.phase = Phase::kStopped;
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Create("a", "restarted", "restart by the operator")});
}

TEST_F(DecideTest, AReplaceWhileARestartIsPendingRunsTheNewSpecAtOnce) {
  WorkloadState& a = Running("a");
  a.phase = Phase::kExited;
  a.restart_scheduled = true;
  a.retry_at_ms = 30000;
  desired_.profile.workloads[0].rootfs = "/srv/a2";
  EXPECT_EQ(ActionsFor("a", 0),
            std::vector<Action>{Create("a", "replaced", "its instance settings changed")});
}

TEST_F(DecideTest, ManualUpdatesAreHeldAndSupervisionChangesApplyInPlace) {
  Running("a");
  desired_.profile.workloads[0].update = UpdateStrategy::kManual;
  desired_.profile.workloads[0].rootfs = "/srv/a2";
  EXPECT_TRUE(ActionsFor("a", 0).empty());
  // Only restart settings changed: in place.
  desired_.profile.workloads[0].rootfs = "/srv/a";
  desired_.profile.workloads[0].update = UpdateStrategy::kRecreate;
  desired_.profile.workloads[0].restart.max_retries = 9;
  auto actions = ActionsFor("a", 0);
  ASSERT_FALSE(actions.empty());
  EXPECT_EQ(actions[0], Act(ActionType::kUpdateSpec, "a", "supervision settings changed"));
}

TEST_F(DecideTest, ARemovalDuringACreateWaitsThenDeletes) {
  WorkloadState& a = Running("a");
  a.op = Op::kCreate;
  a.phase = Phase::kCreating;
  desired_.profile.workloads.erase(desired_.profile.workloads.begin());
  EXPECT_TRUE(ActionsFor("a", 0).empty());
  a.op = Op::kNone;
  a.phase = Phase::kRunning;
  auto actions = ActionsFor("a", 0);
  ASSERT_FALSE(actions.empty());
  EXPECT_EQ(actions[0], Remove("a", AfterRemove::kDelete, "", "not in the profile"));
}

TEST_F(DecideTest, AFailedCreateRetriesAfterItsBackoff) {
  WorkloadState& a = Running("a");
  a.phase = Phase::kFailed;
  a.runtime_hash.clear();
  a.retry_at_ms = 300;
  a.last_error = "rootfs missing";
  auto d = DecideFor("a", 100);
  EXPECT_TRUE(d.actions.empty());
  EXPECT_EQ(d.wake_at_ms, 300);
  EXPECT_EQ(ActionsFor("a", 300),
            std::vector<Action>{Create("a", "created", "retrying after: rootfs missing")});
}

TEST_F(DecideTest, OneDriverCallAtATime) {
  WorkloadState& a = Running("a");
  a.op = Op::kRemove;
  a.restart_requested = true;
  a.ended = true;
  EXPECT_TRUE(ActionsFor("a", 0).empty());
}

// A trial of generation 2 that changed a and b (c unchanged), committing after 10 s.
Trial TrialOfAAndB(int64_t since = 0) {
  Trial t;
  t.generation = 2;
  t.since_ms = since;
  t.commit_after_ms = 10000;
  t.changed = {"a", "b"};
  t.instances_before = {{"a", 1}, {"b", 1}};
  t.base_generation = 1;
  return t;
}

std::vector<Action> TrialActions(const std::vector<Action>& actions) {
  std::vector<Action> out;
  for (const auto& a : actions) {
    if (a.type == ActionType::kCommit || a.type == ActionType::kRollBack) out.push_back(a);
  }
  return out;
}

TEST_F(DecideTest, ATrialCommitsWhenEveryChangedWorkloadStayedHealthyForCommitAfter) {
  desired_.generation = 2;
  observed_.trial = TrialOfAAndB();
  Running("a", 0).instance = 2;  // no check: running counts from its start
  WorkloadState& b = Running("b", 0);
  b.instance = 2;
  b.health = Health::kHealthy;
  b.healthy_since_ms = 3000;
  WorkloadState& c = Running("c", 0);  // unchanged: never judged
  c.health = Health::kUnhealthy;
  c.health_failures = 0;
  // b has been healthy for 9 s at 12 s: the decision wakes when it will have been 10.
  auto d = Decide(desired_, observed_, 12000);
  EXPECT_TRUE(TrialActions(d.actions).empty());
  EXPECT_LE(d.wake_at_ms, 13000);
  EXPECT_EQ(
      TrialActions(Actions(13000)),
      std::vector<Action>{Act(ActionType::kCommit, "", "2 changed workload(s) healthy for 10 s")});
}

TEST_F(DecideTest, ATrialRollsBackWhenAChangedWorkloadFailsItsHealthChecks) {
  desired_.generation = 2;
  observed_.trial = TrialOfAAndB();
  Running("a", 0).instance = 2;
  WorkloadState& b = Running("b", 0);
  b.instance = 2;
  b.health_failures = 2;
  b.check_detail = "exit status 1";
  EXPECT_EQ(TrialActions(Actions(6000)),
            std::vector<Action>{
                Act(ActionType::kRollBack, "b", "b failed 2 health checks: exit status 1")});
}

TEST_F(DecideTest, ATrialRollsBackOnAFailedCreateButNotOnOneFromBeforeIt) {
  desired_.generation = 2;
  observed_.trial = TrialOfAAndB();
  WorkloadState& a = observed_.workloads["a"];
  a.name = "a";
  a.spec = *desired_.profile.Find("a");
  a.phase = Phase::kFailed;
  a.last_error = "image storevisor/a:2: not found";
  a.instance = 1;  // the failure is the previous generation's
  a.retry_at_ms = 50000;
  EXPECT_TRUE(TrialActions(Actions(1000)).empty());
  a.instance = 2;  // made during the trial
  EXPECT_EQ(TrialActions(Actions(1000)),
            std::vector<Action>{Act(ActionType::kRollBack, "a",
                                    "a did not start: image storevisor/a:2: not found")});
}

TEST_F(DecideTest, ATrialRollsBackOnAFailedExitNotOnAJobDone) {
  desired_.generation = 2;
  observed_.trial = TrialOfAAndB();
  WorkloadState& a = Running("a", 0);
  a.instance = 2;
  a.phase = Phase::kExited;
  a.exit_code = 0;  // on-failure: a clean exit is a job done, not a failure
  a.gave_up = true;
  EXPECT_TRUE(TrialActions(Actions(1000)).empty());
  a.exit_code = 137;
  a.gave_up = false;
  EXPECT_EQ(TrialActions(Actions(1000)),
            std::vector<Action>{Act(ActionType::kRollBack, "a", "a exited with status 137")});
}

TEST_F(DecideTest, ATrialRollsBackWhatIsNotHealthyInTime) {
  desired_.generation = 2;
  observed_.trial = TrialOfAAndB();
  Running("a", 0).instance = 2;
  Running("b", 0).instance = 2;  // starting, never healthy, never failing a counted check
  auto d = Decide(desired_, observed_, 1000);
  EXPECT_TRUE(TrialActions(d.actions).empty());
  EXPECT_LE(d.wake_at_ms, 10000 + kTrialReadyMs);
  EXPECT_EQ(TrialActions(Actions(10000 + kTrialReadyMs)),
            std::vector<Action>{Act(ActionType::kRollBack, "b",
                                    "b was not healthy within " +
                                        std::to_string((10000 + kTrialReadyMs) / 1000) + " s")});
}

TEST_F(DecideTest, ATrialRollsBackWhenItsNetworksFail) {
  desired_.generation = 2;
  observed_.trial = TrialOfAAndB();
  observed_.networks_key = "older";
  observed_.networks_error = "bridge sv-back: File exists";
  observed_.networks_retry_at_ms = 5000;
  EXPECT_EQ(TrialActions(Actions(1000)),
            std::vector<Action>{Act(ActionType::kRollBack, "",
                                    "its networks failed: bridge sv-back: File exists")});
  observed_.networks_busy = true;  // being set up again: wait for its outcome
  EXPECT_TRUE(TrialActions(Actions(1000)).empty());
}

TEST_F(DecideTest, ATrialOfAnotherGenerationIsNotJudged) {
  observed_.trial = TrialOfAAndB();  // desired_ is generation 1
  EXPECT_TRUE(TrialActions(Actions(999999)).empty());
  Trial empty = TrialOfAAndB();
  empty.generation = 1;
  empty.changed.clear();
  observed_.trial = empty;
  EXPECT_EQ(TrialActions(Actions(0)),
            std::vector<Action>{Act(ActionType::kCommit, "", "it changed no workload")});
}

}  // namespace
}  // namespace storevisor::daemon::core
