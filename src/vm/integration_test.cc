// Integration tests: the real Debian kernel under QEMU (TCG here), driven through the
// storevisor-vm command exactly as storevisord will drive it. One QEMU at a time
// (ctest RESOURCE_LOCK qemu); every test checks that no QEMU, socket or tap is left.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "vm/vm.h"

namespace storevisor::vm {
namespace {

using nlohmann::json;
const std::string kBin = SV_BINARY_DIR "/bin/storevisor-vm";
const std::string kGuest = SV_BINARY_DIR "/guest";
constexpr const char* kKsmRun = "/sys/kernel/mm/ksm/run";

bool Exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// PIDs of QEMU processes whose command line mentions `needle` (our per-test dir).
std::vector<pid_t> QemuWith(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    pid_t pid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    if (pid <= 0) continue;
    auto cmd = ReadFile("/proc/" + std::string(e->d_name) + "/cmdline", 1 << 20);
    if (cmd && cmd->find("qemu-system") != std::string::npos &&
        cmd->find(needle) != std::string::npos) {
      std::ifstream st("/proc/" + std::string(e->d_name) + "/stat");
      std::string pid_s, comm, state;
      st >> pid_s >> comm >> state;
      if (state != "Z") out.push_back(pid);
    }
  }
  if (d) closedir(d);
  return out;
}

class VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Exists(kGuest + "/vmlinux") || !Exists(kGuest + "/initrd.img")) {
      GTEST_SKIP() << "SKIPPED: guest assets missing in " << kGuest << " (run scripts/setup.sh)";
    }
    if (::system("command -v qemu-system-x86_64 >/dev/null") != 0) {
      GTEST_SKIP() << "SKIPPED: qemu-system-x86_64 not found";
    }
    char t[] = "/tmp/sv-vmtest-XXXXXX";
    dir_ = mkdtemp(t);
    // Starting a mergeable VM switches the host's ksmd on: put it back afterwards.
    ksm_before_ = ReadFile(kKsmRun, 16).value_or("");
  }
  void TearDown() override {
    if (!ksm_before_.empty()) (void)WriteKsm(ksm_before_.substr(0, 1));
    if (dir_.empty()) return;
    for (pid_t p : QemuWith(dir_)) {
      ADD_FAILURE() << "stray QEMU pid " << p;
      ::kill(p, SIGKILL);
    }
    (void)RemoveAll(dir_);
  }

  std::string WriteConfig(const std::string& name, const json& extra) {
    json c{{"name", name},      {"kernel", kGuest + "/vmlinux"}, {"initrd", kGuest + "/initrd.img"},
           {"memory_mib", 256}, {"ready_timeout_s", 60},         {"stop_timeout_s", 10}};
    c.update(extra);
    std::string path = dir_ + "/" + name + ".json";
    EXPECT_TRUE(WriteFileAtomic(path, c.dump()).has_value());
    return path;
  }

  CommandOutput Cli(std::vector<std::string> args, int timeout_s = 120) {
    args.insert(args.begin(), kBin);
    auto r = RunCommand(args, std::chrono::seconds(timeout_s));
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
    return r ? *r : CommandOutput{};
  }

  void ExpectNoLeftovers(const std::string& state) {
    EXPECT_TRUE(QemuWith(dir_).empty());
    EXPECT_FALSE(Exists(state + "/qmp.sock"));
    EXPECT_FALSE(Exists(state + "/agent.sock"));
    EXPECT_FALSE(Exists(state + "/qemu.pid"));
  }

  static bool WriteKsm(const std::string& v) {
    UniqueFd fd(::open(kKsmRun, O_WRONLY | O_CLOEXEC));
    return fd.valid() && ::write(fd.get(), v.data(), v.size()) == static_cast<ssize_t>(v.size());
  }

  std::string dir_;
  std::string ksm_before_;
};

TEST_F(VmTest, DetachedBootExecStatusStop) {
  std::string cfg = WriteConfig("d1", json::object());
  std::string state = dir_ + "/state";
  auto run = Cli({"run", "--config", cfg, "--detach", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  json j = json::parse(run.out);
  EXPECT_EQ(j["accel"], "tcg");  // this machine has no usable KVM
  EXPECT_NE(j["accel_reason"].get<std::string>(), "");
  EXPECT_GT(j["ready_ms"].get<int>(), 0);
  EXPECT_EQ(j["qmp"], state + "/qmp.sock");

  auto st = Cli({"status", "--state-dir", state, "-o", "json"});
  EXPECT_EQ(st.status.exit_code, 0) << st.err;
  json sj = json::parse(st.out);
  EXPECT_EQ(sj["status"], "running");
  EXPECT_EQ(sj["pid"], j["pid"]);
  EXPECT_EQ(sj["accel"], "tcg");
  // Counters for /metrics: what QMP and /proc give under TCG.
  const json& c = sj["counters"];
  EXPECT_EQ(c["guest_memory_bytes"], 256ull << 20);
  EXPECT_GT(c["rss_bytes"].get<uint64_t>(), 16ull << 20);
  ASSERT_EQ(c["vcpus"].size(), 1u);
  EXPECT_GT(c["vcpus"][0]["cpu_seconds"].get<double>(), 0.0);
  EXPECT_GT(c["tcg"]["tb_count"].get<uint64_t>(), 0u);
  EXPECT_EQ(c["tcg"]["code_capacity_bytes"].get<uint64_t>() >> 20, 15u);  // tb-size 16 MiB
  // No transparent huge pages for a TCG QEMU (khugepaged would refill what the guest
  // handed back).
  EXPECT_NE(ReadFile("/proc/" + std::to_string(j["pid"].get<int>()) + "/status")
                .value_or("")
                .find("THP_enabled:\t0"),
            std::string::npos);
  // Once ready, QEMU's private copies of the kernel and initrd were handed back.
  EXPECT_GT(j["trimmed_bytes"].get<uint64_t>(), 40ull << 20);

  auto ex =
      Cli({"exec", "--state-dir", state, "--", "/bin/sh", "-c", "uname -r; echo err >&2; exit 7"});
  EXPECT_EQ(ex.status.exit_code, 7);
  EXPECT_NE(ex.out.find("cloud-amd64"), std::string::npos) << ex.out;
  EXPECT_EQ(ex.err, "err\n");
  // guest-get-osinfo from our in-initrd agent: the guest kernel's release and machine.
  {
    auto ga = vm::AgentClient::Connect(state + "/agent.sock", vm::Millis(5000));
    ASSERT_TRUE(ga.has_value()) << ga.error().message();
    auto os = ga->Execute("guest-get-osinfo", json::object(), vm::Millis(10000));
    ASSERT_TRUE(os.has_value()) << os.error().message();
    EXPECT_NE(os->value("kernel-release", "").find("cloud-amd64"), std::string::npos) << os->dump();
    EXPECT_EQ(os->value("machine", ""), "x86_64") << os->dump();
  }

  auto stop = Cli({"stop", "--state-dir", state});
  EXPECT_EQ(stop.status.exit_code, 0) << stop.err;
  EXPECT_NE(stop.err.find("powered-off"), std::string::npos) << stop.err;
  ExpectNoLeftovers(state);
  auto after = Cli({"status", "--state-dir", state, "-o", "json"});
  EXPECT_EQ(json::parse(after.out)["status"], "shutdown");
}

// What the engine trims from a guest's boot (docs/vm.md, "Benchmark"), checked inside the
// guest: the late drivers (balloon, rng, button, evdev) come in after readiness and PID 1
// then watches the power button; module files are gone from the initramfs; tracefs is not built
// unless guest_tracing asks for it.
TEST_F(VmTest, LeanGuestLateDriversAndTracingOnRequest) {
  const std::string probe =
      "for i in $(seq 100); do ls -l /proc/1/fd | grep -q input/event && "
      "ls /sys/bus/virtio/drivers/virtio_balloon | grep -q virtio && break; sleep 0.1; done; "
      "echo balloon=$(ls /sys/bus/virtio/drivers/virtio_balloon | grep -c virtio); "
      "echo rng=$(ls /sys/bus/virtio/drivers/virtio_rng | grep -c virtio); "
      "echo pid1_inputs=$(ls -l /proc/1/fd | grep -c input/event); "
      "echo agent_port=$(ls -l /proc/$(pidof sv-agent)/fd | grep -c /dev/vport); "
      "echo ko=$(find /lib/modules -name '*.ko' | wc -l); "
      "mkdir -p /tmp/t && mount -t tracefs none /tmp/t && echo tracefs=$(find /tmp/t | wc -l); "
      "umount /tmp/t";
  auto facts = [&](const std::string& name, const json& extra) {
    std::string state = dir_ + "/" + name;
    auto run = Cli({"run", "--config", WriteConfig(name, extra), "--detach", "--state-dir", state});
    EXPECT_EQ(run.status.exit_code, 0) << run.err;
    auto ex = Cli({"exec", "--state-dir", state, "--", "/bin/sh", "-c", probe});
    EXPECT_EQ(ex.status.exit_code, 0) << ex.err;
    EXPECT_EQ(Cli({"stop", "--state-dir", state}).status.exit_code, 0);
    std::map<std::string, int> f;
    std::istringstream in(ex.out);
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) f[line.substr(0, eq)] = std::atoi(line.c_str() + eq + 1);
    }
    return f;
  };
  auto lean = facts("lean", json::object());
  EXPECT_EQ(lean["balloon"], 1);
  EXPECT_EQ(lean["rng"], 1);
  EXPECT_GE(lean["pid1_inputs"], 1);
  EXPECT_EQ(lean["agent_port"], 1);
  EXPECT_EQ(lean["ko"], 0);
  EXPECT_LT(lean["tracefs"], 100);  // the mount works, but no event files were made
  auto traced = facts("traced", {{"guest_tracing", true}});
  EXPECT_GT(traced["tracefs"], 1000);  // events/*/*/{enable,format,id,filter,trigger}
  EXPECT_EQ(traced["agent_port"], 1);
}

TEST_F(VmTest, ForegroundPrintsConsoleAndStopsCleanlyOnSigterm) {
  std::string cfg = WriteConfig("f1", json::object());
  std::string state = dir_ + "/fg";
  std::string out = dir_ + "/out.txt";
  std::string err = dir_ + "/err.txt";
  auto outf = OpenFile(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  auto errf = OpenFile(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_TRUE(outf.has_value() && errf.has_value());
  SpawnOptions so;
  so.argv = {kBin, "run", "--config", cfg, "--state-dir", state};
  so.stdout_fd = outf->get();
  so.stderr_fd = errf->get();
  auto child = ChildProcess::Spawn(so);
  ASSERT_TRUE(child.has_value());
  for (int i = 0; i < 600; ++i) {
    if (ReadFile(err).value_or("").find("guest ready") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(ReadFile(err).value_or("").find("guest ready"), std::string::npos)
      << ReadFile(err).value_or("");
  ASSERT_TRUE(child->Kill(SIGTERM).has_value());
  auto st = child->Wait(std::chrono::milliseconds(60000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadFile(err).value_or("");
  std::string console = ReadFile(out).value_or("");
  EXPECT_NE(console.find("storevisor-init"), std::string::npos);
  EXPECT_NE(console.find("powering off"), std::string::npos) << console;  // the agent's shutdown
  EXPECT_NE(ReadFile(err).value_or("").find("guest powered-off"), std::string::npos);
  ExpectNoLeftovers(state);
}

// A foreground `run` whose guest is ready; its stderr goes to ERR_FILE. The caller decides
// how the guest ends.
struct Foreground {
  std::optional<ChildProcess> child;
  std::string err_file;
};

Foreground StartForeground(const std::string& cfg, const std::string& state,
                           const std::string& err_file) {
  Foreground f;
  f.err_file = err_file;
  auto errf = OpenFile(err_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_TRUE(errf.has_value());
  if (!errf) return f;
  SpawnOptions so;
  so.argv = {kBin, "run", "--config", cfg, "--state-dir", state, "--serial", "none"};
  so.stderr_fd = errf->get();
  auto child = ChildProcess::Spawn(so);
  EXPECT_TRUE(child.has_value());
  if (!child) return f;
  f.child.emplace(std::move(*child));
  for (int i = 0; i < 600; ++i) {
    if (ReadFile(err_file).value_or("").find("guest ready") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(ReadFile(err_file).value_or("").find("guest ready"), std::string::npos)
      << ReadFile(err_file).value_or("");
  return f;
}

pid_t QemuPid(const std::string& state) {
  return static_cast<pid_t>(
      std::strtol(ReadFile(state + "/qemu.pid").value_or("0").c_str(), nullptr, 10));
}

TEST_F(VmTest, ForegroundExitStatusSaysHowTheGuestEnded) {
  std::string cfg = WriteConfig("fates", {{"stop_timeout_s", 2}});
  // 20 reset: the guest reboots (QEMU runs with -no-reboot).
  std::string state = dir_ + "/reset";
  Foreground f = StartForeground(cfg, state, dir_ + "/reset.err");
  ASSERT_TRUE(f.child.has_value());
  (void)Cli({"exec", "--state-dir", state, "--timeout", "5", "--", "/bin/busybox", "reboot", "-f"},
            30);
  auto st = f.child->Wait(std::chrono::milliseconds(30000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 20) << ReadFile(f.err_file).value_or("");
  EXPECT_NE(ReadFile(f.err_file).value_or("").find("reset"), std::string::npos);
  ExpectNoLeftovers(state);

  // 21 killed: QEMU is SIGKILLed from outside (an operator, the OOM killer).
  state = dir_ + "/sigkill";
  f = StartForeground(cfg, state, dir_ + "/sigkill.err");
  ASSERT_TRUE(f.child.has_value());
  pid_t qemu = QemuPid(state);
  ASSERT_GT(qemu, 0);
  ASSERT_EQ(::kill(qemu, SIGKILL), 0);
  st = f.child->Wait(std::chrono::milliseconds(30000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 21) << ReadFile(f.err_file).value_or("");
  ExpectNoLeftovers(state);

  // 22 qemu-died: QEMU crashes (SIGABRT here; no core file: RLIMIT_CORE 0 is inherited).
  rlimit no_core{0, 0};
  ASSERT_EQ(::setrlimit(RLIMIT_CORE, &no_core), 0);
  state = dir_ + "/died";
  f = StartForeground(cfg, state, dir_ + "/died.err");
  ASSERT_TRUE(f.child.has_value());
  qemu = QemuPid(state);
  ASSERT_GT(qemu, 0);
  ASSERT_EQ(::kill(qemu, SIGABRT), 0);
  st = f.child->Wait(std::chrono::milliseconds(30000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 22) << ReadFile(f.err_file).value_or("");
  EXPECT_NE(ReadFile(f.err_file).value_or("").find("qemu-died"), std::string::npos)
      << ReadFile(f.err_file).value_or("");
  ExpectNoLeftovers(state);

  // The power-button stage: the agent is frozen, so the stop falls through to ACPI and the
  // guest's init powers off on the button (status 0).
  state = dir_ + "/button";
  f = StartForeground(cfg, state, dir_ + "/button.err");
  ASSERT_TRUE(f.child.has_value());
  auto frozen = Cli({"exec", "--state-dir", state, "--", "/bin/busybox", "sh", "-c",
                     "kill -STOP $(/bin/busybox pidof sv-agent)"});
  (void)frozen;  // the agent freezes itself: its reply may or may not get out first
  ASSERT_TRUE(f.child->Kill(SIGTERM).has_value());
  st = f.child->Wait(std::chrono::milliseconds(60000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadFile(f.err_file).value_or("");
  EXPECT_NE(ReadFile(f.err_file).value_or("").find("powered-off"), std::string::npos);
  ExpectNoLeftovers(state);

  // 21 killed: QEMU itself is frozen (no agent, no QMP answer): stop kills it after the
  // stages' timeouts.
  state = dir_ + "/frozen";
  f = StartForeground(cfg, state, dir_ + "/frozen.err");
  ASSERT_TRUE(f.child.has_value());
  qemu = QemuPid(state);
  ASSERT_GT(qemu, 0);
  ASSERT_EQ(::kill(qemu, SIGSTOP), 0);
  ASSERT_TRUE(f.child->Kill(SIGTERM).has_value());
  st = f.child->Wait(std::chrono::milliseconds(60000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 21) << ReadFile(f.err_file).value_or("");
  EXPECT_NE(::kill(qemu, 0), 0);  // gone
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, DebianRootfsWithQemuGaPersistsWritesAndHonoursReadOnly) {
  if (!Exists(kGuest + "/rootfs.ext4")) GTEST_SKIP() << "SKIPPED: rootfs.ext4 missing";
  // A copy-on-write overlay keeps build/guest/rootfs.ext4 pristine.
  std::string disk = dir_ + "/root.qcow2";
  auto mk = RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        kGuest + "/rootfs.ext4", disk});
  ASSERT_TRUE(mk.has_value() && mk->status.success()) << (mk ? mk->err : "");
  std::string state = dir_ + "/deb";
  std::string rw =
      WriteConfig("deb-rw", {{"disks", {{{"path", disk}, {"format", "qcow2"}}}}, {"root_disk", 0}});
  auto run = Cli({"run", "--config", rw, "--detach", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  std::string script =
      "grep ^ID= /etc/os-release; grep -qx qemu-ga /proc/[0-9]*/comm && echo qemu-ga-runs; "
      "echo persisted-data > /root/sv-test; sync; echo ro=$(cat /sys/block/vda/ro)";
  auto os = Cli({"exec", "--state-dir", state, "--", "/bin/sh", "-c", script});
  EXPECT_EQ(os.status.exit_code, 0) << os.err;
  EXPECT_NE(os.out.find("ID=debian"), std::string::npos) << os.out;
  EXPECT_NE(os.out.find("qemu-ga-runs"), std::string::npos) << os.out;
  EXPECT_NE(os.out.find("ro=0"), std::string::npos) << os.out;  // a writable device here
  auto stop = Cli({"stop", "--state-dir", state});
  EXPECT_EQ(stop.status.exit_code, 0) << stop.err;
  ExpectNoLeftovers(state);

  std::string ro = WriteConfig(
      "deb-ro",
      {{"disks", {{{"path", disk}, {"format", "qcow2"}, {"readonly", true}}}}, {"root_disk", 0}});
  run = Cli({"run", "--config", ro, "--detach", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  auto read = Cli({"exec", "--state-dir", state, "--", "/bin/cat", "/root/sv-test"});
  EXPECT_EQ(read.status.exit_code, 0);
  EXPECT_EQ(read.out, "persisted-data\n");
  auto write = Cli({"exec", "--state-dir", state, "--", "/bin/sh", "-c", "echo x > /root/other"});
  EXPECT_NE(write.status.exit_code, 0);
  EXPECT_NE(write.err.find("Read-only file system"), std::string::npos) << write.err;
  // Not only the guest's ro mount: the device is read-only (QEMU's readonly=on gives the
  // guest VIRTIO_BLK_F_RO), so even a raw write to it is refused.
  auto dev = Cli({"exec", "--state-dir", state, "--", "/bin/cat", "/sys/block/vda/ro"});
  EXPECT_EQ(dev.out, "1\n") << dev.err;
  auto raw = Cli({"exec", "--state-dir", state, "--", "/bin/dd", "if=/dev/zero", "of=/dev/vda",
                  "bs=4096", "count=1", "seek=100000", "conv=notrunc"});
  EXPECT_NE(raw.status.exit_code, 0) << raw.out << raw.err;
  stop = Cli({"stop", "--state-dir", state});
  EXPECT_EQ(stop.status.exit_code, 0) << stop.err;
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, BadInputGivesClearErrorsAndStatuses) {
  std::string state = dir_ + "/bad";
  auto missing = Cli({"run", "--kernel", dir_ + "/nope", "--state-dir", state});
  EXPECT_EQ(missing.status.exit_code, 3);
  EXPECT_NE(missing.err.find("kernel: '" + dir_ + "/nope'"), std::string::npos) << missing.err;

  std::string corrupt = dir_ + "/corrupt";
  ASSERT_TRUE(WriteFileAtomic(corrupt, std::string(4096, 'x')).has_value());
  auto bad = Cli({"run", "--kernel", corrupt, "--state-dir", state});
  EXPECT_EQ(bad.status.exit_code, 2);
  EXPECT_NE(bad.err.find("neither a bzImage nor an ELF"), std::string::npos) << bad.err;

  auto unknown = Cli({"run", "--kernel", kGuest + "/vmlinux", "--frobnicate"});
  EXPECT_EQ(unknown.status.exit_code, 2);
  EXPECT_NE(unknown.err.find("frobnicate"), std::string::npos) << unknown.err;

  std::string typo = WriteConfig("typo", {{"memroy_mib", 512}});
  auto t = Cli({"run", "--config", typo});
  EXPECT_EQ(t.status.exit_code, 2);
  EXPECT_NE(t.err.find("memroy_mib: unknown field"), std::string::npos) << t.err;

  auto huge = Cli({"run", "--kernel", kGuest + "/vmlinux", "--memory", "1000000"});
  EXPECT_EQ(huge.status.exit_code, 7);
  EXPECT_NE(huge.err.find("more than the host has"), std::string::npos) << huge.err;
  EXPECT_TRUE(QemuWith(dir_).empty());
}

TEST_F(VmTest, BusyTapIsRefusedAndNothingIsLeft) {
  std::string tap = "svt" + std::to_string(::getpid() % 100000);
  if (::system(("ip tuntap add dev " + tap + " mode tap 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "SKIPPED: cannot create a tap device here";
  }
  // Hold the tap: a single-queue tap has one owner, so QEMU's TUNSETIFF gets EBUSY.
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", tap.c_str());
  ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0);
  std::string state = dir_ + "/tap";
  auto r = Cli({"run", "--kernel", kGuest + "/vmlinux", "--initrd", kGuest + "/initrd.img", "--net",
                "tap=" + tap, "--state-dir", state, "--detach"});
  ::close(fd);
  EXPECT_EQ(r.status.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("QEMU exited at start"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(tap), std::string::npos) << r.err;
  ExpectNoLeftovers(state);
  EXPECT_EQ(::system(("ip link del " + tap).c_str()), 0);
}

TEST_F(VmTest, GuestThatNeverBecomesReadyIsKilledByTheWatchdog) {
  std::string state = dir_ + "/never";
  // rdinit=/bin/sh: the kernel runs a shell instead of our init: no agent ever answers.
  std::string cfg = WriteConfig("never", {{"cmdline", "rdinit=/bin/sh"}, {"ready_timeout_s", 4}});
  auto r = Cli({"run", "--config", cfg, "--state-dir", state, "--detach"});
  EXPECT_EQ(r.status.exit_code, 10) << r.err;
  EXPECT_NE(r.err.find("boot watchdog"), std::string::npos) << r.err;
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, QemuDyingIsReportedAndCleanedUp) {
  std::string cfg = WriteConfig("die", json::object());
  std::string state = dir_ + "/die";
  auto run = Cli({"run", "--config", cfg, "--detach", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  pid_t pid = json::parse(run.out)["pid"].get<pid_t>();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (int i = 0; i < 50 && !QemuWith(state).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto st = Cli({"status", "--state-dir", state, "-o", "json"});
  EXPECT_EQ(json::parse(st.out)["status"], "shutdown");
  auto stop = Cli({"stop", "--state-dir", state});
  EXPECT_EQ(stop.status.exit_code, 0);
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, KilledStarterCanReattach) {
  std::string cfg = WriteConfig("re", json::object());
  std::string state = dir_ + "/re";
  SpawnOptions so;
  so.argv = {kBin, "run", "--config", cfg, "--detach", "--state-dir", state};
  so.stdout_fd = -1;
  so.stderr_fd = -1;
  auto starter = ChildProcess::Spawn(so);
  ASSERT_TRUE(starter.has_value());
  for (int i = 0; i < 100 && !Exists(state + "/qmp.sock"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(starter->Kill(SIGKILL).has_value());  // the daemon "crashes" mid-boot
  (void)starter->Wait();
  ASSERT_EQ(QemuWith(state).size(), 1u);  // QEMU lives on in its own session
  auto st = Cli({"status", "--state-dir", state, "-o", "json"});
  EXPECT_EQ(json::parse(st.out)["status"], "running") << st.err;
  auto ex = Cli({"exec", "--state-dir", state, "--timeout", "60", "--", "/bin/echo", "back"});
  EXPECT_EQ(ex.status.exit_code, 0) << ex.err;
  EXPECT_EQ(ex.out, "back\n");
  auto stop = Cli({"stop", "--state-dir", state});
  EXPECT_EQ(stop.status.exit_code, 0) << stop.err;
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, SnapshotRestoresTheSameBootAndRefusesStaleInputs) {
  std::string initrd = dir_ + "/initrd.img";
  const std::string initrd_data = ReadFile(kGuest + "/initrd.img", 256u << 20).value();
  ASSERT_TRUE(WriteFileAtomic(initrd, initrd_data).has_value());
  std::string kernel = dir_ + "/vmlinux";
  std::error_code ec;
  std::filesystem::copy_file(kGuest + "/vmlinux", kernel, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::string cfg = WriteConfig("snap", {{"initrd", initrd}, {"kernel", kernel}});
  std::string snap = dir_ + "/snap";
  auto mk = Cli({"snapshot", "--config", cfg, "--out", snap, "-o", "json"});
  ASSERT_EQ(mk.status.exit_code, 0) << mk.err;
  json manifest = json::parse(mk.out);
  std::string boot_id = manifest["guest"]["boot_id"];
  double uptime = manifest["guest"]["uptime_s"];
  ASSERT_FALSE(boot_id.empty());
  EXPECT_TRUE(QemuWith(dir_).empty());

  std::string state = dir_ + "/restored";
  auto run = Cli({"run", "--config", cfg, "--from-snapshot", snap, "--detach", "--state-dir", state,
                  "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  auto ex = Cli({"exec", "--state-dir", state, "--", "/bin/cat", "/proc/sys/kernel/random/boot_id",
                 "/proc/uptime", "/sys/module/page_reporting/parameters/page_reporting_order"});
  ASSERT_EQ(ex.status.exit_code, 0) << ex.err;
  EXPECT_EQ(ex.out.substr(0, boot_id.size()), boot_id);  // the same boot goes on
  double up_after = std::stod(ex.out.substr(ex.out.find('\n') + 1));
  EXPECT_GE(up_after, uptime);
  // Free page reporting is off in the restored guest: QEMU 7.2 would punch the pages it
  // reports out of the snapshot's RAM file (sv.reporting=off, docs/vm.md).
  EXPECT_NE(ex.out.find("\n11\n"), std::string::npos) << ex.out;
  EXPECT_EQ(Cli({"stop", "--state-dir", state}).status.exit_code, 0);
  ExpectNoLeftovers(state);

  // Change the initrd: the snapshot is stale and refused, naming what changed.
  std::string data = ReadFile(initrd, 256u << 20).value();
  data[data.size() - 1] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(initrd, data).has_value());
  auto stale =
      Cli({"run", "--config", cfg, "--from-snapshot", snap, "--detach", "--state-dir", state});
  EXPECT_EQ(stale.status.exit_code, 8) << stale.err;
  EXPECT_NE(stale.err.find("stale: initrd"), std::string::npos) << stale.err;
  // The initrd back as it was (new mtime, same content: hashed, accepted); then the kernel
  // edited in place with its mtime put back: same size and mtime, yet refused (ctime).
  ASSERT_TRUE(WriteFileAtomic(initrd, initrd_data).has_value());
  {
    struct stat before {};
    ASSERT_EQ(::stat(kernel.c_str(), &before), 0);
    int fd = ::open(kernel.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const char x = 'X';
    EXPECT_EQ(::pwrite(fd, &x, 1, before.st_size - 1), 1);
    ::close(fd);
    const timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, kernel.c_str(), times, 0), 0);
  }
  stale = Cli({"run", "--config", cfg, "--from-snapshot", snap, "--detach", "--state-dir", state});
  EXPECT_EQ(stale.status.exit_code, 8) << stale.err;
  EXPECT_NE(stale.err.find("stale: kernel"), std::string::npos) << stale.err;
  EXPECT_EQ(stale.err.find("initrd"), std::string::npos) << stale.err;
  // And a different config (more memory) is refused too.
  std::string cfg2 =
      WriteConfig("snap2", {{"initrd", initrd}, {"kernel", kernel}, {"memory_mib", 384}});
  auto other = Cli({"run", "--config", cfg2, "--from-snapshot", snap, "--state-dir", state});
  EXPECT_EQ(other.status.exit_code, 8);
  EXPECT_NE(other.err.find("config differs"), std::string::npos) << other.err;
  // A snapshot an older storevisor-vm made for another machine layout (its manifest names
  // it; version-1 manifests have none) cannot be restored into this one's machine.
  json m = json::parse(ReadFile(snap + "/manifest.json", 1 << 20).value_or("{}"));
  m.erase("machine");
  ASSERT_TRUE(WriteFileAtomic(snap + "/manifest.json", m.dump()).has_value());
  auto older = Cli({"run", "--config", cfg, "--from-snapshot", snap, "--state-dir", state});
  EXPECT_EQ(older.status.exit_code, 8);
  EXPECT_NE(older.err.find("stale: it restores into machine layout 1"), std::string::npos)
      << older.err;
  EXPECT_TRUE(QemuWith(dir_).empty());
}

TEST_F(VmTest, MergeableVmSwitchesHostKsmOn) {
  if (ksm_before_.empty() || !WriteKsm("0")) GTEST_SKIP() << "SKIPPED: no writable " << kKsmRun;
  std::string state = dir_ + "/ksm";
  auto run = Cli({"run", "--config", WriteConfig("ksm", {{"mem_merge", true}}), "--detach",
                  "--state-dir", state, "--no-wait", "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  EXPECT_EQ(ReadFile(kKsmRun, 16).value_or(""), "1\n");
  EXPECT_NE(json::parse(run.out)["host_ksm"].get<std::string>().find("switched on"),
            std::string::npos);
  (void)Cli({"stop", "--state-dir", state, "--timeout", "2"});  // still booting: any fate
  ExpectNoLeftovers(state);
  // Without mem_merge the host is left alone.
  ASSERT_TRUE(WriteKsm("0"));
  run = Cli({"run", "--config", WriteConfig("noksm", {{"mem_merge", false}}), "--detach",
             "--state-dir", state, "--no-wait", "-o", "json"});
  ASSERT_EQ(run.status.exit_code, 0) << run.err;
  EXPECT_EQ(ReadFile(kKsmRun, 16).value_or(""), "0\n");
  (void)Cli({"stop", "--state-dir", state, "--timeout", "2"});
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, GuestKernelPanicIsReportedAsPanicked) {
  std::string cfg = WriteConfig("panic", {{"serial", "file:" + dir_ + "/console.txt"}});
  std::string state = dir_ + "/panic";
  std::string err = dir_ + "/err.txt";
  auto errf = OpenFile(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_TRUE(errf.has_value());
  SpawnOptions so;
  so.argv = {kBin, "run", "--config", cfg, "--state-dir", state};
  so.stdout_fd = -1;
  so.stderr_fd = errf->get();
  auto child = ChildProcess::Spawn(so);
  ASSERT_TRUE(child.has_value());
  for (int i = 0; i < 600; ++i) {
    if (ReadFile(err).value_or("").find("guest ready") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(ReadFile(err).value_or("").find("guest ready"), std::string::npos);
  // A real panic: sysrq 'c' crashes the kernel; the exec never gets its answer.
  (void)Cli({"exec", "--state-dir", state, "--timeout", "5", "--", "/bin/sh", "-c",
             "echo c > /proc/sysrq-trigger"});
  auto st = child->Wait(std::chrono::milliseconds(60000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 23) << ReadFile(err).value_or("");
  EXPECT_NE(ReadFile(err).value_or("").find("guest panicked"), std::string::npos);
  EXPECT_NE(ReadFile(dir_ + "/console.txt").value_or("").find("Kernel panic"), std::string::npos);
  ExpectNoLeftovers(state);
}

TEST_F(VmTest, SnapshotOfAWritableDiskIsRefused) {
  std::string disk = dir_ + "/data.raw";
  ASSERT_TRUE(WriteFileAtomic(disk, std::string(1 << 20, '\0')).has_value());
  std::string cfg = WriteConfig("snapw", {{"disks", {{{"path", disk}}}}});
  auto mk = Cli({"snapshot", "--config", cfg, "--out", dir_ + "/snapw"});
  EXPECT_EQ(mk.status.exit_code, 2) << mk.err;
  EXPECT_NE(mk.err.find("disks[0] (" + disk + ") is writable"), std::string::npos) << mk.err;
  EXPECT_NE(mk.err.find(disk + ",ro"), std::string::npos) << mk.err;
  EXPECT_TRUE(QemuWith(dir_).empty());  // refused before anything booted
}

}  // namespace
}  // namespace storevisor::vm
