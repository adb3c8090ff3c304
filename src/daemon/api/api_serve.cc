// Executes API commands against the daemon's public methods; streams logs and events.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/json.h"
#include "common/files.h"
#include "daemon/api/api.h"
#include "daemon/daemon.h"

namespace storevisor::daemon {

namespace {

void SendError(HttpConnection& conn, const Error& e) {
  conn.SendJson(HttpStatusFor(e.code()), api::ErrorJson(e));
}

void SendJsonValue(HttpConnection& conn, const nlohmann::json& j, int status = 200) {
  conn.SendJson(status, api::Dump(j));
}

void SendStatus(HttpConnection& conn, const Status& st) {
  if (!st) return SendError(conn, st.error());
  conn.SendJson(200, R"({"ok":true})");
}

// The last `lines` lines of text (all of it for -1).
std::string Tail(const std::string& text, int64_t lines) {
  if (lines < 0) return text;
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int64_t i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
  }
  if (pos == std::string::npos || lines == 0) return lines == 0 ? "" : text;
  return pos == 0 ? text : text.substr(pos + 1);
}

// New bytes of a log file from offset on; follows a rotation (new inode, or a shorter file).
struct LogCursor {
  std::string path;
  uint64_t offset = 0;
  ino_t inode = 0;

  Result<std::string> ReadNew() {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::string();
    if (st.st_ino != inode || static_cast<uint64_t>(st.st_size) < offset) {
      inode = st.st_ino;  // rotated: the new file starts from its beginning
      offset = 0;
    }
    if (static_cast<uint64_t>(st.st_size) == offset) return std::string();
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
      return std::string();
    }
    SV_ASSIGN_OR_RETURN(std::string data, ReadAll(fd.get(), 16u << 20));
    offset += data.size();
    return data;
  }
};

// Follows the log with inotify on its directory (writes, and the rotation's create/move):
// no polling; the wait also ends when the client goes away.
void FollowLog(LogCursor cursor, HttpConnection& conn) {
  UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  const std::string dir = cursor.path.substr(0, cursor.path.rfind('/'));
  if (!in.valid() ||
      ::inotify_add_watch(in.get(), dir.c_str(),
                          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    return;
  }
  char events[4096];
  while (true) {
    pollfd fds[2] = {{conn.fd(), POLLIN, 0}, {in.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if ((fds[0].revents & (POLLHUP | POLLERR)) != 0) return;
    if ((fds[0].revents & POLLIN) != 0) {
      // The client has nothing to say on a log stream: its bytes are dropped, its EOF ends it.
      char junk[512];
      if (::recv(conn.fd(), junk, sizeof junk, MSG_DONTWAIT) == 0) return;
    }
    if ((fds[1].revents & POLLIN) == 0) continue;
    while (::read(in.get(), events, sizeof events) > 0) {
    }
    auto data = cursor.ReadNew();
    if (data && !data->empty() && !conn.Write(*data)) return;
  }
}

void StreamLogs(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  auto path = daemon.LogPath(cmd.name);
  if (!path) return SendError(conn, path.error());
  std::string old = ReadFile(*path + ".1", 64u << 20).value_or("");
  std::string cur = ReadFile(*path, 64u << 20).value_or("");
  if (!conn.StartStream("text/plain; charset=utf-8")) return;
  if (!conn.Write(Tail(old + cur, cmd.tail))) return;
  if (!cmd.follow) return;
  LogCursor cursor{*path, cur.size(), 0};
  struct stat st {};
  if (::stat(path->c_str(), &st) == 0) cursor.inode = st.st_ino;
  FollowLog(std::move(cursor), conn);
}

std::string SseEvent(const api::EventRecord& e) {
  // type is a daemon word or a validated token: no newline can end the field early.
  return "id: " + std::to_string(e.id) + "\nevent: " + e.type +
         "\ndata: " + api::Dump(api::ToJson(e)) + "\n\n";
}

void PostEvent(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  api::EventRecord e;
  e.source = cmd.event_source;
  e.type = cmd.event_type;
  e.time = cmd.event_time;
  e.data = cmd.event_data;
  e.message = cmd.event_source + " " + cmd.event_type;
  auto id = daemon.PostEvent(e);
  if (!id) return SendError(conn, id.error());
  SendJsonValue(conn, nlohmann::json{{"id", *id}}, 201);
}

void StreamEvents(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  int64_t last = cmd.since;
  if (!cmd.follow) {
    auto events = daemon.EventsSince(last, 10000);
    if (!events) return SendError(conn, events.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *events) out.push_back(api::ToJson(e));
    return SendJsonValue(conn, out);
  }
  if (!conn.StartStream("text/event-stream")) return;
  while (!conn.PeerClosed()) {
    auto events = daemon.EventsSince(last, 500);
    if (events) {
      for (const auto& e : *events) {
        if (!conn.Write(SseEvent(e))) return;
        last = e.id;
      }
    }
    // Woken by the next event; the bound is how soon a client that went away is noticed.
    daemon.WaitForEvents(last, 1000);
  }
}

void Apply(Daemon& daemon, const ApiCommand& cmd, const Peer& peer, HttpConnection& conn) {
  api::ApplyRequest req;
  req.yaml = cmd.profile_yaml;
  req.file = cmd.profile_file;
  req.dry_run = cmd.dry_run;
  req.idempotency_key = cmd.idempotency_key;
  req.identity = peer.Identity();
  auto r = daemon.Apply(req);
  if (!r) return SendError(conn, r.error());
  SendJsonValue(conn, api::ToJson(*r));
}

void List(Daemon& daemon, HttpConnection& conn) {
  auto r = daemon.Workloads();
  if (!r) return SendError(conn, r.error());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& w : *r) out.push_back(api::ToJson(w));
  SendJsonValue(conn, out);
}

template <typename T>
void Answer(HttpConnection& conn, const Result<T>& r) {
  if (!r) return SendError(conn, r.error());
  SendJsonValue(conn, api::ToJson(*r));
}

void Execute(Daemon& daemon, const ApiCommand& cmd, const Peer& peer, HttpConnection& conn) {
  switch (cmd.op) {
    case ApiOp::kVersion:
      return SendJsonValue(conn, api::ToJson(api::VersionInfo{daemon.options().version, "v1",
                                                              std::string(kApiVersion)}));
    case ApiOp::kApply:
      return Apply(daemon, cmd, peer, conn);
    case ApiOp::kImagesInUse:
      return SendJsonValue(conn, api::ToJson(daemon.ImagesInUse()));
    case ApiOp::kGeneration:
      return Answer(conn, daemon.FindGeneration(cmd.generation));
    case ApiOp::kBox:
      return Answer(conn, daemon.Box());
    case ApiOp::kGenerations:
      return Answer(conn, daemon.Generations(static_cast<int>(cmd.limit)));
    case ApiOp::kRollback:
      return Answer(conn, daemon.Rollback(cmd.rollback_to, peer.Identity(), cmd.idempotency_key));
    case ApiOp::kList:
      return List(daemon, conn);
    case ApiOp::kGet:
      return Answer(conn, daemon.WorkloadStatus(cmd.name));
    case ApiOp::kStart:
      return SendStatus(conn, daemon.StartWorkload(cmd.name));
    case ApiOp::kStop:
      return SendStatus(conn, daemon.StopWorkload(cmd.name));
    case ApiOp::kRestart:
      return SendStatus(conn, daemon.RestartWorkload(cmd.name));
    case ApiOp::kRemove:
      return SendStatus(conn, daemon.RemoveWorkload(cmd.name));
    case ApiOp::kExec:
      return Answer(conn, daemon.Exec(cmd.name, api::ExecRequest{cmd.argv, cmd.timeout_ms}));
    case ApiOp::kLogs:
      return StreamLogs(daemon, cmd, conn);
    case ApiOp::kEvents:
      return StreamEvents(daemon, cmd, conn);
    case ApiOp::kMetrics:
      conn.Send(200, "text/plain; version=0.0.4", daemon.Metrics());
      return;
    case ApiOp::kPostEvent:
      return PostEvent(daemon, cmd, conn);
    case ApiOp::kScreenshot:
      return ServeScreenshot(daemon, cmd, conn);
    case ApiOp::kDisplay:
      return ServeDisplay(daemon, cmd, conn);
    case ApiOp::kConsole:
      return ServeConsole(daemon, cmd, conn);
    case ApiOp::kUsbAttach: {
      auto id = daemon.UsbAttach(cmd.name, cmd.usb_device);
      if (!id) return SendError(conn, id.error());
      return SendJsonValue(conn, nlohmann::json{{"ok", true}, {"id", *id}});
    }
    case ApiOp::kUsbDetach:
      return SendStatus(conn, daemon.UsbDetach(cmd.name, cmd.usb_device));
  }
}

}  // namespace

void ServeApi(Daemon& daemon, const HttpRequest& request, HttpConnection& conn, const Peer& peer) {
  auto cmd = ParseApiRequest(request);
  if (!cmd) {
    int status =
        cmd.error().code() == ErrorCode::kUnsupported ? 405 : HttpStatusFor(cmd.error().code());
    conn.SendJson(status, api::ErrorJson(cmd.error()));
    return;
  }
  daemon.logger().Debug("api", request.method + " " + request.path);
  Execute(daemon, *cmd, peer, conn);
}

}  // namespace storevisor::daemon
