#include "daemon/drivers/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

namespace {

// A log file that is renamed to <path>.1 when it would grow past max bytes.
class RotatingLog {
 public:
  RotatingLog(std::string path, uint64_t max) : path_(std::move(path)), max_(max) {
    Open(O_APPEND);
  }
  void Append(std::string_view data) {
    if (size_ + data.size() > max_ && size_ > 0) {
      ::rename(path_.c_str(), (path_ + ".1").c_str());
      Open(O_TRUNC);
    }
    if (fd_.valid() && WriteAll(fd_.get(), data).has_value()) size_ += data.size();
  }

 private:
  void Open(int flag) {
    fd_ = UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flag, 0640));
    off_t end = fd_.valid() ? ::lseek(fd_.get(), 0, SEEK_END) : 0;
    size_ = end > 0 ? static_cast<uint64_t>(end) : 0;
  }
  std::string path_;
  uint64_t max_;
  uint64_t size_ = 0;
  UniqueFd fd_;
};

void WriteExit(const ShimOptions& o, int code, const std::string& error) {
  nlohmann::json j = {{"exit_code", code}, {"error", error}};
  (void)WriteFileReplace(o.exit_file, j.dump() + "\n");
}

int ToCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs one runtime command with its output going to the log; its exit status.
int RunRuntime(const ShimOptions& o, std::vector<std::string> args, int out_fd) {
  std::vector<std::string> argv = {o.runtime, "--root", o.root};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions spawn;
  spawn.argv = argv;
  spawn.stdout_fd = out_fd;
  spawn.stderr_fd = out_fd;
  auto child = ChildProcess::Spawn(spawn);
  if (!child) return -1;
  auto status = child->Wait(std::chrono::seconds(60));
  if (!status) return -1;
  return status->success() ? 0 : (status->exited ? status->exit_code : 128 + status->term_signal);
}

// Copies the container's output to the log until it exits: woken by its output or by its
// end (a pidfd), never by a timer. The exit status is written the moment the init is
// reaped, so the daemon (watching the same pid) reads it at once; what is still in the pipe
// is then drained for up to a second.
int Supervise(const ShimOptions& o, pid_t init, UniqueFd out_read, RotatingLog* log) {
  UniqueFd init_fd(static_cast<int>(::syscall(SYS_pidfd_open, init, 0)));
  int code = -1;
  bool exited = false;
  auto exit_seen = std::chrono::steady_clock::now();
  char buf[16384];
  while (true) {
    pollfd p[2] = {{out_read.get(), POLLIN, 0}, {exited ? -1 : init_fd.get(), POLLIN, 0}};
    int timeout = -1;
    if (exited) {
      const auto left = std::chrono::seconds(1) - (std::chrono::steady_clock::now() - exit_seen);
      timeout = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
    } else if (!init_fd.valid()) {
      timeout = 200;  // no pidfd (an old kernel): look at the init now and then
    }
    const int ready = ::poll(p, 2, timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (out_read.valid() && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::read(out_read.get(), buf, sizeof buf);
      if (n > 0) log->Append(std::string_view(buf, static_cast<size_t>(n)));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) out_read.reset();  // all gone
    }
    int status = 0;
    pid_t pid = 0;
    while (!exited && (pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == init) {
        code = ToCode(status);
        exited = true;
        exit_seen = std::chrono::steady_clock::now();
        WriteExit(o, code, "");
      }
    }
    if (!exited && pid < 0 && errno == ECHILD && ::kill(init, 0) != 0) {
      exited = true;
      exit_seen = std::chrono::steady_clock::now();
      WriteExit(o, code, "");
    }
    if (exited && (!out_read.valid() ||
                   std::chrono::steady_clock::now() - exit_seen >= std::chrono::seconds(1))) {
      break;
    }
  }
  return 0;
}

}  // namespace

int ShimMain(const std::vector<std::string>& args) {
  ShimOptions o;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    if (k == "--runtime")
      o.runtime = v;
    else if (k == "--root")
      o.root = v;
    else if (k == "--id")
      o.id = v;
    else if (k == "--bundle")
      o.bundle = v;
    else if (k == "--log")
      o.log_file = v;
    else if (k == "--exit-file")
      o.exit_file = v;
    else if (k == "--pid-file")
      o.pid_file = v;
    else if (k == "--shim-pid-file")
      o.shim_pid_file = v;
    else if (k == "--announce")
      o.announce = v == "1";
    else if (k == "--log-max")
      o.log_max_bytes = std::stoull(v);
    else {
      std::fprintf(stderr, "shim: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.runtime.empty() || o.id.empty() || o.bundle.empty() || o.exit_file.empty()) {
    std::fprintf(stderr, "shim: --runtime, --id, --bundle and --exit-file are required\n");
    return 2;
  }
  if (!o.shim_pid_file.empty()) {
    // Lets a later daemon stop this shim (and a runtime create it may still be running)
    // when it replaces an instance whose creation a crash interrupted.
    (void)WriteFileReplace(
        o.shim_pid_file,
        std::to_string(::getpid()) + " " + std::to_string(ProcessStartTicks(::getpid())) + "\n");
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  RotatingLog log(o.log_file, o.log_max_bytes);
  auto pipe = MakePipe();
  if (!pipe) {
    WriteExit(o, -1, pipe.error().message());
    return 1;
  }
  int rc = RunRuntime(o, {"create", "--bundle", o.bundle, "--pid-file", o.pid_file, o.id},
                      pipe->write.get());
  if (rc != 0) {
    pipe->write.reset();
    char buf[4096];
    pollfd p{pipe->read.get(), POLLIN, 0};
    ssize_t n = ::poll(&p, 1, 1000) > 0 ? ::read(pipe->read.get(), buf, sizeof buf) : 0;
    std::string why = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    log.Append(why);
    WriteExit(o, -1, o.runtime + " create failed (status " + std::to_string(rc) + "): " + why);
    return 1;
  }
  auto pid_text = ReadFile(o.pid_file, 64);
  pid_t init = pid_text ? static_cast<pid_t>(std::strtol(pid_text->c_str(), nullptr, 10)) : 0;
  rc = RunRuntime(o, {"start", o.id}, pipe->write.get());
  pipe->write.reset();
  if (rc != 0 || init <= 0) {
    WriteExit(o, -1, o.runtime + " start failed (status " + std::to_string(rc) + ")");
    return 1;
  }
  // Tells the daemon the container runs (it waits for this line, not for `runtime state`).
  if (o.announce) {
    // "started PID" to whoever started the shim, and stdout is then /dev/null: nothing later
    // may write into a pipe whose reader has gone.
    const std::string line = "started " + std::to_string(init) + "\n";
    (void)WriteAll(1, line);
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 1);
      ::close(null);
    }
  }
  return Supervise(o, init, std::move(pipe->read), &log);
}

}  // namespace storevisor::daemon
