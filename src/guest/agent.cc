#include "guest/agent.h"

#include <sys/wait.h>

#include <array>

namespace storevisor::guest {

using nlohmann::json;

namespace {
constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int B64Value(char c) {
  auto pos = kB64.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

json Error(std::string_view desc) {
  return json{{"error", {{"class", "GenericError"}, {"desc", desc}}}};
}
}  // namespace

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kB64[(v >> s) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    std::array<int, 4> v{};
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = B64Value(c);
      if (v[k] < 0) return std::nullopt;
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xFF));
  }
  return out;
}

void AppendCapped(std::string* buf, std::string_view data, size_t limit, bool* truncated) {
  size_t room = buf->size() < limit ? limit - buf->size() : 0;
  if (data.size() > room) *truncated = true;
  buf->append(data.substr(0, room));
}

std::string ErrorReply(std::string_view desc) {
  return Error(desc).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string Agent::Handle(std::string_view message) {
  return HandleRequest(json::parse(message, nullptr, /*allow_exceptions=*/false));
}

std::string Agent::HandleRequest(const json& req) {
  json resp;
  bool no_reply = false;
  bool delimited = false;
  if (!req.is_object() || !req.contains("execute") || !req["execute"].is_string()) {
    resp = Error("Invalid JSON syntax or missing 'execute'");
  } else {
    std::string cmd = req["execute"].get<std::string>();
    json args = req.value("arguments", json::object());
    if (!args.is_object()) {
      resp = Error("'arguments' must be an object");
    } else {
      delimited = cmd == "guest-sync-delimited";
      try {
        resp = Dispatch(cmd, args, &no_reply);
      } catch (const json::exception& e) {  // a field of the wrong type
        resp = Error(std::string("bad arguments: ") + e.what());
      }
    }
    if (req.contains("id")) resp["id"] = req["id"];
  }
  if (no_reply) return {};
  std::string out = resp.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  if (delimited) out.insert(out.begin(), '\xFF');
  return out;
}

json Agent::Dispatch(const std::string& cmd, const json& args, bool* no_reply) {
  if (cmd == "guest-ping") return json{{"return", json::object()}};
  if (cmd == "guest-sync" || cmd == "guest-sync-delimited") {
    if (!args.contains("id") || !args["id"].is_number_integer()) {
      return Error("guest-sync needs an integer 'id'");
    }
    return json{{"return", args["id"]}};
  }
  if (cmd == "guest-info") {
    json cmds = json::array();
    for (const char* c :
         {"guest-ping", "guest-sync", "guest-sync-delimited", "guest-info", "guest-exec",
          "guest-exec-status", "guest-shutdown", "guest-get-osinfo"}) {
      cmds.push_back({{"name", c}, {"enabled", true}, {"success-response", true}});
    }
    return json{{"return", {{"version", "storevisor-agent 0.1"}, {"supported_commands", cmds}}}};
  }
  if (cmd == "guest-exec") return Exec(args);
  if (cmd == "guest-exec-status") return ExecStatus(args);
  if (cmd == "guest-get-osinfo") return json{{"return", system_.os_info()}};
  if (cmd == "guest-shutdown") {
    std::string mode = args.value("mode", "powerdown");
    if (mode != "powerdown" && mode != "halt" && mode != "reboot") {
      return Error("guest-shutdown: mode must be powerdown, halt or reboot");
    }
    *no_reply = true;
    system_.shutdown(mode);
    return {};
  }
  json e = Error("The command " + cmd + " has not been found");
  e["error"]["class"] = "CommandNotFound";
  return e;
}

namespace {
// Reads an optional array of strings; false when it is present but malformed.
bool StringList(const json& args, const char* key, std::vector<std::string>* out) {
  if (!args.contains(key)) return true;
  const json& a = args[key];
  if (!a.is_array()) return false;
  for (const auto& v : a) {
    if (!v.is_string()) return false;
    out->push_back(v.get<std::string>());
  }
  return true;
}
}  // namespace

json Agent::Exec(const json& args) {
  if (!args.contains("path") || !args["path"].is_string()) {
    return Error("guest-exec needs a string 'path'");
  }
  std::vector<std::string> argv;
  std::vector<std::string> env;
  if (!StringList(args, "arg", &argv) || !StringList(args, "env", &env)) {
    return Error("guest-exec: 'arg' and 'env' must be arrays of strings");
  }
  std::string input;
  if (args.contains("input-data")) {
    if (!args["input-data"].is_string()) return Error("guest-exec: 'input-data' must be base64");
    auto decoded = Base64Decode(args["input-data"].get<std::string>());
    if (!decoded) return Error("guest-exec: 'input-data' is not valid base64");
    input = std::move(*decoded);
  }
  const json& cap = args.contains("capture-output") ? args["capture-output"] : json(false);
  bool capture = cap.is_boolean() ? cap.get<bool>() : cap.is_string();
  if (execs_.size() >= kMaxExecs) return Error("guest-exec: too many unreaped processes");
  ExecState st;
  auto err = system_.spawn(args["path"].get<std::string>(), argv, env, input, capture, &st);
  if (err) return Error("guest-exec: " + *err);
  int64_t pid = st.pid;
  execs_[pid] = std::move(st);
  return json{{"return", {{"pid", pid}}}};
}

json Agent::ExecStatus(const json& args) {
  if (!args.contains("pid") || !args["pid"].is_number_integer()) {
    return Error("guest-exec-status needs an integer 'pid'");
  }
  auto it = execs_.find(args["pid"].get<int64_t>());
  if (it == execs_.end()) return Error("Invalid parameter 'pid'");
  const ExecState& st = it->second;
  json r{{"exited", st.exited}};
  bool drained = st.out_fd < 0 && st.err_fd < 0;
  if (!st.exited || !drained) {
    r["exited"] = false;
    return json{{"return", r}};
  }
  if (WIFEXITED(st.wait_status)) r["exitcode"] = WEXITSTATUS(st.wait_status);
  if (WIFSIGNALED(st.wait_status)) r["signal"] = WTERMSIG(st.wait_status);
  if (!st.out.empty()) r["out-data"] = Base64Encode(st.out);
  if (!st.err.empty()) r["err-data"] = Base64Encode(st.err);
  if (st.out_truncated) r["out-truncated"] = true;
  if (st.err_truncated) r["err-truncated"] = true;
  execs_.erase(it);  // reported once, as qemu-ga does
  return json{{"return", r}};
}

}  // namespace storevisor::guest
