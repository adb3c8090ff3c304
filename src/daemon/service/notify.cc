#include "daemon/service/notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "common/unique_fd.h"

namespace storevisor::daemon {

Status Notify(const std::string& socket_path, std::string_view state) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() < 2 || socket_path.size() >= sizeof addr.sun_path ||
      (socket_path[0] != '/' && socket_path[0] != '@')) {
    return Error(ErrorCode::kInvalidArgument,
                 "notify socket '" + socket_path + "': not an absolute or abstract path");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  // An abstract address: a leading NUL, the rest of the name, and a length without a
  // trailing NUL (the name is not NUL-terminated).
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("notify: socket");
  ssize_t n;
  do {
    n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr), len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("notify: send to " + socket_path);
  return Ok();
}

Status NotifySystemd(std::string_view state) {
  // Read once at start-up and at stop, on the main thread.
  const char* path = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe)
  if (path == nullptr || *path == '\0') return Ok();
  return Notify(path, state);
}

}  // namespace storevisor::daemon
