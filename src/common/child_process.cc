#include "common/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace storevisor {

std::string ExitStatus::ToString() const {
  if (exited) return "exited with status " + std::to_string(exit_code);
  return std::string("killed by signal ") + std::to_string(term_signal) + " (" +
         ::strsignal(term_signal) + ")";
}

Result<UniqueFd> OpenPidFd(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return ErrnoError("pidfd_open " + std::to_string(pid));
  return UniqueFd(fd);
}

namespace {

// Everything exec needs, prepared before fork so the child only makes syscalls.
struct ExecPlan {
  std::vector<std::string> storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  bool has_env = false;
};

ExecPlan MakePlan(const SpawnOptions& o) {
  ExecPlan p;
  for (const auto& a : o.argv) p.argv.push_back(const_cast<char*>(a.c_str()));
  p.argv.push_back(nullptr);
  if (o.env) {
    p.has_env = true;
    for (const auto& e : *o.env) p.envp.push_back(const_cast<char*>(e.c_str()));
    p.envp.push_back(nullptr);
  }
  return p;
}

// Sends errno to the parent through err_fd and ends the forked child.
[[noreturn]] void ExecFailed(int err_fd) {
  int e = errno;
  (void)!::write(err_fd, &e, sizeof e);
  ::_exit(127);
}

// Runs in the forked child: only async-signal-safe calls. Reports errno on err_fd.
[[noreturn]] void ExecChild(const SpawnOptions& o, const ExecPlan& p, int err_fd, int devnull) {
  if (o.die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ExecFailed(err_fd);
  if (o.no_thp && ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) ExecFailed(err_fd);
  if (o.new_session && ::setsid() < 0) ExecFailed(err_fd);
  int in = o.stdin_fd >= 0 ? o.stdin_fd : devnull;
  int out = o.stdout_fd >= 0 ? o.stdout_fd : (o.stdout_fd == -1 ? devnull : 1);
  int err = o.stderr_fd >= 0 ? o.stderr_fd : (o.stderr_fd == -1 ? devnull : 2);
  // dup2 clears O_CLOEXEC on the target; a same-fd dup2 keeps the flag, so clear it.
  int targets[3] = {in, out, err};
  for (int i = 0; i < 3; ++i) {
    if (targets[i] == i) {
      ::fcntl(i, F_SETFD, 0);
    } else if (::dup2(targets[i], i) < 0) {
      ExecFailed(err_fd);
    }
  }
  if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) ExecFailed(err_fd);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  if (!o.program.empty()) {
    if (p.has_env) {
      ::execve(o.program.c_str(), p.argv.data(), p.envp.data());
    } else {
      ::execv(o.program.c_str(), p.argv.data());
    }
  } else if (p.has_env) {
    ::execvpe(p.argv[0], p.argv.data(), p.envp.data());
  } else {
    ::execvp(p.argv[0], p.argv.data());
  }
  ExecFailed(err_fd);
}

}  // namespace

Result<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Error(ErrorCode::kInvalidArgument, "spawn: empty argv");
  ExecPlan plan = MakePlan(options);
  SV_ASSIGN_OR_RETURN(Pipe err_pipe, MakePipe());
  SV_ASSIGN_OR_RETURN(UniqueFd devnull, OpenFile("/dev/null", O_RDWR));
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) ExecChild(options, plan, err_pipe.write.get(), devnull.get());
  err_pipe.write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_pipe.read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    return ErrnoError("exec " + (options.program.empty() ? options.argv[0] : options.program),
                      child_errno);
  }
  auto pidfd = OpenPidFd(pid);
  if (!pidfd) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return std::move(pidfd).error();
  }
  return ChildProcess(pid, std::move(*pidfd));
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    this->~ChildProcess();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

static ExitStatus DecodeWaitStatus(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.term_signal = WTERMSIG(status);
  }
  return s;
}

Result<ExitStatus> ChildProcess::Wait(std::optional<std::chrono::milliseconds> timeout) {
  if (pid_ <= 0) return Error(ErrorCode::kInternal, "wait: no child");
  if (timeout) {
    auto deadline = std::chrono::steady_clock::now() + *timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{pidfd_.get(), POLLIN, 0};
      int r = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
      if (r > 0) break;
      if (r == 0) {
        return Error(ErrorCode::kTimeout, "process " + std::to_string(pid_) +
                                              " still running after " +
                                              std::to_string(timeout->count()) + " ms");
      }
      if (errno != EINTR) return ErrnoError("poll pidfd");
    }
  }
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoError("waitpid " + std::to_string(pid_));
  pid_ = -1;
  pidfd_.reset();
  return DecodeWaitStatus(status);
}

Status ChildProcess::Kill(int signal) {
  if (pid_ <= 0) return Error(ErrorCode::kInternal, "kill: no child");
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signal, nullptr, 0) != 0) {
    return ErrnoError("kill " + std::to_string(pid_));
  }
  return Ok();
}

pid_t ChildProcess::Detach() {
  pidfd_.reset();
  return std::exchange(pid_, -1);
}

namespace {

// Reads what is ready on fd into sink (capped); false at EOF or error.
bool ReadSome(int fd, std::string& sink, size_t max_output) {
  char buf[65536];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  size_t room = max_output - std::min(max_output, sink.size());
  sink.append(buf, std::min(room, static_cast<size_t>(n)));
  return true;
}

// Collects stdout/stderr until both close or the child exits (a daemon it forked may keep
// the pipes open), bounded by the deadline.
Status DrainPipes(ChildProcess& child, int out_fd, int err_fd, size_t max_output,
                  std::chrono::steady_clock::time_point deadline, CommandOutput& result) {
  pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {child.pidfd(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  bool exited = false;
  while ((fds[0].fd >= 0 || fds[1].fd >= 0)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int wait_ms = exited ? 0 : static_cast<int>(std::max<int64_t>(left.count(), 0));
    int r = ::poll(fds, 3, wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (r == 0) {
      if (exited) break;  // child gone and nothing more buffered
      return Error(ErrorCode::kTimeout, "still running at the deadline");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && fds[i].revents != 0 && !ReadSome(fds[i].fd, *sinks[i], max_output)) {
        fds[i].fd = -1;
      }
    }
    if (fds[2].revents != 0) {
      exited = true;
      fds[2].fd = -1;
    }
  }
  return Ok();
}

}  // namespace

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, size_t max_output) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  SV_ASSIGN_OR_RETURN(Pipe out_pipe, MakePipe());
  SV_ASSIGN_OR_RETURN(Pipe err_pipe, MakePipe());
  SpawnOptions options;
  options.argv = argv;
  options.stdout_fd = out_pipe.write.get();
  options.stderr_fd = err_pipe.write.get();
  SV_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(options));
  out_pipe.write.reset();
  err_pipe.write.reset();
  CommandOutput result;
  Status drained =
      DrainPipes(child, out_pipe.read.get(), err_pipe.read.get(), max_output, deadline, result);
  if (!drained) return std::move(drained).error().Context(argv[0]);  // ~ChildProcess kills it
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  auto status = child.Wait(std::max(left, std::chrono::milliseconds(0)));
  if (!status) return std::move(status).error().Context(argv[0]);
  result.status = *status;
  return result;
}

}  // namespace storevisor
