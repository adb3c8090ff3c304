#include "cli/console_top.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/unique_fd.h"

namespace storevisor::cli {

namespace {

using nlohmann::json;

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

// The daemon's error text for a non-2xx reply.
std::string ErrorText(const Reply& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("error", r.body) : r.body;
}

void PrintTop(const json& list, bool tty) {
  std::vector<json> rows(list.begin(), list.end());
  // Busiest first, as top does.
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return a.value("cpuPercent", 0.0) > b.value("cpuPercent", 0.0);
  });
  double cpu_sum = 0;
  uint64_t mem_sum = 0;
  for (const auto& w : rows) {
    cpu_sum += w.value("cpuPercent", 0.0);
    mem_sum += w.value("memoryBytes", uint64_t{0});
  }
  if (tty) std::printf("\033[H\033[2J");
  std::printf("storevisor top: %zu workloads, CPU %.1f%%, memory %s MiB\n", rows.size(), cpu_sum,
              Mib(mem_sum).c_str());
  std::printf("%-20s %-10s %-9s %-10s %8s %7s %11s %9s\n", "NAME", "KIND", "STATE", "HEALTH", "PID",
              "CPU%", "MEMORY MiB", "RESTARTS");
  for (const auto& w : rows) {
    const bool running = w.value("state", "") == "running";
    std::printf("%-20s %-10s %-9s %-10s %8lld %7.1f %11s %9lld\n", w.value("name", "").c_str(),
                w.value("kind", "").c_str(), w.value("state", "").c_str(),
                w.value("health", "").c_str(),
                static_cast<long long>(running ? w.value("pid", int64_t{0}) : 0),
                running ? w.value("cpuPercent", 0.0) : 0.0,
                Mib(w.value("memoryBytes", uint64_t{0})).c_str(),
                static_cast<long long>(w.value("restarts", int64_t{0})));
  }
  std::fflush(stdout);
}

// The old output-only console (legacy VMs: their serial port goes to a file): the last
// lines, then new output until the daemon closes or the user interrupts.
int FollowConsoleLog(Client& client, const std::string& name, int tail_lines) {
  if (::isatty(2)) {
    std::fprintf(stderr,
                 "-- serial console of %s (output only; Ctrl-C detaches, the VM keeps running)\n",
                 name.c_str());
  }
  auto st =
      client.Stream("/v1/workloads/" + name + "/logs?follow=1&tail=" + std::to_string(tail_lines),
                    [](std::string_view d) {
                      std::fwrite(d.data(), 1, d.size(), stdout);
                      std::fflush(stdout);
                      return true;
                    });
  if (!st) {
    std::fprintf(stderr, "storevisor: %s\n", st.error().message().c_str());
    return ExitCodeFor(st.error().code());
  }
  return ReportReply(*st);
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

int Console(Client& client, const std::string& name, int tail_lines, int linger_ms) {
  auto r = client.Call("GET", "/v1/workloads/" + name);
  if (!r) {
    std::fprintf(stderr, "storevisor: %s\n", r.error().message().c_str());
    return ExitCodeFor(r.error().code());
  }
  if (r->status != 200) return ReportReply(*r);
  const std::string kind = json::parse(r->body, nullptr, false).value("kind", "");
  if (kind == "legacy-vm") return FollowConsoleLog(client, name, tail_lines);
  if (kind != "microvm") {
    std::fprintf(stderr,
                 "storevisor: %s is a %s; console attaches to VMs (use `storevisor logs -f %s`)\n",
                 name.c_str(), kind.c_str(), name.c_str());
    return ExitCodeFor(ErrorCode::kInvalidArgument);
  }
  if (tail_lines > 0) {
    auto earlier =
        client.Call("GET", "/v1/workloads/" + name + "/logs?tail=" + std::to_string(tail_lines));
    if (earlier && earlier->status == 200)
      std::fwrite(earlier->body.data(), 1, earlier->body.size(), stdout);
    std::fflush(stdout);
  }
  std::string early;
  Reply refusal;
  auto conn = client.Upgrade("/v1/workloads/" + name + "/console", &early, &refusal);
  if (!conn) {
    std::fprintf(stderr, "storevisor: %s\n", conn.error().message().c_str());
    return ExitCodeFor(conn.error().code());
  }
  if (!conn->has_value()) return ReportReply(refusal);
  const int sock = (*conn)->get();
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

int Top(Client& client, int interval_ms, int iterations) {
  const bool tty = ::isatty(1) != 0;
  for (int i = 0; iterations == 0 || i < iterations; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    auto r = client.Call("GET", "/v1/workloads");
    if (!r) {
      std::fprintf(stderr, "storevisor: %s\n", r.error().message().c_str());
      return ExitCodeFor(r.error().code());
    }
    if (r->status != 200) {
      std::fprintf(stderr, "storevisor: %s\n", ErrorText(*r).c_str());
      return ExitCodeFor(ErrorCode::kInternal);
    }
    auto list = json::parse(r->body, nullptr, false);
    if (!list.is_array()) {
      std::fprintf(stderr, "storevisor: the daemon sent no workload list\n");
      return ExitCodeFor(ErrorCode::kGuestFault);
    }
    PrintTop(list, tty);
    if (!tty && (iterations == 0 || i + 1 < iterations)) std::printf("\n");
  }
  return 0;
}

}  // namespace storevisor::cli
