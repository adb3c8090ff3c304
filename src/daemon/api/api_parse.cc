#include <nlohmann/json.hpp>

#include "daemon/api/api.h"
#include "daemon/profile/profile.h"

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
  int64_t n = std::stoll(v);
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
  if (m != "POST") return Error(ErrorCode::kUnsupported, action + ": use POST");
  if (action == "start")
    cmd.op = ApiOp::kStart;
  else if (action == "stop")
    cmd.op = ApiOp::kStop;
  else if (action == "restart")
    cmd.op = ApiOp::kRestart;
  else if (action == "exec") {
    cmd.op = ApiOp::kExec;
    SV_TRY(ParseExec(req, &cmd));
  } else {
    return Error(ErrorCode::kNotFound, "no route " + req.path);
  }
  return cmd;
}

}  // namespace

Result<ApiCommand> ParseApiRequest(const HttpRequest& req) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  ApiCommand cmd;
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
    return cmd;
  }
  constexpr std::string_view kPrefix = "/v1/workloads/";
  if (p.rfind(kPrefix, 0) == 0)
    return ParseWorkloadRoute(req, std::string_view(p).substr(kPrefix.size()));
  return Error(ErrorCode::kNotFound, "no route " + p.substr(0, 200));
}

}  // namespace storevisor::daemon
