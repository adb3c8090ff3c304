// The runtime's side of a container terminal: receiving the pty master sent by the process
// that owns the slave, and relaying it to our own stdio for `exec -t` without
// --console-socket (runc's behaviour).
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "runtime/init.h"

namespace storevisor::runtime {
namespace {

// Puts a terminal in raw mode and restores it when destroyed.
class RawMode {
 public:
  explicit RawMode(int fd) : fd_(fd) {
    if (::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  ~RawMode() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// Copies what is readable on `from` to `to`; false at EOF or error (EIO on a pty master
// means every slave fd is closed: the process ended).
bool Pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  return WriteAll(to, std::string_view(buf, static_cast<size_t>(n))).has_value();
}

}  // namespace

Result<UniqueFd> ReceivePtyMaster(int sock) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("receive the pty master");
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (n == 0 || cm == nullptr || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
      cm->cmsg_len != CMSG_LEN(sizeof(int))) {
    return Error(ErrorCode::kFailedPrecondition,
                 "the exec'd process sent no pty master (it failed before opening its terminal)");
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return UniqueFd(fd);
}

Status RelayTerminal(int master) {
  winsize ws{};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) (void)::ioctl(master, TIOCSWINSZ, &ws);
  RawMode raw(STDIN_FILENO);
  bool in_open = true;
  for (;;) {
    pollfd p[2] = {{master, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int n = ::poll(p, in_open ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll the terminal");
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!Pump(master, STDOUT_FILENO)) return Ok();
    }
    // Our stdin at EOF is not the end of the process: keep relaying its output.
    if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
      in_open = Pump(STDIN_FILENO, master);
  }
}

}  // namespace storevisor::runtime
