// storevisor-runtime: the OCI runtime command line, compatible with runc's (the verbs,
// flags and exit statuses podman, conmon and containerd use). Errors go to stderr and,
// with --log FILE --log-format json, to FILE as {"level":"error","msg":...} lines, which
// is where podman looks for them. Exit status: 0, or 1 on any error (runc's convention);
// `run` and `exec` exit with the container process's status.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/files.h"
#include "runtime/runtime.h"
#include "runtime/state.h"

namespace {

using storevisor::Error;
using storevisor::ErrorCode;
using storevisor::Result;
using storevisor::runtime::ContainerStatus;
using storevisor::runtime::Runtime;
using json = nlohmann::json;

struct Globals {
  std::string root = "/run/storevisor-runtime";
  std::string log_file;
  bool log_json = false;
};

constexpr const char* kUsage =
    "usage: storevisor-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
    "commands:\n"
    "  create [--bundle DIR] [--pid-file F] [--console-socket S] [--preserve-fds N]\n"
    "         [--monitor] [--default-seccomp] ID\n"
    "  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID\n"
    "  run [--bundle DIR] [--pid-file F] [--detach] [--keep] ID\n"
    "  exec [--process FILE] [--detach] [--tty] [--console-socket S] [--pid-file F]\n"
    "       [--env K=V] [--cwd D] ID [ARGS...]\n"
    "  list [--format table|json] [-q] | spec [--bundle DIR] | events --stats ID | --version\n"
    "  update [--resources FILE|-] [--memory B] [--cpu-shares N] [--cpu-quota N]\n"
    "         [--cpu-period N] [--cpuset-cpus L] [--cpuset-mems L] [--pids-limit N] ID\n"
    "  favordynmods [on|off]   show or set the kernel-wide cgroup2 option (see docs/runtime.md)\n";

class Args {
 public:
  explicit Args(std::vector<std::string> v) : v_(std::move(v)) {}
  bool Done() const { return i_ >= v_.size(); }
  const std::string& Peek() const { return v_[i_]; }
  std::string Next() { return v_[i_++]; }
  // "--flag VALUE" or "--flag=VALUE"; returns true and fills value if the current arg matches.
  bool Value(std::initializer_list<std::string_view> names, std::string& value) {
    const std::string& a = v_[i_];
    for (auto n : names) {
      if (a == n) {
        if (i_ + 1 >= v_.size())
          throw Error(ErrorCode::kInvalidArgument, std::string(n) + " needs a value");
        value = v_[i_ + 1];
        i_ += 2;
        return true;
      }
      if (a.size() > n.size() && a.compare(0, n.size(), n) == 0 && a[n.size()] == '=') {
        value = a.substr(n.size() + 1);
        ++i_;
        return true;
      }
    }
    return false;
  }
  bool Flag(std::initializer_list<std::string_view> names) {
    for (auto n : names) {
      if (v_[i_] == n || v_[i_] == std::string(n) + "=true") {
        ++i_;
        return true;
      }
    }
    return false;
  }
  std::vector<std::string> Rest() {
    std::vector<std::string> out(v_.begin() + static_cast<long>(i_), v_.end());
    i_ = v_.size();
    return out;
  }

 private:
  std::vector<std::string> v_;
  size_t i_ = 0;
};

[[noreturn]] void Unknown(const std::string& flag) {
  throw Error(ErrorCode::kInvalidArgument, "unknown flag " + flag + "\n" + kUsage);
}

std::string NeedId(Args& a) {
  if (a.Done())
    throw Error(ErrorCode::kInvalidArgument, "missing container id\n" + std::string(kUsage));
  return a.Next();
}

template <typename T>
T Check(Result<T> r) {
  if (!r) throw std::move(r).error();
  return std::move(r).value();
}
void Check(storevisor::Status s) {
  if (!s) throw std::move(s).error();
}

int ParseCount(const std::string& s) {
  if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, "--preserve-fds needs a number");
  }
  return std::stoi(s);
}

// Flags of create and run.
bool CreateFlag(Args& a, storevisor::runtime::CreateOptions& o) {
  std::string v;
  if (a.Value({"--bundle", "-b"}, o.bundle) || a.Value({"--pid-file"}, o.pid_file) ||
      a.Value({"--console-socket"}, o.console_socket)) {
    return true;
  }
  if (a.Value({"--preserve-fds"}, v)) {
    o.preserve_fds = ParseCount(v);
    return true;
  }
  if (a.Flag({"--monitor"})) return o.monitor = true;
  if (a.Flag({"--default-seccomp"})) return o.default_seccomp = true;
  // Accepted for compatibility: no session keyring is made; pivot_root is always used.
  return a.Flag({"--no-new-keyring", "--no-pivot"});
}

int CmdCreate(Runtime& rt, Args& a) {
  storevisor::runtime::CreateOptions o;
  while (!a.Done() && a.Peek()[0] == '-') {
    if (!CreateFlag(a, o)) Unknown(a.Peek());
  }
  Check(rt.Create(NeedId(a), o));
  return 0;
}

int CmdRun(Runtime& rt, Args& a) {
  storevisor::runtime::CreateOptions o;
  bool detach = false, keep = false;
  while (!a.Done() && a.Peek()[0] == '-') {
    if (a.Flag({"--detach", "-d"})) {
      detach = true;
    } else if (a.Flag({"--keep"})) {
      keep = true;
    } else if (!CreateFlag(a, o)) {
      Unknown(a.Peek());
    }
  }
  std::string id = NeedId(a);
  if (detach) {
    Check(rt.Create(id, o));
    Check(rt.Start(id));
    return 0;
  }
  (void)keep;
  storevisor::runtime::ExitInfo e = Check(rt.Run(id, o));
  if (e.oom_killed)
    std::fprintf(stderr, "storevisor-runtime: container %s was OOM-killed\n", id.c_str());
  return e.exit_code;
}

int CmdState(Runtime& rt, Args& a) {
  auto s = Check(rt.State(NeedId(a)));
  std::cout << s.ToJson().dump(2) << "\n";
  return 0;
}

int CmdKill(Runtime& rt, Args& a) {
  bool all = false;
  while (!a.Done() && a.Peek()[0] == '-') {
    if (!a.Flag({"--all", "-a"})) Unknown(a.Peek());
    all = true;
  }
  std::string id = NeedId(a);
  int sig = 15;
  if (!a.Done()) sig = Check(storevisor::runtime::ParseSignal(a.Next()));
  Check(rt.Kill(id, sig, all));
  return 0;
}

int CmdDelete(Runtime& rt, Args& a) {
  bool force = false;
  while (!a.Done() && a.Peek()[0] == '-') {
    if (!a.Flag({"--force", "-f"})) Unknown(a.Peek());
    force = true;
  }
  std::string id = NeedId(a);
  storevisor::Status s = rt.Delete(id, force);
  // runc: deleting a missing container with --force succeeds.
  if (!s && force && s.error().code() == ErrorCode::kNotFound) return 0;
  Check(std::move(s));
  return 0;
}

int CmdList(Runtime& rt, Args& a) {
  std::string format = "table";
  bool quiet = false;
  while (!a.Done()) {
    if (a.Value({"--format", "-f"}, format)) continue;
    if (a.Flag({"--quiet", "-q"})) {
      quiet = true;
      continue;
    }
    Unknown(a.Peek());
  }
  auto list = Check(rt.List());
  if (format == "json") {
    json out = json::array();
    for (const auto& s : list) out.push_back(s.ToJson());
    std::cout << out.dump() << "\n";
    return 0;
  }
  if (!quiet)
    std::printf("%-24s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
  for (const auto& s : list) {
    if (quiet) {
      std::printf("%s\n", s.id.c_str());
    } else {
      std::printf("%-24s %-8d %-10s %-40s %s\n", s.id.c_str(),
                  s.status == ContainerStatus::kStopped ? 0 : s.pid,
                  std::string(storevisor::runtime::StatusName(s.status)).c_str(), s.bundle.c_str(),
                  s.created.c_str());
    }
  }
  return 0;
}

int CmdSpec(Args& a) {
  std::string bundle = ".";
  while (!a.Done()) {
    if (!a.Value({"--bundle", "-b"}, bundle)) Unknown(a.Peek());
  }
  std::string path = bundle + "/config.json";
  if (::access(path.c_str(), F_OK) == 0) {
    throw Error(ErrorCode::kAlreadyExists, "File " + path + " exists. Remove it first");
  }
  Check(storevisor::WriteFileAtomic(path, storevisor::runtime::DefaultSpecJson().dump(2) + "\n"));
  return 0;
}

storevisor::runtime::Process ProcessFromConfig(const std::string& bundle) {
  std::string path = bundle + "/config.json";
  auto spec = Check(storevisor::runtime::ParseSpec(Check(storevisor::ReadFile(path)), path));
  if (!spec.process) throw Error(ErrorCode::kInvalidArgument, path + ": no process to inherit");
  return *spec.process;
}

int CmdExec(Runtime& rt, Args& a) {
  storevisor::runtime::ExecOptions o;
  std::string process_file, cwd, v;
  std::vector<std::string> env;
  bool tty = false;
  while (!a.Done() && a.Peek()[0] == '-') {
    if (a.Value({"--process", "-p"}, process_file) || a.Value({"--pid-file"}, o.pid_file) ||
        a.Value({"--console-socket"}, o.console_socket) || a.Value({"--cwd"}, cwd)) {
      continue;
    }
    if (a.Value({"--env", "-e"}, v)) {
      env.push_back(v);
    } else if (a.Value({"--preserve-fds"}, v)) {
      o.preserve_fds = ParseCount(v);
    } else if (a.Flag({"--detach", "-d"})) {
      o.detach = true;
    } else if (a.Flag({"--tty", "-t"})) {
      tty = true;
    } else if (!a.Flag({"--no-new-privs"})) {
      Unknown(a.Peek());
    }
  }
  std::string id = NeedId(a);
  if (!process_file.empty()) {
    o.process = Check(
        storevisor::runtime::ParseProcess(Check(storevisor::ReadFile(process_file)), process_file));
    if (tty) o.process.terminal = true;
  } else {
    auto state = Check(rt.State(id));
    o.process = ProcessFromConfig(state.bundle);
    o.process.args = a.Rest();
    if (o.process.args.empty()) throw Error(ErrorCode::kInvalidArgument, "exec: no command given");
    o.process.terminal = tty;
    for (auto& e : env) o.process.env.push_back(e);
    if (!cwd.empty()) o.process.cwd = cwd;
  }
  auto e = Check(rt.Exec(id, o));
  return o.detach ? 0 : e.exit_code;
}

int CmdEvents(Runtime& rt, Args& a) {
  while (!a.Done() && a.Peek()[0] == '-') {
    if (!a.Flag({"--stats"})) Unknown(a.Peek());
  }
  std::string id = NeedId(a);
  auto s = Check(rt.Stats(id));
  json out = {{"type", "stats"},
              {"id", id},
              {"data",
               {{"memory",
                 {{"usage", s.memory_usage},
                  {"maxUsage", s.memory_max_usage},
                  {"limit", s.memory_limit},
                  {"oomKills", s.oom_kills}}},
                {"cpu", {{"usageNanoseconds", s.cpu_usage_ns}}},
                {"pids", {{"current", s.pids_current}}}}}};
  std::cout << out.dump() << "\n";
  return 0;
}

int64_t Number(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0)
    throw Error(ErrorCode::kInvalidArgument, flag + " wants a number, not '" + v + "'");
  return n;
}

int CmdUpdate(Runtime& rt, Args& a) {
  storevisor::runtime::Resources r;
  std::string v;
  while (!a.Done() && a.Peek()[0] == '-') {
    if (a.Value({"--resources", "-r"}, v)) {
      std::string text;
      if (v == "-") {
        std::stringstream in;
        in << std::cin.rdbuf();
        text = in.str();
      } else {
        text = Check(storevisor::ReadFile(v, 4u << 20));
      }
      r = Check(storevisor::runtime::ParseResourcesJson(text, v == "-" ? "stdin" : v));
    } else if (a.Value({"--memory"}, v)) {
      r.memory_limit = Number("--memory", v);
    } else if (a.Value({"--cpu-shares"}, v)) {
      r.cpu_shares = static_cast<uint64_t>(Number("--cpu-shares", v));
    } else if (a.Value({"--cpu-quota"}, v)) {
      r.cpu_quota = Number("--cpu-quota", v);
    } else if (a.Value({"--cpu-period"}, v)) {
      r.cpu_period = static_cast<uint64_t>(Number("--cpu-period", v));
    } else if (a.Value({"--cpuset-cpus"}, v)) {
      r.cpuset_cpus = v;
    } else if (a.Value({"--cpuset-mems"}, v)) {
      r.cpuset_mems = v;
    } else if (a.Value({"--pids-limit"}, v)) {
      r.pids_limit = Number("--pids-limit", v);
    } else {
      Unknown(a.Peek());
    }
  }
  Check(rt.Update(NeedId(a), r));
  return 0;
}

int CmdFavorDynmods(Args& a) {
  if (!a.Done()) {
    std::string v = a.Next();
    if (v != "on" && v != "off")
      throw Error(ErrorCode::kInvalidArgument, "favordynmods wants on or off, not '" + v + "'");
    Check(storevisor::runtime::SetCgroupFavorDynmods(v == "on"));
  }
  std::cout << (Check(storevisor::runtime::CgroupFavorDynmods()) ? "on" : "off") << "\n";
  return 0;
}

int Dispatch(const Globals& g, const std::string& cmd, Args& a) {
  Runtime rt(g.root);
  if (cmd == "create") return CmdCreate(rt, a);
  if (cmd == "start") {
    Check(rt.Start(NeedId(a)));
    return 0;
  }
  if (cmd == "run") return CmdRun(rt, a);
  if (cmd == "state") return CmdState(rt, a);
  if (cmd == "kill") return CmdKill(rt, a);
  if (cmd == "delete") return CmdDelete(rt, a);
  if (cmd == "list") return CmdList(rt, a);
  if (cmd == "spec") return CmdSpec(a);
  if (cmd == "exec") return CmdExec(rt, a);
  if (cmd == "events") return CmdEvents(rt, a);
  if (cmd == "favordynmods") return CmdFavorDynmods(a);
  if (cmd == "update") return CmdUpdate(rt, a);
  throw Error(ErrorCode::kInvalidArgument, "unknown command '" + cmd + "'\n" + kUsage);
}

void LogError(const Globals& g, const std::string& msg) {
  std::fprintf(stderr, "storevisor-runtime: %s\n", msg.c_str());
  if (g.log_file.empty()) return;
  int fd = ::open(g.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string line =
      g.log_json
          ? json({{"level", "error"}, {"msg", msg}, {"time", storevisor::runtime::Rfc3339Now()}})
                .dump()
          : "level=error msg=\"" + msg + "\"";
  line += "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  Args a(std::vector<std::string>(argv + 1, argv + argc));
  try {
    std::string v;
    while (!a.Done() && a.Peek().size() > 1 && a.Peek()[0] == '-') {
      if (a.Value({"--root"}, g.root) || a.Value({"--log"}, g.log_file)) continue;
      if (a.Value({"--log-format"}, v)) {
        g.log_json = v == "json";
      } else if (a.Flag({"--version", "-v"})) {
        std::printf("storevisor-runtime version %s\nspec: 1.0.2\n", SV_VERSION);
        return 0;
      } else if (a.Flag({"--help", "-h"})) {
        std::printf("%s", kUsage);
        return 0;
      } else if (!a.Flag({"--debug", "--systemd-cgroup=false"})) {
        if (a.Peek() == "--systemd-cgroup") {
          throw Error(ErrorCode::kUnsupported,
                      "--systemd-cgroup: this runtime manages cgroupfs only");
        }
        Unknown(a.Peek());
      }
    }
    if (a.Done()) {
      std::fprintf(stderr, "%s", kUsage);
      return 1;
    }
    std::string cmd = a.Next();
    return Dispatch(g, cmd, a);
  } catch (const Error& e) {
    LogError(g, e.message());
    return 1;
  }
}
