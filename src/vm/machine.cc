// The life of one QEMU process: spawn (in its own session), QMP attach, readiness
// through the guest agent, the three-stage stop, and the guest's fate when it ends.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "vm/unix_socket.h"
#include "vm/vm.h"

namespace storevisor::vm {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<Millis>(Clock::now() - t).count();
}

bool PidfdExited(int pidfd, int wait_ms) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, wait_ms) > 0;
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  auto s = ReadFile(path, 64u << 20);
  if (!s) return "";
  return s->size() > max_bytes ? s->substr(s->size() - max_bytes) : *s;
}

// A running process from a pidfile; error when absent or dead.
Result<pid_t> LivePid(const std::string& pidfile) {
  auto text = ReadFile(pidfile, 64);
  if (!text) return std::move(text).error();
  pid_t pid = static_cast<pid_t>(std::strtol(text->c_str(), nullptr, 10));
  if (pid <= 1) return Error(ErrorCode::kGuestFault, pidfile + ": not a pid");
  // A zombie (PID 1 here reaps slowly) or a reused pid running something else is gone.
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline", 1 << 16);
  size_t paren = stat ? stat->rfind(')') : std::string::npos;
  bool zombie = paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
  if (!stat || !cmd || zombie || cmd->find("qemu") == std::string::npos) {
    return Error(ErrorCode::kNotFound, "QEMU (pid " + std::to_string(pid) + ") is not running");
  }
  return pid;
}

void RemoveRuntimeFiles(const StateDir& s) {
  for (const auto& p : {s.qmp(), s.agent(), s.pidfile()}) ::unlink(p.c_str());
}

}  // namespace

std::string ConsoleTail(const std::string& path, int lines) {
  std::string t = ReadTail(path, 16384);
  size_t pos = t.size();
  for (int i = 0; i <= lines && pos != std::string::npos && pos > 0; ++i)
    pos = t.rfind('\n', pos - 1);
  return pos == std::string::npos ? t : t.substr(pos + 1);
}

int ExitStatusFor(GuestFate f) {
  switch (f) {
    case GuestFate::kPoweredOff:
      return 0;
    case GuestFate::kReset:
      return 20;
    case GuestFate::kKilled:
      return 21;
    case GuestFate::kQemuDied:
      return 22;
    case GuestFate::kPanicked:
      return 23;
  }
  return 70;
}

std::string_view GuestFateName(GuestFate f) {
  switch (f) {
    case GuestFate::kPoweredOff:
      return "powered-off";
    case GuestFate::kReset:
      return "reset";
    case GuestFate::kKilled:
      return "killed";
    case GuestFate::kQemuDied:
      return "qemu-died";
    case GuestFate::kPanicked:
      return "panicked";
  }
  return "?";
}

// Moves must disown the source: a moved-from Machine must not kill the QEMU it gave away.
Machine::Machine(Machine&& o) noexcept { *this = std::move(o); }

Machine& Machine::operator=(Machine&& o) noexcept {
  if (this == &o) return *this;
  if (owned_ && pid_ > 0) KillAndClean();
  pid_ = std::exchange(o.pid_, -1);
  pidfd_ = std::move(o.pidfd_);
  owned_ = std::exchange(o.owned_, false);
  is_child_ = std::exchange(o.is_child_, false);
  accel_ = std::move(o.accel_);
  state_ = std::move(o.state_);
  qmp_ = std::move(o.qmp_);
  agent_ = std::move(o.agent_);
  shutdown_reason_ = std::move(o.shutdown_reason_);
  spawned_at_ = o.spawned_at_;
  spawn_ms_ = o.spawn_ms_;
  boot_files_ = std::move(o.boot_files_);
  host_ksm_ = std::move(o.host_ksm_);
  trimmed_bytes_ = o.trimmed_bytes_;
  panicked_ = o.panicked_;
  return *this;
}

Machine::~Machine() {
  if (owned_ && pid_ > 0) KillAndClean();
}

void Machine::Release() { owned_ = false; }

void Machine::KillAndClean() {
  ::kill(pid_, SIGKILL);
  if (pidfd_.valid()) PidfdExited(pidfd_.get(), 5000);
  if (is_child_) ::waitpid(pid_, nullptr, 0);
  RemoveRuntimeFiles(state_);
  pid_ = -1;
}

namespace {

Status PrepareStateDir(const StateDir& s) {
  SV_TRY(MakeDirs(s.dir, 0700));
  auto live = LivePid(s.pidfile());
  if (live) {
    return Error(ErrorCode::kConflict, "a VM already runs from " + s.dir + " (QEMU pid " +
                                           std::to_string(*live) + "); stop it first");
  }
  RemoveRuntimeFiles(s);
  ::unlink(s.console().c_str());
  return Ok();
}

// Connects QMP while watching QEMU: if it exits first, its own message is the error.
Result<QmpClient> ConnectQmp(const StateDir& s, int pidfd, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (PidfdExited(pidfd, 0)) {
      std::string log = ReadTail(s.dir + "/qemu.log", 2000);
      while (!log.empty() && log.back() == '\n') log.pop_back();
      return Error(ErrorCode::kFailedPrecondition,
                   "QEMU exited at start: " + (log.empty() ? std::string("(no message)") : log));
    }
    auto fd = internal::ConnectUnix(s.qmp(), Clock::now() + Millis(20));
    if (fd) {
      auto q = QmpClient::FromFd(std::move(*fd), Millis(5000));
      if (q || !PidfdExited(pidfd, 500)) return q;
      continue;  // QEMU died while greeting: report its own words above
    }
    if (Clock::now() > deadline) return std::move(fd).error().Context("QMP did not come up");
  }
}

Status RestoreState(QmpClient& qmp, const std::string& snapshot_dir) {
  SV_TRY(qmp.Execute("migrate-set-capabilities",
                     {{"capabilities", {{{"capability", "x-ignore-shared"}, {"state", true}}}}}));
  SV_ASSIGN_OR_RETURN(UniqueFd state, OpenFile(snapshot_dir + "/state", O_RDONLY));
  SV_TRY(qmp.ExecuteWithFd("getfd", {{"fdname", "snapshot"}}, state.get(), Millis(5000)));
  SV_TRY(qmp.Execute("migrate-incoming", {{"uri", "fd:snapshot"}}));
  auto deadline = Clock::now() + Millis(60000);
  for (;;) {
    SV_ASSIGN_OR_RETURN(json st, qmp.Execute("query-status"));
    std::string status = st.value("status", "");
    if (status == "paused" || status == "running") break;
    if (status != "inmigrate" && status != "prelaunch") {
      return Error(ErrorCode::kFailedPrecondition, "restore failed: QEMU is " + status);
    }
    if (Clock::now() > deadline)
      return Error(ErrorCode::kTimeout, "restore did not finish in 60 s");
    std::this_thread::sleep_for(Millis(2));
  }
  SV_TRY(qmp.Execute("cont"));
  return Ok();
}

}  // namespace

Result<Machine> Machine::Start(const VmConfig& config, const StartOptions& opt) {
  SV_TRY(PrepareStateDir(opt.state));
  Machine m;
  m.state_ = opt.state;
  m.accel_ = ChooseAccel(config.accel);
  m.boot_files_ = {config.kernel, config.initrd};
  if (config.mem_merge && !opt.leave_host_ksm) {
    // Mergeable guest RAM is only merged while ksmd runs. Failing to switch it on
    // costs memory, not correctness: say so and go on.
    auto ksm = EnsureHostKsm();
    if (!ksm) {
      m.host_ksm_ = "left alone: " + ksm.error().message();
    } else if (ksm->switched_on) {
      m.host_ksm_ = "switched on (/sys/kernel/mm/ksm/run was 0)";
    }
  }
  RuntimePaths paths{
      opt.state.qmp(), opt.state.agent(), opt.state.pidfile(),
      config.serial.kind == SerialConfig::Kind::kFile ? config.serial.path : opt.state.console(),
      !opt.snapshot_dir.empty()};
  std::vector<std::string> argv = BuildQemuArgv(config, m.accel_, paths);
  argv.insert(argv.end(), opt.qemu_extra.begin(), opt.qemu_extra.end());
  json info{{"config", config.ToJson()},       {"accel", AccelName(m.accel_.accel)},
            {"accel_reason", m.accel_.reason}, {"argv", argv},
            {"snapshot", opt.snapshot_dir},    {"host_ksm", m.host_ksm_}};
  SV_TRY(WriteFileAtomic(opt.state.info(), info.dump(2) + "\n"));
  SV_ASSIGN_OR_RETURN(UniqueFd log,
                      OpenFile(opt.state.dir + "/qemu.log", O_WRONLY | O_CREAT | O_TRUNC, 0644));
  SpawnOptions so;
  so.argv = argv;
  so.stdout_fd = log.get();
  so.stderr_fd = log.get();
  so.new_session = true;  // our terminal's ^C reaches us, not QEMU: we stop it cleanly
  so.die_with_parent = !opt.detach;
  // Under TCG no transparent huge pages for QEMU: QEMU asks for them on guest RAM, and
  // khugepaged then folds the 4 KiB pages free page reporting handed back into whole 2
  // MiB pages again (an idle guest grew 122 -> 130 MiB in 30 s here); boots were no slower
  // without them (docs/vm.md). Under KVM they stay: there they speed up every guest access.
  so.no_thp = m.accel_.accel == Accel::kTcg;
  m.spawned_at_ = Clock::now();
  SV_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(so));
  m.pid_ = child.pid();
  SV_ASSIGN_OR_RETURN(m.pidfd_, OpenPidFd(m.pid_));
  child.Detach();
  m.owned_ = true;
  m.is_child_ = true;
  auto qmp = ConnectQmp(opt.state, m.pidfd_.get(), Millis(10000));
  if (!qmp) return std::move(qmp).error();  // m's destructor kills and cleans up
  m.qmp_ = std::move(*qmp);
  if (!opt.snapshot_dir.empty())
    SV_TRY_CTX(RestoreState(*m.qmp_, opt.snapshot_dir), "snapshot " + opt.snapshot_dir);
  m.spawn_ms_ = MsSince(m.spawned_at_);
  return m;
}

Result<Machine> Machine::Attach(const StateDir& state) {
  SV_ASSIGN_OR_RETURN(pid_t pid, LivePid(state.pidfile()));
  Machine m;
  m.state_ = state;
  m.pid_ = pid;
  SV_ASSIGN_OR_RETURN(m.pidfd_, OpenPidFd(pid));
  auto info = ReadFile(state.info(), 1u << 20);
  if (info) {
    json j = json::parse(*info, nullptr, false);
    if (j.is_object() && j.contains("accel") && j["accel"].is_string()) {
      m.accel_.accel = j["accel"] == "kvm" ? Accel::kKvm : Accel::kTcg;
      m.accel_.reason = j.value("accel_reason", "");
    }
  }
  SV_ASSIGN_OR_RETURN(QmpClient q, QmpClient::Connect(state.qmp(), Millis(3000)));
  m.qmp_ = std::move(q);
  m.spawned_at_ = Clock::now();
  return m;
}

Result<AgentClient*> Machine::agent(Millis timeout) {
  if (!agent_) {
    SV_ASSIGN_OR_RETURN(AgentClient a, AgentClient::Connect(state_.agent(), timeout));
    agent_ = std::move(a);
  }
  return &*agent_;
}

Result<int64_t> Machine::WaitReady(Millis timeout, const std::function<bool()>& cancelled) {
  auto deadline = Clock::now() + timeout;
  SV_ASSIGN_OR_RETURN(AgentClient * a, agent(timeout));
  for (;;) {
    if (PidfdExited(pidfd_.get(), 0)) {
      return Error(
          ErrorCode::kUnavailable,
          "QEMU exited before the guest became ready; console:\n" + ConsoleTail(state_.console()));
    }
    if (cancelled && cancelled()) return Error(ErrorCode::kCancelled, "stopped while booting");
    // One sync waits in the socket until the guest opens its port (QEMU reads nothing
    // for a closed port), then is answered at once. Short attempts would only queue
    // stale syncs for the agent to answer first (~20 ms of a TCG boot for the ~18 that
    // 100 ms attempts queued); each attempt ends to check for QEMU's death and cancellation.
    auto ok = a->Sync(Millis(500));
    if (ok) {
      int64_t ms = MsSince(spawned_at_);
      // Booted: QEMU's copies of the kernel and initrd are dead weight from now on.
      auto trimmed = TrimBootCopies(pid_, boot_files_);
      if (trimmed) trimmed_bytes_ = *trimmed;
      return ms;
    }
    if (ok.error().code() == ErrorCode::kUnavailable) {  // chardev dropped us: reconnect
      agent_.reset();
      SV_ASSIGN_OR_RETURN(a, agent(Millis(1000)));
    }
    if (Clock::now() > deadline) {
      return Error(ErrorCode::kTimeout, "the guest agent did not answer within " +
                                            std::to_string(timeout.count() / 1000) +
                                            " s (boot watchdog); last console lines:\n" +
                                            ConsoleTail(state_.console()));
    }
  }
}

void Machine::NoteEvent(const QmpEvent& ev) {
  if (ev.name == "SHUTDOWN" && ev.data.is_object() && ev.data.contains("reason") &&
      ev.data["reason"].is_string()) {
    shutdown_reason_ = ev.data["reason"].get<std::string>();
  }
  if (ev.name == "GUEST_PANICKED") panicked_ = true;
}

Result<GuestFate> Machine::FateAfterExit() {
  int status = 0;
  bool have_status = is_child_ && ::waitpid(pid_, &status, 0) == pid_;
  // QEMU's last words on QMP: the SHUTDOWN event says why.
  while (qmp_ && !shutdown_reason_) {
    auto ev = qmp_->WaitEvent(Millis(200));
    if (!ev || !*ev) break;
    NoteEvent(**ev);
  }
  RemoveRuntimeFiles(state_);
  pid_ = -1;
  owned_ = false;
  // pvpanic: the guest kernel reported its panic before resetting (-action panic=shutdown).
  if (panicked_ || shutdown_reason_ == "guest-panic") return GuestFate::kPanicked;
  if (shutdown_reason_) {
    const std::string& r = *shutdown_reason_;
    if (r == "guest-shutdown" || r == "host-qmp-quit") return GuestFate::kPoweredOff;
    if (r == "guest-reset") return GuestFate::kReset;
    if (r == "host-signal") return GuestFate::kKilled;
  }
  if (have_status && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return GuestFate::kKilled;
  return GuestFate::kQemuDied;
}

Result<std::optional<GuestFate>> Machine::WaitExit(std::optional<Millis> timeout) {
  if (pid_ <= 0) return Error(ErrorCode::kConflict, "QEMU is not running");
  // Collect SHUTDOWN while QEMU lives, so the reason is known even if the socket dies.
  int wait_ms = timeout ? static_cast<int>(timeout->count()) : -1;
  if (!PidfdExited(pidfd_.get(), wait_ms)) {
    while (qmp_) {
      auto ev = qmp_->WaitEvent(Millis(0));
      if (!ev || !*ev) break;
      NoteEvent(**ev);
    }
    return std::optional<GuestFate>();
  }
  SV_ASSIGN_OR_RETURN(GuestFate f, FateAfterExit());
  return std::optional<GuestFate>(f);
}

Result<GuestFate> Machine::Stop(Millis stage) {
  if (pid_ <= 0) return Error(ErrorCode::kConflict, "QEMU is not running");
  // 1. Ask the guest agent (the guest shuts down its services and file systems).
  auto a = agent(Millis(500));
  if (a && (*a)->Shutdown().has_value()) {
    SV_ASSIGN_OR_RETURN(auto f, WaitExit(stage));
    if (f) return *f;
  }
  // 2. The ACPI power button.
  if (qmp_ && qmp_->Execute("system_powerdown", json::object(), Millis(1000)).has_value()) {
    SV_ASSIGN_OR_RETURN(auto f, WaitExit(stage));
    if (f) return *f;
  }
  // 3. Kill.
  ::kill(pid_, SIGKILL);
  SV_ASSIGN_OR_RETURN(auto f, WaitExit(Millis(10000)));
  if (!f) return Error(ErrorCode::kInternal, "QEMU survived SIGKILL");
  return GuestFate::kKilled;
}

}  // namespace storevisor::vm
