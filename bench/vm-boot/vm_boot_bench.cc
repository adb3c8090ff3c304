// bench/vm-boot: cold boot to guest-ready, snapshot restore to ready, and idle QEMU RSS.
//   (a) ours: -M microvm, qboot, PVH vmlinux, virtio-mmio (src/vm's command line)
//   (b) peer: QEMU's default `pc` machine as a plain libvirt domain starts it: SeaBIOS,
//       default devices (VGA, e1000 with its option ROM, IDE, floppy), a USB controller,
//       virtio-serial-pci for the agent channel and a virtio-balloon-pci memballoon;
//       same kernel (its bzImage), initrd, kernel arguments and accelerator
//   (c) ours restored from a snapshot
// Ready = the guest agent answers guest-sync-delimited. Rounds alternate a, b, c. Idle RSS
// is read 3 s after ready.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "vm/vm.h"

namespace sv = storevisor;
namespace vm = storevisor::vm;
using Clock = std::chrono::steady_clock;

namespace {

struct Sample {
  double ready_ms = 0;
  double rss_mib = 0;
  double pss_mib = 0;
  double trimmed_mib = 0;  // ours: QEMU's boot-only kernel/initrd copies handed back at ready
};

std::string LoadAverage() { return sv::ReadFile("/proc/loadavg", 256).value_or("?").substr(0, 14); }

double ProcKb(pid_t pid, const std::string& file, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/" + file);
  std::string k;
  double v = 0;
  std::string unit;
  while (f >> k) {
    if (k == key) {
      f >> v;
      return v;
    }
    std::getline(f, unit);
  }
  return 0;
}

void IdleMemory(pid_t pid, Sample* s) {
  // Idle for 3 s: past the guest's free page reporting delay (2 s), so pages the boot
  // freed are back with the host in both cases.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  s->rss_mib = ProcKb(pid, "status", "VmRSS:") / 1024;
  s->pss_mib = ProcKb(pid, "smaps_rollup", "Pss:") / 1024;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

sv::Result<Sample> Ours(const vm::VmConfig& c, const std::string& dir, const std::string& snap) {
  // The host's ksmd stays as it was: both sides are measured under the same KSM state
  // (switching it on mid-run slowed the THP-backed pc peer 3x here).
  vm::StartOptions o{vm::StateDir{dir}, false, snap, {}, /*leave_host_ksm=*/true};
  SV_ASSIGN_OR_RETURN(vm::Machine m, vm::Machine::Start(c, o));
  SV_ASSIGN_OR_RETURN(int64_t ms, m.WaitReady(vm::Millis(60000)));
  Sample s;
  s.ready_ms = static_cast<double>(ms);
  s.trimmed_mib = static_cast<double>(m.trimmed_bytes()) / (1 << 20);
  IdleMemory(m.pid(), &s);
  (void)m.Stop(vm::Millis(5000));
  return s;
}

sv::Result<Sample> Pc(const vm::VmConfig& c, const vm::AccelChoice& a, const std::string& guest,
                      const std::string& dir) {
  SV_TRY(sv::MakeDirs(dir));
  std::string agent = dir + "/agent.sock";
  ::unlink(agent.c_str());
  std::string append = vm::KernelCmdline(c, a);  // the same arguments, tuning included
  std::vector<std::string> argv = {
      c.qemu,
      "-name",
      "guest=pc-peer",
      "-machine",
      "pc,accel=tcg",
      "-m",
      std::to_string(c.memory_mib),
      "-smp",
      "1",
      "-kernel",
      guest + "/vmlinuz",
      "-initrd",
      guest + "/initrd.img",
      "-append",
      append,
      "-display",
      "none",
      "-serial",
      "file:" + dir + "/console.log",
      "-usb",
      "-chardev",
      "socket,id=charchannel0,path=" + agent + ",server=on,wait=off",
      "-device",
      "virtio-serial-pci,id=virtio-serial0",
      "-device",
      std::string("virtserialport,bus=virtio-serial0.0,nr=1,") +
          "chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0",
      "-device",
      "virtio-balloon-pci,id=balloon0"};
  if (a.accel == vm::Accel::kKvm) argv[4] = "pc,accel=kvm";
  sv::SpawnOptions so;
  so.argv = argv;
  so.stdout_fd = -1;
  so.die_with_parent = true;
  auto t0 = Clock::now();
  SV_ASSIGN_OR_RETURN(sv::ChildProcess child, sv::ChildProcess::Spawn(so));
  SV_ASSIGN_OR_RETURN(vm::AgentClient ga, vm::AgentClient::Connect(agent, vm::Millis(10000)));
  auto deadline = t0 + std::chrono::seconds(60);
  // Readiness as Machine::WaitReady tells it: one sync at a time, waiting in the socket.
  while (!ga.Sync(vm::Millis(500)).has_value()) {
    if (Clock::now() > deadline) return sv::Error(sv::ErrorCode::kTimeout, "pc peer never ready");
  }
  Sample s;
  s.ready_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  IdleMemory(child.pid(), &s);
  (void)ga.Shutdown();
  if (!child.Wait(std::chrono::milliseconds(10000)).has_value()) (void)child.Kill(SIGKILL);
  return s;
}

void Report(const char* name, const std::vector<Sample>& v) {
  std::vector<double> r, rss, pss;
  for (const auto& s : v) {
    r.push_back(s.ready_ms);
    rss.push_back(s.rss_mib);
    pss.push_back(s.pss_mib);
  }
  std::printf(
      "%-34s n=%-3zu ready median %7.0f ms (min %5.0f, max %5.0f)   idle RSS %6.1f MiB  PSS %6.1f "
      "MiB\n",
      name, v.size(), Median(r), *std::min_element(r.begin(), r.end()),
      *std::max_element(r.begin(), r.end()), Median(rss), Median(pss));
}

double MedianOf(const std::vector<Sample>& v, double Sample::*f) {
  std::vector<double> x;
  x.reserve(v.size());
  for (const auto& s : v) x.push_back(s.*f);
  return Median(x);
}

}  // namespace

int main(int argc, char** argv) {
  std::string guest = "build/guest";
  int rounds = 10;
  std::string ours_kernel = "vmlinux";  // --ours-kernel vmlinuz: A/B of the bzImage for (a)
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--guest") == 0) guest = argv[i + 1];
    if (std::strcmp(argv[i], "--ours-kernel") == 0) ours_kernel = argv[i + 1];
    if (std::strcmp(argv[i], "--rounds") == 0)
      rounds = std::max(1, static_cast<int>(std::strtol(argv[i + 1], nullptr, 10)));
  }
  char tmpl[] = "/tmp/sv-vmbench-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  vm::VmConfig c;
  c.name = "bench";
  c.kernel = guest + "/" + ours_kernel;
  c.initrd = guest + "/initrd.img";
  c.memory_mib = 256;
  c.serial.kind = vm::SerialConfig::Kind::kFile;
  c.serial.path = dir + "/console.log";
  vm::AccelChoice accel = vm::ChooseAccel(c.accel);
  std::printf(
      "accelerator: %s (%s); guest memory %llu MiB, 1 vCPU; %d rounds, alternating; ours boots "
      "%s, tb-size %llu MiB\n",
      std::string(vm::AccelName(accel.accel)).c_str(), accel.reason.c_str(),
      static_cast<unsigned long long>(c.memory_mib), rounds, ours_kernel.c_str(),
      static_cast<unsigned long long>(c.tcg_tb_size_mib));
  std::string ksm = sv::ReadFile("/sys/kernel/mm/ksm/run", 16).value_or("?");
  std::printf(
      "host KSM run=%s, left as it is for both sides (guest RAM is MADV_MERGEABLE in both: "
      "QEMU's mem-merge default)\nload average at start: %s\n",
      ksm.substr(0, 1).c_str(), LoadAverage().c_str());
  std::string snap = dir + "/snap";
  auto made = vm::CreateSnapshot(c, snap, vm::StateDir{dir + "/mk"});
  if (!made) {
    std::fprintf(stderr, "snapshot: %s\n", made.error().message().c_str());
    return 1;
  }
  if (ksm == "0\n") {  // taking the snapshot switched ksmd on: back to the host's state
    sv::UniqueFd k(::open("/sys/kernel/mm/ksm/run", O_WRONLY | O_CLOEXEC));
    if (!k.valid() || ::write(k.get(), "0", 1) != 1) std::fprintf(stderr, "cannot restore KSM\n");
  }
  vm::VmConfig restore = vm::SnapshotConfig(c, snap).value();
  std::vector<Sample> a, b, r;
  for (int i = 0; i < rounds; ++i) {
    auto sa = Ours(c, dir + "/a", "");
    auto sb = Pc(c, accel, guest, dir + "/b");
    auto sr = Ours(restore, dir + "/r", snap);
    if (!sa || !sb || !sr) {
      std::fprintf(stderr, "round %d failed: %s\n", i,
                   (!sa   ? sa.error()
                    : !sb ? sb.error()
                          : sr.error())
                       .message()
                       .c_str());
      continue;
    }
    a.push_back(*sa);
    b.push_back(*sb);
    r.push_back(*sr);
    std::printf("round %2d: microvm %5.0f ms  pc %5.0f ms  restore %4.0f ms\n", i + 1, sa->ready_ms,
                sb->ready_ms, sr->ready_ms);
    std::fflush(stdout);
  }
  (void)sv::RemoveAll(dir);
  std::printf("load average at end: %s\n", LoadAverage().c_str());
  if (a.empty()) return 1;
  std::printf("\n");
  Report("(a) ours: microvm cold boot", a);
  Report("(b) peer: pc defaults cold boot", b);
  Report("(c) ours: restore from snapshot", r);
  double ma = MedianOf(a, &Sample::ready_ms), mb = MedianOf(b, &Sample::ready_ms),
         mr = MedianOf(r, &Sample::ready_ms);
  std::printf("\nratios (medians):\n");
  std::printf("  cold boot   (a)/(b) = %.2fx   (target <= 0.7x)\n", ma / mb);
  std::printf("  restore     (c)/(a) = %.2fx   (target <= 0.1x)\n", mr / ma);
  std::printf("  idle RSS    (a)/(b) = %.2fx   (target <= 0.5x)   restored (c)/(b) = %.2fx\n",
              MedianOf(a, &Sample::rss_mib) / MedianOf(b, &Sample::rss_mib),
              MedianOf(r, &Sample::rss_mib) / MedianOf(b, &Sample::rss_mib));
  std::printf("  idle PSS    (a)/(b) = %.2fx\n",
              MedianOf(a, &Sample::pss_mib) / MedianOf(b, &Sample::pss_mib));
  double trimmed = MedianOf(a, &Sample::trimmed_mib);
  std::printf(
      "  (a) without the post-ready trim of QEMU's kernel/initrd copies (mappings of %.1f MiB): "
      "RSS at most %.1f MiB, %.2fx\n",
      trimmed, MedianOf(a, &Sample::rss_mib) + trimmed,
      (MedianOf(a, &Sample::rss_mib) + trimmed) / MedianOf(b, &Sample::rss_mib));
  return 0;
}
