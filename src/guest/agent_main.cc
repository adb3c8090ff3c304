// sv-agent: runs inside the guest, serves agent.h's protocol on the virtio-serial port
// argv[1] (default /dev/virtio-ports/org.qemu.guest_agent.0). Single-threaded poll loop over
// the port and the pipes of running guest-exec children. Linked into sv-init's binary
// (one static C++ runtime in the initramfs instead of two: ~1.8 MB less guest memory),
// which runs AgentMain when started as `sv-agent`.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/json_stream.h"
#include "guest/agent.h"

namespace {

using storevisor::guest::Agent;
using storevisor::guest::ExecState;

// Forks and execs; the child gets the input on a pipe and, when capturing, its output
// on pipes the agent drains. Returns an error message or nullopt.
std::optional<std::string> Spawn(const std::string& path, const std::vector<std::string>& args,
                                 const std::vector<std::string>& env, const std::string& input,
                                 bool capture, ExecState* st) {
  int in[2];
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) != 0) return std::string("pipe: ") + strerror(errno);
  if (capture && (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)) {
    return std::string("pipe: ") + strerror(errno);
  }
  std::vector<std::string> argv_s{path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env;
  if (env_s.empty()) env_s = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"};
  std::vector<char*> envp;
  envp.reserve(env_s.size() + 1);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + strerror(errno);
  if (pid == 0) {
    dup2(in[0], 0);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(capture ? out[1] : devnull, 1);
    dup2(capture ? err[1] : devnull, 2);
    setsid();
    execve(path.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  // Small inputs fit the pipe buffer; larger ones are cut rather than blocking the agent.
  (void)!write(in[1], input.data(), std::min<size_t>(input.size(), 65536));
  close(in[1]);
  if (capture) {
    close(out[1]);
    close(err[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
  }
  st->pid = pid;
  st->out_fd = out[0];
  st->err_fd = err[0];
  return std::nullopt;
}

void Shutdown(const std::string& mode) {
  sync();
  // PID 1 (sv-init) powers off on SIGUSR2 and reboots on SIGTERM, as busybox init does.
  kill(1, mode == "reboot" ? SIGTERM : SIGUSR2);
}

nlohmann::json OsInfo() {
  struct utsname u {};
  uname(&u);
  nlohmann::json j{
      {"kernel-release", u.release}, {"kernel-version", u.version}, {"machine", u.machine}};
  std::ifstream f("/etc/os-release");
  std::string line;
  const std::pair<const char*, const char*> keys[] = {{"ID", "id"},
                                                      {"NAME", "name"},
                                                      {"PRETTY_NAME", "pretty-name"},
                                                      {"VERSION", "version"},
                                                      {"VERSION_ID", "version-id"}};
  while (std::getline(f, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq);
    std::string v = line.substr(eq + 1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    for (const auto& [from, to] : keys) {
      if (k == from) j[to] = v;
    }
  }
  return j;
}

// Reads what is available from a child's pipe; closes it at EOF.
void Drain(int* fd, std::string* buf, bool* truncated) {
  char tmp[16384];
  while (*fd >= 0) {
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n > 0) {
      storevisor::guest::AppendCapped(buf, std::string_view(tmp, n), Agent::kMaxCapture, truncated);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(*fd);
    *fd = -1;
  }
}

void WriteAllTo(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // host went away: the reply is lost, as with qemu-ga
    off += n;
  }
}

}  // namespace

namespace storevisor::guest {

int AgentMain(int argc, char** argv) {
  const char* port = argc > 1 ? argv[1] : "/dev/virtio-ports/org.qemu.guest_agent.0";
  signal(SIGPIPE, SIG_IGN);
  int fd = -1;
  for (int i = 0; i < 500 && fd < 0; ++i) {  // the port may appear a little after us
    fd = open(port, O_RDWR | O_CLOEXEC);
    if (fd < 0) usleep(10000);
  }
  if (fd < 0) {
    fprintf(stderr, "sv-agent: open %s: %s\n", port, strerror(errno));
    return 1;
  }
  Agent agent(AgentSystem{Spawn, Shutdown, OsInfo});
  // 64 KiB per request is plenty for the commands we serve (qemu-ga's own cap is
  // larger, for guest-file-write, which we do not implement).
  storevisor::JsonStream stream(
      storevisor::JsonLimits{.max_message = 64 * 1024, .max_depth = 32, .max_queued = 64});
  char buf[4096];
  for (;;) {
    std::vector<pollfd> fds{{fd, POLLIN, 0}};
    for (auto& [pid, st] : agent.execs()) {
      if (st.out_fd >= 0) fds.push_back({st.out_fd, POLLIN, 0});
      if (st.err_fd >= 0) fds.push_back({st.err_fd, POLLIN, 0});
    }
    poll(fds.data(), fds.size(), agent.execs().empty() ? 1000 : 20);
    for (auto& [pid, st] : agent.execs()) {
      Drain(&st.out_fd, &st.out, &st.out_truncated);
      Drain(&st.err_fd, &st.err, &st.err_truncated);
      if (!st.exited && waitpid(st.pid, &st.wait_status, WNOHANG) == st.pid) st.exited = true;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP))) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {  // no host connected: the port reads EOF until one is
      usleep(20000);
      continue;
    }
    stream.Feed(std::string_view(buf, n));
    while (auto msg = stream.Next()) {
      WriteAllTo(fd, *msg ? agent.HandleRequest(**msg)
                          : storevisor::guest::ErrorReply(msg->error().message()));
    }
  }
}

}  // namespace storevisor::guest
