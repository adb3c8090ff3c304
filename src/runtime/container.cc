// Runtime: the container lifecycle (create, start, run, state, kill, delete, list).
#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "common/files.h"
#include "common/unique_fd.h"
#include "runtime/caps.h"
#include "runtime/cgroup.h"
#include "runtime/init.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/state.h"

namespace storevisor::runtime {
namespace {

using json = nlohmann::json;

struct Prepared {
  Spec spec;
  std::string bundle;
  std::string rootfs;
  CgroupMode mode = CgroupMode::kLegacy;
  std::optional<SeccompProgram> seccomp;
};

struct Launched {
  pid_t pid = 0;
  UniqueFd pidfd;
};

// Undoes a half-made container unless dismissed.
class Rollback {
 public:
  Rollback(std::string dir, const Cgroup* cgroup) : dir_(std::move(dir)), cgroup_(cgroup) {}
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() {
    if (dismissed_) return;
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (cgroup_ != nullptr) (void)cgroup_->Destroy();
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }
  void set_pid(pid_t pid) { pid_ = pid; }
  void Dismiss() { dismissed_ = true; }

 private:
  std::string dir_;
  const Cgroup* cgroup_;
  pid_t pid_ = 0;
  bool dismissed_ = false;
};

Result<std::string> AbsPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return ErrnoError("resolve path " + p);
  return std::string(buf);
}

// Warnings go to stderr, where runc prints its own (the CLI's caller logs them).
void Warn(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    std::string line = "storevisor-runtime: warning: " + w + "\n";
    (void)!::write(2, line.data(), line.size());
  }
}

// The spec lets a runtime refuse what it does not implement; accepting it silently would
// give a container less isolation or fewer limits than its config says.
Status RefuseUnimplementedResources(const Resources& r, const std::string& where) {
  if (r.has_network) {
    return Error(ErrorCode::kUnsupported,
                 where +
                     ": linux.resources.network (net_cls/net_prio) is not implemented by "
                     "this runtime");
  }
  if (r.has_hugepage_limits) {
    return Error(ErrorCode::kUnsupported,
                 where + ": linux.resources.hugepageLimits is not implemented by this runtime");
  }
  return Ok();
}

Status RefuseUnimplemented(const Spec& s, const std::string& where) {
  if (!s.process->apparmor_profile.empty()) {
    return Error(ErrorCode::kUnsupported, where + ": process.apparmorProfile '" +
                                              s.process->apparmor_profile +
                                              "': AppArmor is not implemented by this runtime");
  }
  if (!s.process->selinux_label.empty() || !s.mount_label.empty()) {
    return Error(ErrorCode::kUnsupported,
                 where + (s.mount_label.empty() ? ": process.selinuxLabel" : ": linux.mountLabel") +
                     ": SELinux is not implemented by this runtime");
  }
  return RefuseUnimplementedResources(s.resources, where);
}

Result<Prepared> Prepare(const std::string& root, const CreateOptions& o) {
  Prepared p;
  SV_ASSIGN_OR_RETURN(p.bundle, AbsPath(o.bundle));
  std::string config = p.bundle + "/config.json";
  auto text = ReadFile(config, kMaxSpecBytes + 1);
  if (!text) return std::move(text).error().Context("bundle " + p.bundle);
  SV_ASSIGN_OR_RETURN(p.spec, ParseSpec(*text, config));
  if (!p.spec.process) return Error(ErrorCode::kInvalidArgument, config + ": process is required");
  if (p.spec.process->capabilities) SV_TRY(CheckCapsAvailable(*p.spec.process->capabilities));
  SV_TRY(RefuseUnimplemented(p.spec, config));
  std::string rootfs = p.spec.root_path;
  if (rootfs.empty() || rootfs[0] != '/') rootfs = p.bundle + "/" + rootfs;
  SV_ASSIGN_OR_RETURN(p.rootfs, AbsPath(rootfs));
  std::optional<Seccomp> profile = p.spec.seccomp;
  if (!profile && o.default_seccomp) {
    SV_ASSIGN_OR_RETURN(Seccomp def, SeccompFromJson(DefaultSeccompProfileJson()));
    profile = std::move(def);
  }
  if (profile) {
    SV_ASSIGN_OR_RETURN(p.seccomp, CompileSeccomp(*profile, root + "/seccomp"));
  }
  SV_ASSIGN_OR_RETURN(p.mode, DetectCgroupMode());
  return p;
}

json HooksJson(const std::vector<Hook>& hooks) {
  json out = json::array();
  for (const auto& h : hooks) {
    json j = {{"path", h.path}, {"args", h.args}, {"env", h.env}};
    if (h.timeout_s) j["timeout"] = *h.timeout_s;
    out.push_back(j);
  }
  return out;
}

std::vector<Hook> HooksFromJson(const json& j) {
  std::vector<Hook> out;
  for (const auto& e : j) {
    Hook h;
    h.path = e.value("path", "");
    h.args = e.value("args", std::vector<std::string>{});
    h.env = e.value("env", std::vector<std::string>{});
    if (e.contains("timeout")) h.timeout_s = e["timeout"].get<int>();
    out.push_back(h);
  }
  return out;
}

json HookStateJson(const StateRecord& r, std::string_view status) {
  return {{"ociVersion", "1.0.2"}, {"id", r.id},         {"status", status},
          {"pid", r.pid},          {"bundle", r.bundle}, {"annotations", r.annotations}};
}

std::string HookState(const StateRecord& r, std::string_view status) {
  return HookStateJson(r, status).dump();
}

Status SaveRecord(const std::string& root, const StateRecord& r) { return WriteState(root, r); }

uint64_t CloneFlags(const Spec& s) {
  static constexpr std::pair<NamespaceType, uint64_t> kFlags[] = {
      {NamespaceType::kPid, CLONE_NEWPID},      {NamespaceType::kNetwork, CLONE_NEWNET},
      {NamespaceType::kMount, CLONE_NEWNS},     {NamespaceType::kIpc, CLONE_NEWIPC},
      {NamespaceType::kUts, CLONE_NEWUTS},      {NamespaceType::kUser, CLONE_NEWUSER},
      {NamespaceType::kCgroup, CLONE_NEWCGROUP}};
  uint64_t flags = 0;
  for (const auto& [type, flag] : kFlags) {
    const Namespace* ns = s.FindNamespace(type);
    if (ns != nullptr && ns->path.empty()) flags |= flag;
  }
  return flags;
}

Status WriteIdMap(pid_t pid, const char* file, const std::vector<IdMapping>& maps) {
  std::string text;
  for (const auto& m : maps) {
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  }
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path);
  UniqueFd owned(fd);
  if (::write(fd, text.data(), text.size()) < 0) return ErrnoError("write " + path);
  return Ok();
}

// The host id that the container's root (id 0) maps to, if the mappings have it.
std::optional<uint32_t> HostRootId(const std::vector<IdMapping>& maps) {
  for (const auto& m : maps) {
    if (m.container_id == 0 && m.size > 0) return m.host_id;
  }
  return std::nullopt;
}

// The init opens the fifo for writing as the container's root: with a user namespace that
// is a mapped host uid, which a root-owned 0600 fifo (mkfifo under the caller's umask 022)
// would refuse, so the container never started. As runc: no umask, owned by the
// container's root.
Status MakeExecFifo(const std::string& path, const Spec& s) {
  mode_t old_umask = ::umask(0);
  int made = ::mkfifo(path.c_str(), 0622);
  ::umask(old_umask);
  if (made != 0) return ErrnoError("mkfifo " + path);
  if (!s.HasNamespace(NamespaceType::kUser)) return Ok();
  std::optional<uint32_t> uid = HostRootId(s.uid_mappings);
  std::optional<uint32_t> gid = HostRootId(s.gid_mappings);
  if (::chown(path.c_str(), uid ? *uid : static_cast<uid_t>(-1),
              gid ? *gid : static_cast<gid_t>(-1)) != 0) {
    return ErrnoError("chown " + path + " to the container's root");
  }
  return Ok();
}

// Clone flags for pid namespaces joined by path are applied to this thread's
// pid_for_children for the duration of the clone.
class PidNsJoin {
 public:
  static Result<PidNsJoin> Enter(const Spec& s) {
    PidNsJoin j;
    const Namespace* ns = s.FindNamespace(NamespaceType::kPid);
    if (ns == nullptr || ns->path.empty()) return j;
    j.saved_ = UniqueFd(::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(ns->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target.valid()) return ErrnoError("open namespace " + ns->path);
    if (::setns(target.get(), CLONE_NEWPID) != 0)
      return ErrnoError("join pid namespace " + ns->path);
    return j;
  }
  PidNsJoin() = default;
  PidNsJoin(PidNsJoin&&) = default;
  PidNsJoin& operator=(PidNsJoin&&) = default;
  PidNsJoin(const PidNsJoin&) = delete;
  PidNsJoin& operator=(const PidNsJoin&) = delete;
  ~PidNsJoin() {
    if (saved_.valid()) (void)::setns(saved_.get(), CLONE_NEWPID);
  }

 private:
  UniqueFd saved_;
};

struct LaunchRequest {
  const std::string* root;
  std::string id;
  const Prepared* prep;
  const CreateOptions* opts;
  bool wait_for_start;  // create (fifo) vs run
};

Result<Launched> Launch(const LaunchRequest& q, StateRecord& rec, Cgroup& cgroup,
                        Rollback& rollback) {
  const Spec& s = q.prep->spec;
  std::string dir = ContainerDir(*q.root, q.id);
  UniqueFd fifo, host_proc, console, cgroup_fd;
  if (q.wait_for_start) {
    std::string fifo_path = dir + "/exec.fifo";
    SV_TRY(MakeExecFifo(fifo_path, s));
    fifo = UniqueFd(::open(fifo_path.c_str(), O_PATH | O_CLOEXEC));
    host_proc = UniqueFd(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fifo.valid() || !host_proc.valid()) return ErrnoError("open exec fifo");
  }
  if (!q.opts->console_socket.empty()) {
    SV_ASSIGN_OR_RETURN(console, ConnectConsole(q.opts->console_socket));
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return ErrnoError("socketpair");
  UniqueFd parent_end(sv[0]), child_end(sv[1]);

  bool user = s.HasNamespace(NamespaceType::kUser);
  InitConfig cfg;
  cfg.spec = &s;
  cfg.process = &*s.process;
  cfg.rootfs = q.prep->rootfs;
  cfg.bundle = q.prep->bundle;
  cfg.sync_fd = child_end.get();
  cfg.fifo_fd = fifo.get();
  cfg.host_proc_fd = host_proc.get();
  cfg.console_fd = console.get();
  // Hooks: the runtime's run before the init sets up anything, and the init's own get the
  // pid from 'G'.
  cfg.wait_go_early = user || !s.hooks.prestart.empty() || !s.hooks.create_runtime.empty() ||
                      !s.hooks.create_container.empty();
  cfg.seccomp = q.prep->seccomp;
  cfg.preserve_fds = q.opts->preserve_fds;
  cfg.cgroup_mode = q.prep->mode;
  cfg.cgroup_dirs = cgroup.dirs();
  cfg.hook_state = HookStateJson(rec, "creating");

  uint64_t flags = CloneFlags(s);
  // The init is born in its v2 cgroup (on hybrid too: there, the one under the cgroup2
  // mount), with no cgroup.procs write for it.
  std::string v2 = cgroup.UnifiedDir();
  if (!v2.empty()) {
    cgroup_fd = UniqueFd(::open(v2.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd.valid()) return ErrnoError("open cgroup " + v2);
  }
  if (q.prep->mode != CgroupMode::kUnified && (flags & CLONE_NEWCGROUP)) {
    // v1: the cgroup namespace is made by the init after it joined its cgroups.
    flags &= ~static_cast<uint64_t>(CLONE_NEWCGROUP);
    cfg.unshare_cgroupns = true;
  }
  SV_ASSIGN_OR_RETURN(PidNsJoin pidns, PidNsJoin::Enter(s));
  int pidfd = -1;
  clone_args args{};
  args.flags = flags | CLONE_PIDFD | (cgroup_fd.valid() ? CLONE_INTO_CGROUP : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = cgroup_fd.valid() ? static_cast<uint64_t>(cgroup_fd.get()) : 0;
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return ErrnoError("clone3 the container init");
  if (pid == 0) {
    parent_end.reset();
    RunContainerInit(cfg);
  }
  pidns = PidNsJoin();
  rollback.set_pid(static_cast<pid_t>(pid));
  Launched out;
  out.pid = static_cast<pid_t>(pid);
  out.pidfd = UniqueFd(pidfd);
  child_end.reset();
  rec.pid = out.pid;
  if (user) {
    SV_TRY(WriteIdMap(out.pid, "uid_map", s.uid_mappings));
    SV_TRY(WriteIdMap(out.pid, "gid_map", s.gid_mappings));
  }
  if (q.prep->mode != CgroupMode::kUnified) SV_TRY(cgroup.AddProcess(out.pid, cgroup_fd.valid()));
  if (s.process->oom_score_adj) {
    std::string path = "/proc/" + std::to_string(pid) + "/oom_score_adj";
    // A plain write: /proc files cannot be replaced by rename like state files (WriteFast).
    UniqueFd adj(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!adj.valid()) return ErrnoError("oomScoreAdj: open " + path);
    SV_TRY_CTX(WriteAll(adj.get(), std::to_string(*s.process->oom_score_adj)),
               "oomScoreAdj: write " + path);
  }
  std::string hook_state = HookState(rec, "creating");
  // The spec: prestart (deprecated) before createRuntime.
  for (const auto& h : s.hooks.prestart) SV_TRY_CTX(RunHook(h, hook_state), "prestart hook");
  for (const auto& h : s.hooks.create_runtime)
    SV_TRY_CTX(RunHook(h, hook_state), "createRuntime hook");
  // A failed send means the init already died: WaitForInitReady then reads why.
  std::string go = kMsgGo + std::to_string(out.pid);
  (void)::send(parent_end.get(), go.data(), go.size(), MSG_NOSIGNAL);
  SV_TRY(WaitForInitReady(parent_end.get(), out.pid));
  if (!q.wait_for_start) {
    // run: the init holds its end until execve closes it (or it dies): poststart hooks
    // must run after the process was executed, after the startContainer hooks.
    char buf[4096];
    ssize_t n;
    do {
      n = ::recv(parent_end.get(), buf, sizeof buf, 0);
      if (n > 0 && buf[0] == kMsgError) {
        return Error(ErrorCode::kFailedPrecondition,
                     "container init: " + std::string(buf + 1, static_cast<size_t>(n - 1)));
      }
    } while (n > 0 || (n < 0 && errno == EINTR));
  }
  return out;
}

Result<Cgroup> PlanCgroup(const Prepared& p, const std::string& id) {
  // Without linux.cgroupsPath the cgroup is one level, /storevisor-<id>, as runc and crun
  // make /<id>: one mkdir and one rmdir per hierarchy, and no parent to make, initialise
  // (cpuset) and prune at every container (that cost ~20% of a start's CPU here). The
  // prefix keeps the name apart from storevisord's cgroupsPath, /storevisor/daemon/<name>.
  std::string path = p.spec.cgroups_path.empty() ? "/storevisor-" + id : p.spec.cgroups_path;
  if (path.find(':') != std::string::npos) {
    return Error(ErrorCode::kUnsupported, "linux.cgroupsPath '" + path +
                                              "' is a systemd slice; this runtime manages cgroupfs "
                                              "paths (use podman --cgroup-manager=cgroupfs)");
  }
  if (path[0] != '/') path = "/" + path;
  return Cgroup::Plan(p.mode, path);
}

// Two containers must never share a cgroup (delete would kill both): refuse one that is
// in use before recording it as ours, and leave it alone.
Status CheckCgroupFree(const Cgroup& cg) {
  auto pids = cg.Pids();
  if (pids && !pids->empty()) {
    return Error(ErrorCode::kAlreadyExists,
                 "cgroup /" + cg.rel() + " already holds " + std::to_string(pids->size()) +
                     " process(es) of another container: give this one its own "
                     "linux.cgroupsPath");
  }
  return Ok();
}

Status WritePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) return Ok();
  return WriteFast(path, std::to_string(pid));
}

// The whole of create and run up to a ready init. Fills rec and leaves it saved.
Result<Launched> CreateContainer(const std::string& root, const std::string& id,
                                 const CreateOptions& o, bool wait_for_start, StateRecord& rec,
                                 std::optional<Cgroup>& cg_out) {
  SV_TRY(ValidateId(id));
  SV_ASSIGN_OR_RETURN(Prepared prep, Prepare(root, o));
  std::string dir = ContainerDir(root, id);
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir " + root);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Error(ErrorCode::kAlreadyExists, "container with id exists: " + id);
    return ErrnoError("mkdir " + dir);
  }
  Rollback rollback(dir, nullptr);
  rec.id = id;
  rec.bundle = prep.bundle;
  rec.created = Rfc3339Now();
  rec.creator = ::getpid();
  rec.creating = true;
  rec.monitor = o.monitor;
  rec.cgroup_mode = prep.mode;
  rec.annotations = prep.spec.annotations;
  rec.poststart = HooksJson(prep.spec.hooks.poststart);
  rec.poststop = HooksJson(prep.spec.hooks.poststop);
  // The cgroup is recorded before it exists, so that `delete --force` finds it after a crash
  // at any point from here on (one state write instead of one before and one after).
  SV_ASSIGN_OR_RETURN(Cgroup cg, PlanCgroup(prep, id));
  SV_TRY(CheckCgroupFree(cg));
  rec.cgroup_rel = cg.rel();
  rec.cgroup_dirs = cg.dirs();
  SV_TRY(SaveRecord(root, rec));
  cg_out.emplace(cg);
  Rollback cg_rollback("", &*cg_out);
  SV_TRY(cg.Make());
  std::vector<std::string> warnings;
  SV_TRY(cg.Apply(prep.spec.resources, prep.spec.devices, &warnings));
  Warn(warnings);
  LaunchRequest q{&root, id, &prep, &o, wait_for_start};
  SV_ASSIGN_OR_RETURN(Launched l, Launch(q, rec, *cg_out, cg_rollback));
  rec.pid = l.pid;
  rec.pid_start = ProcessStartTime(l.pid);
  rec.creating = false;
  SV_TRY(SaveRecord(root, rec));
  SV_TRY(WritePidFile(o.pid_file, l.pid));
  cg_rollback.Dismiss();
  rollback.Dismiss();
  return l;
}

ExitInfo DecodeExit(int status, const std::optional<Cgroup>& cg) {
  ExitInfo e;
  e.known = true;
  if (WIFEXITED(status)) {
    e.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
    e.exit_code = 128 + e.signal;
  }
  if (cg) e.oom_killed = cg->OomKills() > 0;
  return e;
}

// The monitor: parent of the init, records how it ended, reaps orphans adopted as
// subreaper, and exits. It holds no fd of its caller.
[[noreturn]] void MonitorLoop(const std::string& root, const std::string& id, const Launched& l,
                              const std::optional<Cgroup>& cg) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(-1, &status, 0);
    if (r == l.pid) break;
    if (r < 0 && errno != EINTR) ::_exit(1);
  }
  (void)WriteExit(root, id, DecodeExit(status, cg));
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  ::_exit(0);
}

Status CreateWithMonitor(const std::string& root, const std::string& id, const CreateOptions& o) {
  SV_ASSIGN_OR_RETURN(Pipe report, MakePipe());
  pid_t m = ::fork();
  if (m < 0) return ErrnoError("fork monitor");
  if (m == 0) {
    report.read.reset();
    ::setsid();
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    StateRecord rec;
    std::optional<Cgroup> cg;
    auto l = CreateContainer(root, id, o, true, rec, cg);
    std::string msg = (l ? std::string("ok") : l.error().message()) + "\n";
    (void)WriteAll(report.write.get(), msg);
    if (!l) ::_exit(1);
    report.write.reset();
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; ++fd) ::dup2(devnull, fd);
    ::syscall(SYS_close_range, 3, ~0U, 0);
    MonitorLoop(root, id, *l, cg);
  }
  report.write.reset();
  // One line, not EOF: the paused init holds a copy of the write end until it execs.
  std::string line;
  char c = 0;
  while (line.size() < (1u << 16)) {
    ssize_t n = ::read(report.read.get(), &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line += c;
  }
  std::optional<std::string> msg = line;
  if (*msg != "ok") {
    ::waitpid(m, nullptr, 0);
    return Error(ErrorCode::kFailedPrecondition, msg->empty() ? "monitor died" : *msg);
  }
  return Ok();
}

// poststart and poststop: the spec says a failing hook is logged as a warning and the
// remaining hooks still run (the container's fate is already decided).
void RunHooksWarning(const json& hooks, const std::string& state, std::string_view stage) {
  for (const auto& h : HooksFromJson(hooks)) {
    Status s = RunHook(h, state);
    if (s) continue;
    std::string line = "storevisor-runtime: warning: " + std::string(stage) +
                       " hook: " + s.error().message() + "\n";
    (void)!::write(2, line.data(), line.size());
  }
}

Status WaitGone(pid_t pid, uint64_t start) {
  for (int i = 0; i < 2500; ++i) {
    if (ProcessStartTime(pid) != start || start == 0) return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Error(ErrorCode::kTimeout, "process " + std::to_string(pid) + " did not die");
}

}  // namespace

Status WaitForInitReady(int sync_fd, pid_t pid) {
  char buf[4096];
  ssize_t n;
  int resets = 0;
  // ECONNRESET: an init that dies with our 'G' unread in its queue (it failed before it
  // reads it) leaves that error on our socket, and recv reports it before the 'E' message
  // queued ahead of it. The error is cleared once reported: the next recv reads why.
  do {
    n = ::recv(sync_fd, buf, sizeof buf, 0);
  } while (n < 0 && (errno == EINTR || (errno == ECONNRESET && resets++ == 0)));
  if (n > 0 && buf[0] == kMsgReady) return Ok();
  if (n > 0 && buf[0] == kMsgError) {
    return Error(ErrorCode::kFailedPrecondition,
                 "container init: " + std::string(buf + 1, static_cast<size_t>(n - 1)));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return Error(ErrorCode::kInternal,
               "container init died during set-up (status " + std::to_string(status) + ")");
}

Result<UniqueFd> ConnectConsole(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket");
  UniqueFd owned(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "console socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError("connect console socket " + path);
  }
  return owned;
}

Runtime::Runtime(std::string root) : root_(std::move(root)) {}

Status Runtime::Create(const std::string& id, const CreateOptions& options) {
  if (options.monitor) return CreateWithMonitor(root_, id, options);
  StateRecord rec;
  std::optional<Cgroup> cg;
  SV_ASSIGN_OR_RETURN(Launched l, CreateContainer(root_, id, options, true, rec, cg));
  (void)l.pidfd.get();
  return Ok();
}

Status Runtime::Start(const std::string& id) {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  ContainerStatus st = ComputeStatus(root_, rec);
  if (st != ContainerStatus::kCreated) {
    return Error(ErrorCode::kConflict,
                 "cannot start a container that has " +
                     std::string(st == ContainerStatus::kStopped ? "stopped" : "already started") +
                     " (status " + std::string(StatusName(st)) + ")");
  }
  std::string fifo_path = ContainerDir(root_, id) + "/exec.fifo";
  int fd = ::open(fifo_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + fifo_path);
  UniqueFd fifo(fd);
  for (int waited = 0;; waited += 100) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r > 0) break;
    if (ProcessStartTime(rec.pid) != rec.pid_start) {
      return Error(ErrorCode::kFailedPrecondition, "container init died before start");
    }
    if (waited > 10000) return Error(ErrorCode::kTimeout, "container init did not answer start");
  }
  char byte = 0;
  if (::read(fd, &byte, 1) != 1)
    return Error(ErrorCode::kFailedPrecondition, "container init died at start");
  ::unlink(fifo_path.c_str());
  // The init holds the fifo's write end until execve closes it (after the startContainer
  // hooks) or it dies: the poststart hooks run once the process was executed. An init that
  // fails on the way writes why ('E' + message) before it exits.
  std::string report;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) {
      char buf[1024];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0 && report.size() < 65536) report.append(buf, static_cast<size_t>(n));
      if (n <= 0) break;
      continue;
    }
    if (r == 0 && ProcessStartTime(rec.pid) != rec.pid_start) break;
  }
  if (!report.empty() && report[0] == kMsgError) {
    return Error(ErrorCode::kFailedPrecondition, "container init: " + report.substr(1));
  }
  RunHooksWarning(rec.poststart, HookState(rec, "running"), "poststart");
  return Ok();
}

Result<ExitInfo> Runtime::Run(const std::string& id, const CreateOptions& options) {
  // Signals meant for the container go to it while we wait (as runc run forwards them).
  sigset_t fwd, old;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&fwd, s);
  ::sigprocmask(SIG_BLOCK, &fwd, &old);
  StateRecord rec;
  std::optional<Cgroup> cg;
  auto launched = CreateContainer(root_, id, options, false, rec, cg);
  if (!launched) {
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    return std::move(launched).error();
  }
  UniqueFd sfd(::signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK));
  RunHooksWarning(rec.poststart, HookState(rec, "running"), "poststart");
  int status = 0;
  for (;;) {
    pollfd p[2] = {{launched->pidfd.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    int n = ::poll(p, sfd.valid() ? 2 : 1, -1);
    if (n < 0 && errno != EINTR) break;
    if (p[1].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(sfd.get(), &si, sizeof si) == sizeof si)
        ::kill(launched->pid, static_cast<int>(si.ssi_signo));
    }
    if (p[0].revents & POLLIN) break;
  }
  ::waitpid(launched->pid, &status, 0);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  ExitInfo e = DecodeExit(status, cg);
  SV_TRY(Delete(id, true));
  return e;
}

Result<ContainerState> Runtime::State(const std::string& id) const {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  ContainerState s;
  s.id = rec.id;
  s.status = ComputeStatus(root_, rec);
  if ((s.status == ContainerStatus::kRunning || s.status == ContainerStatus::kCreated) &&
      !rec.cgroup_dirs.empty() &&
      Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel).Frozen()) {
    s.status = ContainerStatus::kPaused;
  }
  s.pid = rec.pid;
  s.bundle = rec.bundle;
  s.created = rec.created;
  s.annotations = rec.annotations;
  if (s.status == ContainerStatus::kStopped) s.exit = ReadExit(root_, id);
  return s;
}

Result<std::vector<ContainerState>> Runtime::List() const {
  std::vector<ContainerState> out;
  DIR* d = ::opendir(root_.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return ErrnoError("open " + root_);
  }
  std::vector<std::string> ids;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != ".." && name != "seccomp")
      ids.push_back(name);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  for (const auto& id : ids) {
    auto s = State(id);
    if (s) out.push_back(std::move(*s));
  }
  return out;
}

Status Runtime::Kill(const std::string& id, int signal, bool all) {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  ContainerStatus st = ComputeStatus(root_, rec);
  if (st == ContainerStatus::kStopped && !all)
    return Error(ErrorCode::kConflict, "container not running");
  if (all) return Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel).Signal(signal);
  if (::kill(rec.pid, signal) != 0) return ErrnoError("kill " + std::to_string(rec.pid));
  return Ok();
}

Status Runtime::Delete(const std::string& id, bool force) {
  auto read = ReadState(root_, id);
  if (!read) {
    // A crash before the first record leaves a bare directory: force removes it.
    if (force && ValidateId(id) && read.error().code() != ErrorCode::kNotFound) {
      return RemoveAll(ContainerDir(root_, id));
    }
    return std::move(read).error();
  }
  StateRecord& rec = *read;
  ContainerStatus st = ComputeStatus(root_, rec);
  if (st == ContainerStatus::kRunning && !force) {
    return Error(ErrorCode::kConflict,
                 "cannot delete container " + id + " that is not stopped: running (use --force)");
  }
  Cgroup cg = Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel);
  if (st != ContainerStatus::kStopped) {
    if (rec.pid > 0) ::kill(rec.pid, SIGKILL);
    if (!rec.cgroup_dirs.empty()) SV_TRY(cg.Signal(SIGKILL));
    SV_TRY(WaitGone(rec.pid, rec.pid_start));
  } else if (!rec.cgroup_dirs.empty()) {
    SV_TRY(cg.Signal(SIGKILL));  // strays left by the container (forked daemons)
  }
  if (!rec.cgroup_dirs.empty()) SV_TRY(cg.Destroy());
  RunHooksWarning(rec.poststop, HookState(rec, "stopped"), "poststop");
  return RemoveAll(ContainerDir(root_, id));
}

Status Runtime::Update(const std::string& id, const Resources& resources) {
  if (!resources.devices.empty())
    return Error(ErrorCode::kUnsupported, "update does not change device rules (like runc)");
  SV_TRY(RefuseUnimplementedResources(resources, "update"));
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  if (ComputeStatus(root_, rec) == ContainerStatus::kStopped)
    return Error(ErrorCode::kConflict, "container " + id + " is stopped: nothing to update");
  if (rec.cgroup_dirs.empty())
    return Error(ErrorCode::kFailedPrecondition, "container " + id + " has no cgroup");
  Cgroup cg = Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel);
  std::vector<std::string> warnings;
  SV_TRY(cg.Apply(resources, {}, &warnings));
  Warn(warnings);
  return Ok();
}

Status Runtime::Pause(const std::string& id) {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  ContainerStatus st = ComputeStatus(root_, rec);
  if (st != ContainerStatus::kRunning && st != ContainerStatus::kCreated)
    return Error(ErrorCode::kConflict, "container not running");
  if (rec.cgroup_dirs.empty())
    return Error(ErrorCode::kFailedPrecondition, "container " + id + " has no cgroup");
  return Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel).Freeze(true);
}

Status Runtime::Resume(const std::string& id) {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  Cgroup cg = Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel);
  if (ComputeStatus(root_, rec) == ContainerStatus::kStopped || rec.cgroup_dirs.empty() ||
      !cg.Frozen()) {
    return Error(ErrorCode::kConflict, "container not paused");
  }
  return cg.Freeze(false);
}

Result<std::vector<pid_t>> Runtime::Pids(const std::string& id) const {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  if (rec.cgroup_dirs.empty()) return std::vector<pid_t>{};
  return Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel).Pids();
}

Result<CgroupStats> Runtime::Stats(const std::string& id) const {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  return Cgroup::FromDirs(rec.cgroup_mode, rec.cgroup_dirs, rec.cgroup_rel).Stats();
}

}  // namespace storevisor::runtime
