// Screens and consoles of VMs through the daemon: screenshots and the VNC display of legacy
// VMs for a client that presents the workload's display token (docs/legacy-vm.md,
// "Display"), and the serial console of microVMs (docs/daemon.md, "Console").
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/json.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/api/api.h"
#include "daemon/api/http.h"
#include "daemon/daemon.h"

namespace storevisor::daemon {

namespace {

constexpr size_t kMaxScreenshotBytes = 32u << 20;

bool SameSecret(const std::string& got, const std::string& want) {
  // Constant time in the length of what is wanted: the token must not leak through timing.
  unsigned diff = got.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned>(want[i] ^ (i < got.size() ? got[i] : 0));
  }
  return diff == 0 && !want.empty();
}

void SendError(HttpConnection& conn, const Error& e) {
  conn.SendJson(HttpStatusFor(e.code()), api::ErrorJson(e));
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "socket path too long: " + path);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError("connect " + path);
  }
  return fd;
}

// Copies what is readable on `from` to `to`; false when `from` closed or a write failed.
bool Relay(int from, int to) {
  char buf[65536];
  ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  return WriteAll(to, std::string_view(buf, static_cast<size_t>(n))).has_value();
}

// Relays both ways between the client's connection and a workload's socket until either
// side closes.
void RelayUntilClosed(int client, int workload) {
  pollfd fds[2] = {{client, POLLIN, 0}, {workload, POLLIN, 0}};
  while (true) {
    if (::poll(fds, 2, 1000) < 0 && errno != EINTR) break;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Relay(client, workload)) break;
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Relay(workload, client)) break;
  }
}

}  // namespace

void ServeScreenshot(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  auto png = daemon.Screenshot(cmd.name);
  if (!png) return SendError(conn, png.error());
  conn.Send(200, "image/png", *png);
}

void ServeDisplay(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  auto socket = daemon.DisplaySocket(cmd.name, cmd.token);
  if (!socket) return SendError(conn, socket.error());
  auto vnc = ConnectUnix(*socket);
  if (!vnc) return SendError(conn, vnc.error());
  daemon.logger().Info("api", "display of " + cmd.name + " opened", {{"workload", cmd.name}});
  // After this head the connection carries VNC's RFB protocol both ways, unchanged.
  if (!conn.StartStream("application/x-rfb")) return;
  RelayUntilClosed(conn.fd(), vnc->get());
  daemon.logger().Info("api", "display of " + cmd.name + " closed", {{"workload", cmd.name}});
}

void ServeConsole(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  auto socket = daemon.ClaimConsole(cmd.name);
  if (!socket) return SendError(conn, socket.error());
  auto serial = ConnectUnix(*socket);
  if (!serial) {
    daemon.ReleaseConsole(cmd.name);
    return SendError(conn, serial.error().Context("console of " + cmd.name));
  }
  daemon.logger().Info("api", "console of " + cmd.name + " attached", {{"workload", cmd.name}});
  // After the 101 the connection carries the serial port's bytes both ways, unchanged.
  // Input the client sent right behind its request goes first.
  const std::string early = conn.TakeEarlyInput();
  if (conn.SwitchProtocols("tcp") && WriteAll(serial->get(), early)) {
    RelayUntilClosed(conn.fd(), serial->get());
  }
  daemon.ReleaseConsole(cmd.name);
  daemon.logger().Info("api", "console of " + cmd.name + " detached", {{"workload", cmd.name}});
}

Result<std::string> Daemon::UsbAttach(const std::string& name, const std::string& usb_id) {
  SV_ASSIGN_OR_RETURN(Running w, RunningWorkload(name));
  std::string id = UsbDeviceId(usb_id);
  Status st = w.driver->UsbAttach(name, id, usb_id);
  if (!st) return std::move(st).error().Context("usb attach " + usb_id + " to " + name);
  Event(name, "usb-attached", usb_id + " attached to " + name + " as " + id);
  return id;
}

Status Daemon::UsbDetach(const std::string& name, const std::string& usb_id) {
  SV_ASSIGN_OR_RETURN(Running w, RunningWorkload(name));
  SV_TRY_CTX(w.driver->UsbDetach(name, UsbDeviceId(usb_id)),
             "usb detach " + usb_id + " from " + name);
  Event(name, "usb-detached", usb_id + " detached from " + name);
  return Ok();
}

Result<std::string> Daemon::ClaimConsole(const std::string& name) {
  SV_ASSIGN_OR_RETURN(Running w, RunningWorkload(name));
  auto path = w.driver->ConsoleSocket(name);
  if (!path && path.error().code() == ErrorCode::kUnsupported) {
    return Error(ErrorCode::kUnsupported,
                 "kind " + w.kind + " has no interactive console (microvm workloads have one; " +
                     "`storevisor logs -f " + name + "` shows the output of the others)");
  }
  if (!path) return path;
  std::lock_guard lock(consoles_mu_);
  // QEMU's socket chardev serves one client; a second would wait unseen in its backlog.
  if (!consoles_.insert(name).second) {
    return Error(ErrorCode::kConflict, "the console of " + name +
                                           " is in use by another client (one at a time; it "
                                           "detaches with Ctrl-])");
  }
  return path;
}

void Daemon::ReleaseConsole(const std::string& name) {
  std::lock_guard lock(consoles_mu_);
  consoles_.erase(name);
}

Result<std::string> Daemon::Screenshot(const std::string& name) {
  SV_ASSIGN_OR_RETURN(Running w, RunningWorkload(name));
  SV_TRY(MakeDirs(opt_.state_dir + "/tmp", 0700));
  // QEMU writes the file itself; a name per request keeps concurrent requests apart.
  const std::string path =
      opt_.state_dir + "/tmp/screenshot-" + name + "-" + std::to_string(NowMs()) + "-" +
      std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 100000) + ".png";
  Status st = w.driver->Screenshot(name, path);
  if (!st) {
    ::unlink(path.c_str());
    if (st.error().code() == ErrorCode::kUnsupported) {
      return Error(ErrorCode::kUnsupported, "screenshots are not supported for kind " + w.kind +
                                                " (" + name +
                                                " has no screen; legacy-vm workloads have one)");
    }
    return std::move(st).error().Context("screenshot of " + name);
  }
  auto png = ReadFile(path, kMaxScreenshotBytes);
  ::unlink(path.c_str());
  return png;
}

Result<std::string> Daemon::DisplaySocket(const std::string& name, const std::string& token) {
  auto snap = owner_->snapshot();
  auto it = snap->workloads.find(name);
  if (it == snap->workloads.end()) {
    return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  }
  const std::string kind(KindName(it->second.kind));
  const Workload* w = snap->profile ? snap->profile->Find(name) : nullptr;
  if (w == nullptr || w->kind != WorkloadKind::kLegacyVm) {
    return Error(ErrorCode::kUnsupported,
                 "a display is not supported for kind " + kind + " (only legacy-vm)");
  }
  if (w->legacy.display_token.empty()) {
    return Error(ErrorCode::kPermissionDenied,
                 name + " has no display token: set vnc.token in the profile to open its display");
  }
  if (!SameSecret(token, w->legacy.display_token)) {
    return Error(ErrorCode::kPermissionDenied, "wrong display token for " + name);
  }
  SV_ASSIGN_OR_RETURN(Running running, RunningWorkload(name));
  return running.driver->DisplaySocket(name);
}

}  // namespace storevisor::daemon
