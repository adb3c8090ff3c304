#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "api/json.h"
#include "common/json_depth.h"
#include "daemon/api/api.h"
#include "daemon/profile/profile.h"
#include "legacy/legacy.h"

namespace storevisor::daemon {

namespace {

Error Bad(const std::string& what) { return Error(ErrorCode::kInvalidArgument, what); }

bool ValidWorkloadName(const std::string& name) {
  if (name.empty() || name.size() > 40) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Result<int64_t> QueryInt(const HttpRequest& req, const std::string& key, int64_t fallback,
                         int64_t min, int64_t max) {
  std::string v = req.Query(key);
  if (v.empty()) return fallback;
  if (v.size() > 18 || v.find_first_not_of("-0123456789") != std::string::npos) {
    return Bad("query " + key + ": expected a whole number");
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) {
    return Bad("query " + key + ": expected a whole number");
  }
  if (n < min || n > max) return Bad("query " + key + ": out of range");
  return n;
}

Result<nlohmann::json> JsonBody(const HttpRequest& req) {
  if (!IsValidUtf8(req.body)) return Bad("body: not valid UTF-8");
  auto j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad("body: expected a JSON object");
  return j;
}

Status ParseApply(const HttpRequest& req, ApiCommand* cmd) {
  SV_ASSIGN_OR_RETURN(nlohmann::json j, JsonBody(req));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "profile" && it.key() != "file" && it.key() != "dryRun") {
      return Bad("body." + it.key() + ": unknown field; expected profile, file, dryRun");
    }
  }
  if (!j.contains("profile") || !j["profile"].is_string()) {
    return Bad("body.profile: expected the profile's YAML text as a string");
  }
  cmd->profile_yaml = j["profile"].get<std::string>();
  if (j.contains("file")) {
    if (!j["file"].is_string() || j["file"].get<std::string>().size() > 4096) {
      return Bad("body.file: expected a path string");
    }
    cmd->profile_file = j["file"].get<std::string>();
  }
  if (cmd->profile_file.empty()) cmd->profile_file = "profile.yaml";
  if (j.contains("dryRun")) {
    if (!j["dryRun"].is_boolean()) return Bad("body.dryRun: expected true or false");
    cmd->dry_run = j["dryRun"].get<bool>();
  }
  return Ok();
}

Status ParseRollback(const HttpRequest& req, ApiCommand* cmd) {
  cmd->idempotency_key = req.Header("idempotency-key");
  if (req.headers.count("idempotency-key") != 0 &&
      !api::ValidIdempotencyKey(cmd->idempotency_key)) {
    return Bad("Idempotency-Key: expected 1-128 characters of A-Z a-z 0-9 . _ -");
  }
  if (req.body.empty()) return Ok();  // the last committed generation
  SV_ASSIGN_OR_RETURN(nlohmann::json j, JsonBody(req));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "generation")
      return Bad("body." + it.key() + ": unknown field; expected generation");
  }
  if (j.contains("generation")) {
    const auto& g = j["generation"];
    if (!g.is_number_integer() || g.get<int64_t>() < 0) {
      return Bad("body.generation: expected a generation number (0: the last committed)");
    }
    cmd->rollback_to = g.get<int64_t>();
  }
  return Ok();
}

Status ParseExec(const HttpRequest& req, ApiCommand* cmd) {
  SV_ASSIGN_OR_RETURN(nlohmann::json j, JsonBody(req));
  if (!j.contains("cmd") || !j["cmd"].is_array() || j["cmd"].empty() || j["cmd"].size() > 256) {
    return Bad("body.cmd: expected a non-empty list of strings");
  }
  for (const auto& a : j["cmd"]) {
    if (!a.is_string()) return Bad("body.cmd: expected a list of strings");
    cmd->argv.push_back(a.get<std::string>());
  }
  if (j.contains("timeoutMs")) {
    if (!j["timeoutMs"].is_number_integer() || j["timeoutMs"].get<int64_t>() < 1 ||
        j["timeoutMs"].get<int64_t>() > 3600000) {
      return Bad("body.timeoutMs: expected 1..3600000");
    }
    cmd->timeout_ms = static_cast<int>(j["timeoutMs"].get<int64_t>());
  }
  return Ok();
}

Status ParseUsbDevice(const std::string& text, const std::string& where, ApiCommand* cmd) {
  if (text.size() > 64) return Bad(where + ": longer than 64 characters");
  auto id = legacy::ParseUsbHotplugId(text);
  if (!id) return Bad(where + ": " + id.error().message());
  cmd->usb_device = text;
  return Ok();
}

Status ParseUsb(const HttpRequest& req, ApiCommand* cmd) {
  if (req.method == "DELETE") {
    cmd->op = ApiOp::kUsbDetach;
    return ParseUsbDevice(req.Query("device"), "query device", cmd);
  }
  if (req.method != "POST") return Error(ErrorCode::kUnsupported, "usb: use POST or DELETE");
  cmd->op = ApiOp::kUsbAttach;
  SV_ASSIGN_OR_RETURN(nlohmann::json j, JsonBody(req));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "device")
      return Bad("body." + it.key().substr(0, 64) + ": unknown field; expected device");
  }
  if (!j.contains("device") || !j["device"].is_string()) {
    return Bad(
        "body.device: expected vendor:product (0c2e:0b61), bus-port (1-2.3) or bus:address (3:7)");
  }
  return ParseUsbDevice(j["device"].get<std::string>(), "body.device", cmd);
}

bool EventToken(const nlohmann::json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status ParsePostEvent(const HttpRequest& req, ApiCommand* cmd) {
  if (req.body.size() > kMaxEventBody) {
    return Bad("body: " + std::to_string(req.body.size()) + " bytes; an event is at most " +
               std::to_string(kMaxEventBody));
  }
  // data is one level below the body's object.
  if (JsonNestingDepth(req.body) > kMaxEventDepth + 1) {
    return Bad("body.data: nested deeper than " + std::to_string(kMaxEventDepth) + " levels");
  }
  SV_ASSIGN_OR_RETURN(nlohmann::json j, JsonBody(req));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "source" && it.key() != "type" && it.key() != "time" && it.key() != "data") {
      return Bad("body." + it.key().substr(0, 64) +
                 ": unknown field; expected source, type, "
                 "time, data");
    }
  }
  if (!j.contains("source") || !EventToken(j["source"])) {
    return Bad("body.source: expected 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  if (!j.contains("type") || !EventToken(j["type"])) {
    return Bad("body.type: expected 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  if (!j.contains("time") || !j["time"].is_string() ||
      !IsRfc3339(j["time"].get_ref<const std::string&>())) {
    return Bad("body.time: expected an RFC 3339 date-time such as 2026-11-25T12:00:00Z");
  }
  if (!j.contains("data") || !j["data"].is_object()) {
    return Bad("body.data: expected a JSON object");
  }
  cmd->event_source = j["source"].get<std::string>();
  cmd->event_type = j["type"].get<std::string>();
  cmd->event_time = j["time"].get<std::string>();
  cmd->event_data = j["data"].dump();
  return Ok();
}

Result<ApiCommand> ParseWorkloadRoute(const HttpRequest& req, std::string_view rest) {
  ApiCommand cmd;
  size_t slash = rest.find('/');
  cmd.name = std::string(rest.substr(0, slash));
  if (!ValidWorkloadName(cmd.name))
    return Bad("bad workload name '" + cmd.name.substr(0, 64) + "'");
  std::string action = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
  const std::string& m = req.method;
  if (action.empty()) {
    if (m == "GET")
      cmd.op = ApiOp::kGet;
    else if (m == "DELETE")
      cmd.op = ApiOp::kRemove;
    else
      return Error(ErrorCode::kUnsupported, "method " + m + " not allowed here");
    return cmd;
  }
  if (action == "logs") {
    if (m != "GET") return Error(ErrorCode::kUnsupported, "logs: use GET");
    cmd.op = ApiOp::kLogs;
    cmd.follow = req.Query("follow") == "1" || req.Query("follow") == "true";
    SV_ASSIGN_OR_RETURN(cmd.tail, QueryInt(req, "tail", -1, -1, 1000000));
    return cmd;
  }
  if (action == "screenshot" || action == "display") {
    if (m != "GET") return Error(ErrorCode::kUnsupported, action + ": use GET");
    cmd.op = action == "screenshot" ? ApiOp::kScreenshot : ApiOp::kDisplay;
    cmd.token = req.Header("x-display-token");
    if (cmd.token.size() > 256) return Bad("X-Display-Token: longer than 256 characters");
    return cmd;
  }
  if (action == "usb") {
    SV_TRY(ParseUsb(req, &cmd));
    return cmd;
  }
  if (m != "POST") return Error(ErrorCode::kUnsupported, action + ": use POST");
  if (action == "start")
    cmd.op = ApiOp::kStart;
  else if (action == "stop")
    cmd.op = ApiOp::kStop;
  else if (action == "restart")
    cmd.op = ApiOp::kRestart;
  else if (action == "console")
    cmd.op = ApiOp::kConsole;
  else if (action == "exec") {
    cmd.op = ApiOp::kExec;
    SV_TRY(ParseExec(req, &cmd));
  } else {
    return Error(ErrorCode::kNotFound, "no route " + req.path);
  }
  return cmd;
}

}  // namespace

bool IsRfc3339(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  auto digits = [&t](size_t pos, size_t n, int lo, int hi) {
    if (pos + n > t.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    return v >= lo && v <= hi;
  };
  if (t.size() < 20 || t.size() > 40) return false;
  if (!digits(0, 4, 0, 9999) || t[4] != '-' || !digits(5, 2, 1, 12) || t[7] != '-' ||
      !digits(8, 2, 1, 31) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2, 0, 23) ||
      t[13] != ':' || !digits(14, 2, 0, 59) || t[16] != ':' || !digits(17, 2, 0, 60)) {
    return false;
  }
  size_t pos = 19;
  if (t[pos] == '.') {
    const size_t start = ++pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
    if (pos == start || pos - start > 9) return false;
  }
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) return pos + 1 == t.size();
  if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    return pos + 6 == t.size() && digits(pos + 1, 2, 0, 23) && t[pos + 3] == ':' &&
           digits(pos + 4, 2, 0, 59);
  }
  return false;
}

Result<ApiCommand> ParseApiRequest(const HttpRequest& req) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  ApiCommand cmd;
  if (p == "/v1/events" && m == "POST") {
    cmd.op = ApiOp::kPostEvent;
    SV_TRY(ParsePostEvent(req, &cmd));
    return cmd;
  }
  if (p == "/v1/box") {
    if (m != "GET") return Error(ErrorCode::kUnsupported, p + ": use GET");
    cmd.op = ApiOp::kBox;
    return cmd;
  }
  if (p == "/v1/images/in-use") {
    if (m != "GET") return Error(ErrorCode::kUnsupported, p + ": use GET");
    cmd.op = ApiOp::kImagesInUse;
    return cmd;
  }
  if (p == "/v1/version" || p == "/metrics" || p == "/v1/workloads" || p == "/v1/events") {
    if (m != "GET") return Error(ErrorCode::kUnsupported, p + ": use GET");
    cmd.op = p == "/v1/version"     ? ApiOp::kVersion
             : p == "/metrics"      ? ApiOp::kMetrics
             : p == "/v1/workloads" ? ApiOp::kList
                                    : ApiOp::kEvents;
    if (cmd.op == ApiOp::kEvents) {
      cmd.follow = req.Query("follow") == "1" || req.Query("follow") == "true";
      SV_ASSIGN_OR_RETURN(cmd.since, QueryInt(req, "since", 0, 0, INT64_MAX / 2));
    }
    return cmd;
  }
  if (p == "/v1/apply" || p == "/v1/diff") {
    if (m != "POST") return Error(ErrorCode::kUnsupported, p + ": use POST");
    cmd.op = ApiOp::kApply;
    SV_TRY(ParseApply(req, &cmd));
    if (p == "/v1/diff") cmd.dry_run = true;
    cmd.idempotency_key = req.Header("idempotency-key");
    if (req.headers.count("idempotency-key") != 0 &&
        !api::ValidIdempotencyKey(cmd.idempotency_key)) {
      return Bad("Idempotency-Key: expected 1-128 characters of A-Z a-z 0-9 . _ -");
    }
    return cmd;
  }
  if (p == "/v1/generations") {
    if (m != "GET") return Error(ErrorCode::kUnsupported, "generations: use GET");
    cmd.op = ApiOp::kGenerations;
    SV_ASSIGN_OR_RETURN(cmd.limit, QueryInt(req, "limit", 50, 1, 1000));
    return cmd;
  }
  if (p == "/v1/rollback") {
    if (m != "POST") return Error(ErrorCode::kUnsupported, p + ": use POST");
    cmd.op = ApiOp::kRollback;
    SV_TRY(ParseRollback(req, &cmd));
    return cmd;
  }
  constexpr std::string_view kGenerations = "/v1/generations/";
  if (p.rfind(kGenerations, 0) == 0) {
    if (m != "GET") return Error(ErrorCode::kUnsupported, "generations: use GET");
    cmd.op = ApiOp::kGeneration;
    cmd.generation = p.substr(kGenerations.size());
    // A key, or a digest such as sha256:<hex>.
    std::string plain = cmd.generation;
    if (plain.rfind("sha256:", 0) == 0) plain = plain.substr(7);
    if (!api::ValidIdempotencyKey(plain)) {
      return Bad("generation: expected an idempotency key or a profile digest");
    }
    return cmd;
  }
  constexpr std::string_view kPrefix = "/v1/workloads/";
  if (p.rfind(kPrefix, 0) == 0)
    return ParseWorkloadRoute(req, std::string_view(p).substr(kPrefix.size()));
  return Error(ErrorCode::kNotFound, "no route " + p.substr(0, 200));
}

bool TokenMatches(const std::string& token, const HttpRequest& request) {
  // Constant-time compare: the token must not leak through timing.
  const std::string got = request.Header("authorization");
  const std::string want = "Bearer " + token;
  unsigned diff = got.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i)
    diff |= static_cast<unsigned>(got[i] ^ want[i]);
  return !token.empty() && diff == 0;
}

bool IsLongRequest(const HttpRequest& request) {
  const std::string& p = request.path;
  const bool follow = request.Query("follow") == "1" || request.Query("follow") == "true";
  auto ends_with = [&p](std::string_view tail) {
    return p.size() >= tail.size() && p.compare(p.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (p == "/v1/events" || ends_with("/logs")) return follow;
  return ends_with("/console") || ends_with("/display") || ends_with("/exec");
}

std::string UsbDeviceId(const std::string& usb_id) {
  // QEMU ids start with a letter and hold letters, digits, '-', '.' and '_'; one id per
  // host device, so detach finds what attach made from the same text.
  std::string id = "usb-";
  for (char c : usb_id) id += std::isalnum(static_cast<unsigned char>(c)) != 0 ? c : '-';
  return id;
}

}  // namespace storevisor::daemon
