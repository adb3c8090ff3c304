// bench/container-start: create + start + wait for /bin/true in a busybox bundle, N times
// each, with storevisor-runtime (CLI), crun, runc, and the runtime library in-process, all in
// the same run, interleaved round by round. crun refuses this machine's hybrid cgroup layout,
// so it runs from a helper child with a private mount namespace where
// /sys/fs/cgroup/unified is unmounted (v1 only).
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
#include <optional>
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

// One run of argv with "{id}" replaced; the wall time, or nothing when it failed.
std::optional<double> TimeCliOnce(const std::vector<std::string>& argv, const std::string& id,
                                  const std::string& tag) {
  std::vector<std::string> a = argv;
  for (auto& s : a) {
    if (s == "{id}") s = id;
  }
  storevisor::SpawnOptions o;
  o.argv = a;
  o.stdout_fd = -1;
  auto start = Clock::now();
  auto child = storevisor::ChildProcess::Spawn(o);
  if (!child) {
    std::fprintf(stderr, "%s: %s\n", tag.c_str(), child.error().message().c_str());
    return std::nullopt;
  }
  auto st = child->Wait();
  auto end = Clock::now();
  if (!st || !st->success()) {
    std::fprintf(stderr, "%s: run %s failed (%s)\n", tag.c_str(), id.c_str(),
                 st ? st->ToString().c_str() : "?");
    return std::nullopt;
  }
  return Ms(end - start);
}

// crun refuses the hybrid layout: it runs from a helper child with a private mount
// namespace where the cgroup2 mount is gone (v1 only). The helper runs one crun per request
// so that crun's runs interleave with the others'.
class CrunHelper {
 public:
  CrunHelper(const std::string& crun_root, const std::string& bundle) {
    int req[2], rep[2];
    if (::pipe(req) != 0) return;
    if (::pipe(rep) != 0) {
      ::close(req[0]);
      ::close(req[1]);
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(req[1]);
      ::close(rep[0]);
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount("", "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0)
        _exit(1);
      ::umount2("/sys/fs/cgroup/unified", MNT_DETACH);
      int i = 0;
      while (::read(req[0], &i, sizeof i) == static_cast<ssize_t>(sizeof i)) {
        auto t =
            TimeCliOnce({"crun", "--root", crun_root, "run", "--bundle", bundle, "{id}"},
                        "crun-" + std::to_string(::getpid()) + "-" + std::to_string(i), "crun");
        double v = t.value_or(-1);
        if (::write(rep[1], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) break;
      }
      _exit(0);
    }
    ::close(req[0]);
    ::close(rep[1]);
    req_ = req[1];
    rep_ = rep[0];
  }
  CrunHelper(const CrunHelper&) = delete;
  CrunHelper& operator=(const CrunHelper&) = delete;
  ~CrunHelper() {
    if (req_ >= 0) ::close(req_);
    if (rep_ >= 0) ::close(rep_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }

  std::optional<double> Once(int i) {
    double v = -1;
    if (req_ < 0 || ::write(req_, &i, sizeof i) != static_cast<ssize_t>(sizeof i) ||
        ::read(rep_, &v, sizeof v) != static_cast<ssize_t>(sizeof v) || v < 0)
      return std::nullopt;
    return v;
  }

 private:
  pid_t pid_ = -1;
  int req_ = -1, rep_ = -1;
};

std::optional<double> TimeInProcessOnce(storevisor::runtime::Runtime& rt,
                                        const storevisor::runtime::CreateOptions& o, int i) {
  auto start = Clock::now();
  auto e = rt.Run("lib-" + std::to_string(::getpid()) + "-" + std::to_string(i), o);
  auto end = Clock::now();
  if (!e || e->exit_code != 0) {
    std::fprintf(stderr, "in-process: run %d failed: %s\n", i,
                 e ? "exit status" : e.error().message().c_str());
    return std::nullopt;
  }
  return Ms(end - start);
}

std::string LoadAverage() {
  auto text = storevisor::ReadFile("/proc/loadavg", 4096);
  return text ? *text : std::string("?\n");
}

struct Row {
  std::string name;
  std::vector<double> t;
};

// Round i runs each runtime once, starting from a different one each round, so that a
// change of the host's load during the run weighs on all of them alike.
std::vector<Row> MeasureAll(const std::string& bundle, const std::string& state,
                            const std::string& ours, int n) {
  // SV_BENCH_ONLY=in-process times only the library (for profiling it under strace).
  const char* only = std::getenv("SV_BENCH_ONLY");
  const bool lib_only = only != nullptr && std::string(only) == "in-process";
  (void)storevisor::MakeDirs(state);
  std::vector<Row> rows = {
      {lib_only ? "crun (skipped)" : "crun", {}},
      {lib_only ? "runc (skipped)" : "runc", {}},
      {lib_only ? "storevisor-runtime (CLI, skipped)" : "storevisor-runtime (CLI)", {}},
      {"storevisor runtime library (in-process)", {}}};
  std::optional<CrunHelper> crun;
  if (!lib_only) crun.emplace(state + "/crun", bundle);
  storevisor::runtime::Runtime rt(state + "/svlib");
  storevisor::runtime::CreateOptions lib;
  lib.bundle = bundle;
  const std::string tag = std::to_string(::getpid());
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) {
      const int which = (i + k) % 4;
      if (lib_only && which != 3) continue;
      const std::string id = tag + "-" + std::to_string(i);
      std::optional<double> t;
      switch (which) {
        case 0:
          t = crun->Once(i);
          break;
        case 1:
          t = TimeCliOnce({"runc", "--root", state + "/runc", "run", "--bundle", bundle, "{id}"},
                          "runc-" + id, "runc");
          break;
        case 2:
          t = TimeCliOnce({ours, "--root", state + "/sv", "run", "--bundle", bundle, "{id}"},
                          "sv-" + id, "sv");
          break;
        default:
          t = TimeInProcessOnce(rt, lib, i);
      }
      if (t) rows[static_cast<size_t>(which)].t.push_back(*t);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
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
