#include "cli/console_top.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "cli/output.h"
#include "common/unique_fd.h"

namespace storevisor::cli {

namespace {

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

void PrintTop(std::vector<api::WorkloadStatus> rows, bool tty) {
  // Busiest first, as top does.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const api::WorkloadStatus& a, const api::WorkloadStatus& b) {
                     return a.cpu_percent > b.cpu_percent;
                   });
  double cpu_sum = 0;
  uint64_t mem_sum = 0;
  for (const auto& w : rows) {
    cpu_sum += w.cpu_percent;
    mem_sum += w.memory_bytes;
  }
  if (tty) std::printf("\033[H\033[2J");
  std::printf("storevisor top: %zu workloads, CPU %.1f%%, memory %s MiB\n", rows.size(), cpu_sum,
              Mib(mem_sum).c_str());
  std::printf("%-20s %-10s %-9s %-10s %8s %7s %11s %9s\n", "NAME", "KIND", "STATE", "HEALTH", "PID",
              "CPU%", "MEMORY MiB", "RESTARTS");
  for (const auto& w : rows) {
    const bool running = w.state == "running";
    std::printf("%-20s %-10s %-9s %-10s %8lld %7.1f %11s %9lld\n", w.name.c_str(), w.kind.c_str(),
                w.state.c_str(), w.health.c_str(), static_cast<long long>(running ? w.pid : 0),
                running ? w.cpu_percent : 0.0, Mib(w.memory_bytes).c_str(),
                static_cast<long long>(w.restarts));
  }
  std::fflush(stdout);
}

// The old output-only console (legacy VMs: their serial port goes to a file): the last
// lines, then new output until the daemon closes or the user interrupts.
int FollowConsoleLog(api::Client& client, const std::string& name, int tail_lines) {
  if (::isatty(2)) {
    std::fprintf(stderr,
                 "-- serial console of %s (output only; Ctrl-C detaches, the VM keeps running)\n",
                 name.c_str());
  }
  auto st = client.Logs(name, tail_lines, true, [](std::string_view d) {
    std::fwrite(d.data(), 1, d.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  return st ? 0 : Fail(st.error());
}

// The terminal on fd in raw mode (no echo, no line editing, no signals from keys: Ctrl-C
// goes to the guest) while this lives; nothing when fd is not a terminal.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::isatty(fd) == 0 || ::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

constexpr char kDetachKey = 0x1d;  // Ctrl-], as virsh console and telnet

// Serial bytes to stdout, stdin to the serial port. On a terminal Ctrl-] detaches (0). When
// stdin ends (scripts) output is still shown until the console is quiet for linger_ms (0).
// The console closing first is ExitCodeFor(kUnavailable).
int PumpConsole(int sock, bool tty, int linger_ms) {
  bool input_open = true;
  char buf[8192];
  while (true) {
    pollfd fds[2] = {{sock, POLLIN, 0}, {input_open ? 0 : -1, POLLIN, 0}};
    const int n = ::poll(fds, 2, input_open ? -1 : linger_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ExitCodeFor(ErrorCode::kIo);
    if (n == 0) return 0;  // input over and the console quiet
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t got = ::read(sock, buf, sizeof buf);
      if (got <= 0) return ExitCodeFor(ErrorCode::kUnavailable);
      if (!WriteAll(1, std::string_view(buf, static_cast<size_t>(got)))) {
        return ExitCodeFor(ErrorCode::kIo);
      }
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t got = ::read(0, buf, sizeof buf);
    if (got <= 0) {
      input_open = false;
      continue;
    }
    std::string_view in(buf, static_cast<size_t>(got));
    const size_t detach = tty ? in.find(kDetachKey) : std::string_view::npos;
    if (!WriteAll(sock, in.substr(0, detach))) return ExitCodeFor(ErrorCode::kUnavailable);
    if (detach != std::string_view::npos) return 0;
  }
}

}  // namespace

int Console(api::Client& client, const std::string& name, int tail_lines, int linger_ms) {
  auto w = client.Workload(name);
  if (!w) return Fail(w.error());
  if (w->kind == "legacy-vm") return FollowConsoleLog(client, name, tail_lines);
  if (w->kind != "microvm") {
    std::fprintf(stderr,
                 "storevisor: %s is a %s; console attaches to VMs (use `storevisor logs -f %s`)\n",
                 name.c_str(), w->kind.c_str(), name.c_str());
    return ExitCodeFor(ErrorCode::kInvalidArgument);
  }
  if (tail_lines > 0) {
    // Earlier output is a courtesy: a failure here leaves the console itself to say why.
    (void)client.Logs(name, tail_lines, false, [](std::string_view d) {
      std::fwrite(d.data(), 1, d.size(), stdout);
      return true;
    });
    std::fflush(stdout);
  }
  auto conn = client.OpenConsole(name);
  if (!conn) return Fail(conn.error());
  const std::string& early = conn->early;
  const int sock = conn->fd.get();
  RawTerminal terminal(0);
  if (terminal.active()) {
    std::fprintf(stderr, "Connected to the serial console of %s (detach: Ctrl-])\r\n",
                 name.c_str());
  }
  if (!early.empty() && !WriteAll(1, early)) return ExitCodeFor(ErrorCode::kIo);
  const int rc = PumpConsole(sock, terminal.active(), linger_ms);
  if (terminal.active() && rc == 0) {
    std::fprintf(stderr, "\r\nDetached from %s; it keeps running.\r\n", name.c_str());
  }
  if (rc != 0) {
    std::fprintf(stderr,
                 "%sstorevisor: the console of %s closed (the VM stopped, or storevisord "
                 "went away)\n",
                 terminal.active() ? "\r\n" : "", name.c_str());
  }
  return rc;
}

int Top(api::Client& client, int interval_ms, int iterations) {
  const bool tty = ::isatty(1) != 0;
  for (int i = 0; iterations == 0 || i < iterations; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    auto list = client.Workloads();
    if (!list) return Fail(list.error());
    PrintTop(std::move(*list), tty);
    if (!tty && (iterations == 0 || i + 1 < iterations)) std::printf("\n");
  }
  return 0;
}

}  // namespace storevisor::cli
