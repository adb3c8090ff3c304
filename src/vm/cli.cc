#include "vm/cli.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "common/files.h"
#include "common/unique_fd.h"
#include "vm/vm.h"

namespace storevisor::vm::cli {

using nlohmann::json;

namespace {

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor-vm: error: %s\n", e.message().c_str());
  return ExitCodeFor(e.code());
}

void Say(const std::string& msg) { std::fprintf(stderr, "storevisor-vm: %s\n", msg.c_str()); }

std::string DirOf(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? "." : path.substr(0, pos);
}

// --disk PATH[,ro]
Result<DiskConfig> ParseDiskFlag(const std::string& s) {
  DiskConfig d;
  d.path = s;
  auto comma = s.find(',');
  if (comma != std::string::npos) {
    std::string opt = s.substr(comma + 1);
    d.path = s.substr(0, comma);
    if (opt != "ro" && opt != "rw") {
      return Error(ErrorCode::kInvalidArgument, "--disk " + s + ": option must be ro or rw");
    }
    d.readonly = opt == "ro";
  }
  return d;
}

// The config from --config (if any) with the flags on top; then validated as a whole.
Result<VmConfig> LoadConfig(const Options& o) {
  json j = json::object();
  std::string base;
  std::string source = "command line";
  if (!o.config.empty()) {
    SV_ASSIGN_OR_RETURN(std::string text, ReadFile(o.config, 1u << 20));
    SV_ASSIGN_OR_RETURN(VmConfig c, ParseVmConfig(text, o.config, DirOf(o.config)));
    j = c.ToJson();
    source = o.config;
  }
  if (!o.kernel.empty()) j["kernel"] = o.kernel;
  if (!o.initrd.empty()) j["initrd"] = o.initrd;
  if (!o.cmdline.empty()) j["cmdline"] = o.cmdline;
  if (o.cpus) j["cpus"] = *o.cpus;
  if (o.memory) j["memory_mib"] = *o.memory;
  if (!o.serial.empty()) j["serial"] = o.serial;
  if (!o.qmp.empty()) j["qmp"] = o.qmp;
  if (!o.accel.empty()) j["accel"] = o.accel;
  if (o.mem_merge) j["mem_merge"] = true;
  if (o.guest_tracing) j["guest_tracing"] = true;
  if (!o.disks.empty()) {
    j["disks"] = json::array();
    for (const auto& s : o.disks) {
      SV_ASSIGN_OR_RETURN(DiskConfig d, ParseDiskFlag(s));
      j["disks"].push_back({{"path", d.path}, {"readonly", d.readonly}});
    }
  }
  if (!o.nets.empty()) {
    j["nets"] = json::array();
    for (const auto& s : o.nets) {
      if (s.rfind("tap=", 0) != 0)
        return Error(ErrorCode::kInvalidArgument, "--net " + s + ": expected tap=NAME");
      j["nets"].push_back({{"tap", s.substr(4)}});
    }
  }
  SV_ASSIGN_OR_RETURN(VmConfig c, ParseVmConfig(j.dump(), source));
  SV_ASSIGN_OR_RETURN(uint64_t host_mib, HostMemoryMib());
  SV_TRY(ValidateForHost(c, host_mib));
  return c;
}

// A private state directory for a foreground run without --state-dir.
Result<std::string> TempStateDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/storevisor-vm-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) return ErrnoError("mkdtemp " + templ);
  return templ;
}

// Copies new console bytes to stdout (foreground --serial stdout).
class ConsoleRelay {
 public:
  explicit ConsoleRelay(std::string path) : path_(std::move(path)) {}
  void Pump() {
    if (!fd_.valid()) {
      auto f = OpenFile(path_, O_RDONLY);
      if (!f) return;
      fd_ = std::move(*f);
    }
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd_.get(), buf, sizeof buf)) > 0)
      (void)WriteAll(1, std::string_view(buf, n));
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

json StartedJson(const Machine& m, std::optional<int64_t> ready_ms) {
  json j{{"pid", m.pid()},
         {"qmp", m.state().qmp()},
         {"agent", m.state().agent()},
         {"console", m.state().console()},
         {"accel", AccelName(m.accel().accel)},
         {"accel_reason", m.accel().reason},
         {"ready_ms", ready_ms ? json(*ready_ms) : json(nullptr)},
         {"host_ksm", m.host_ksm()},
         {"trimmed_bytes", m.trimmed_bytes()}};
  return j;
}

// Foreground: relay the console, forward SIGTERM/SIGINT as a clean stop, exit with the fate.
int Supervise(Machine& m, const VmConfig& c, bool relay) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  ConsoleRelay console(m.state().console());
  for (;;) {
    if (relay) console.Pump();
    signalfd_siginfo si{};
    if (sfd.valid() && ::read(sfd.get(), &si, sizeof si) == sizeof si) {
      Say("signal " + std::to_string(si.ssi_signo) + ": shutting the guest down");
      auto fate = m.Stop(Millis(c.stop_timeout_s * 1000));
      if (relay) console.Pump();
      if (!fate) return Fail(fate.error());
      Say(std::string("guest ") + std::string(GuestFateName(*fate)));
      return ExitStatusFor(*fate);
    }
    auto fate = m.WaitExit(Millis(50));
    if (!fate) return Fail(fate.error());
    if (*fate) {
      if (relay) console.Pump();
      Say(std::string("guest ") + std::string(GuestFateName(**fate)));
      return ExitStatusFor(**fate);
    }
  }
}

int CmdRun(const Options& o) {
  auto cfg = LoadConfig(o);
  if (!cfg) return Fail(cfg.error());
  if (!o.from_snapshot.empty()) {
    auto ok = CheckSnapshot(*cfg, o.from_snapshot);
    if (!ok) return Fail(ok.error());
    auto snap_cfg = SnapshotConfig(*cfg, o.from_snapshot);
    if (!snap_cfg) return Fail(snap_cfg.error());
    cfg = std::move(snap_cfg);
  }
  if (o.detach && o.state_dir.empty())
    return Fail(Error(ErrorCode::kInvalidArgument, "--detach needs --state-dir DIR"));
  // Block the stop signals before QEMU exists, so none is lost (signalfd reads them).
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  if (!o.detach) ::sigprocmask(SIG_BLOCK, &set, nullptr);
  bool temp_dir = o.state_dir.empty();
  std::string dir = o.state_dir;
  if (temp_dir) {
    auto t = TempStateDir();
    if (!t) return Fail(t.error());
    dir = *t;
  }
  StartOptions so{StateDir{dir}, o.detach, o.from_snapshot, {}};
  auto m = Machine::Start(*cfg, so);
  int rc = 0;
  if (!m) {
    rc = Fail(m.error());
  } else {
    Say("accelerator " + std::string(AccelName(m->accel().accel)) + ": " + m->accel().reason);
    if (!m->host_ksm().empty()) Say("host KSM " + m->host_ksm());
    std::optional<int64_t> ready;
    if (!o.no_wait) {
      auto r = m->WaitReady(Millis(cfg->ready_timeout_s * 1000), [&set] {
        // A stop signal during boot ends the run (QEMU is killed, nothing is left).
        sigset_t pending;
        ::sigpending(&pending);
        for (int s : {SIGTERM, SIGINT, SIGHUP}) {
          if (sigismember(&pending, s) && sigismember(&set, s)) return true;
        }
        return false;
      });
      if (!r) {
        rc = Fail(r.error());  // m's destructor kills QEMU and removes its sockets
      } else {
        ready = *r;
        Say("guest ready in " + std::to_string(*r) + " ms" +
            (o.from_snapshot.empty() ? "" : " (restored from " + o.from_snapshot + ")") +
            "; QEMU's boot-only copies trimmed: " + std::to_string(m->trimmed_bytes() >> 20) +
            " MiB");
      }
    }
    if (rc == 0 && o.detach) {
      m->Release();
      json j = StartedJson(*m, ready);
      if (o.output == "json") {
        std::cout << j.dump() << std::endl;
      } else {
        std::cout << "VM running: pid " << m->pid() << ", state in " << dir << std::endl;
      }
    } else if (rc == 0) {
      m->DropAgent();
      rc = Supervise(*m, *cfg, cfg->serial.kind == SerialConfig::Kind::kStdout);
    }
  }
  if (temp_dir) (void)RemoveAll(dir);
  return rc;
}

int CmdStatus(const Options& o) {
  StateDir s{o.state_dir};
  auto m = Machine::Attach(s);
  json j;
  if (!m) {
    if (m.error().code() != ErrorCode::kNotFound) return Fail(m.error());
    j = {{"status", "shutdown"}, {"pid", nullptr}};
  } else {
    auto st = m->qmp()->Execute("query-status");
    if (!st) return Fail(st.error());
    j = {{"status", st->value("status", "unknown")},
         {"pid", m->pid()},
         {"accel", AccelName(m->accel().accel)},
         {"accel_reason", m->accel().reason}};
    auto counters = QemuCounters(*m->qmp(), m->pid());
    if (counters) j["counters"] = *counters;
    m->Release();
  }
  if (o.output == "json") {
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << j["status"].get<std::string>();
    if (!j["pid"].is_null())
      std::cout << " (pid " << j["pid"] << ", " << j["accel"].get<std::string>() << ")";
    std::cout << std::endl;
  }
  return 0;
}

int CmdExec(const Options& o) {
  auto a = AgentClient::Connect(StateDir{o.state_dir}.agent(), Millis(2000));
  if (!a) return Fail(a.error().Context("guest agent of " + o.state_dir));
  auto r = a->Exec(o.exec_argv, Millis(o.timeout_s * 1000));
  if (!r) return Fail(r.error());
  (void)WriteAll(1, r->out);
  (void)WriteAll(2, r->err);
  if (r->signal != 0) return 128 + r->signal;
  return r->exit_code < 0 ? 1 : r->exit_code;
}

int CmdStop(const Options& o) {
  StateDir s{o.state_dir};
  auto m = Machine::Attach(s);
  if (!m) {
    if (m.error().code() == ErrorCode::kNotFound) {  // already gone: just clean up
      for (const auto& p : {s.qmp(), s.agent(), s.pidfile()}) ::unlink(p.c_str());
      Say("not running");
      return 0;
    }
    return Fail(m.error());
  }
  auto fate = m->Stop(Millis(o.timeout_s * 1000));
  if (!fate) return Fail(fate.error());
  Say(std::string("guest ") + std::string(GuestFateName(*fate)));
  return ExitStatusFor(*fate);
}

int CmdSnapshot(const Options& o) {
  auto cfg = LoadConfig(o);
  if (!cfg) return Fail(cfg.error());
  auto dir = TempStateDir();
  if (!dir) return Fail(dir.error());
  auto info = CreateSnapshot(*cfg, o.out, StateDir{*dir});
  (void)RemoveAll(*dir);
  if (!info) return Fail(info.error());
  Say("snapshot saved in " + o.out);
  if (o.output == "json") std::cout << info->manifest.dump() << std::endl;
  return 0;
}

void AddVmFlags(CLI::App* c, Options* o) {
  c->add_option("--config", o->config, "VM config (JSON)");
  c->add_option("--kernel", o->kernel, "kernel image (bzImage or PVH vmlinux)");
  c->add_option("--initrd", o->initrd, "initramfs");
  c->add_option("--cmdline", o->cmdline, "extra kernel arguments");
  c->add_option("--cpus", o->cpus, "vCPUs");
  c->add_option("--memory", o->memory, "guest memory in MiB (>= 128)");
  c->add_option("--disk", o->disks, "PATH[,ro] (repeatable)");
  c->add_option("--net", o->nets, "tap=NAME (repeatable)");
  c->add_option("--serial", o->serial, "stdout | file:PATH | none");
  c->add_option("--qmp", o->qmp, "an extra QMP socket for you at PATH");
  c->add_option("--accel", o->accel, "kvm | tcg | auto");
  c->add_flag("--mem-merge", o->mem_merge,
              "guest RAM mergeable by KSM (switches the host's ksmd on if it is off)");
  c->add_flag("--guest-tracing", o->guest_tracing,
              "keep the guest kernel's tracefs (costs ~0.2 s of boot under TCG)");
  c->add_option("-o,--output", o->output, "json for machine-readable output");
}

}  // namespace

void Define(CLI::App& app, Options* o) {
  auto* run = app.add_subcommand("run", "boot or restore a microvm guest");
  AddVmFlags(run, o);
  run->add_flag("--detach", o->detach, "start QEMU in its own session and return once ready");
  run->add_option("--state-dir", o->state_dir,
                  "where qemu.pid, qmp.sock, agent.sock, console.log go");
  run->add_flag("--no-wait", o->no_wait, "do not wait for the agent (readiness)");
  run->add_option("--from-snapshot", o->from_snapshot, "restore from a snapshot directory");
  auto* status = app.add_subcommand("status", "state of a detached VM");
  status->add_option("--state-dir", o->state_dir)->required();
  status->add_option("-o,--output", o->output);
  auto* exec = app.add_subcommand("exec", "run a command in the guest (guest agent)");
  exec->add_option("--state-dir", o->state_dir)->required();
  exec->add_option("--timeout", o->timeout_s, "seconds");
  exec->add_option("cmd", o->exec_argv, "command and arguments (after --)")->required();
  auto* stop = app.add_subcommand("stop", "clean shutdown, kill after the timeout");
  stop->add_option("--state-dir", o->state_dir)->required();
  stop->add_option("--timeout", o->timeout_s, "seconds per stage");
  auto* snap = app.add_subcommand("snapshot", "boot to ready and save the state");
  AddVmFlags(snap, o);
  snap->add_option("--out", o->out, "snapshot directory")->required();
}

int Run(const CLI::App& app, const Options& o) {
  if (app.got_subcommand("run")) return CmdRun(o);
  if (app.got_subcommand("status")) return CmdStatus(o);
  if (app.got_subcommand("exec")) return CmdExec(o);
  if (app.got_subcommand("stop")) return CmdStop(o);
  if (app.got_subcommand("snapshot")) return CmdSnapshot(o);
  return 2;
}

}  // namespace storevisor::vm::cli
