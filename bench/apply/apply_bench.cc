// bench/apply: what an operator waits for, against doing the same by hand.
//   ours: `storevisor apply -f examples/store-demo.yaml` until the CLI returns, i.e. every
//         workload runs and passed its health check (kv, inventory, pos microVM started from
//         its snapshot, taken once by the warm-up apply and cached by the daemon).
//   peer: the same workloads started one by one: QEMU's default `pc` machine cold-booting
//         the same kernel, initrd and kernel arguments until the guest agent runs /bin/true
//         (the pos health check), then `podman run -d` of the same two images (imported into
//         a bench-private podman store) until `podman exec` passes the same health checks.
// Also: `storevisor ps` with 50 containers against `podman ps` with 50, and storevisord's
// idle RSS against `podman system service`'s. Prints medians and ratios, and the load.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.h"
#include "common/files.h"
#include "vm/vm.h"

namespace sv = storevisor;
namespace vm = storevisor::vm;
using Clock = std::chrono::steady_clock;

namespace {

struct Paths {
  std::string root;   // the checkout
  std::string bin;    // build/bin
  std::string work;   // build/bench-apply: daemon state (snapshot cache), podman store
  std::string sock;   // storevisord's socket
  std::string empty;  // a profile without workloads
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string LoadAvg() {
  auto l = sv::ReadFile("/proc/loadavg", 256);
  return l ? l->substr(0, l->find(' ', l->find(' ', l->find(' ') + 1) + 1)) : "?";
}

double RssMib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string k;
  while (f >> k) {
    if (k == "VmRSS:") {
      double kb = 0;
      f >> kb;
      return kb / 1024;
    }
    std::string rest;
    std::getline(f, rest);
  }
  return 0;
}

sv::Result<sv::CommandOutput> Must(const std::vector<std::string>& argv, int timeout_s = 120) {
  SV_ASSIGN_OR_RETURN(sv::CommandOutput out, sv::RunCommand(argv, std::chrono::seconds(timeout_s)));
  if (!out.status.success()) {
    std::string cmd;
    for (const auto& a : argv) cmd += " " + a;
    return sv::Error(sv::ErrorCode::kIo, "failed:" + cmd + ": " + out.status.ToString() + ": " +
                                             out.err.substr(0, 600) + out.out.substr(0, 300));
  }
  return out;
}

std::vector<std::string> Cli(const Paths& p, std::vector<std::string> args) {
  args.insert(args.begin(), {p.bin + "/storevisor", "--socket", p.sock});
  return args;
}

std::vector<std::string> Podman(const Paths& p, std::vector<std::string> args) {
  // The flags this host needs (docs: machine notes): cgroupfs, file events, runc (crun
  // refuses the hybrid cgroup layout), a private store so the bench touches nothing else.
  std::vector<std::string> argv = {"podman",
                                   "--root",
                                   p.work + "/podman/root",
                                   "--runroot",
                                   p.work + "/podman/run",
                                   "--cgroup-manager=cgroupfs",
                                   "--events-backend=file",
                                   "--runtime",
                                   "runc"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// ---- ours ----------------------------------------------------------------------------

sv::Result<sv::ChildProcess> StartDaemon(const Paths& p) {
  SV_TRY(sv::MakeDirs(p.work + "/state", 0700));
  sv::UniqueFd log(::open((p.work + "/storevisord.log").c_str(),
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  sv::SpawnOptions so;
  so.argv = {p.bin + "/storevisord", "--state-dir", p.work + "/state", "--socket", p.sock};
  so.stderr_fd = log.get();
  so.stdout_fd = log.get();
  SV_ASSIGN_OR_RETURN(sv::ChildProcess d, sv::ChildProcess::Spawn(so));
  for (int i = 0; i < 100; ++i) {
    auto v = sv::RunCommand(Cli(p, {"version"}), std::chrono::seconds(5));
    if (v && v->status.success()) return d;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return sv::Error(sv::ErrorCode::kTimeout,
                   "storevisord did not answer; see " + p.work + "/storevisord.log");
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// When each workload was created and became healthy, in ms after the apply started (from
// the daemon's events); -1 when the event is missing.
struct Timeline {
  double created = -1, healthy = -1;
};
using Breakdown = std::map<std::string, Timeline>;

sv::Result<int64_t> LastEventId(const Paths& p) {
  SV_ASSIGN_OR_RETURN(sv::CommandOutput out, Must(Cli(p, {"events", "-o", "json"})));
  auto list = nlohmann::json::parse(out.out, nullptr, false);
  int64_t last = 0;
  if (list.is_array()) {
    for (const auto& e : list) last = std::max(last, e.value("id", int64_t{0}));
  }
  return last;
}

sv::Result<Breakdown> ReadBreakdown(const Paths& p, int64_t since, int64_t t0_wall) {
  SV_ASSIGN_OR_RETURN(sv::CommandOutput out,
                      Must(Cli(p, {"events", "--since", std::to_string(since), "-o", "json"})));
  auto list = nlohmann::json::parse(out.out, nullptr, false);
  Breakdown b;
  if (!list.is_array()) return b;
  for (const auto& e : list) {
    const std::string w = e.value("workload", "");
    const std::string type = e.value("type", "");
    const double at = static_cast<double>(e.value("time_ms", int64_t{0}) - t0_wall);
    // The daemon's "applied" event: when it had parsed, checked and stored the profile.
    if (w.empty() && type == "applied" && b["(apply accepted)"].created < 0) {
      b["(apply accepted)"].created = at;
    }
    if (w.empty()) continue;
    if (type == "created" && b[w].created < 0) b[w].created = at;
    if (type == "healthy" && b[w].healthy < 0) b[w].healthy = at;
  }
  return b;
}

struct Applied {
  double ms = 0;
  Breakdown breakdown;
};

sv::Result<Applied> TimedApply(const Paths& p, const std::string& profile) {
  SV_ASSIGN_OR_RETURN(int64_t since, LastEventId(p));
  const int64_t t0_wall = WallMs();
  auto t0 = Clock::now();
  SV_TRY(Must(Cli(p, {"apply", "-f", profile, "--timeout", "240", "-o", "json"}), 300));
  Applied a;
  a.ms = MsSince(t0);
  // The CLI returned 0 only when all run and are healthy; check it independently.
  SV_ASSIGN_OR_RETURN(sv::CommandOutput ps, Must(Cli(p, {"ps", "-o", "json"})));
  auto list = nlohmann::json::parse(ps.out, nullptr, false);
  if (!list.is_array() || list.empty()) return sv::Error(sv::ErrorCode::kInternal, "ps: " + ps.out);
  for (const auto& w : list) {
    if (w.value("state", "") != "running" ||
        (w.value("health", "") != "healthy" && w.value("health", "") != "none")) {
      return sv::Error(sv::ErrorCode::kInternal, "not converged: " + w.dump());
    }
  }
  SV_ASSIGN_OR_RETURN(a.breakdown, ReadBreakdown(p, since, t0_wall));
  return a;
}

std::string FormatBreakdown(const Breakdown& b) {
  std::string out;
  for (const auto& [name, t] : b) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s%s created +%.0f healthy +%.0f", out.empty() ? "" : ", ",
                  name.c_str(), t.created, t.healthy);
    out += buf;
  }
  return out;
}

// ---- peer ----------------------------------------------------------------------------

sv::Result<double> PcColdBoot(const Paths& p) {
  // The kernel arguments ours boots with (from the config the daemon wrote): same kernel,
  // initrd, memory, vCPUs.
  const std::string cfg_path = p.work + "/state/vms/pos/vm.json";
  SV_ASSIGN_OR_RETURN(std::string text, sv::ReadFile(cfg_path));
  SV_ASSIGN_OR_RETURN(vm::VmConfig c, vm::ParseVmConfig(text, cfg_path));
  const vm::AccelChoice accel = vm::ChooseAccel(c.accel);
  const std::string append = vm::KernelCmdline(c, accel);
  const std::string dir = p.work + "/pc-peer";
  SV_TRY(sv::MakeDirs(dir));
  const std::string agent = dir + "/agent.sock";
  ::unlink(agent.c_str());
  sv::SpawnOptions so;
  so.argv = {c.qemu,
             "-machine",
             accel.accel == vm::Accel::kKvm ? "pc,accel=kvm" : "pc,accel=tcg",
             "-m",
             std::to_string(c.memory_mib),
             "-smp",
             std::to_string(c.cpus),
             "-kernel",
             c.kernel,
             "-initrd",
             c.initrd,
             "-append",
             append,
             "-display",
             "none",
             "-serial",
             "file:" + dir + "/console.log",
             "-chardev",
             "socket,id=ga,path=" + agent + ",server=on,wait=off",
             "-device",
             "virtio-serial-pci",
             "-device",
             "virtserialport,chardev=ga,name=org.qemu.guest_agent.0"};
  so.stdout_fd = -1;
  so.die_with_parent = true;
  auto t0 = Clock::now();
  SV_ASSIGN_OR_RETURN(sv::ChildProcess qemu, sv::ChildProcess::Spawn(so));
  SV_ASSIGN_OR_RETURN(vm::AgentClient ga, vm::AgentClient::Connect(agent, vm::Millis(10000)));
  while (true) {
    if (MsSince(t0) > 120000) return sv::Error(sv::ErrorCode::kTimeout, "pc peer never ready");
    if (!ga.Sync(vm::Millis(500)).has_value()) continue;  // as Machine::WaitReady
    auto r = ga.Exec({"/bin/true"}, vm::Millis(2000));
    if (r && r->exit_code == 0) break;
  }
  const double ms = MsSince(t0);
  (void)qemu.Kill(SIGKILL);
  (void)qemu.Wait(std::chrono::milliseconds(5000));
  return ms;
}

// The demo images, into storevisord's image store and the bench's podman store (once).
sv::Status ImportImages(const Paths& p) {
  for (const char* image : {"kv", "inventory"}) {
    const std::string rootfs = p.root + "/build/demo-images/storevisor_" + image + "_1/rootfs";
    const std::string ours = std::string("storevisor/") + image + ":1";
    const std::string store = p.work + "/state/images";
    auto have = sv::RunCommand({p.bin + "/storevisor-image", "--root", store, "inspect", ours},
                               std::chrono::seconds(30));
    if (!have || !have->status.success()) {
      std::printf("importing %s into storevisord's image store\n", ours.c_str());
      SV_TRY(Must({p.bin + "/storevisor-image", "--root", store, "build-from-dir", rootfs, ours},
                  300));
    }
    const std::string ref = std::string("localhost/storevisor/") + image + ":1";
    auto exists = sv::RunCommand(Podman(p, {"image", "exists", ref}), std::chrono::seconds(30));
    if (exists && exists->status.success()) continue;
    std::printf("importing %s into the bench's podman store\n", ref.c_str());
    const std::string tar = p.work + "/" + image + ".tar";
    SV_TRY(Must({"tar", "-C", rootfs, "-cf", tar, "."}));
    SV_TRY(Must(Podman(p, {"import", tar, ref}), 300));
    ::unlink(tar.c_str());
  }
  return sv::Ok();
}

// podman run -d, then podman exec of the health check until it passes.
sv::Result<double> PodmanStart(const Paths& p, const std::string& name,
                               const std::vector<std::string>& image_and_cmd,
                               const std::vector<std::string>& check) {
  (void)sv::RunCommand(Podman(p, {"rm", "-f", "-t", "0", name}), std::chrono::seconds(30));
  std::vector<std::string> run = {"run",
                                  "-d",
                                  "--name",
                                  name,
                                  "--network=none",
                                  "--ulimit",
                                  "nofile=1024:1024",
                                  "--ulimit",
                                  "nproc=4096:4096"};
  run.insert(run.end(), image_and_cmd.begin(), image_and_cmd.end());
  std::vector<std::string> exec = {"exec", name};
  exec.insert(exec.end(), check.begin(), check.end());
  auto t0 = Clock::now();
  SV_TRY(Must(Podman(p, run)));
  while (true) {
    auto r = sv::RunCommand(Podman(p, exec), std::chrono::seconds(10));
    if (r && r->status.success()) break;
    if (MsSince(t0) > 60000) return sv::Error(sv::ErrorCode::kTimeout, name + " never ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return MsSince(t0);
}

struct PeerSample {
  double pc = 0, kv = 0, inventory = 0;
  double Sum() const { return pc + kv + inventory; }
};

sv::Result<PeerSample> Peer(const Paths& p) {
  PeerSample s;
  SV_ASSIGN_OR_RETURN(s.pc, PcColdBoot(p));
  SV_ASSIGN_OR_RETURN(s.kv, PodmanStart(p, "svb-kv",
                                        {"localhost/storevisor/kv:1", "/usr/bin/redis-server",
                                         "--port", "6379", "--save", "", "--appendonly", "no",
                                         "--protected-mode", "no", "--dir", "/data"},
                                        {"/usr/bin/redis-cli", "ping"}));
  SV_ASSIGN_OR_RETURN(s.inventory, PodmanStart(p, "svb-inventory",
                                               {"localhost/storevisor/inventory:1", "/bin/busybox",
                                                "httpd", "-f", "-p", "8080", "-h", "/srv/www"},
                                               {"/bin/busybox", "wget", "-q", "-O", "/dev/null",
                                                "http://127.0.0.1:8080/inventory.json"}));
  (void)sv::RunCommand(Podman(p, {"rm", "-f", "-t", "0", "svb-kv", "svb-inventory"}),
                       std::chrono::seconds(60));
  return s;
}

// ---- ps with 50, idle RSS --------------------------------------------------------------

sv::Result<double> MedianCommandMs(const std::vector<std::string>& argv, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    SV_TRY(Must(argv));
    v.push_back(MsSince(t0));
  }
  return Median(v);
}

sv::Status PsBench(const Paths& p, pid_t daemon_pid) {
  constexpr int kWorkloads = 50;
  std::string yaml =
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: ps50}\nspec:\n"
      "  workloads:\n";
  for (int i = 0; i < kWorkloads; ++i) {
    yaml += "    - {name: idle" + std::to_string(i) +
            ", kind: container, image: storevisor/inventory:1, command: [/bin/sleep, '3600'], "
            "cpus: 0.02, memory: 8Mi, restart: never}\n";
  }
  const std::string file = p.work + "/ps50.yaml";
  SV_TRY(sv::WriteFileAtomic(file, yaml));
  std::printf("starting %d containers under storevisord...\n", kWorkloads);
  auto t0 = Clock::now();
  SV_TRY(Must(Cli(p, {"apply", "-f", file, "--timeout", "600", "-o", "json"}), 700));
  const double apply50 = MsSince(t0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double rss50 = RssMib(daemon_pid);
  SV_ASSIGN_OR_RETURN(double ours_ps, MedianCommandMs(Cli(p, {"ps"}), 21));
  SV_ASSIGN_OR_RETURN(double ours_json, MedianCommandMs(Cli(p, {"ps", "-o", "json"}), 21));
  SV_TRY(Must(Cli(p, {"apply", "-f", p.empty, "--timeout", "300", "-o", "json"}), 400));

  std::printf("starting %d containers under podman...\n", kWorkloads);
  t0 = Clock::now();
  for (int i = 0; i < kWorkloads; ++i) {
    SV_TRY(Must(Podman(p, {"run", "-d", "--name", "svb-idle" + std::to_string(i), "--network=none",
                           "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                           "localhost/storevisor/inventory:1", "/bin/sleep", "3600"})));
  }
  const double podman50 = MsSince(t0);
  auto peer_ps = MedianCommandMs(Podman(p, {"ps"}), 21);
  (void)sv::RunCommand(Podman(p, {"rm", "-f", "-a", "-t", "0"}), std::chrono::seconds(300));
  if (!peer_ps) return std::move(peer_ps).error();
  std::printf(
      "\n50 containers: start all  storevisor apply %.0f ms, podman run x50 %.0f ms "
      "(ratio %.2f)\n",
      apply50, podman50, apply50 / podman50);
  std::printf(
      "ps with 50:  storevisor ps median %.1f ms (-o json %.1f ms), podman ps %.1f ms: "
      "ratio %.2f\n",
      ours_ps, ours_json, *peer_ps, ours_ps / *peer_ps);
  std::printf("storevisord RSS with 50 workloads: %.1f MiB\n", rss50);
  return sv::Ok();
}

sv::Result<double> PodmanServiceRss(const Paths& p) {
  const std::string sock = p.work + "/podman.sock";
  ::unlink(sock.c_str());
  sv::SpawnOptions so;
  so.argv = Podman(p, {"system", "service", "--time", "0", "unix://" + sock});
  so.stdout_fd = -1;
  so.stderr_fd = -1;
  so.die_with_parent = true;
  SV_ASSIGN_OR_RETURN(sv::ChildProcess svc, sv::ChildProcess::Spawn(so));
  for (int i = 0; i < 100 && ::access(sock.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // One request served, as storevisord has served some, then idle.
  (void)sv::RunCommand({"podman", "--url", "unix://" + sock, "ps"}, std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double rss = RssMib(svc.pid());
  (void)svc.Kill(SIGTERM);
  (void)svc.Wait(std::chrono::milliseconds(5000));
  return rss;
}

// ---- detection latency ----------------------------------------------------------------
// kill -9 of a container's main process -> the daemon's `exited` event (its time), and that
// exit -> the new instance (`restarted` event), medians and p95 over `kills` kills. Between
// kills the workload is stopped and started, so each kill meets a fresh backoff (its
// `initial`, as the profile says) rather than a crash loop's.

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

sv::Result<int64_t> VictimPid(const Paths& p) {
  SV_ASSIGN_OR_RETURN(sv::CommandOutput out, Must(Cli(p, {"ps", "-o", "json"})));
  auto list = nlohmann::json::parse(out.out, nullptr, false);
  if (list.is_array()) {
    for (const auto& w : list) {
      if (w.is_object() && w.value("name", "") == "victim" && w.value("state", "") == "running") {
        return w.value("pid", int64_t{0});
      }
    }
  }
  return sv::Error(sv::ErrorCode::kNotFound, "victim is not running: " + out.out);
}

// The time_ms of the first event of this type for victim after `since` (-1: not yet).
sv::Result<std::pair<int64_t, int64_t>> ExitAndRestart(const Paths& p, int64_t since) {
  SV_ASSIGN_OR_RETURN(sv::CommandOutput out,
                      Must(Cli(p, {"events", "--since", std::to_string(since), "-o", "json"})));
  auto list = nlohmann::json::parse(out.out, nullptr, false);
  int64_t exited = -1, restarted = -1;
  if (list.is_array()) {
    for (const auto& e : list) {
      if (!e.is_object() || e.value("workload", "") != "victim") continue;
      const std::string type = e.value("type", "");
      const int64_t at = e.value("time_ms", int64_t{0});
      if (type == "exited" && exited < 0) exited = at;
      if (type == "restarted" && restarted < 0) restarted = at;
    }
  }
  return std::make_pair(exited, restarted);
}

sv::Status DetectBench(const Paths& p, int kills, const std::string& initial) {
  const std::string file = p.work + "/victim.yaml";
  SV_TRY(sv::WriteFileAtomic(
      file,
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: victim}\n"
      "spec:\n  workloads:\n    - name: victim\n      kind: container\n"
      "      image: storevisor/inventory:1\n"
      "      command: [/bin/busybox, sh, -c, \"trap 'exit 0' TERM; while :; do sleep "
      "0.1; done\"]\n"
      "      restart:\n        policy: always\n        backoff: {initial: " +
          initial + ", max: 1s}\n"));
  SV_TRY(Must(Cli(p, {"apply", "-f", file, "--timeout", "120", "-o", "json"})));
  std::vector<double> detect, restart;
  for (int i = 0; i < kills; ++i) {
    SV_ASSIGN_OR_RETURN(int64_t pid, VictimPid(p));
    SV_ASSIGN_OR_RETURN(int64_t since, LastEventId(p));
    const int64_t killed_at = WallMs();
    if (::kill(static_cast<pid_t>(pid), SIGKILL) != 0) {
      return sv::Error(sv::ErrorCode::kInternal, "kill " + std::to_string(pid));
    }
    std::pair<int64_t, int64_t> seen{-1, -1};
    for (int tries = 0; tries < 2000 && seen.second < 0; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      SV_ASSIGN_OR_RETURN(seen, ExitAndRestart(p, since));
    }
    if (seen.first < 0 || seen.second < 0) {
      return sv::Error(sv::ErrorCode::kTimeout,
                       "no exited/restarted event after kill " + std::to_string(i + 1));
    }
    detect.push_back(static_cast<double>(seen.first - killed_at));
    restart.push_back(static_cast<double>(seen.second - seen.first));
    // A fresh backoff for the next kill.
    SV_TRY(Must(Cli(p, {"stop", "victim"})));
    SV_TRY(Must(Cli(p, {"start", "victim"})));
  }
  std::printf(
      "detection (backoff.initial %s, %d kills): kill -9 -> exited event: median %.1f ms, p95 "
      "%.1f ms (target 5 ms median); exit -> new instance running: median %.1f ms, p95 %.1f "
      "ms (target 30 ms median)\n",
      initial.c_str(), kills, Median(detect), Percentile(detect, 0.95), Median(restart),
      Percentile(restart, 0.95));
  return Must(Cli(p, {"apply", "-f", p.empty, "--timeout", "120", "-o", "json"})).has_value()
             ? sv::Ok()
             : sv::Error(sv::ErrorCode::kInternal, "apply empty");
}

int Fail(const sv::Error& e) {
  std::fprintf(stderr, "apply_bench: %s\n", e.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Paths p;
  int rounds = 5;
  bool ps = true;
  int detect = 0;  // --detect N: only the detection latency, N kills
  std::string initial = "0s";
  std::string bin;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--root") == 0 && i + 1 < argc) p.root = argv[++i];
    if (std::strcmp(argv[i], "--detect") == 0 && i + 1 < argc)
      detect = std::max(1, static_cast<int>(std::strtol(argv[++i], nullptr, 10)));
    if (std::strcmp(argv[i], "--initial") == 0 && i + 1 < argc) initial = argv[++i];
    // Another build's storevisord and CLI (an older commit's: the figures before a change).
    if (std::strcmp(argv[i], "--bin") == 0 && i + 1 < argc) bin = argv[++i];
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = std::max(1, static_cast<int>(std::strtol(argv[++i], nullptr, 10)));
    if (std::strcmp(argv[i], "--no-ps") == 0) ps = false;
  }
  if (p.root.empty()) {
    std::fprintf(stderr,
                 "usage: apply_bench --root CHECKOUT [--rounds N] [--no-ps] [--detect N "
                 "[--initial 0s]] [--bin DIR]\n");
    return 2;
  }
  p.bin = bin.empty() ? p.root + "/build/bin" : bin;
  p.work = p.root + "/build/bench-apply";
  p.sock = p.work + "/storevisord.sock";
  p.empty = p.work + "/empty.yaml";
  const std::string demo = p.root + "/examples/store-demo.yaml";
  if (auto st = sv::MakeDirs(p.work + "/podman"); !st) return Fail(st.error());
  if (auto st = sv::WriteFileAtomic(p.empty,
                                    "apiVersion: storevisor.io/v1\nkind: StoreProfile\n"
                                    "metadata: {name: empty}\nspec:\n  workloads: []\n");
      !st) {
    return Fail(st.error());
  }
  std::printf("bench/apply: %d rounds, load average at start %s\n", rounds, LoadAvg().c_str());
  if (auto st = ImportImages(p); !st) return Fail(st.error());
  auto daemon = StartDaemon(p);
  if (!daemon) return Fail(daemon.error());
  int rc = 0;
  auto body = [&]() -> sv::Status {
    if (detect > 0) return DetectBench(p, detect, initial);
    SV_TRY(Must(Cli(p, {"apply", "-f", p.empty, "--timeout", "120", "-o", "json"})));
    std::printf("warm-up apply (takes the pos snapshot when none is cached)...\n");
    SV_ASSIGN_OR_RETURN(Applied warm, TimedApply(p, demo));
    std::printf("warm-up apply: %.0f ms\n", warm.ms);
    SV_TRY(Must(Cli(p, {"apply", "-f", p.empty, "--timeout", "120", "-o", "json"})));
    std::vector<double> ours, peer, pc, kv, inv;
    std::map<std::string, std::vector<double>> created, healthy;
    for (int i = 0; i < rounds; ++i) {
      SV_ASSIGN_OR_RETURN(Applied applied, TimedApply(p, demo));
      const double a = applied.ms;
      std::printf("round %d: storevisor timeline (ms after apply): %s\n", i + 1,
                  FormatBreakdown(applied.breakdown).c_str());
      for (const auto& [name, t] : applied.breakdown) {
        created[name].push_back(t.created);
        healthy[name].push_back(t.healthy);
      }
      SV_TRY(Must(Cli(p, {"apply", "-f", p.empty, "--timeout", "120", "-o", "json"})));
      SV_ASSIGN_OR_RETURN(PeerSample s, Peer(p));
      std::printf(
          "round %d: storevisor apply %6.0f ms | peer: pc cold boot %6.0f + podman kv %5.0f"
          " + podman inventory %5.0f = %6.0f ms | ratio %.3f | load %s\n",
          i + 1, a, s.pc, s.kv, s.inventory, s.Sum(), a / s.Sum(), LoadAvg().c_str());
      ours.push_back(a);
      peer.push_back(s.Sum());
      pc.push_back(s.pc);
      kv.push_back(s.kv);
      inv.push_back(s.inventory);
    }
    const double mo = Median(ours), mp = Median(peer);
    std::printf(
        "\nmedians: storevisor apply %.0f ms; peer sum %.0f ms (pc %.0f, podman kv %.0f, "
        "podman inventory %.0f)\n",
        mo, mp, Median(pc), Median(kv), Median(inv));
    for (const auto& [name, v] : created) {
      std::printf("  %-10s created at +%.0f ms, healthy at +%.0f ms (medians)\n", name.c_str(),
                  Median(v), Median(healthy[name]));
    }
    std::printf("ratio apply/peer = %.3f (target <= 0.25: %s); apply under 2 s: %s\n", mo / mp,
                mo / mp <= 0.25 ? "met" : "NOT met", mo < 2000 ? "met" : "NOT met");
    // Idle RSS with the demo store up.
    SV_ASSIGN_OR_RETURN(Applied up, TimedApply(p, demo));
    (void)up;
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const double rss = RssMib(daemon->pid());
    SV_TRY(Must(Cli(p, {"apply", "-f", p.empty, "--timeout", "120", "-o", "json"})));
    SV_ASSIGN_OR_RETURN(double podman_rss, PodmanServiceRss(p));
    std::printf(
        "idle RSS: storevisord %.1f MiB (demo store up), podman system service %.1f MiB: "
        "ratio %.2f\n",
        rss, podman_rss, rss / podman_rss);
    if (ps) SV_TRY(PsBench(p, daemon->pid()));
    return sv::Ok();
  };
  if (auto st = body(); !st) rc = Fail(st.error());
  (void)sv::RunCommand(Cli(p, {"apply", "-f", p.empty, "--timeout", "120"}),
                       std::chrono::seconds(150));
  (void)daemon->Kill(SIGTERM);
  (void)daemon->Wait(std::chrono::milliseconds(10000));
  // podman's overlay driver leaves its store's overlay directory bind-mounted on itself after
  // the last container; it would outlive the bench and make build/ impossible to remove.
  // podman mounts it again on its next use. EINVAL (not mounted) is fine.
  (void)umount2((p.work + "/podman/root/overlay").c_str(), MNT_DETACH);
  std::printf("load average at end %s\n", LoadAvg().c_str());
  return rc;
}
