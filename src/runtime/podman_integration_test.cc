// podman drives storevisor-runtime (`podman --runtime`): an image imported into a private
// podman store runs, prints, and is removed, with podman's own config.json (seccomp, sysctls,
// masked paths, cgroupfs paths) and conmon as the parent. Skips loudly without podman.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/child_process.h"
#include "common/files.h"

namespace storevisor::runtime {
namespace {

namespace fs = std::filesystem;

// A private podman store (--root/--runroot under a temporary directory) holding one
// imported busybox image, removed with everything podman left at the end.
class PodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root";
    if (::access("/usr/bin/podman", X_OK) != 0) GTEST_SKIP() << "SKIPPED: podman not installed";
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "SKIPPED: busybox-static missing";
    char tmpl[] = "/tmp/sv-podman-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string rootfs = dir_ + "/rootfs";
    for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp"})
      fs::create_directories(rootfs + "/" + d);
    fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
    for (const char* app : {"sh", "echo", "hostname", "grep", "cat", "sleep"})
      fs::create_symlink("busybox", rootfs + "/bin/" + app);
    auto tar = RunCommand({"tar", "-C", rootfs, "-cf", dir_ + "/rootfs.tar", "."});
    ASSERT_TRUE(tar.has_value() && tar->status.success());
    auto imported = Podman({"import", dir_ + "/rootfs.tar", kImage});
    ASSERT_EQ(imported.status.exit_code, 0) << imported.err;
  }

  void TearDown() override {
    if (dir_.empty()) return;
    (void)Podman({"rm", "-a", "-f"});
    (void)Podman({"rmi", "-a", "-f"});
    (void)RunCommand({"umount", "-R", dir_ + "/storage/overlay"});
    (void)RemoveAll(dir_);
    // podman (cgroupfs) parks conmon in /libpod_parent/conmon: remove what it left, if empty.
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
      ::rmdir((h.path().string() + "/libpod_parent/conmon").c_str());
      ::rmdir((h.path().string() + "/libpod_parent").c_str());
    }
  }

  // podman with this machine's flags (machine-notes): cgroupfs, file events, no network,
  // rlimits within root's hard limits (root here lacks CAP_SYS_RESOURCE).
  CommandOutput Podman(std::vector<std::string> extra) {
    std::vector<std::string> argv = {"podman",
                                     "--root",
                                     dir_ + "/storage",
                                     "--runroot",
                                     dir_ + "/run",
                                     "--cgroup-manager=cgroupfs",
                                     "--events-backend=file",
                                     "--tmpdir",
                                     dir_ + "/tmp"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = RunCommand(argv, std::chrono::seconds(120));
    EXPECT_TRUE(r.has_value());
    return r ? *r : CommandOutput{};
  }

  // `podman --runtime storevisor-runtime run ...` with the flags this host needs.
  CommandOutput PodmanRun(std::vector<std::string> args) {
    std::vector<std::string> argv = {"--runtime",       Runtime(),          "run",
                                     "--ulimit",        "nofile=1024:1024", "--ulimit",
                                     "nproc=4096:4096", "--network=none"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Podman(argv);
  }

  static std::string Runtime() { return std::string(SV_BINARY_DIR) + "/bin/storevisor-runtime"; }

  static constexpr const char* kImage = "localhost/sv-busybox:test";
  std::string dir_;
};

TEST_F(PodmanTest, RunsAnImportedImageWithOurRuntime) {
  auto run = PodmanRun({"--rm", "--hostname", "podbox", kImage, "/bin/sh", "-c",
                        "echo hello from podman; hostname; grep -c Seccomp:.2 "
                        "/proc/self/status; echo $$"});
  EXPECT_EQ(run.status.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "hello from podman\npodbox\n1\n1\n") << run.err;
  auto exit_code = PodmanRun({"--rm", kImage, "/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(exit_code.status.exit_code, 3) << exit_code.err;
  auto ps = Podman({"ps", "-a", "-q"});
  EXPECT_EQ(ps.out, "");
}

// podman pause/unpause call the runtime's pause and resume; podman top lists the
// container's processes.
TEST_F(PodmanTest, PauseUnpauseAndTop) {
  auto run = PodmanRun({"-d", "--name", "svpause", kImage, "/bin/sleep", "300"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  auto status = [&] { return Podman({"inspect", "--format", "{{.State.Status}}", "svpause"}).out; };
  EXPECT_EQ(status(), "running\n");
  auto top = Podman({"top", "svpause"});
  EXPECT_EQ(top.status.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("sleep 300"), std::string::npos) << top.out << top.err;
  auto pause = Podman({"pause", "svpause"});
  ASSERT_EQ(pause.status.exit_code, 0) << pause.err;
  EXPECT_EQ(status(), "paused\n");
  // The runtime agrees: its state says paused.
  auto id = Podman({"inspect", "--format", "{{.Id}}", "svpause"}).out;
  if (!id.empty() && id.back() == '\n') id.pop_back();
  auto state = RunCommand({Runtime(), "--root", dir_ + "/run/runtime", "state", id});
  if (state && state->status.success()) {
    EXPECT_NE(state->out.find("\"paused\""), std::string::npos) << state->out;
  }
  auto unpause = Podman({"unpause", "svpause"});
  ASSERT_EQ(unpause.status.exit_code, 0) << unpause.err;
  EXPECT_EQ(status(), "running\n");
  auto rm = Podman({"rm", "-f", "-t", "0", "svpause"});
  EXPECT_EQ(rm.status.exit_code, 0) << rm.err;
}

}  // namespace
}  // namespace storevisor::runtime
