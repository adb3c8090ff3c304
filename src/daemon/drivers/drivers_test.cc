#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/files.h"
#include "daemon/drivers/cgroup.h"
#include "daemon/drivers/container_driver.h"
#include "daemon/drivers/microvm_driver.h"
#include "daemon/drivers/tool_call.h"
#include "runtime/runtime.h"

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

TEST(DriversTest, OciSpecFiltersSyscallsWithTheDefaultProfile) {
  auto spec = MakeOciSpec(Sample(), "/img/rootfs", "", "kv");
  ASSERT_TRUE(spec["linux"].contains("seccomp"));
  const auto& sc = spec["linux"]["seccomp"];
  EXPECT_EQ(sc, runtime::DefaultSeccompProfileJson());
  // What a service never needs is refused with EPERM: mounts, ptrace, module loading.
  ASSERT_TRUE(sc["syscalls"].is_array() && !sc["syscalls"].empty());
  const auto& names = sc["syscalls"][0]["names"];
  for (const char* denied : {"mount", "ptrace", "init_module", "unshare"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), denied), names.end()) << denied;
  }
  EXPECT_EQ(sc["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
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
  EXPECT_FALSE(j["guest_tracing"].get<bool>());
  p->workloads[0].tracing = true;
  EXPECT_TRUE(MakeVmConfig(p->workloads[0], "/s/console.log", {})["guest_tracing"].get<bool>());
}

TEST(DriversTest, ProcessLiveness) {
  EXPECT_TRUE(ProcessAlive(::getpid()));
  const uint64_t ticks = ProcessStartTicks(::getpid());
  EXPECT_GT(ticks, 0u);
  EXPECT_TRUE(ProcessAlive(::getpid(), ticks));
  EXPECT_FALSE(ProcessAlive(::getpid(), ticks + 1));  // same pid, another process
  EXPECT_FALSE(ProcessAlive(0));
}

TEST(DriversTest, InstanceFromPidStateFollowsThatVeryProcess) {
  const int64_t pid = ::getpid();
  const uint64_t ticks = ProcessStartTicks(pid);
  const std::string state = nlohmann::json{{"pid", pid}, {"start_ticks", ticks}}.dump();
  InstanceInfo info = InstanceFromPidState(state);
  EXPECT_TRUE(info.running);
  EXPECT_EQ(info.pid, pid);
  EXPECT_EQ(info.driver_state, state);
  // The pid reused by another process, a state without a pid, and garbage: not running.
  EXPECT_FALSE(InstanceFromPidState(nlohmann::json{{"pid", pid}, {"start_ticks", ticks + 1}}.dump())
                   .running);
  EXPECT_FALSE(InstanceFromPidState("{}").running);
  EXPECT_FALSE(InstanceFromPidState("[1,2").running);
  EXPECT_FALSE(InstanceFromPidState(R"({"pid":"12"})").running);
}

TEST(DriversTest, OciSpecUsesTheDaemonsCgroupPrefix) {
  auto spec = MakeOciSpec(Sample(), "/img/rootfs", "", "kv");
  EXPECT_EQ(spec["linux"]["cgroupsPath"], "/storevisor/daemon/kv");
  EXPECT_EQ(WorkloadCgroupPath("pos"), "/storevisor/daemon/pos");
}

TEST(ToolCallTest, ReportsStatusStderrAndJson) {
  auto j = RunToolJson({"/bin/sh", "-c", "echo starting; echo '{\"pid\": 42}'"},
                       std::chrono::seconds(10), {"pid"});
  ASSERT_TRUE(j.has_value()) << j.error().message();
  EXPECT_EQ((*j)["pid"], 42);
  auto missing =
      RunToolJson({"/bin/sh", "-c", "echo '{\"x\": 1}'"}, std::chrono::seconds(10), {"pid"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kGuestFault);
  EXPECT_NE(missing.error().message().find("printed no 'pid'"), std::string::npos);
  ToolFailure failure;
  auto st = RunTool({"/bin/sh", "-c", "echo 'snapshot is stale' >&2; exit 8"},
                    std::chrono::seconds(10), ErrorCode::kFailedPrecondition, &failure);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(failure.exit_code, 8);
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message().find("snapshot is stale"), std::string::npos);
  auto garbage = RunToolJson({"/bin/echo", "not json {"}, std::chrono::seconds(10));
  EXPECT_FALSE(garbage.has_value());
  auto ex =
      RunToolExec({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(10));
  ASSERT_TRUE(ex.has_value());
  EXPECT_EQ(ex->exit_code, 3);
  EXPECT_EQ(ex->out, "out\n");
  EXPECT_EQ(ex->err, "err\n");
}

class CgroupTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sv-cgroup-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(root_); }
  std::string root_;
};

TEST_F(CgroupTreeTest, DetectsTheLayout) {
  EXPECT_EQ(DetectCgroupLayout(root_), CgroupLayout::kNone);
  ASSERT_TRUE(MakeDirs(root_ + "/memory").has_value());
  EXPECT_EQ(DetectCgroupLayout(root_), CgroupLayout::kV1);
  ASSERT_TRUE(MakeDirs(root_ + "/unified").has_value());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/unified/cgroup.controllers", "hugetlb\n").has_value());
  EXPECT_EQ(DetectCgroupLayout(root_), CgroupLayout::kHybrid);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/cgroup.controllers", "cpu memory\n").has_value());
  EXPECT_EQ(DetectCgroupLayout(root_), CgroupLayout::kV2);
}

bool Has(const std::vector<CgroupWrite>& plan, const std::string& dir, const std::string& file,
         const std::string& value) {
  for (const auto& w : plan) {
    if (w.dir == dir && w.file == file && w.value == value) return true;
  }
  return false;
}

TEST(CgroupPlanTest, V1SeedsCpusetParentsAndSetsLimits) {
  const CgroupLimits limits{"1", 0.5, 256ULL << 20};
  auto plan =
      PlanCgroup(CgroupLayout::kHybrid, "/cg", "/storevisor/daemon/pos", limits, "0-1", "0");
  EXPECT_TRUE(Has(plan, "/cg/cpuset/storevisor", "", ""));
  EXPECT_TRUE(Has(plan, "/cg/cpuset/storevisor", "cpuset.cpus", "0-1"));
  EXPECT_TRUE(Has(plan, "/cg/cpuset/storevisor/daemon", "cpuset.mems", "0"));
  EXPECT_TRUE(Has(plan, "/cg/cpuset/storevisor/daemon/pos", "cpuset.cpus", "1"));
  EXPECT_TRUE(Has(plan, "/cg/memory/storevisor/daemon/pos", "memory.limit_in_bytes", "268435456"));
  EXPECT_TRUE(Has(plan, "/cg/cpu/storevisor/daemon/pos", "cpu.cfs_quota_us", "50000"));
  EXPECT_TRUE(Has(plan, "/cg/cpuacct/storevisor/daemon/pos", "", ""));  // CPU time for ps
  // mems before cpus in each folder, and every folder made before its files are written.
  size_t made = plan.size();
  size_t written = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].dir == "/cg/cpuset/storevisor/daemon/pos" && plan[i].file.empty()) made = i;
    if (plan[i].dir == "/cg/cpuset/storevisor/daemon/pos" && plan[i].file == "cpuset.cpus")
      written = i;
  }
  EXPECT_LT(made, written);
}

TEST(CgroupPlanTest, V2EnablesControllersInParents) {
  const CgroupLimits limits{"0", 2, 1ULL << 30};
  auto plan = PlanCgroup(CgroupLayout::kV2, "/cg", "/storevisor/daemon/pos", limits, "", "");
  EXPECT_TRUE(Has(plan, "/cg/storevisor", "cgroup.subtree_control", "+memory"));
  EXPECT_TRUE(Has(plan, "/cg/storevisor/daemon", "cgroup.subtree_control", "+cpuset"));
  EXPECT_FALSE(Has(plan, "/cg/storevisor/daemon/pos", "cgroup.subtree_control", "+cpu"));
  EXPECT_TRUE(Has(plan, "/cg/storevisor/daemon/pos", "cpu.max", "200000 100000"));
  EXPECT_TRUE(Has(plan, "/cg/storevisor/daemon/pos", "memory.max", "1073741824"));
  EXPECT_TRUE(Has(plan, "/cg/storevisor/daemon/pos", "cpuset.cpus", "0"));
  EXPECT_TRUE(PlanCgroup(CgroupLayout::kNone, "/cg", "/x", limits, "", "").empty());
}

TEST_F(CgroupTreeTest, PrunesOnlyEmptyParentsInEveryHierarchy) {
  // Hybrid: v1 controllers (the runtime also uses blkio, pids...) beside unified/.
  for (const char* h : {"cpuset", "memory", "cpu", "blkio", "pids", "unified"}) {
    ASSERT_TRUE(MakeDirs(root_ + "/" + h + "/storevisor/daemon").has_value());
  }
  ASSERT_TRUE(WriteFileAtomic(root_ + "/unified/cgroup.controllers", "").has_value());
  ASSERT_TRUE(MakeDirs(root_ + "/pids/storevisor/runtime/c1").has_value());  // another user
  ASSERT_TRUE(MakeDirs(root_ + "/cpu/storevisor/daemon/pos").has_value());   // a workload
  ASSERT_EQ(::symlink("cpu", (root_ + "/cpuacct").c_str()), 0);              // a comount
  auto hierarchies = CgroupHierarchies(root_);
  EXPECT_EQ(hierarchies.size(), 6u);
  PruneEmptyCgroups("/storevisor/daemon", root_);
  for (const char* h : {"cpuset", "memory", "blkio", "unified"}) {
    EXPECT_FALSE(std::filesystem::exists(root_ + "/" + h + "/storevisor")) << h;
  }
  EXPECT_FALSE(std::filesystem::exists(root_ + "/pids/storevisor/daemon"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/pids/storevisor/runtime/c1"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/cpu/storevisor/daemon/pos"));
  // v2: the mount itself is the one hierarchy.
  ASSERT_TRUE(WriteFileAtomic(root_ + "/cgroup.controllers", "cpu\n").has_value());
  EXPECT_EQ(CgroupHierarchies(root_), std::vector<std::string>{root_});
}

TEST_F(CgroupTreeTest, ReadsUsageFromV1AndV2Files) {
  EXPECT_EQ(ReadCgroupUsage("/storevisor/daemon/kv", root_).error().code(), ErrorCode::kNotFound);
  // v1 with cpu and cpuacct mounted apart (this machine), then comounted.
  const std::string acct = root_ + "/cpuacct/storevisor/daemon/kv";
  const std::string mem = root_ + "/memory/storevisor/daemon/kv";
  ASSERT_TRUE(MakeDirs(acct).has_value() && MakeDirs(mem).has_value());
  ASSERT_TRUE(WriteFileAtomic(acct + "/cpuacct.usage", "1500000000\n").has_value());
  EXPECT_FALSE(ReadCgroupUsage("/storevisor/daemon/kv", root_).has_value());  // no memory file
  ASSERT_TRUE(WriteFileAtomic(mem + "/memory.usage_in_bytes", "8388608\n").has_value());
  auto u = ReadCgroupUsage("/storevisor/daemon/kv", root_);
  ASSERT_TRUE(u.has_value()) << u.error().message();
  EXPECT_EQ(u->cpu_ns, 1500000000u);
  EXPECT_EQ(u->memory_bytes, 8388608u);
  ASSERT_TRUE(RemoveAll(root_ + "/cpuacct").has_value());
  const std::string both = root_ + "/cpu,cpuacct/storevisor/daemon/kv";
  ASSERT_TRUE(MakeDirs(both).has_value());
  ASSERT_TRUE(WriteFileAtomic(both + "/cpuacct.usage", "7\n").has_value());
  EXPECT_EQ(ReadCgroupUsage("/storevisor/daemon/kv", root_)->cpu_ns, 7u);
  ASSERT_TRUE(WriteFileAtomic(both + "/cpuacct.usage", "garbage\n").has_value());
  EXPECT_FALSE(ReadCgroupUsage("/storevisor/daemon/kv", root_).has_value());
  // v2: cpu.stat's usage_usec and memory.current.
  ASSERT_TRUE(WriteFileAtomic(root_ + "/cgroup.controllers", "cpu memory\n").has_value());
  const std::string v2 = root_ + "/storevisor/daemon/kv";
  ASSERT_TRUE(MakeDirs(v2).has_value());
  ASSERT_TRUE(WriteFileAtomic(v2 + "/cpu.stat", "usage_usec 2500\nuser_usec 2000\n").has_value());
  ASSERT_TRUE(WriteFileAtomic(v2 + "/memory.current", "4096\n").has_value());
  u = ReadCgroupUsage("/storevisor/daemon/kv", root_);
  ASSERT_TRUE(u.has_value()) << u.error().message();
  EXPECT_EQ(u->cpu_ns, 2500000u);
  EXPECT_EQ(u->memory_bytes, 4096u);
}

TEST_F(CgroupTreeTest, ConsoleLogIsCappedByCopyAndTruncate) {
  const std::string log = root_ + "/console.log";
  ASSERT_TRUE(WriteFileAtomic(log, "small\n").has_value());
  ASSERT_TRUE(RotateCopyTruncate(log, 1024).has_value());
  EXPECT_EQ(ReadFile(log).value_or(""), "small\n");  // under the cap: left alone
  EXPECT_FALSE(std::filesystem::exists(log + ".1"));
  // Grown to 3x the cap (the daemon was down): .1 keeps the newest 1024 bytes.
  ASSERT_TRUE(WriteFileAtomic(log, std::string(2048, 'a') + std::string(1024, 'b')).has_value());
  ASSERT_TRUE(RotateCopyTruncate(log, 1024).has_value());
  EXPECT_EQ(ReadFile(log + ".1").value_or(""), std::string(1024, 'b'));
  EXPECT_EQ(ReadFile(log).value_or("x"), "");
  EXPECT_TRUE(RotateCopyTruncate(root_ + "/absent.log", 1024).has_value());
}

TEST_F(CgroupTreeTest, KsmIsSwitchedOnOnlyWhenOff) {
  const std::string run = root_ + "/run";
  ASSERT_TRUE(WriteFileAtomic(run, "0\n").has_value());
  ASSERT_TRUE(EnsureKsmRunning(run).has_value());
  EXPECT_EQ(ReadFile(run).value_or("").substr(0, 1), "1");
  EXPECT_TRUE(EnsureKsmRunning(root_ + "/absent").has_value());  // no KSM: nothing to do
  EXPECT_TRUE(EnsureKsmRunning("").has_value());
}

}  // namespace
}  // namespace storevisor::daemon
