// bench/container-start: create + start + wait for /bin/true in a busybox bundle, N times
// each, with storevisor-runtime (CLI), crun, runc, and the runtime library in-process, all in
// the same run. crun refuses this machine's hybrid cgroup layout, so its loop runs in a child
// with a private mount namespace where /sys/fs/cgroup/unified is unmounted (v1 only).
// Prints each median and its ratio to crun's.
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/files.h"
#include "runtime/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Runs argv (with "{id}" replaced) n times; returns the wall times of successful runs.
std::vector<double> TimeCli(const std::vector<std::string>& argv, int n, const std::string& tag) {
  std::vector<double> times;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> a = argv;
    for (auto& s : a) {
      if (s == "{id}") s = tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    }
    storevisor::SpawnOptions o;
    o.argv = a;
    o.stdout_fd = -1;
    auto start = Clock::now();
    auto child = storevisor::ChildProcess::Spawn(o);
    if (!child) {
      std::fprintf(stderr, "%s: %s\n", tag.c_str(), child.error().message().c_str());
      return times;
    }
    auto st = child->Wait();
    auto end = Clock::now();
    if (!st || !st->success()) {
      std::fprintf(stderr, "%s: run %d failed (%s)\n", tag.c_str(), i,
                   st ? st->ToString().c_str() : "?");
      continue;
    }
    times.push_back(Ms(end - start));
  }
  return times;
}

// crun's loop, in a child with a private mount namespace and no cgroup2 mount.
std::vector<double> TimeCrun(const std::string& crun_root, const std::string& bundle, int n) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::unshare(CLONE_NEWNS) != 0 || ::mount("", "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0)
      _exit(1);
    ::umount2("/sys/fs/cgroup/unified", MNT_DETACH);
    auto t = TimeCli({"crun", "--root", crun_root, "run", "--bundle", bundle, "{id}"}, n, "crun");
    (void)!::write(fds[1], t.data(), t.size() * sizeof(double));
    _exit(0);
  }
  ::close(fds[1]);
  std::vector<double> t(static_cast<size_t>(n));
  ssize_t got = 0, r;
  while ((r = ::read(fds[0], reinterpret_cast<char*>(t.data()) + got,
                     t.size() * sizeof(double) - static_cast<size_t>(got))) > 0)
    got += r;
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  t.resize(static_cast<size_t>(got) / sizeof(double));
  return t;
}

std::vector<double> TimeInProcess(const std::string& root, const std::string& bundle, int n) {
  storevisor::runtime::Runtime rt(root);
  storevisor::runtime::CreateOptions o;
  o.bundle = bundle;
  std::vector<double> times;
  for (int i = 0; i < n; ++i) {
    auto start = Clock::now();
    auto e = rt.Run("lib-" + std::to_string(::getpid()) + "-" + std::to_string(i), o);
    auto end = Clock::now();
    if (!e || e->exit_code != 0) {
      std::fprintf(stderr, "in-process: run %d failed: %s\n", i,
                   e ? "exit status" : e.error().message().c_str());
      continue;
    }
    times.push_back(Ms(end - start));
  }
  return times;
}

std::string LoadAverage() {
  auto text = storevisor::ReadFile("/proc/loadavg", 4096);
  return text ? *text : std::string("?\n");
}

struct Row {
  std::string name;
  std::vector<double> t;
};

std::vector<Row> MeasureAll(const std::string& bundle, const std::string& state,
                            const std::string& ours, int n) {
  std::vector<Row> rows;
  // SV_BENCH_ONLY=in-process times only the library (for profiling it under strace).
  const char* only = std::getenv("SV_BENCH_ONLY");
  if (only != nullptr && std::string(only) == "in-process") {
    (void)storevisor::MakeDirs(state);
    rows.push_back({"crun (skipped)", {}});
    rows.push_back({"runc (skipped)", {}});
    rows.push_back({"storevisor-runtime (CLI, skipped)", {}});
    rows.push_back(
        {"storevisor runtime library (in-process)", TimeInProcess(state + "/svlib", bundle, n)});
    return rows;
  }
  rows.push_back({"crun", TimeCrun(state + "/crun", bundle, n)});
  rows.push_back(
      {"runc",
       TimeCli({"runc", "--root", state + "/runc", "run", "--bundle", bundle, "{id}"}, n, "runc")});
  rows.push_back(
      {"storevisor-runtime (CLI)",
       TimeCli({ours, "--root", state + "/sv", "run", "--bundle", bundle, "{id}"}, n, "sv")});
  rows.push_back(
      {"storevisor runtime library (in-process)", TimeInProcess(state + "/svlib", bundle, n)});
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  return rows;
}

void Print(const std::vector<Row>& rows, int n, bool favor) {
  double crun = Median(rows[0].t);
  double runc = Median(rows[1].t);
  std::printf(
      "container-start: create+start+wait /bin/true, %d runs each (median ms, ratios to crun "
      "and runc)\n",
      n);
  std::printf("  cgroup2 favordynmods: %s\n",
              favor ? "on (cgroup.procs writes do not wait for RCU, for every runtime)"
                    : "off (kernel default: each cgroup attach waits for an RCU grace period)");
  std::printf("  load average at the end: %s", LoadAverage().c_str());
  for (const auto& r : rows) {
    double m = Median(r.t);
    if (r.t.empty()) {
      std::printf("  %-42s  no successful run\n", r.name.c_str());
      continue;
    }
    std::printf("  %-42s %8.2f ms", r.name.c_str(), m);
    if (crun > 0) std::printf("  %5.2fx crun", m / crun);
    if (runc > 0) std::printf("  %5.2fx runc", m / runc);
    std::printf("  (%zu ok)\n", r.t.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: container_start_bench BUNDLE STATE_DIR RUNTIME_BIN [RUNS]\n");
    return 2;
  }
  std::string bundle = argv[1], state = argv[2], ours = argv[3];
  int n = argc > 4 ? static_cast<int>(std::strtol(argv[4], nullptr, 10)) : 30;
  if (n <= 0) n = 30;
  // The runtimes' inits are reparented to us when their CLI exits early: reap them here.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // Each state of the kernel-wide cgroup rwsem (favordynmods off, then on where the kernel
  // has it), every runtime measured in both; the host's setting is restored at the end.
  auto original = storevisor::runtime::CgroupFavorDynmods();
  std::vector<bool> states = {false};
  if (original.has_value()) states.push_back(true);
  for (bool favor : states) {
    if (original.has_value()) {
      storevisor::Status set = storevisor::runtime::SetCgroupFavorDynmods(favor);
      if (!set) {
        std::fprintf(stderr, "favordynmods: %s\n", set.error().message().c_str());
        continue;
      }
    }
    std::vector<Row> rows = MeasureAll(bundle, state + (favor ? "/fdm" : "/dflt"), ours, n);
    Print(rows, n, favor);
  }
  if (original.has_value()) (void)storevisor::runtime::SetCgroupFavorDynmods(*original);
  std::printf("targets: CLI <= 1.0x crun, in-process <= 0.5x crun\n");
  return 0;
}
