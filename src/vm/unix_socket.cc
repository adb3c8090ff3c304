#include "vm/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace storevisor::vm::internal {

namespace {
int MillisLeft(Deadline d) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(d - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}
}  // namespace

Result<UniqueFd> ConnectUnix(const std::string& path, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "socket path too long (max " +
                                                  std::to_string(sizeof addr.sun_path - 1) +
                                                  " bytes): " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoError("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    int err = errno;
    if ((err != ENOENT && err != ECONNREFUSED) || MillisLeft(deadline) == 0) {
      return ErrnoError("connect " + path, err);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status SendAll(int fd, std::string_view data, int pass_fd) {
  size_t off = 0;
  while (off < data.size()) {
    iovec iov{const_cast<char*>(data.data() + off), data.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0 && off == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      Error e = ErrnoError("send", err);
      if (err == EPIPE || err == ECONNRESET) {
        return Error(ErrorCode::kUnavailable, "peer closed the socket (" + e.message() + ")");
      }
      return e;
    }
    off += static_cast<size_t>(n);
  }
  return Ok();
}

Result<std::string> ReadSome(int fd, Deadline deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, MillisLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError("poll");
    if (r == 0) return Error(ErrorCode::kTimeout, "no answer in time");
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno == ECONNRESET) n = 0;
    if (n < 0) return ErrnoError("read");
    if (n == 0) return Error(ErrorCode::kUnavailable, "peer closed the socket");
    return std::string(buf, static_cast<size_t>(n));
  }
}

}  // namespace storevisor::vm::internal
