#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "runtime/runtime.h"

namespace storevisor::runtime {
namespace {

using json = nlohmann::json;

json Minimal() {
  return {{"ociVersion", "1.0.2"},
          {"root", {{"path", "rootfs"}}},
          {"process", {{"args", {"/bin/true"}}, {"cwd", "/"}}}};
}

std::string ErrorOf(const json& j) {
  auto r = ParseSpec(j.dump());
  EXPECT_FALSE(r.has_value()) << j.dump();
  return r ? "" : r.error().message();
}

TEST(SpecTest, DefaultSpecParses) {
  auto r = ParseSpec(DefaultSpecJson().dump());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->process->args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(r->HasNamespace(NamespaceType::kPid));
  EXPECT_EQ(r->mounts.size(), 7u);
  EXPECT_TRUE(r->root_readonly);
  ASSERT_TRUE(r->process->capabilities.has_value());
  EXPECT_EQ(r->process->capabilities->bounding.size(), 3u);
}

TEST(SpecTest, FullFieldsRoundTrip) {
  json j = Minimal();
  j["hostname"] = "box";
  j["linux"] = {{"namespaces", {{{"type", "uts"}}, {{"type", "user"}}}},
                {"uidMappings", {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}}},
                {"gidMappings", {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}}},
                {"resources",
                 {{"memory", {{"limit", 1 << 20}, {"swap", 2 << 20}}},
                  {"cpu", {{"shares", 512}, {"quota", 50000}, {"period", 100000}, {"cpus", "0-1"}}},
                  {"pids", {{"limit", 64}}}}},
                {"sysctl", {{"net.ipv4.ip_forward", "1"}}},
                {"seccomp",
                 {{"defaultAction", "SCMP_ACT_ALLOW"},
                  {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}}}};
  j["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 10}, {"hard", 20}}};
  auto r = ParseSpec(j.dump());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->hostname, "box");
  EXPECT_EQ(r->uid_mappings.at(0).host_id, 100000u);
  EXPECT_EQ(*r->resources.memory_limit, 1 << 20);
  EXPECT_EQ(r->resources.cpuset_cpus, "0-1");
  EXPECT_EQ(*r->resources.pids_limit, 64);
  EXPECT_EQ(r->sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(r->seccomp->syscalls.at(0).names.at(0), "mkdir");
  EXPECT_EQ(r->process->rlimits.at(0).hard, 20u);
}

TEST(SpecTest, SyntaxErrorNamesTheLine) {
  auto r = ParseSpec("{\n\"ociVersion\": \"1.0.2\",\n\"root\": {,}\n}", "b/config.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("b/config.json:3"), std::string::npos) << r.error().message();
}

TEST(SpecTest, NastyCasesAreRefusedWithTheFieldPath) {
  json j = Minimal();
  j["process"]["args"][0] = 5;
  EXPECT_NE(ErrorOf(j).find("process.args[0]: must be a string"), std::string::npos);

  j = Minimal();
  j["process"]["args"] = json::array();
  EXPECT_NE(ErrorOf(j).find("process.args"), std::string::npos);

  j = Minimal();
  j["process"]["env"] = {"NOEQUALS"};
  EXPECT_NE(ErrorOf(j).find("process.env[0]"), std::string::npos);

  j = Minimal();
  j["mounts"] = {{{"destination", "relative"}, {"type", "tmpfs"}}};
  EXPECT_NE(ErrorOf(j).find("mounts[0].destination: must be an absolute path"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"namespaces", {{{"type", "time"}}}}};
  EXPECT_NE(ErrorOf(j).find("linux.namespaces[0].type"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"namespaces", {{{"type", "pid"}}, {{"type", "pid"}}}}};
  EXPECT_NE(ErrorOf(j).find("repeats"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"cgroupsPath", "/a/../../etc"}};
  EXPECT_NE(ErrorOf(j).find("cgroupsPath"), std::string::npos);

  j = Minimal();
  j["hostname"] = "x";
  EXPECT_NE(ErrorOf(j).find("uts"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"namespaces", {{{"type", "user"}}}}};
  EXPECT_NE(ErrorOf(j).find("mappings"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"resources", {{"memory", {{"limit", "lots"}}}}}};
  EXPECT_NE(ErrorOf(j).find("linux.resources.memory.limit: must be an integer"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"resources", {{"cpu", {{"cpus", "0;rm -rf"}}}}}};
  EXPECT_NE(ErrorOf(j).find("linux.resources.cpu.cpus"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"resources", {{"unified", {{"../../x", "1"}}}}}};
  EXPECT_NE(ErrorOf(j).find("unified"), std::string::npos);

  j = Minimal();
  j["linux"] = {{"sysctl", {{"../../proc/x", "1"}}}};
  EXPECT_NE(ErrorOf(j).find("sysctl"), std::string::npos);

  j = Minimal();
  j["process"]["capabilities"] = {{"bounding", {"CAP_MAKE_COFFEE"}}};
  EXPECT_NE(ErrorOf(j).find("process.capabilities.bounding[0]: unknown capability"),
            std::string::npos);

  j = Minimal();
  j["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 30}, {"hard", 20}}};
  EXPECT_NE(ErrorOf(j).find("soft"), std::string::npos);

  j = Minimal();
  j["ociVersion"] = "2.0.0";
  EXPECT_NE(ErrorOf(j).find("ociVersion"), std::string::npos);

  j = Minimal();
  j.erase("root");
  EXPECT_NE(ErrorOf(j).find("root: is required"), std::string::npos);

  j = Minimal();
  j["process"]["user"] = {{"uid", -1}};
  EXPECT_NE(ErrorOf(j).find("process.user.uid"), std::string::npos);

  j = Minimal();
  j["process"]["oomScoreAdj"] = 5000;
  EXPECT_NE(ErrorOf(j).find("oomScoreAdj"), std::string::npos);
}

TEST(SpecTest, DeepNestingAndHugeInputsAreRefused) {
  std::string deep(100000, '[');
  auto r = ParseSpec(deep);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("nests deeper"), std::string::npos);

  std::string huge = "{\"ociVersion\":\"" + std::string(kMaxSpecBytes, 'a') + "\"}";
  r = ParseSpec(huge);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("4 MiB"), std::string::npos);

  EXPECT_FALSE(ParseSpec("").has_value());
  EXPECT_FALSE(ParseSpec("[]").has_value());
  EXPECT_FALSE(ParseSpec(std::string("{\"a\":\"\0\"}", 10)).has_value());
}

TEST(SpecTest, UnknownFieldsAreIgnoredLikeRunc) {
  json j = Minimal();
  j["vm"] = {{"hypervisor", {{"path", "/x"}}}};
  j["process"]["apparmorProfile"] = "x";
  EXPECT_TRUE(ParseSpec(j.dump()).has_value());
}

TEST(SpecTest, KernelMemoryAndUnimplementedFieldsAreKept) {
  json j = Minimal();
  j["process"]["apparmorProfile"] = "docker-default";
  j["linux"] = {{"resources",
                 {{"memory", {{"kernel", 32 << 20}, {"kernelTCP", 16 << 20}}},
                  {"network", {{"classID", 1048577}}},
                  {"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 1 << 21}}}}}}};
  auto r = ParseSpec(j.dump());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->resources.memory_kernel, int64_t{32} << 20);
  EXPECT_EQ(r->resources.memory_kernel_tcp, int64_t{16} << 20);
  EXPECT_TRUE(r->resources.has_network);
  EXPECT_TRUE(r->resources.has_hugepage_limits);
  EXPECT_EQ(r->process->apparmor_profile, "docker-default");
  // Absent, or an empty hugepageLimits list: nothing to refuse.
  auto plain = ParseSpec(Minimal().dump());
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->resources.has_network);
  EXPECT_FALSE(plain->resources.has_hugepage_limits);
  EXPECT_FALSE(plain->resources.memory_kernel.has_value());
  j["linux"]["resources"]["memory"]["kernelTCP"] = "lots";
  EXPECT_NE(ErrorOf(j).find("kernelTCP"), std::string::npos);
}

TEST(SpecTest, FeaturesListWhatIsImplemented) {
  json f = FeaturesJson();
  EXPECT_EQ(f["ociVersionMin"], "1.0.0");
  EXPECT_EQ(f["hooks"].size(), 6u);
  EXPECT_EQ(f["linux"]["cgroup"]["systemd"], false);
  EXPECT_EQ(f["linux"]["apparmor"]["enabled"], false);
  auto caps = f["linux"]["capabilities"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
  auto opts = f["mountOptions"];
  EXPECT_NE(std::find(opts.begin(), opts.end(), "rbind"), opts.end());
}

TEST(SpecTest, ProcessJsonForExec) {
  auto p = ParseProcess(R"({"args":["sh"],"cwd":"/","env":["A=1"],"terminal":false})");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->env.at(0), "A=1");
  auto bad = ParseProcess(R"({"args":["sh"]})", "p.json");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("p.json: cwd: is required"), std::string::npos)
      << bad.error().message();
}

TEST(SpecTest, DefaultSeccompProfileIsValid) {
  json j = Minimal();
  j["linux"] = {{"seccomp", DefaultSeccompProfileJson()}};
  auto r = ParseSpec(j.dump());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->seccomp->default_action, "SCMP_ACT_ALLOW");
}

}  // namespace
}  // namespace storevisor::runtime
