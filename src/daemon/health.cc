#include "daemon/health.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string_view>
#include <thread>

#include "api/client.h"
#include "common/unique_fd.h"

namespace storevisor::daemon {

namespace {

Result<UniqueFd> SocketIn(const std::string& netns_path) {
  if (netns_path.empty()) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return ErrnoError("socket");
    return fd;
  }
  Result<UniqueFd> out = Error(ErrorCode::kInternal, "no socket");
  std::thread t([&] {
    UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) {
      out = ErrnoError("open " + netns_path);
      return;
    }
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      out = ErrnoError("setns " + netns_path);
      return;
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    out = fd.valid() ? Result<UniqueFd>(std::move(fd)) : Result<UniqueFd>(ErrnoError("socket"));
  });
  t.join();  // the thread ends in the other namespace and is gone
  return out;
}

Result<UniqueFd> Connect(const std::string& netns_path, const std::string& host, int port,
                         int timeout_ms) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, SocketIn(netns_path));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return Error(ErrorCode::kInvalidArgument, "bad address " + host);
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 &&
      errno != EINPROGRESS) {
    return ErrnoError("connect " + host + ":" + std::to_string(port));
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) {
    return Error(ErrorCode::kTimeout,
                 "connect " + host + ":" + std::to_string(port) + ": timed out");
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return ErrnoError("connect " + host + ":" + std::to_string(port), err);
  return fd;
}

// Reads until at least `want` bytes came, the peer closed, or the deadline passed.
Result<std::string> ReadAtLeast(int fd, size_t want, std::chrono::steady_clock::time_point deadline,
                                const std::string& what) {
  std::string got;
  char buf[512];
  while (got.size() < want) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return Error(ErrorCode::kTimeout, what + ": no answer in time");
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

Status SendAll(int fd, const std::string& data) {
  if (::send(fd, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size())) {
    return ErrnoError("send");
  }
  return Ok();
}

// Printable, for messages about what a peer answered.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
  }
  return out;
}

}  // namespace

Status ProbeTcp(const std::string& netns_path, const std::string& host, int port, int timeout_ms,
                const std::string& send, const std::string& expect) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Connect(netns_path, host, port, timeout_ms));
  if (!send.empty()) SV_TRY(SendAll(fd.get(), send));
  if (expect.empty()) return Ok();
  const std::string what = "TCP " + host + ":" + std::to_string(port);
  SV_ASSIGN_OR_RETURN(std::string got, ReadAtLeast(fd.get(), expect.size(), deadline, what));
  if (got.compare(0, expect.size(), expect) != 0) {
    return Error(ErrorCode::kUnavailable, what + ": expected an answer starting with '" +
                                              Printable(expect) + "', got '" + Printable(got) +
                                              "'");
  }
  return Ok();
}

Status ProbeHttp(const std::string& netns_path, const std::string& host, int port,
                 const std::string& path, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Connect(netns_path, host, port, timeout_ms));
  auto status = api::HttpGetStatus(fd.get(), host, path, deadline);
  if (!status) {
    const ErrorCode code = status.error().code() == ErrorCode::kTimeout ? ErrorCode::kTimeout
                                                                        : ErrorCode::kUnavailable;
    return Error(code, "HTTP GET " + path + ": " + status.error().message());
  }
  if (*status < 200 || *status >= 400) {
    return Error(ErrorCode::kUnavailable,
                 "HTTP GET " + path + ": status " + std::to_string(*status));
  }
  return Ok();
}

}  // namespace storevisor::daemon
