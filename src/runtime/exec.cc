// Runtime::Exec: a new process in a running container's namespaces and cgroup.
//
// The runtime forks a helper that joins the cgroup (by writing itself to cgroup.procs,
// still in the host's mount namespace), then the namespaces (user first, mount last),
// then forks the process proper so that it lands inside the pid namespace. Without
// --detach the helper waits and passes the exit status up; with it, it exits at once
// and the process is adopted by the caller's subreaper (conmon, the daemon's monitor).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/files.h"
#include "common/unique_fd.h"
#include "runtime/cgroup.h"
#include "runtime/init.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/state.h"

namespace storevisor::runtime {
namespace {

struct NsFd {
  int flag;
  UniqueFd fd;
};

// The container's namespaces that differ from ours, user first and mount last.
Result<std::vector<NsFd>> OpenNamespaces(pid_t pid) {
  static constexpr std::pair<const char*, int> kKinds[] = {
      {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
      {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
      {"mnt", CLONE_NEWNS}};
  std::vector<NsFd> out;
  for (const auto& [name, flag] : kKinds) {
    std::string theirs = "/proc/" + std::to_string(pid) + "/ns/" + name;
    std::string ours = std::string("/proc/self/ns/") + name;
    struct stat a {
    }, b{};
    if (::stat(theirs.c_str(), &a) != 0) return ErrnoError("stat " + theirs);
    if (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
    int fd = ::open(theirs.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open " + theirs);
    out.push_back({flag, UniqueFd(fd)});
  }
  return out;
}

[[noreturn]] void Fail(int fd, const Error& e) {
  std::string msg = "E" + e.message();
  (void)::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
  ::_exit(126);
}

[[noreturn]] void Helper(const std::vector<NsFd>& ns, const std::vector<std::string>& cgroup_dirs,
                         const ExecOptions& o, const std::optional<SeccompProgram>& seccomp,
                         int report, int console) {
  for (const auto& d : cgroup_dirs) {
    if (!WriteCgroupFile(d + "/cgroup.procs", "0")) Fail(report, ErrnoError("join cgroup " + d));
  }
  for (const auto& n : ns) {
    if (::setns(n.fd.get(), n.flag) != 0) Fail(report, ErrnoError("setns"));
  }
  pid_t child = ::fork();
  if (child < 0) Fail(report, ErrnoError("fork"));
  if (child == 0) {
    // The pty comes from the container's devpts (we are in its mount namespace now), so
    // the slave is a real terminal inside the container.
    if (console >= 0) {
      Status t = SetUpTerminal(console);
      if (!t) Fail(report, t.error());
      ::close(console);
    }
    FinishAndExec(o.process, seccomp, o.preserve_fds, report);
  }
  if (console >= 0) ::close(console);
  std::string msg = "P" + std::to_string(child);
  (void)::send(report, msg.data(), msg.size(), MSG_NOSIGNAL);
  ::close(report);
  if (o.detach) ::_exit(0);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) ::_exit(128 + WTERMSIG(status));
  ::_exit(WEXITSTATUS(status));
}

Result<std::optional<SeccompProgram>> SeccompFor(const std::string& root, const StateRecord& rec) {
  auto text = ReadFile(rec.bundle + "/config.json", kMaxSpecBytes + 1);
  if (!text) return std::optional<SeccompProgram>();
  auto spec = ParseSpec(*text, rec.bundle + "/config.json");
  if (!spec || !spec->seccomp) return std::optional<SeccompProgram>();
  SV_ASSIGN_OR_RETURN(SeccompProgram p, CompileSeccomp(*spec->seccomp, root + "/seccomp"));
  return std::optional<SeccompProgram>(std::move(p));
}

}  // namespace

Result<ExitInfo> Runtime::Exec(const std::string& id, const ExecOptions& o) {
  SV_ASSIGN_OR_RETURN(StateRecord rec, ReadState(root_, id));
  if (ComputeStatus(root_, rec) != ContainerStatus::kRunning) {
    return Error(ErrorCode::kConflict, "cannot exec in a container that is not running");
  }
  // With a terminal the pty master goes to --console-socket, or (runc's way, when we
  // wait) to us over a private socket, and we relay it to our stdio.
  UniqueFd console, console_peer;
  if (o.process.terminal) {
    if (!o.console_socket.empty()) {
      SV_ASSIGN_OR_RETURN(console, ConnectConsole(o.console_socket));
    } else if (o.detach) {
      return Error(ErrorCode::kInvalidArgument,
                   "exec --tty --detach needs --console-socket: nobody would hold the terminal");
    } else {
      int cs[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cs) != 0)
        return ErrnoError("socketpair for the terminal");
      console_peer = UniqueFd(cs[0]);
      console = UniqueFd(cs[1]);
    }
  }
  SV_ASSIGN_OR_RETURN(auto ns, OpenNamespaces(rec.pid));
  SV_ASSIGN_OR_RETURN(auto seccomp, SeccompFor(root_, rec));
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return ErrnoError("socketpair");
  UniqueFd mine(sv[0]), theirs(sv[1]);
  pid_t helper = ::fork();
  if (helper < 0) return ErrnoError("fork");
  if (helper == 0) {
    mine.reset();
    console_peer.reset();
    Helper(ns, rec.cgroup_dirs, o, seccomp, theirs.get(), console.get());
  }
  theirs.reset();
  console.reset();
  char buf[4096];
  ssize_t n = ::recv(mine.get(), buf, sizeof buf, 0);
  std::string first = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  pid_t pid = 0;
  if (!first.empty() && first[0] == 'P') {
    pid = static_cast<pid_t>(std::stol(first.substr(1)));
    n = ::recv(mine.get(), buf, sizeof buf, 0);  // an exec failure arrives next, else EOF
    if (n > 0 && buf[0] == 'E') first = std::string(buf, static_cast<size_t>(n));
  }
  if (!first.empty() && first[0] == 'E') {
    ::waitpid(helper, nullptr, 0);
    return Error(ErrorCode::kFailedPrecondition, "exec: " + first.substr(1));
  }
  if (pid == 0) {
    ::waitpid(helper, nullptr, 0);
    return Error(ErrorCode::kInternal, "exec helper died");
  }
  if (!o.pid_file.empty()) SV_TRY(WriteFast(o.pid_file, std::to_string(pid)));
  if (console_peer.valid()) {
    auto master = ReceivePtyMaster(console_peer.get());
    Status relayed = master ? RelayTerminal(master->get()) : Status(std::move(master).error());
    if (!relayed) {
      ::kill(pid, SIGKILL);
      ::waitpid(helper, nullptr, 0);
      return std::move(relayed).error().Context("exec --tty");
    }
  }
  int status = 0;
  while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
  }
  ExitInfo e;
  e.known = !o.detach;
  e.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (e.exit_code > 128) e.signal = e.exit_code - 128;
  return e;
}

}  // namespace storevisor::runtime
