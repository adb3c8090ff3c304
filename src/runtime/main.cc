// storevisor-runtime: the OCI runtime command line, compatible with runc's (the verbs,
// flags and exit statuses podman, conmon and containerd use), parsed with CLI11. Errors go
// to stderr and, with --log FILE --log-format json, to FILE as {"level":"error","msg":...}
// lines, which is where podman looks for them. Exit status: 0, or 1 on any error, a bad
// command line included (runc's convention); `run` and `exec` exit with the container
// process's status.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/child_process.h"
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

constexpr const char* kVersion = "storevisor-runtime version " SV_VERSION "\nspec: 1.1.0\n";

struct Globals {
  std::string root = "/run/storevisor-runtime";
  std::string log_file;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  bool version = false;
};

// Every subcommand's options, filled by CLI11 (one struct: one command runs per process).
struct Options {
  storevisor::runtime::CreateOptions create;
  std::string id;
  bool detach = false, keep = false, all = false, force = false, quiet = false, stats = false,
       tty = false, no_new_privs = false, no_new_keyring = false, no_pivot = false;
  std::string signal = "SIGTERM";
  std::string format = "table";
  std::string spec_bundle = ".";
  // exec
  std::string process_file, cwd, exec_pid_file, exec_console_socket;
  int exec_preserve_fds = 0;
  std::vector<std::string> env;
  // update
  std::string resources_file;
  std::optional<int64_t> memory, cpu_quota, pids_limit;
  std::optional<uint64_t> cpu_shares, cpu_period;
  std::string cpuset_cpus, cpuset_mems;
  // favordynmods
  std::string favordynmods;
};

template <typename T>
T Check(Result<T> r) {
  if (!r) throw std::move(r).error();
  return std::move(r).value();
}
void Check(storevisor::Status s) {
  if (!s) throw std::move(s).error();
}

// What CLI11 leaves after the first positional of exec and ps: the id, then the rest.
std::string TakeId(CLI::App* cmd, std::vector<std::string>& rest) {
  rest = cmd->remaining();
  if (rest.empty()) throw Error(ErrorCode::kInvalidArgument, "missing container id");
  std::string id = rest.front();
  rest.erase(rest.begin());
  return id;
}

void AddId(CLI::App* cmd, Options& o) { cmd->add_option("id", o.id, "container id")->required(); }

void AddCreateFlags(CLI::App* cmd, Options& o) {
  cmd->add_option("-b,--bundle", o.create.bundle, "bundle directory (default .)");
  cmd->add_option("--pid-file", o.create.pid_file, "write the init's pid here");
  cmd->add_option("--console-socket", o.create.console_socket, "send the pty master here");
  cmd->add_option("--preserve-fds", o.create.preserve_fds, "pass N more fds after 3")
      ->check(CLI::Range(0, 9999));
  cmd->add_flag("--monitor", o.create.monitor, "fork a monitor that records the exit");
  cmd->add_flag("--default-seccomp", o.create.default_seccomp,
                "apply the built-in seccomp profile when the spec has none");
  // Accepted for compatibility: no session keyring is made; pivot_root is always used.
  cmd->add_flag("--no-new-keyring", o.no_new_keyring, "accepted, ignored");
  cmd->add_flag("--no-pivot", o.no_pivot, "accepted, ignored");
}

int CmdRun(Runtime& rt, const Options& o) {
  if (o.detach) {
    Check(rt.Create(o.id, o.create));
    Check(rt.Start(o.id));
    return 0;
  }
  storevisor::runtime::ExitInfo e = Check(rt.Run(o.id, o.create));
  if (e.oom_killed)
    std::fprintf(stderr, "storevisor-runtime: container %s was OOM-killed\n", o.id.c_str());
  return e.exit_code;
}

int CmdDelete(Runtime& rt, const Options& o) {
  storevisor::Status s = rt.Delete(o.id, o.force);
  // runc: deleting a missing container with --force succeeds.
  if (!s && o.force && s.error().code() == ErrorCode::kNotFound) return 0;
  Check(std::move(s));
  return 0;
}

int CmdList(Runtime& rt, const Options& o) {
  auto list = Check(rt.List());
  if (o.format == "json") {
    json out = json::array();
    for (const auto& s : list) out.push_back(s.ToJson());
    std::cout << out.dump() << "\n";
    return 0;
  }
  if (!o.quiet)
    std::printf("%-24s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
  for (const auto& s : list) {
    if (o.quiet) {
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

int CmdSpec(const Options& o) {
  std::string path = o.spec_bundle + "/config.json";
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

int CmdExec(Runtime& rt, CLI::App* cmd, const Options& o) {
  std::vector<std::string> args;
  std::string id = TakeId(cmd, args);
  storevisor::runtime::ExecOptions e;
  e.detach = o.detach;
  e.pid_file = o.exec_pid_file;
  e.console_socket = o.exec_console_socket;
  e.preserve_fds = o.exec_preserve_fds;
  if (!o.process_file.empty()) {
    e.process = Check(storevisor::runtime::ParseProcess(Check(storevisor::ReadFile(o.process_file)),
                                                        o.process_file));
    if (o.tty) e.process.terminal = true;
  } else {
    auto state = Check(rt.State(id));
    e.process = ProcessFromConfig(state.bundle);
    e.process.args = args;
    if (e.process.args.empty()) throw Error(ErrorCode::kInvalidArgument, "exec: no command given");
    e.process.terminal = o.tty;
    for (const auto& v : o.env) e.process.env.push_back(v);
    if (!o.cwd.empty()) e.process.cwd = o.cwd;
  }
  auto exited = Check(rt.Exec(id, e));
  return o.detach ? 0 : exited.exit_code;
}

int CmdEvents(Runtime& rt, const Options& o) {
  auto s = Check(rt.Stats(o.id));
  json out = {{"type", "stats"},
              {"id", o.id},
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

int CmdUpdate(Runtime& rt, const Options& o) {
  storevisor::runtime::Resources r;
  if (!o.resources_file.empty()) {
    std::string text;
    if (o.resources_file == "-") {
      std::stringstream in;
      in << std::cin.rdbuf();
      text = in.str();
    } else {
      text = Check(storevisor::ReadFile(o.resources_file, 4u << 20));
    }
    r = Check(storevisor::runtime::ParseResourcesJson(
        text, o.resources_file == "-" ? "stdin" : o.resources_file));
  }
  // A flag given with --resources replaces the file's value (runc's order).
  if (o.memory) r.memory_limit = *o.memory;
  if (o.cpu_shares) r.cpu_shares = *o.cpu_shares;
  if (o.cpu_quota) r.cpu_quota = *o.cpu_quota;
  if (o.cpu_period) r.cpu_period = *o.cpu_period;
  if (!o.cpuset_cpus.empty()) r.cpuset_cpus = o.cpuset_cpus;
  if (!o.cpuset_mems.empty()) r.cpuset_mems = o.cpuset_mems;
  if (o.pids_limit) r.pids_limit = *o.pids_limit;
  Check(rt.Update(o.id, r));
  return 0;
}

int CmdFavorDynmods(const Options& o) {
  if (!o.favordynmods.empty()) {
    if (o.favordynmods != "on" && o.favordynmods != "off") {
      throw Error(ErrorCode::kInvalidArgument,
                  "favordynmods wants on or off, not '" + o.favordynmods + "'");
    }
    Check(storevisor::runtime::SetCgroupFavorDynmods(o.favordynmods == "on"));
  }
  std::cout << (Check(storevisor::runtime::CgroupFavorDynmods()) ? "on" : "off") << "\n";
  return 0;
}

// runc ps: `--format json` prints the pids as a JSON array; the table runs `ps` (with the
// arguments given after the id, default -ef) and keeps its header and the lines whose PID
// column is one of the container's.
int CmdPs(Runtime& rt, CLI::App* cmd, const Options& o) {
  std::vector<std::string> ps_args;
  std::string id = TakeId(cmd, ps_args);
  std::vector<pid_t> pids = Check(rt.Pids(id));
  if (o.format == "json") {
    std::cout << json(pids).dump() << "\n";
    return 0;
  }
  if (o.format != "table")
    throw Error(ErrorCode::kInvalidArgument, "invalid format option '" + o.format + "'");
  if (ps_args.empty()) ps_args = {"-ef"};
  std::vector<std::string> argv = {"ps"};
  argv.insert(argv.end(), ps_args.begin(), ps_args.end());
  auto out = Check(storevisor::RunCommand(argv));
  if (!out.status.success())
    throw Error(ErrorCode::kInternal, "ps " + out.status.ToString() + ": " + out.err);
  std::istringstream lines(out.out);
  std::string header;
  std::getline(lines, header);
  size_t pid_col = 0;
  {
    std::istringstream h(header);
    std::string field;
    while (h >> field && field != "PID") ++pid_col;
    if (field != "PID") throw Error(ErrorCode::kInternal, "ps printed no PID column");
  }
  std::set<pid_t> mine(pids.begin(), pids.end());
  std::cout << header << "\n";
  for (std::string line; std::getline(lines, line);) {
    std::istringstream l(line);
    std::string field;
    for (size_t i = 0; i <= pid_col && (l >> field); ++i) {
    }
    char* end = nullptr;
    long pid = std::strtol(field.c_str(), &end, 10);
    if (!field.empty() && *end == '\0' && mine.count(static_cast<pid_t>(pid)) != 0)
      std::cout << line << "\n";
  }
  return 0;
}

void LogError(const Globals& g, const std::string& msg) {
  std::fprintf(stderr, "storevisor-runtime: %s\n", msg.c_str());
  if (g.log_file.empty()) return;
  int fd = ::open(g.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string line =
      g.log_format == "json"
          ? json({{"level", "error"}, {"msg", msg}, {"time", storevisor::runtime::Rfc3339Now()}})
                .dump()
          : "level=error msg=\"" + msg + "\"";
  line += "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

struct Commands {
  CLI::App *create, *start, *run, *state, *kill, *del, *list, *spec, *exec, *events, *update,
      *favordynmods, *pause, *resume, *ps, *features;
};

Commands Define(CLI::App& app, Globals& g, Options& o) {
  app.add_option("--root", g.root, "state directory")->capture_default_str();
  app.add_option("--log", g.log_file, "also append errors to this file");
  app.add_option("--log-format", g.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "accepted, ignored");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup, "refused: cgroupfs only");
  app.add_flag("-v,--version", g.version, "print the version");
  app.require_subcommand(0, 1);
  Commands c{};
  c.create = app.add_subcommand("create", "create a container (its init waits for start)");
  AddCreateFlags(c.create, o);
  AddId(c.create, o);
  c.start = app.add_subcommand("start", "run the created container's process");
  AddId(c.start, o);
  c.run = app.add_subcommand("run", "create, start and wait");
  AddCreateFlags(c.run, o);
  c.run->add_flag("-d,--detach", o.detach, "do not wait");
  c.run->add_flag("--keep", o.keep, "accepted, ignored");
  AddId(c.run, o);
  c.state = app.add_subcommand("state", "print the OCI state JSON");
  AddId(c.state, o);
  c.kill = app.add_subcommand("kill", "send a signal (default SIGTERM)");
  c.kill->add_flag("-a,--all", o.all, "every process of the container");
  AddId(c.kill, o);
  c.kill->add_option("signal", o.signal, "KILL, SIGKILL or 9");
  c.del = app.add_subcommand("delete", "remove a stopped container");
  c.del->add_flag("-f,--force", o.force, "kill it first if it runs");
  AddId(c.del, o);
  c.list = app.add_subcommand("list", "list containers");
  c.list->add_option("-f,--format", o.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  c.list->add_flag("-q,--quiet", o.quiet, "ids only");
  c.spec = app.add_subcommand("spec", "write a default config.json");
  c.spec->add_option("-b,--bundle", o.spec_bundle, "bundle directory");
  c.exec = app.add_subcommand("exec", "run a process in a running container");
  c.exec->add_option("-p,--process", o.process_file, "process.json");
  c.exec->add_option("--pid-file", o.exec_pid_file, "write the pid here");
  c.exec->add_option("--console-socket", o.exec_console_socket, "send the pty master here");
  c.exec->add_option("--cwd", o.cwd, "working directory");
  c.exec->add_option("-e,--env", o.env, "K=V (repeatable)")->allow_extra_args(false);
  c.exec->add_option("--preserve-fds", o.exec_preserve_fds, "pass N more fds after 3")
      ->check(CLI::Range(0, 9999));
  c.exec->add_flag("-d,--detach", o.detach, "do not wait");
  c.exec->add_flag("-t,--tty", o.tty, "allocate a pty");
  c.exec->add_flag("--no-new-privs", o.no_new_privs, "accepted, ignored");
  // The id and the command line follow; options after the id belong to the command.
  c.exec->prefix_command();
  c.events = app.add_subcommand("events", "print the container's statistics");
  c.events->add_flag("--stats", o.stats, "print once");
  AddId(c.events, o);
  c.update = app.add_subcommand("update", "change a live container's limits");
  c.update->add_option("-r,--resources", o.resources_file, "linux.resources JSON, - for stdin");
  c.update->add_option("--memory", o.memory, "bytes");
  c.update->add_option("--cpu-shares", o.cpu_shares, "shares");
  c.update->add_option("--cpu-quota", o.cpu_quota, "microseconds");
  c.update->add_option("--cpu-period", o.cpu_period, "microseconds");
  c.update->add_option("--cpuset-cpus", o.cpuset_cpus, "list");
  c.update->add_option("--cpuset-mems", o.cpuset_mems, "list");
  c.update->add_option("--pids-limit", o.pids_limit, "count");
  AddId(c.update, o);
  c.favordynmods = app.add_subcommand("favordynmods", "show or set the cgroup2 option");
  c.favordynmods->add_option("state", o.favordynmods, "on or off");
  c.pause = app.add_subcommand("pause", "freeze every process of the container");
  AddId(c.pause, o);
  c.resume = app.add_subcommand("resume", "thaw a paused container");
  AddId(c.resume, o);
  c.ps = app.add_subcommand("ps", "the container's processes (ps -ef, or --format json)");
  c.ps->add_option("-f,--format", o.format, "table or json");
  c.ps->prefix_command();
  c.features = app.add_subcommand("features", "what this runtime implements (JSON)");
  return c;
}

int Dispatch(const Globals& g, const Commands& c, Options& o) {
  if (g.systemd_cgroup) {
    throw Error(ErrorCode::kUnsupported, "--systemd-cgroup: this runtime manages cgroupfs only");
  }
  if (*c.spec) return CmdSpec(o);
  if (*c.favordynmods) return CmdFavorDynmods(o);
  if (*c.features) {
    std::cout << storevisor::runtime::FeaturesJson().dump(2) << "\n";
    return 0;
  }
  Runtime rt(g.root);
  if (*c.create) {
    Check(rt.Create(o.id, o.create));
    return 0;
  }
  if (*c.start) {
    Check(rt.Start(o.id));
    return 0;
  }
  if (*c.run) return CmdRun(rt, o);
  if (*c.state) {
    std::cout << Check(rt.State(o.id)).ToJson().dump(2) << "\n";
    return 0;
  }
  if (*c.kill) {
    Check(rt.Kill(o.id, Check(storevisor::runtime::ParseSignal(o.signal)), o.all));
    return 0;
  }
  if (*c.del) return CmdDelete(rt, o);
  if (*c.list) return CmdList(rt, o);
  if (*c.exec) return CmdExec(rt, c.exec, o);
  if (*c.events) return CmdEvents(rt, o);
  if (*c.update) return CmdUpdate(rt, o);
  if (*c.pause) {
    Check(rt.Pause(o.id));
    return 0;
  }
  if (*c.resume) {
    Check(rt.Resume(o.id));
    return 0;
  }
  return CmdPs(rt, c.ps, o);
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  Options o;
  CLI::App app{"storevisor-runtime: an OCI runtime with runc's command line", "storevisor-runtime"};
  Commands c = Define(app, g, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // runc's convention: a bad command line is an error like any other (status 1).
    LogError(g, std::string(e.what()) + " (see storevisor-runtime --help)");
    return 1;
  }
  if (g.version) {
    std::printf("%s", kVersion);
    return 0;
  }
  if (app.get_subcommands().empty()) {
    std::fprintf(stderr, "%s", app.help().c_str());
    return 1;
  }
  try {
    return Dispatch(g, c, o);
  } catch (const Error& e) {
    LogError(g, e.message());
    return 1;
  }
}
