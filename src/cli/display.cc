#include "cli/display.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli/output.h"
#include "common/files.h"
#include "common/unique_fd.h"

namespace storevisor::cli {

namespace {

bool Relay(int from, int to) {
  char buf[65536];
  ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  return WriteAll(to, std::string_view(buf, static_cast<size_t>(n))).has_value();
}

// A listening socket on 127.0.0.1:port for local VNC viewers.
Result<UniqueFd> ListenLocal(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return ErrnoError("bind 127.0.0.1:" + std::to_string(port));
  }
  if (::listen(fd.get(), 16) != 0) return ErrnoError("listen");
  return fd;
}

void Pump(int viewer, int display) {
  pollfd fds[2] = {{viewer, POLLIN, 0}, {display, POLLIN, 0}};
  while (true) {
    if (::poll(fds, 2, 1000) < 0 && errno != EINTR) return;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Relay(viewer, display)) return;
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Relay(display, viewer)) return;
  }
}

}  // namespace

int RunScreenshot(api::Client& client, const std::string& name, const std::string& file) {
  auto png = client.Screenshot(name);
  if (!png) return Fail(png.error());
  if (png->rfind("\x89PNG", 0) != 0) {
    return Fail(Error(ErrorCode::kGuestFault, "storevisord sent something that is not a PNG"));
  }
  if (auto st = WriteFileAtomic(file, *png, 0644); !st) return Fail(st.error());
  std::fprintf(stderr, "storevisor: %s: screenshot saved to %s (%zu bytes)\n", name.c_str(),
               file.c_str(), png->size());
  return 0;
}

int RunDisplay(api::Client& client, const DisplayOptions& o) {
  if (o.display_token.empty()) {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      "display needs the workload's token (--display-token-file or "
                      "STOREVISOR_DISPLAY_TOKEN; it is vnc.token in the profile)"));
  }
  // Check the token and the VM before listening, so mistakes show at once.
  if (auto probe = client.OpenDisplay(o.name, o.display_token); !probe) {
    return Fail(probe.error());
  }
  auto listener = ListenLocal(o.port);
  if (!listener) return Fail(listener.error());
  std::fprintf(stderr, "storevisor: display of %s on vnc://127.0.0.1:%d (Ctrl-C to end)\n",
               o.name.c_str(), o.port);
  while (true) {
    UniqueFd viewer(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!viewer.valid()) {
      if (errno == EINTR) continue;
      return Fail(ErrnoError("accept"));
    }
    auto display = client.OpenDisplay(o.name, o.display_token);
    if (!display) {
      std::fprintf(stderr, "storevisor: display: %s\n", display.error().message().c_str());
      continue;
    }
    if (!display->early.empty() && !WriteAll(viewer.get(), display->early)) continue;
    Pump(viewer.get(), display->fd.get());
    if (o.once) return 0;
  }
}

}  // namespace storevisor::cli
