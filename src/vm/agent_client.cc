// Client for the QEMU guest agent protocol. The agent runs inside the guest, so all it
// sends is untrusted: JsonStream caps sizes and nesting, every field is type-checked,
// and guest-sync-delimited (0xFF, then a reply carrying our random id) re-aligns the
// stream after a timeout or a stale reply.
#include <random>
#include <thread>

#include "vm/unix_socket.h"
#include "vm/vm.h"

namespace storevisor::vm {

using internal::Deadline;
using nlohmann::json;

namespace {
Deadline After(Millis t) { return std::chrono::steady_clock::now() + t; }
Millis Left(Deadline d) {
  auto l = std::chrono::duration_cast<Millis>(d - std::chrono::steady_clock::now());
  return l.count() < 0 ? Millis(0) : l;
}
}  // namespace

Result<AgentClient> AgentClient::Connect(const std::string& socket_path, Millis timeout) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, internal::ConnectUnix(socket_path, After(timeout)));
  return FromFd(std::move(fd));
}

AgentClient AgentClient::FromFd(UniqueFd fd) {
  AgentClient c(std::move(fd));
  std::random_device rd;
  c.sync_seed_ = (static_cast<uint64_t>(rd()) << 20) ^ rd();
  return c;
}

Status AgentClient::SendRaw(std::string_view bytes) {
  if (!fd_.valid()) return Error(ErrorCode::kUnavailable, "agent: not connected");
  return internal::SendAll(fd_.get(), bytes);
}

Result<json> AgentClient::ReadMessage(Deadline deadline) {
  for (;;) {
    if (auto m = stream_.Next()) {
      if (!m->has_value()) return std::move(*m).error().Context("guest agent");
      return std::move(m->value());
    }
    auto bytes = internal::ReadSome(fd_.get(), deadline);
    if (!bytes) return std::move(bytes).error().Context("guest agent");
    stream_.Feed(*bytes);
  }
}

Status AgentClient::Sync(Millis timeout) {
  // Ids stay below 2^53 so that they survive agents that store numbers as doubles.
  int64_t id = static_cast<int64_t>(++sync_seed_ & ((1ULL << 52) - 1));
  json req{{"execute", "guest-sync-delimited"}, {"arguments", {{"id", id}}}};
  SV_TRY_CTX(SendRaw("\xFF" + req.dump() + "\n"), "guest agent sync");
  Deadline deadline = After(timeout);
  for (;;) {
    auto msg = ReadMessage(deadline);
    if (!msg) {
      if (msg.error().code() == ErrorCode::kGuestFault) continue;
      return std::move(msg).error().Context("guest-sync-delimited");
    }
    if (msg->contains("return") && (*msg)["return"] == id) return Ok();
    // Anything else is a stale reply (an earlier sync or command): drop it.
  }
}

Result<json> AgentClient::Execute(const std::string& command, const json& arguments,
                                  Millis timeout) {
  Deadline deadline = After(timeout);
  // Sync first: replies the stream may still hold from an abandoned command go.
  SV_TRY(Sync(Left(deadline)));
  json req{{"execute", command}};
  if (!arguments.empty()) req["arguments"] = arguments;
  SV_TRY_CTX(SendRaw(req.dump() + "\n"), "guest agent " + command);
  for (;;) {
    auto msg = ReadMessage(deadline);
    if (!msg) {
      if (msg.error().code() == ErrorCode::kGuestFault) return std::move(msg).error();
      return std::move(msg).error().Context("waiting for the reply to '" + command + "'");
    }
    json& m = *msg;
    if (m.contains("return")) return std::move(m["return"]);
    if (m.contains("error") && m["error"].is_object()) {
      const json& e = m["error"];
      std::string desc =
          e.contains("desc") && e["desc"].is_string() ? e["desc"].get<std::string>() : "?";
      std::string msg = "guest agent " + command;
      msg += ": ";
      msg += desc;
      return Error(ErrorCode::kFailedPrecondition, msg);
    }
    return Error(ErrorCode::kGuestFault,
                 "guest agent " + command + ": reply has neither return nor error");
  }
}

Status AgentClient::Shutdown(const std::string& mode) {
  SV_TRY(Sync(Millis(3000)));
  json req{{"execute", "guest-shutdown"}, {"arguments", {{"mode", mode}}}};
  return SendRaw(req.dump() + "\n");
}

namespace {
Result<std::string> B64Field(const json& r, const char* key) {
  if (!r.contains(key)) return std::string();
  if (!r[key].is_string())
    return Error(ErrorCode::kGuestFault, std::string(key) + " is not a string");
  auto d = DecodeBase64(r[key].get<std::string>());
  if (!d) return Error(ErrorCode::kGuestFault, std::string(key) + " is not valid base64");
  return std::move(*d);
}
}  // namespace

Result<ExecResult> AgentClient::Exec(const std::vector<std::string>& argv, Millis timeout,
                                     const std::string& input, Millis max_poll) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "guest exec: no command given");
  Deadline deadline = After(timeout);
  json args{{"path", argv[0]},
            {"arg", std::vector<std::string>(argv.begin() + 1, argv.end())},
            {"capture-output", true}};
  if (!input.empty()) args["input-data"] = EncodeBase64(input);
  SV_ASSIGN_OR_RETURN(json started, Execute("guest-exec", args, Left(deadline)));
  if (!started.is_object() || !started.contains("pid") || !started["pid"].is_number_integer()) {
    return Error(ErrorCode::kGuestFault, "guest-exec: reply has no integer pid");
  }
  int64_t pid = started["pid"].get<int64_t>();
  Millis poll = std::min(Millis(10), max_poll);
  for (;;) {
    SV_ASSIGN_OR_RETURN(json st, Execute("guest-exec-status", {{"pid", pid}}, Left(deadline)));
    if (!st.is_object() || !st.contains("exited") || !st["exited"].is_boolean()) {
      return Error(ErrorCode::kGuestFault, "guest-exec-status: reply has no boolean 'exited'");
    }
    if (st["exited"].get<bool>()) {
      ExecResult r;
      if (st.contains("exitcode") && st["exitcode"].is_number_integer())
        r.exit_code = st["exitcode"].get<int>();
      if (st.contains("signal") && st["signal"].is_number_integer())
        r.signal = st["signal"].get<int>();
      SV_ASSIGN_OR_RETURN(r.out, B64Field(st, "out-data"));
      SV_ASSIGN_OR_RETURN(r.err, B64Field(st, "err-data"));
      return r;
    }
    if (Left(deadline).count() == 0) {
      return Error(ErrorCode::kTimeout, "guest exec: '" + argv[0] + "' still running after " +
                                            std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::min(poll, Left(deadline)));
    poll = std::min(poll * 2, max_poll);
  }
}

namespace {
constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string EncodeBase64(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kB64[v & 63] : '=');
  }
  return out;
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = in[i + k];
      int d = 0;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
      } else {
        auto pos = kB64.find(c);
        if (pos == std::string_view::npos || pad > 0) return std::nullopt;
        d = static_cast<int>(pos);
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    if (pad == 1 && in[i + 3] != '=') return std::nullopt;
    out.push_back(static_cast<char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xFF));
  }
  return out;
}

}  // namespace storevisor::vm
