// The core with an in-memory store: commands, observations, what is written and when.
#include "daemon/core/core.h"

#include <gtest/gtest.h>

#include "daemon/core/testing.h"

namespace storevisor::daemon::core {
namespace {

constexpr char kProfile[] = R"(apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {name: t}
spec:
  networks:
    - {name: back, subnet: 10.88.1.0/24}
  workloads:
    - name: kv
      kind: container
      rootfs: /srv/kv
      command: [/bin/true]
      networks: [back]
      restart:
        policy: always
        backoff: {initial: 0s, max: 1s}
)";

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() : logger_(-1), core_(store_, logger_) {}

  Result<api::ApplyResponse> Apply(const std::string& yaml, const std::string& key = "") {
    ApplyCommand cmd;
    cmd.request.yaml = yaml;
    cmd.request.file = "t.yaml";
    cmd.request.idempotency_key = key;
    auto profile = ParseProfile(yaml, "t.yaml");
    EXPECT_TRUE(profile.has_value()) << profile.error().message();
    cmd.profile = *profile;
    cmd.digest = "sha256:" + std::to_string(yaml.size());
    std::optional<Result<api::ApplyResponse>> out;
    core_.Apply(cmd, now_, [&](Result<api::ApplyResponse> r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return std::move(*out);
  }

  // Runs Step and answers its effects as a healthy host would: networks and creates succeed.
  std::vector<Effect> StepAndAnswer() {
    auto effects = core_.Step(now_);
    for (const auto& e : effects) {
      Observation o;
      o.name = e.name;
      o.instance = e.instance;
      switch (e.type) {
        case Effect::Type::kSetUpNetworks:
          o.type = Observation::Type::kNetworks;
          o.generation = e.generation;
          o.networks_key = e.networks_key;
          break;
        case Effect::Type::kCreate:
          o.type = Observation::Type::kCreated;
          if (fail_creates_ > 0) {
            fail_creates_--;
            o.status = Error(ErrorCode::kNotFound, "image storevisor/kv:2: not found");
            break;
          }
          o.info.running = true;
          o.info.pid = next_pid_++;
          break;
        case Effect::Type::kRemove:
          o.type = Observation::Type::kRemoved;
          (e.at_once ? removed_at_once_ : removed_with_grace_)++;
          break;
        case Effect::Type::kCheck:
          o.type = Observation::Type::kChecked;
          o.check_ok = checks_pass_;
          o.detail = checks_pass_ ? "" : "exit status 1";
          break;
        default:
          continue;
      }
      core_.Observe(o, now_);
    }
    return effects;
  }

  void Converge() {
    for (int i = 0; i < 10; ++i) StepAndAnswer();
  }

  std::vector<std::string> EventTypes() const {
    std::vector<std::string> out;
    for (const auto& e : store_.events()) out.push_back(e.type);
    return out;
  }

  MemoryStore store_;
  Logger logger_;
  Core core_;
  int64_t now_ = 1000;
  int64_t next_pid_ = 100;
  int fail_creates_ = 0;     // the next creates that fail
  int removed_at_once_ = 0;  // removes without a grace period (a failed trial's instance)
  int removed_with_grace_ = 0;
  bool checks_pass_ = true;
};

// kProfile with a one-second trial, and a second generation that changes kv's command.
std::string WithTrial(std::string yaml, const std::string& command = "[/bin/true]") {
  yaml.replace(yaml.find("  networks:"), 0, "  commitAfter: 1s\n");
  yaml.replace(yaml.find("[/bin/true]"), 11, command);
  return yaml;
}

TEST_F(CoreTest, AGenerationIsCommittedAfterItsTrialAndAFailedOneRollsBack) {
  const std::string v1 = WithTrial(kProfile);
  const std::string v2 = WithTrial(kProfile, "[/bin/sleep, '1']");
  ASSERT_TRUE(Apply(v1).has_value());
  Converge();
  now_ += 1000;
  Converge();
  ASSERT_EQ(store_.generations().size(), 1u);
  EXPECT_EQ(store_.generations()[0].outcome, kOutcomeCommitted);
  EXPECT_EQ(store_.events().back().message,
            "generation 1 committed: 1 changed workload(s) healthy for 1 s");
  const int64_t old_pid = core_.observed().workloads.at("kv").pid;

  ASSERT_TRUE(Apply(v2).has_value());
  fail_creates_ = 2;  // the new instance cannot be made (twice); what ran before can
  Converge();
  EXPECT_EQ(store_.generations()[1].outcome, kOutcomeRolledBack);
  EXPECT_EQ(store_.generations()[1].reason, "kv did not start: image storevisor/kv:2: not found");
  EXPECT_EQ(core_.desired().generation, 1);
  EXPECT_EQ(*store_.GetMeta("profile"), std::optional<std::string>(v1));
  const WorkloadState& kv = core_.observed().workloads.at("kv");
  EXPECT_EQ(kv.phase, Phase::kRunning);
  EXPECT_EQ(kv.spec.command, std::vector<std::string>{"/bin/true"});
  EXPECT_NE(kv.pid, old_pid);
  EXPECT_FALSE(core_.observed().trial.has_value());
  std::vector<std::string> types = EventTypes();
  EXPECT_EQ(std::vector<std::string>(types.end() - 4, types.end()),
            (std::vector<std::string>{"failed", "failed", "rolled-back", "replaced"}));
  // The restored generation is not on trial again: nothing more happens.
  now_ += 600000;
  Converge();
  EXPECT_EQ(store_.events().back().type, "replaced");
}

TEST_F(CoreTest, AFailedInstanceThatStillRunsIsRemovedWithoutAGracePeriod) {
  auto checked = [](std::string yaml, const std::string& command) {
    yaml = WithTrial(std::move(yaml), command);
    yaml += "      health: {exec: [/bin/true], interval: 1s, retries: 1}\n";
    return yaml;
  };
  ASSERT_TRUE(Apply(checked(kProfile, "[/bin/true]")).has_value());
  for (int i = 0; i < 5; ++i) {
    Converge();
    now_ += 1000;
  }
  ASSERT_EQ(store_.generations()[0].outcome, kOutcomeCommitted);
  ASSERT_TRUE(Apply(checked(kProfile, "[/bin/sleep, '1']")).has_value());
  checks_pass_ = false;  // the new instance runs but fails its check
  Converge();
  EXPECT_EQ(removed_with_grace_, 1);  // the committed instance, replaced as usual
  for (int i = 0; i < 50 && store_.generations()[1].outcome == kOutcomeTrial; ++i) {
    now_ += 100;
    StepAndAnswer();
  }
  checks_pass_ = true;  // what ran before passes again
  Converge();
  EXPECT_EQ(store_.generations()[1].outcome, kOutcomeRolledBack);
  EXPECT_EQ(store_.generations()[1].reason, "kv failed 1 health checks: exit status 1");
  EXPECT_EQ(removed_at_once_, 1);
  EXPECT_EQ(removed_with_grace_, 1);
}

TEST_F(CoreTest, AFirstGenerationThatFailsHasNothingToRollBackTo) {
  ASSERT_TRUE(Apply(WithTrial(kProfile)).has_value());
  fail_creates_ = 2;
  Converge();
  EXPECT_EQ(store_.generations()[0].outcome, kOutcomeFailed);
  EXPECT_EQ(core_.desired().generation, 1);
  // Supervision goes on: the failed create is retried after its backoff.
  now_ += 2000;
  Converge();
  EXPECT_EQ(core_.observed().workloads.at("kv").phase, Phase::kRunning);
}

TEST_F(CoreTest, ADaemonRestartedDuringATrialResumesIt) {
  ASSERT_TRUE(Apply(WithTrial(kProfile)).has_value());
  Converge();
  now_ += 1000;
  Converge();
  ASSERT_TRUE(Apply(WithTrial(kProfile, "[/bin/sleep, '1']")).has_value());
  Converge();
  ASSERT_TRUE(core_.observed().trial.has_value());
  // A new core on the same store: what the daemon finds after a kill -9.
  Core again(store_, logger_);
  ASSERT_TRUE(again.Load(now_).has_value());
  ASSERT_TRUE(again.observed().trial.has_value());
  EXPECT_EQ(again.observed().trial->generation, 2);
  EXPECT_EQ(again.observed().trial->base_generation, 1);
  EXPECT_EQ(again.observed().trial->changed, std::vector<std::string>{"kv"});
  (void)again.Step(now_);
  EXPECT_EQ(store_.events().back().type, "trial");
}

TEST_F(CoreTest, ApplyStoresAGenerationAndCreatesAfterTheNetworks) {
  auto r = Apply(kProfile);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->generation, 1);
  ASSERT_EQ(r->steps.size(), 1u);
  EXPECT_EQ(r->steps[0].action, "create");
  auto effects = StepAndAnswer();
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0].type, Effect::Type::kSetUpNetworks);
  Converge();
  const WorkloadState& kv = core_.observed().workloads.at("kv");
  EXPECT_EQ(kv.phase, Phase::kRunning);
  EXPECT_EQ(kv.address, "10.88.1.2");
  EXPECT_EQ(store_.records().at("kv").phase, "running");
  EXPECT_EQ(EventTypes(), (std::vector<std::string>{"applied", "created"}));
}

TEST_F(CoreTest, ARetriedApplyWithItsKeyIsAnsweredWithTheFirstGeneration) {
  ASSERT_TRUE(Apply(kProfile, "k1").has_value());
  auto again = Apply(kProfile, "k1");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->generation, 1);
  auto other = Apply(kProfile, "k2");
  EXPECT_EQ(other->generation, 2);
}

TEST_F(CoreTest, AnApplyTheStoreRefusesChangesNothing) {
  ASSERT_TRUE(Apply(kProfile).has_value());
  store_.full = true;
  auto r = Apply(std::string(kProfile) +
                 "    - {name: web, kind: container, rootfs: /srv/w, command: [/bin/true]}\n");
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(core_.desired().profile.workloads.size(), 1u);
}

TEST_F(CoreTest, ExitsAreInspectedAndRestartedWhileTheDiskIsFull) {
  ASSERT_TRUE(Apply(kProfile).has_value());
  Converge();
  const uint64_t first = core_.observed().workloads.at("kv").instance;
  store_.full = true;
  Observation ended;
  ended.type = Observation::Type::kProcessEnded;
  ended.name = "kv";
  ended.instance = first;
  core_.Observe(ended, now_);
  auto effects = core_.Step(now_);
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0].type, Effect::Type::kInspect);
  Observation inspected;
  inspected.type = Observation::Type::kInspected;
  inspected.name = "kv";
  inspected.instance = first;
  inspected.info.exit_code = 137;
  core_.Observe(inspected, now_);
  Converge();  // backoff 0: restarted at once, on a full disk
  const WorkloadState& kv = core_.observed().workloads.at("kv");
  EXPECT_EQ(kv.phase, Phase::kRunning);
  EXPECT_EQ(kv.instance, first + 1);
  EXPECT_EQ(kv.restarts, 1);
  EXPECT_TRUE(core_.store_failing());
  EXPECT_EQ(store_.records().at("kv").restarts, 0);  // not written yet
  // Space comes back: what waited in memory is written at the next retry.
  store_.full = false;
  now_ += 1000;
  core_.Step(now_);
  EXPECT_FALSE(core_.store_failing());
  EXPECT_EQ(store_.records().at("kv").restarts, 1);
  const auto types = EventTypes();
  EXPECT_NE(std::find(types.begin(), types.end(), "exited"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "store-failed"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "restarted"), types.end());
  EXPECT_EQ(types.back(), "store-recovered");
}

TEST_F(CoreTest, OperatorStopIsAnsweredWhenTheInstanceIsGone) {
  ASSERT_TRUE(Apply(kProfile).has_value());
  Converge();
  std::optional<Status> answer;
  core_.Operator(OperatorVerb::kStop, "kv", now_, [&](Status st) { answer = std::move(st); });
  auto effects = core_.Step(now_);
  EXPECT_EQ(store_.records().at("kv").desired, "stopped");  // the intent first
  ASSERT_EQ(effects.size(), 1u);
  EXPECT_EQ(effects[0].type, Effect::Type::kRemove);
  EXPECT_FALSE(answer.has_value());
  Observation removed;
  removed.type = Observation::Type::kRemoved;
  removed.name = "kv";
  removed.instance = effects[0].instance;
  core_.Observe(removed, now_);
  core_.Step(now_);
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(answer->has_value());
  EXPECT_EQ(core_.observed().workloads.at("kv").phase, Phase::kStopped);
  // A start of a running workload is a conflict; of a stopped one, a new instance.
  std::optional<Status> started;
  core_.Operator(OperatorVerb::kStart, "kv", now_, [&](Status st) { started = std::move(st); });
  Converge();
  ASSERT_TRUE(started.has_value());
  EXPECT_TRUE(started->has_value());
  std::optional<Status> again;
  core_.Operator(OperatorVerb::kStart, "kv", now_, [&](Status st) { again = std::move(st); });
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->error().code(), ErrorCode::kConflict);
}

TEST_F(CoreTest, AnUnknownWorkloadIsNotFound) {
  std::optional<Status> answer;
  core_.Operator(OperatorVerb::kStop, "nosuch", now_, [&](Status st) { answer = std::move(st); });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->error().code(), ErrorCode::kNotFound);
}

TEST_F(CoreTest, ResultsAboutAnOlderInstanceAreDropped) {
  ASSERT_TRUE(Apply(kProfile).has_value());
  Converge();
  const uint64_t instance = core_.observed().workloads.at("kv").instance;
  Observation stale;
  stale.type = Observation::Type::kProcessEnded;
  stale.name = "kv";
  stale.instance = instance - 1;
  core_.Observe(stale, now_);
  EXPECT_TRUE(core_.Step(now_).empty());
  EXPECT_EQ(core_.observed().workloads.at("kv").phase, Phase::kRunning);
}

TEST_F(CoreTest, LoadInspectsWhatRanAndAdoptsIt) {
  ASSERT_TRUE(Apply(kProfile).has_value());
  Converge();
  Core restarted(store_, logger_);
  ASSERT_TRUE(restarted.Load(now_).has_value());
  auto effects = restarted.Step(now_);
  // The networks of the generation are set up again, and kv is inspected.
  ASSERT_EQ(effects.size(), 2u);
  EXPECT_EQ(effects[0].type, Effect::Type::kInspect);
  Observation o;
  o.type = Observation::Type::kInspected;
  o.name = "kv";
  o.instance = effects[0].instance;
  o.info.running = true;
  o.info.pid = 4242;
  restarted.Observe(o, now_);
  auto next = restarted.Step(now_);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].type, Effect::Type::kWatch);
  EXPECT_EQ(restarted.observed().workloads.at("kv").pid, 4242);
  EXPECT_EQ(EventTypes().back(), "adopted");
}

}  // namespace
}  // namespace storevisor::daemon::core
