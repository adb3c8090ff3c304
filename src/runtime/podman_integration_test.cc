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

TEST(PodmanTest, RunsAnImportedImageWithOurRuntime) {
  if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root";
  if (::access("/usr/bin/podman", X_OK) != 0) GTEST_SKIP() << "SKIPPED: podman not installed";
  if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "SKIPPED: busybox-static missing";
  char tmpl[] = "/tmp/sv-podman-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string rootfs = dir + "/rootfs";
  for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp"})
    fs::create_directories(rootfs + "/" + d);
  fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
  for (const char* app : {"sh", "echo", "hostname", "grep", "cat"})
    fs::create_symlink("busybox", rootfs + "/bin/" + app);
  auto tar = RunCommand({"tar", "-C", rootfs, "-cf", dir + "/rootfs.tar", "."});
  ASSERT_TRUE(tar.has_value() && tar->status.success());
  std::vector<std::string> podman = {"podman",
                                     "--root",
                                     dir + "/storage",
                                     "--runroot",
                                     dir + "/run",
                                     "--cgroup-manager=cgroupfs",
                                     "--events-backend=file",
                                     "--tmpdir",
                                     dir + "/tmp"};
  auto cmd = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = podman;
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = RunCommand(argv, std::chrono::seconds(120));
    EXPECT_TRUE(r.has_value());
    return r ? *r : CommandOutput{};
  };
  auto imported = cmd({"import", dir + "/rootfs.tar", "localhost/sv-busybox:test"});
  ASSERT_EQ(imported.status.exit_code, 0) << imported.err;
  std::string runtime = std::string(SV_BINARY_DIR) + "/bin/storevisor-runtime";
  auto run =
      cmd({"--runtime", runtime, "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit",
           "nproc=4096:4096", "--network=none", "--hostname", "podbox", "localhost/sv-busybox:test",
           "/bin/sh", "-c",
           "echo hello from podman; hostname; grep -c Seccomp:.2 /proc/self/status; echo $$"});
  EXPECT_EQ(run.status.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "hello from podman\npodbox\n1\n1\n") << run.err;
  auto exit_code = cmd({"--runtime", runtime, "run", "--rm", "--ulimit", "nofile=1024:1024",
                        "--ulimit", "nproc=4096:4096", "--network=none",
                        "localhost/sv-busybox:test", "/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(exit_code.status.exit_code, 3) << exit_code.err;
  auto ps = cmd({"ps", "-a", "-q"});
  EXPECT_EQ(ps.out, "");
  (void)cmd({"rmi", "-a", "-f"});
  (void)RunCommand({"umount", "-R", dir + "/storage/overlay"});
  (void)RemoveAll(dir);
  // podman (cgroupfs) parks conmon in /libpod_parent/conmon: remove what it left, if empty.
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup")) {
    ::rmdir((h.path().string() + "/libpod_parent/conmon").c_str());
    ::rmdir((h.path().string() + "/libpod_parent").c_str());
  }
}

}  // namespace
}  // namespace storevisor::runtime
