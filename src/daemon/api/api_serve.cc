// Executes API commands against the daemon; streams logs and events.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/files.h"
#include "daemon/api/api.h"
#include "daemon/daemon.h"

namespace storevisor::daemon {

namespace {

void SendError(HttpConnection& conn, const Error& e) {
  conn.SendJson(HttpStatusFor(e.code()),
                nlohmann::json{{"error", e.message()}, {"code", ErrorCodeName(e.code())}}.dump(
                    -1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void SendJsonValue(HttpConnection& conn, const nlohmann::json& j) {
  conn.SendJson(200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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

void StreamLogs(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  auto path = daemon.LogPath(cmd.name);
  if (!path) return SendError(conn, path.error());
  std::string old = ReadFile(*path + ".1", 64u << 20).value_or("");
  std::string cur = ReadFile(*path, 64u << 20).value_or("");
  if (!conn.StartStream("text/plain; charset=utf-8")) return;
  if (!conn.Write(Tail(old + cur, cmd.tail))) return;
  if (!cmd.follow) return;
  uint64_t offset = cur.size();
  ino_t inode = 0;
  struct stat st {};
  if (::stat(path->c_str(), &st) == 0) inode = st.st_ino;
  while (!conn.PeerClosed()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (::stat(path->c_str(), &st) != 0) continue;
    if (st.st_ino != inode || static_cast<uint64_t>(st.st_size) < offset) {
      inode = st.st_ino;  // rotated: the new file starts from its beginning
      offset = 0;
    }
    if (static_cast<uint64_t>(st.st_size) == offset) continue;
    UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) continue;
    auto data = ReadAll(fd.get(), 16u << 20);
    if (!data) continue;
    offset += data->size();
    if (!conn.Write(*data)) return;
  }
}

// Until src/api has its JSON conversions (one place for the wire's field names).
nlohmann::json WorkloadStatusJson(const api::WorkloadStatus& w) {
  return {{"name", w.name},
          {"kind", w.kind},
          {"role", w.role},
          {"state", w.state},
          {"health", w.health},
          {"pid", w.pid},
          {"uptimeMs", w.uptime_ms},
          {"startedAtMs", w.started_at_ms},
          {"restarts", w.restarts},
          {"exitCode", w.exit_code},
          {"cpuPercent", w.cpu_percent},
          {"memoryBytes", w.memory_bytes},
          {"usageSource", w.usage_source},
          {"address", w.address},
          {"lastError", w.last_error},
          {"desired", w.desired}};
}

nlohmann::json ApplyJson(const api::ApplyResponse& a) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : a.steps) {
    steps.push_back({{"action", s.action}, {"name", s.name}, {"reason", s.reason}});
  }
  return {{"steps", steps},
          {"held", a.held},
          {"profile", a.profile},
          {"dryRun", a.dry_run},
          {"generation", a.generation},
          {"digest", a.digest},
          {"duplicate", a.duplicate}};
}

nlohmann::json EventJson(const api::EventRecord& e) {
  nlohmann::json j = {{"id", e.id},
                      {"time_ms", e.time_ms},
                      {"workload", e.workload},
                      {"type", e.type},
                      {"message", e.message}};
  if (!e.source.empty()) {
    j["source"] = e.source;
    j["time"] = e.time;
    j["data"] = nlohmann::json::parse(e.data, nullptr, false);
    if (j["data"].is_discarded()) j["data"] = nlohmann::json::object();
  }
  return j;
}

std::string SseEvent(const api::EventRecord& e) {
  // type is a daemon word or a validated token: no newline can end the field early.
  return "id: " + std::to_string(e.id) + "\nevent: " + e.type +
         "\ndata: " + EventJson(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n\n";
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
  conn.SendJson(201, nlohmann::json{{"id", *id}}.dump());
}

void StreamEvents(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  int64_t last = cmd.since;
  if (!cmd.follow) {
    auto events = daemon.EventsSince(last, 10000);
    if (!events) return SendError(conn, events.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *events) out.push_back(EventJson(e));
    conn.SendJson(200, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
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

void Execute(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn) {
  switch (cmd.op) {
    case ApiOp::kVersion:
      conn.SendJson(200, nlohmann::json{{"version", daemon.options().version},
                                        {"api", "v1"},
                                        {"profileApiVersion", kApiVersion}}
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    case ApiOp::kApply: {
      api::ApplyRequest req;
      req.yaml = cmd.profile_yaml;
      req.file = cmd.profile_file;
      req.dry_run = cmd.dry_run;
      auto r = daemon.Apply(req);
      if (!r) return SendError(conn, r.error());
      return SendJsonValue(conn, ApplyJson(*r));
    }
    case ApiOp::kList: {
      auto r = daemon.Workloads();
      if (!r) return SendError(conn, r.error());
      nlohmann::json out = nlohmann::json::array();
      for (const auto& w : *r) out.push_back(WorkloadStatusJson(w));
      return SendJsonValue(conn, out);
    }
    case ApiOp::kGet: {
      auto r = daemon.WorkloadStatus(cmd.name);
      if (!r) return SendError(conn, r.error());
      return SendJsonValue(conn, WorkloadStatusJson(*r));
    }
    case ApiOp::kStart:
      return SendStatus(conn, daemon.StartWorkload(cmd.name));
    case ApiOp::kStop:
      return SendStatus(conn, daemon.StopWorkload(cmd.name));
    case ApiOp::kRestart:
      return SendStatus(conn, daemon.RestartWorkload(cmd.name));
    case ApiOp::kRemove:
      return SendStatus(conn, daemon.RemoveWorkload(cmd.name));
    case ApiOp::kExec: {
      auto out = daemon.Exec(cmd.name, api::ExecRequest{cmd.argv, cmd.timeout_ms});
      if (!out) return SendError(conn, out.error());
      conn.SendJson(
          200,
          nlohmann::json{{"exitCode", out->exit_code}, {"stdout", out->out}, {"stderr", out->err}}
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
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
      conn.SendJson(200, nlohmann::json{{"ok", true}, {"id", *id}}.dump());
      return;
    }
    case ApiOp::kUsbDetach:
      return SendStatus(conn, daemon.UsbDetach(cmd.name, cmd.usb_device));
  }
}

}  // namespace

void ServeApi(Daemon& daemon, const std::string& token, const HttpRequest& request,
              HttpConnection& conn, bool from_tcp) {
  if (from_tcp) {
    // Constant-time compare: the token must not leak through timing.
    const std::string got = request.Header("authorization");
    const std::string want = "Bearer " + token;
    unsigned diff = got.size() == want.size() ? 0 : 1;
    for (size_t i = 0; i < want.size() && i < got.size(); ++i)
      diff |= static_cast<unsigned>(got[i] ^ want[i]);
    if (token.empty() || diff != 0) {
      conn.SendJson(401, R"({"error":"missing or wrong bearer token","code":"permission-denied"})");
      return;
    }
  }
  auto cmd = ParseApiRequest(request);
  if (!cmd) {
    int status =
        cmd.error().code() == ErrorCode::kUnsupported ? 405 : HttpStatusFor(cmd.error().code());
    conn.SendJson(status, nlohmann::json{{"error", cmd.error().message()},
                                         {"code", ErrorCodeName(cmd.error().code())}}
                              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  daemon.logger().Debug("api", request.method + " " + request.path);
  Execute(daemon, *cmd, conn);
}

}  // namespace storevisor::daemon
