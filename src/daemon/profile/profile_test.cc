#include "daemon/profile/profile.h"

#include <gtest/gtest.h>

#include <string>

#include "common/files.h"

namespace storevisor::daemon {
namespace {

constexpr char kHead[] =
    "apiVersion: storevisor.io/v1\n"
    "kind: StoreProfile\n"
    "metadata: {name: t}\n"
    "spec:\n"
    "  workloads:\n";

std::string Refusal(const std::string& body) {
  auto p = ParseProfile(std::string(kHead) + body, "t.yaml");
  EXPECT_FALSE(p.has_value()) << body;
  return p ? std::string() : p.error().message();
}

TEST(ProfileTest, ParsesEveryExample) {
  for (const char* name : {"store-demo", "pos-lane", "self-checkout", "kiosk"}) {
    std::string path = std::string(SV_SOURCE_DIR) + "/examples/" + name + ".yaml";
    auto text = ReadFile(path);
    ASSERT_TRUE(text.has_value()) << path;
    auto p = ParseProfile(*text, path);
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ(p->name, name);
    EXPECT_FALSE(p->workloads.empty());
  }
}

TEST(ProfileTest, ReadsFieldsAndDefaults) {
  auto p = ParseProfile(std::string(kHead) +
                            "    - name: kv\n"
                            "      kind: container\n"
                            "      image: kv:1\n"
                            "      memory: 64Mi\n"
                            "      cpuset: 0-1\n"
                            "      env: {A: b}\n"
                            "      restart: {policy: on-failure, backoff: {initial: 1s, max: 8s}, "
                            "maxRetries: 4}\n"
                            "      health: {http: {port: 80, path: /h}, interval: 3s}\n",
                        "/srv/p/t.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  const Workload& w = p->workloads[0];
  EXPECT_EQ(w.memory_bytes, 64ULL << 20);
  EXPECT_EQ(w.env.at("A"), "b");
  EXPECT_EQ(w.restart.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(w.restart.backoff_initial_ms, 1000);
  EXPECT_EQ(w.restart.backoff_max_ms, 8000);
  EXPECT_EQ(w.restart.max_retries, 4);
  EXPECT_EQ(w.health.type, HealthType::kHttp);
  EXPECT_EQ(w.health.port, 80);
  EXPECT_EQ(w.health.interval_ms, 3000);
  EXPECT_EQ(w.health.retries, 3);
  EXPECT_EQ(w.line, 6);
}

TEST(ProfileTest, RelativePathsResolveAgainstTheProfileFolder) {
  auto p = ParseProfile(
      std::string(kHead) + "    - {name: vm, kind: microvm, kernel: ../k/vmlinuz, memory: 128Mi}\n",
      "/srv/p/t.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->workloads[0].kernel, "/srv/p/../k/vmlinuz");
}

TEST(ProfileTest, UnknownFieldNamesLineAndAllowedFields) {
  std::string msg = Refusal("    - name: a\n      kind: container\n      imagee: x\n");
  EXPECT_EQ(
      msg.rfind("t.yaml:8: spec.workloads[0].imagee: unknown field; expected one of: name, kind",
                0),
      0u)
      << msg;
}

TEST(ProfileTest, WrongTypeSaysWhatIsExpected) {
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, memory: lots}\n"),
            "t.yaml:6: spec.workloads[0].memory: expected a size such as 256Mi, 1Gi or 512M, got "
            "'lots'");
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, cpus: [1]}\n"),
            "t.yaml:6: spec.workloads[0].cpus: expected a single value, got a list or mapping");
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, snapshot: true}\n"),
            "t.yaml:6: spec.workloads[0].snapshot: only microvm and legacy-vm have this field");
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, tracing: true}\n"),
            "t.yaml:6: spec.workloads[0].tracing: only microvm has this field");
  EXPECT_EQ(Refusal("    - {name: a, kind: microvm, kernel: /k, tracing: sure}\n"),
            "t.yaml:6: spec.workloads[0].tracing: expected true or false, got 'sure'");
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, restart: sometimes}\n"),
            "t.yaml:6: spec.workloads[0].restart: expected always, on-failure or never, got "
            "'sometimes'");
}

TEST(ProfileTest, CycleInAfterIsRefusedWithThePath) {
  std::string msg = Refusal(
      "    - {name: a, kind: container, image: x, after: [c]}\n"
      "    - {name: b, kind: container, image: x, after: [a]}\n"
      "    - {name: c, kind: container, image: x, after: [b]}\n");
  EXPECT_EQ(msg, "t.yaml:6: spec.workloads[0].after: start order has a cycle: a -> c -> b -> a");
}

TEST(ProfileTest, BadReferencesAndDuplicates) {
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, after: [zz]}\n"),
            "t.yaml:6: spec.workloads[0].after: no workload named 'zz' in this profile");
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x}\n"
                    "    - {name: a, kind: container, image: y}\n"),
            "t.yaml:7: spec.workloads[1].name: workload 'a' is declared twice");
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, image: y}\n"),
            "t.yaml:6: spec.workloads[0].image: field given twice");
  EXPECT_EQ(Refusal("    - {name: A_b, kind: container, image: x}\n"),
            "t.yaml:6: spec.workloads[0].name: expected lower-case letters, digits and '-' (at "
            "most 40 characters), got 'A_b'");
}

TEST(ProfileTest, NastyDocuments) {
  for (const char* text :
       {"", "~", "[]", "- 1", "apiVersion: storevisor.io/v2\n", "{{{{", "a: *nope\n",
        "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: x}\nspec: 3\n",
        "\xff\xfe\x00garbage", "apiVersion: [storevisor.io/v1]\n"}) {
    auto p = ParseProfile(text, "n.yaml");
    EXPECT_FALSE(p.has_value()) << text;
    if (!p) {
      EXPECT_EQ(p.error().message().rfind("n.yaml", 0), 0u) << p.error().message();
    }
  }
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseProfile(deep, "deep.yaml").has_value());
  std::string big(kMaxProfileBytes + 1, ' ');
  EXPECT_FALSE(ParseProfile(big, "big.yaml").has_value());
  EXPECT_EQ(ParseProfile("apiVersion: storevisor.io/v2\n", "n.yaml").error().message(),
            "n.yaml:1: apiVersion: unsupported version 'storevisor.io/v2'; this storevisord "
            "reads storevisor.io/v1");
}

TEST(ProfileTest, RefusesInvalidUtf8) {
  EXPECT_EQ(ParseProfile("name: \xff\n", "u.yaml").error().message(),
            "u.yaml: profile is not valid UTF-8 text");
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));      // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac"));
}

TEST(ProfileTest, ValueSyntaxes) {
  EXPECT_EQ(ParseSubnet("10.88.1.7/24")->base, 0x0A580100u);
  EXPECT_FALSE(ParseSubnet("10.88.1/24").has_value());
  EXPECT_FALSE(ParseSubnet("300.1.1.1/24").has_value());
  EXPECT_FALSE(ParseSubnet("10.1.1.1/31").has_value());
  EXPECT_EQ(*ParseSize("1Gi"), 1ULL << 30);
  EXPECT_EQ(*ParseSize("512M"), 512000000u);
  EXPECT_FALSE(ParseSize("99999999999999999999").has_value());
  EXPECT_FALSE(ParseSize("20000000000Ti").has_value());
  EXPECT_EQ(*ParseDuration("250ms"), 250);
  EXPECT_EQ(*ParseDuration("2m"), 120000);
  EXPECT_FALSE(ParseDuration("2d").has_value());
  EXPECT_EQ(*ParseCpuset("0-2,5"), (std::vector<int>{0, 1, 2, 5}));
  EXPECT_FALSE(ParseCpuset("3-1").has_value());
  EXPECT_FALSE(ParseCpuset("1,").has_value());
  EXPECT_FALSE(ParseCpuset("0-99999").has_value());
}

TEST(ProfileTest, OvercommitIsRefusedSayingByHowMuch) {
  auto p = ParseProfile(std::string(kHead) +
                            "    - {name: a, kind: container, image: x, cpus: 1, cpuset: '0'}\n"
                            "    - {name: b, kind: container, image: x, cpus: 0.5, cpuset: '0'}\n",
                        "o.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  auto st = CheckOvercommit(*p, {2, 1ULL << 30});
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(),
            "o.yaml: pinned CPU 0 is asked for 1.50 CPUs, 0.50 more than the allowed 1.00 "
            "(spec.limits.cpuOvercommit); lower cpus or spread the cpusets");
  p->workloads[0].memory_bytes = 3ULL << 30;
  p->workloads[0].cpuset.clear();
  st = CheckOvercommit(*p, {2, 2ULL << 30});
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(),
            "o.yaml: workloads ask for 3072 MiB of memory, 1024 MiB more than the allowed 2048 MiB "
            "(host 2048 MiB x spec.limits.memoryOvercommit 1.00)");
}

TEST(ProfileTest, HashesSeparateRuntimeFromSupervisionChanges) {
  auto p = ParseProfile(std::string(kHead) + "    - {name: a, kind: container, image: x}\n", "h");
  ASSERT_TRUE(p.has_value());
  Workload w = p->workloads[0];
  Workload health = w;
  health.health.type = HealthType::kTcp;
  health.health.port = 1;
  EXPECT_EQ(RuntimeHash(w), RuntimeHash(health));
  EXPECT_NE(SpecHash(w), SpecHash(health));
  Workload env = w;
  env.env["X"] = "1";
  EXPECT_NE(RuntimeHash(w), RuntimeHash(env));
}

TEST(ProfileTest, AfterEntriesTakeACondition) {
  auto p = ParseProfile(std::string(kHead) +
                            "    - {name: kv, kind: container, image: x}\n"
                            "    - {name: inv, kind: container, image: x}\n"
                            "    - name: pos\n"
                            "      kind: container\n"
                            "      image: x\n"
                            "      after:\n"
                            "        - kv\n"
                            "        - {name: inv, condition: started}\n",
                        "t.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  const Workload& pos = p->workloads[2];
  EXPECT_EQ(pos.after, (std::vector<std::string>{"kv", "inv"}));
  EXPECT_EQ(RuleOf(pos, "kv").condition, AfterCondition::kHealthy);
  EXPECT_EQ(RuleOf(pos, "kv").holds, AfterHolds::kStart);
  EXPECT_EQ(RuleOf(pos, "inv").condition, AfterCondition::kStarted);
  EXPECT_EQ(RuleOf(pos, "inv").holds, AfterHolds::kStart);
  auto gated = ParseProfile(std::string(kHead) +
                                "    - {name: kv, kind: container, image: x}\n"
                                "    - {name: pos, kind: container, image: x, after: "
                                "[{name: kv, holds: health}]}\n",
                            "t.yaml");
  ASSERT_TRUE(gated.has_value()) << gated.error().message();
  EXPECT_EQ(RuleOf(gated->workloads[1], "kv").holds, AfterHolds::kHealth);
  EXPECT_EQ(RuleOf(gated->workloads[1], "kv").condition, AfterCondition::kHealthy);
  // A rule changes supervision only: updated in place, never a restart.
  Workload plain = gated->workloads[1];
  plain.after_rules.clear();
  EXPECT_EQ(RuntimeHash(plain), RuntimeHash(gated->workloads[1]));
  EXPECT_NE(SpecHash(plain), SpecHash(gated->workloads[1]));
  // A cycle through a rule is still a cycle.
  EXPECT_EQ(Refusal("    - {name: a, kind: container, image: x, after: [{name: b, holds: "
                    "health}]}\n"
                    "    - {name: b, kind: container, image: x, after: [a]}\n"),
            "t.yaml:6: spec.workloads[0].after: start order has a cycle: a -> b -> a");
}

TEST(ProfileTest, BadAfterEntriesAreRefused) {
  const std::string b = "    - {name: b, kind: container, image: x}\n";
  EXPECT_EQ(Refusal(b + "    - {name: a, kind: container, image: x, after: [{name: b, "
                        "condition: ready}]}\n"),
            "t.yaml:7: spec.workloads[1].after[0].condition: expected healthy or started, got "
            "'ready'");
  EXPECT_EQ(Refusal(b + "    - {name: a, kind: container, image: x, after: [{name: b, "
                        "holds: boot}]}\n"),
            "t.yaml:7: spec.workloads[1].after[0].holds: expected start or health, got 'boot'");
  EXPECT_EQ(Refusal(b + "    - {name: a, kind: container, image: x, after: [b, {name: b}]}\n"),
            "t.yaml:7: spec.workloads[1].after[1]: 'b' is listed twice");
  EXPECT_EQ(Refusal(b + "    - {name: a, kind: container, image: x, after: [{condition: "
                        "started}]}\n"),
            "t.yaml:7: spec.workloads[1].after[0].name: required field is missing");
  EXPECT_NE(Refusal(b + "    - {name: a, kind: container, image: x, after: [{name: b, "
                        "when: now}]}\n")
                .find("spec.workloads[1].after[0].when"),
            std::string::npos);
  EXPECT_NE(Refusal(b + "    - {name: a, kind: container, image: x, after: [[b]]}\n")
                .find("spec.workloads[1].after[0]"),
            std::string::npos);
}

TEST(ProfileTest, TcpProbeSendsAndExpects) {
  auto p = ParseProfile(std::string(kHead) +
                            "    - {name: kv, kind: container, image: x, health: {tcp: "
                            "{port: 6379, send: \"PING\\r\\n\", expect: \"+PONG\"}}}\n",
                        "t.yaml");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->workloads[0].health.send, "PING\r\n");
  EXPECT_EQ(p->workloads[0].health.expect, "+PONG");
  const std::string long_text(257, 'x');
  EXPECT_EQ(Refusal("    - {name: kv, kind: container, image: x, health: {tcp: {port: 1, "
                    "expect: " +
                    long_text + "}}}\n"),
            "t.yaml:6: spec.workloads[0].health.tcp.expect: expected at most 256 bytes");
  EXPECT_NE(Refusal("    - {name: kv, kind: container, image: x, health: {http: {port: 1, "
                    "send: x}}}\n")
                .find("spec.workloads[0].health.http.send"),
            std::string::npos);
}

}  // namespace
}  // namespace storevisor::daemon
