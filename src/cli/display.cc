#include "cli/display.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/api/http.h"

namespace storevisor::cli {

namespace {

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor: %s\n", e.message().c_str());
  return ExitCodeFor(e.code());
}

// The daemon's JSON error -> message and exit status.
int FailReply(int status, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  const std::string msg = j.is_object() ? j.value("error", body) : body;
  std::fprintf(stderr, "storevisor: %s\n", msg.c_str());
  const std::string code = j.is_object() ? j.value("code", "internal") : "internal";
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    if (ErrorCodeName(static_cast<ErrorCode>(c)) == code) {
      return ExitCodeFor(static_cast<ErrorCode>(c));
    }
  }
  return status == 404 ? ExitCodeFor(ErrorCode::kNotFound) : ExitCodeFor(ErrorCode::kInternal);
}

bool Relay(int from, int to) {
  char buf[65536];
  ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  return WriteAll(to, std::string_view(buf, static_cast<size_t>(n))).has_value();
}

// Opens the workload's display through the daemon; on success the returned socket carries
// RFB, and `early` holds RFB bytes that arrived with the response head.
Result<UniqueFd> OpenDisplay(const DisplayOptions& o, std::string* early) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, daemon::ConnectEndpoint(o.endpoint));
  std::string req =
      "GET /v1/workloads/" + o.name +
      "/display HTTP/1.1\r\nHost: storevisord\r\nX-Display-Token: " + o.display_token + "\r\n";
  if (!o.bearer.empty()) req += "Authorization: Bearer " + o.bearer + "\r\n";
  req += "Connection: close\r\n\r\n";
  SV_TRY(WriteAll(fd.get(), req));
  std::string buf;
  char chunk[4096];
  while (buf.size() < 65536) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n <= 0) return Error(ErrorCode::kUnavailable, "storevisord closed the display connection");
    buf.append(chunk, static_cast<size_t>(n));
    size_t offset = 0;
    SV_ASSIGN_OR_RETURN(auto head, daemon::ParseHttpResponseHead(buf, &offset));
    if (!head) continue;
    if (head->status != 200) {
      std::string body = buf.substr(offset);
      auto more = ReadAll(fd.get(), 1u << 20);
      if (more) body += *more;
      return Error(ErrorCode::kPermissionDenied, std::to_string(head->status) + "\n" + body);
    }
    *early = buf.substr(offset);
    return fd;
  }
  return Error(ErrorCode::kGuestFault, "storevisord sent an oversized response head");
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

int RunScreenshot(Client& client, const std::string& name, const std::string& file) {
  auto r = client.Call("GET", "/v1/workloads/" + name + "/screenshot");
  if (!r) return Fail(r.error());
  if (r->status != 200) return FailReply(r->status, r->body);
  if (r->body.rfind("\x89PNG", 0) != 0) {
    return Fail(Error(ErrorCode::kGuestFault, "storevisord sent something that is not a PNG"));
  }
  if (auto st = WriteFileAtomic(file, r->body, 0644); !st) return Fail(st.error());
  std::fprintf(stderr, "storevisor: %s: screenshot saved to %s (%zu bytes)\n", name.c_str(),
               file.c_str(), r->body.size());
  return 0;
}

int RunDisplay(const DisplayOptions& o) {
  if (o.display_token.empty()) {
    return Fail(Error(ErrorCode::kInvalidArgument,
                      "display needs the workload's token (--display-token-file or "
                      "STOREVISOR_DISPLAY_TOKEN; it is vnc.token in the profile)"));
  }
  {
    // Check the token and the VM before listening, so mistakes show at once.
    std::string early;
    auto probe = OpenDisplay(o, &early);
    if (!probe) {
      const std::string& m = probe.error().message();
      const size_t nl = m.find('\n');
      if (probe.error().code() == ErrorCode::kPermissionDenied && nl != std::string::npos) {
        return FailReply(static_cast<int>(std::strtol(m.c_str(), nullptr, 10)), m.substr(nl + 1));
      }
      return Fail(probe.error());
    }
  }
  auto listener = daemon::ListenTcp("127.0.0.1:" + std::to_string(o.port));
  if (!listener) return Fail(listener.error());
  std::fprintf(stderr, "storevisor: display of %s on vnc://127.0.0.1:%d (Ctrl-C to end)\n",
               o.name.c_str(), o.port);
  while (true) {
    UniqueFd viewer(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!viewer.valid()) {
      if (errno == EINTR) continue;
      return Fail(ErrnoError("accept"));
    }
    std::string first;
    auto display = OpenDisplay(o, &first);
    if (!display) {
      std::fprintf(stderr, "storevisor: display: %s\n", display.error().message().c_str());
      continue;
    }
    if (!first.empty() && !WriteAll(viewer.get(), first)) continue;
    Pump(viewer.get(), display->get());
    if (o.once) return 0;
  }
}

}  // namespace storevisor::cli
