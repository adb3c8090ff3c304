#include "runtime/cgroup.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/files.h"
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

// A fake cgroup2 tree in a temp dir: the interface files a real cgroup2 mount would show
// (empty), so a write to a file the kernel would not have fails as it would there. The
// container's levels are made in advance: mkdir in a plain directory makes no files.
class FakeCgroup2Tree {
 public:
  FakeCgroup2Tree() {
    char tmpl[] = "/tmp/sv-cg2-fake-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) root_ = tmpl;
  }
  ~FakeCgroup2Tree() {
    if (!root_.empty()) (void)RemoveAll(root_);
  }
  FakeCgroup2Tree(const FakeCgroup2Tree&) = delete;
  FakeCgroup2Tree& operator=(const FakeCgroup2Tree&) = delete;
  const std::string& root() const { return root_; }

  // A level with cgroup.controllers listing `available` and the files of `controllers`.
  void AddLevel(const std::string& rel, const std::string& available) {
    std::string dir = rel.empty() ? root_ : root_ + "/" + rel;
    std::filesystem::create_directories(dir);
    Put(dir + "/cgroup.controllers", available + "\n");
    for (const char* f : {"cgroup.subtree_control", "cgroup.procs", "cpu.weight", "cpu.max",
                          "cpu.stat", "cpuset.cpus", "cpuset.mems", "memory.max", "memory.swap.max",
                          "memory.low", "memory.high", "memory.current", "memory.peak",
                          "memory.events", "pids.max", "pids.current", "io.weight"}) {
      Put(dir + "/" + f, "");
    }
  }
  static void Put(const std::string& file, const std::string& text) {
    std::ofstream(file, std::ios::trunc) << text;
  }
  std::string Read(const std::string& rel_file) const {
    return ReadFile(root_ + "/" + rel_file).value_or("<missing>");
  }

 private:
  std::string root_;
};

constexpr const char* kAllControllers = "cpuset cpu io memory hugetlb pids rdma misc";
constexpr const char* kEnabled = "+cpu +cpuset +io +memory +pids +hugetlb";

TEST(CgroupV2FakeTreeTest, EnablesControllersAboveAndWritesEveryResourceFile) {
  FakeCgroup2Tree t;
  ASSERT_FALSE(t.root().empty());
  for (const char* level : {"", "sv", "sv/test", "sv/test/c1"}) t.AddLevel(level, kAllControllers);
  auto cg = Cgroup::Create(CgroupMode::kUnified, "/sv/test/c1", t.root());
  ASSERT_TRUE(cg.has_value()) << cg.error().message();
  EXPECT_EQ(cg->dirs(), std::vector<std::string>{t.root() + "/sv/test/c1"});
  EXPECT_EQ(cg->UnifiedDir(), t.root() + "/sv/test/c1");
  EXPECT_EQ(cg->DirFor("memory"), t.root() + "/sv/test/c1");
  // Every level above the leaf (the leaf's parent included) enables the controllers a
  // container uses; the leaf itself (which gets processes) enables nothing.
  EXPECT_EQ(t.Read("cgroup.subtree_control"), kEnabled);
  EXPECT_EQ(t.Read("sv/cgroup.subtree_control"), kEnabled);
  EXPECT_EQ(t.Read("sv/test/cgroup.subtree_control"), kEnabled);
  EXPECT_EQ(t.Read("sv/test/c1/cgroup.subtree_control"), "");

  Resources r;
  r.cpu_shares = 1024;
  r.cpu_quota = 50000;
  r.cpu_period = 200000;
  r.cpuset_cpus = "0-1";
  r.cpuset_mems = "0";
  r.memory_limit = 64 << 20;
  r.memory_swap = 96 << 20;  // v1's memory+swap: v2's swap.max is the difference
  r.memory_reservation = 32 << 20;
  r.pids_limit = 42;
  r.blkio_weight = 500;
  r.unified = {{"memory.high", "50000000"}};
  Status applied = cg->Apply(r, {});
  ASSERT_TRUE(applied) << applied.error().message();
  const std::map<std::string, std::string> want = {
      {"cpu.weight", "39"},          {"cpu.max", "50000 200000"}, {"cpuset.cpus", "0-1"},
      {"cpuset.mems", "0"},          {"memory.max", "67108864"},  {"memory.swap.max", "33554432"},
      {"memory.low", "33554432"},    {"memory.high", "50000000"}, {"pids.max", "42"},
      {"io.weight", "default 4950"}, {"cgroup.procs", ""},        {"cgroup.subtree_control", ""}};
  for (const auto& [file, value] : want) EXPECT_EQ(t.Read("sv/test/c1/" + file), value) << file;

  // Unlimited values are written as "max"; a period alone keeps the quota unlimited.
  for (const char* f : {"cpu.max", "memory.max", "memory.swap.max", "pids.max"})
    FakeCgroup2Tree::Put(t.root() + "/sv/test/c1/" + f, "");
  Resources unlimited;
  unlimited.cpu_period = 100000;
  unlimited.memory_limit = -1;
  unlimited.memory_swap = -1;
  unlimited.pids_limit = -1;
  applied = cg->Apply(unlimited, {});
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(t.Read("sv/test/c1/cpu.max"), "max 100000");
  EXPECT_EQ(t.Read("sv/test/c1/memory.max"), "max");
  EXPECT_EQ(t.Read("sv/test/c1/memory.swap.max"), "");
  EXPECT_EQ(t.Read("sv/test/c1/pids.max"), "max");

  // A file the kernel would not show (controller not enabled) fails with its name.
  Resources bad;
  bad.unified = {{"rdma.max", "mlx4_0 hca_handle=2"}};
  Status refused = cg->Apply(bad, {});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("rdma.max"), std::string::npos);
}

TEST(CgroupV2FakeTreeTest, OneLevelPathEnablesTheRootsControllers) {
  // The runtime's default cgroup, /storevisor-<id>, is one level: the root must enable
  // the controllers, or the leaf has no cpu.max or memory.max. Only what the root has.
  FakeCgroup2Tree t;
  ASSERT_FALSE(t.root().empty());
  t.AddLevel("", "cpu memory pids");
  t.AddLevel("storevisor-x", "cpu memory pids");
  auto cg = Cgroup::Create(CgroupMode::kUnified, "/storevisor-x", t.root());
  ASSERT_TRUE(cg.has_value()) << cg.error().message();
  EXPECT_EQ(t.Read("cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_EQ(t.Read("storevisor-x/cgroup.subtree_control"), "");
}

TEST(CgroupV2FakeTreeTest, StatsAndPidsAreReadFromV2Files) {
  FakeCgroup2Tree t;
  ASSERT_FALSE(t.root().empty());
  t.AddLevel("", kAllControllers);
  t.AddLevel("c1", kAllControllers);
  auto cg = Cgroup::Create(CgroupMode::kUnified, "/c1", t.root());
  ASSERT_TRUE(cg.has_value()) << cg.error().message();
  std::string d = t.root() + "/c1/";
  FakeCgroup2Tree::Put(d + "memory.current", "1234\n");
  FakeCgroup2Tree::Put(d + "memory.peak", "5678\n");
  FakeCgroup2Tree::Put(d + "memory.max", "67108864\n");
  FakeCgroup2Tree::Put(d + "memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n");
  FakeCgroup2Tree::Put(d + "cpu.stat", "usage_usec 250\nuser_usec 200\nsystem_usec 50\n");
  FakeCgroup2Tree::Put(d + "pids.current", "3\n");
  FakeCgroup2Tree::Put(d + "cgroup.procs", "10\n11\n12\n");
  auto s = cg->Stats();
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(s->memory_usage, 1234u);
  EXPECT_EQ(s->memory_max_usage, 5678u);
  EXPECT_EQ(s->memory_limit, 67108864u);
  EXPECT_EQ(s->oom_kills, 2u);
  EXPECT_EQ(s->cpu_usage_ns, 250000u);
  EXPECT_EQ(s->pids_current, 3u);
  EXPECT_EQ(cg->OomKills(), 2u);
  auto pids = cg->Pids();
  ASSERT_TRUE(pids.has_value());
  EXPECT_EQ(*pids, (std::vector<pid_t>{10, 11, 12}));
}

}  // namespace
}  // namespace storevisor::runtime
