// Our QMP client. QEMU sends one JSON object per line: a greeting, then replies
// (matched by the "id" we attach) and asynchronous events, which are queued for
// WaitEvent. Everything QEMU sends goes through JsonStream's caps.
#include "vm/unix_socket.h"
#include "vm/vm.h"

namespace storevisor::vm {

using internal::Deadline;
using nlohmann::json;

namespace {
Deadline After(Millis t) { return std::chrono::steady_clock::now() + t; }
}  // namespace

Result<QmpClient> QmpClient::Connect(const std::string& socket_path, Millis timeout) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, internal::ConnectUnix(socket_path, After(timeout)));
  auto c = FromFd(std::move(fd), timeout);
  if (!c) return std::move(c).error().Context("QMP " + socket_path);
  return c;
}

Result<QmpClient> QmpClient::FromFd(UniqueFd fd, Millis timeout) {
  QmpClient c(std::move(fd));
  Deadline deadline = After(timeout);
  SV_ASSIGN_OR_RETURN(json greeting, c.ReadMessage(deadline));
  if (!greeting.contains("QMP") || !greeting["QMP"].is_object()) {
    return Error(ErrorCode::kGuestFault,
                 "QMP: expected a greeting, got " + greeting.dump().substr(0, 200));
  }
  c.greeting_ = std::move(greeting);
  auto caps = c.Execute("qmp_capabilities", json::object(), timeout);
  if (!caps) return std::move(caps).error().Context("QMP capabilities negotiation");
  return c;
}

Status QmpClient::Send(const json& msg, int pass_fd) {
  return internal::SendAll(fd_.get(), msg.dump() + "\n", pass_fd);
}

Result<json> QmpClient::ReadMessage(Deadline deadline) {
  for (;;) {
    while (auto m = stream_.Next()) {
      if (!m->has_value()) return std::move(*m).error().Context("QMP");
      return std::move(m->value());
    }
    auto bytes = internal::ReadSome(fd_.get(), deadline);
    if (!bytes) return std::move(bytes).error().Context("QMP");
    stream_.Feed(*bytes);
  }
}

Result<json> QmpClient::Execute(const std::string& command, const json& arguments, Millis timeout) {
  return ExecuteWithFd(command, arguments, -1, timeout);
}

Result<json> QmpClient::ExecuteWithFd(const std::string& command, const json& arguments, int fd,
                                      Millis timeout) {
  if (!fd_.valid()) return Error(ErrorCode::kUnavailable, "QMP: not connected");
  uint64_t id = next_id_++;
  json req{{"execute", command}, {"id", id}};
  if (!arguments.empty()) req["arguments"] = arguments;
  SV_TRY_CTX(Send(req, fd), "QMP " + command);
  Deadline deadline = After(timeout);
  for (;;) {
    auto msg = ReadMessage(deadline);
    if (!msg) {
      Error e = std::move(msg).error();
      if (e.code() == ErrorCode::kGuestFault) continue;  // a bad line: skip it
      return e.Context("waiting for the reply to '" + command + "'");
    }
    json& m = *msg;
    if (m.contains("event") && m["event"].is_string()) {
      events_.push_back({m["event"].get<std::string>(), m.value("data", json::object())});
      if (events_.size() > 256) events_.pop_front();
      continue;
    }
    if (!m.contains("id") || m["id"] != id) continue;  // stale reply to an abandoned command
    if (m.contains("return")) return std::move(m["return"]);
    if (m.contains("error") && m["error"].is_object()) {
      const json& e = m["error"];
      std::string cls =
          e.contains("class") && e["class"].is_string() ? e["class"].get<std::string>() : "?";
      std::string desc =
          e.contains("desc") && e["desc"].is_string() ? e["desc"].get<std::string>() : "?";
      std::string msg = "QMP " + command;
      msg.append(": ").append(cls).append(": ").append(desc);
      return Error(ErrorCode::kFailedPrecondition, msg);
    }
    return Error(ErrorCode::kGuestFault, "QMP " + command + ": reply has neither return nor error");
  }
}

Result<std::optional<QmpEvent>> QmpClient::WaitEvent(Millis timeout) {
  if (!events_.empty()) {
    QmpEvent e = std::move(events_.front());
    events_.pop_front();
    return std::optional<QmpEvent>(std::move(e));
  }
  Deadline deadline = After(timeout);
  for (;;) {
    auto msg = ReadMessage(deadline);
    if (!msg) {
      if (msg.error().code() == ErrorCode::kTimeout) return std::optional<QmpEvent>();
      if (msg.error().code() == ErrorCode::kGuestFault) continue;
      return std::move(msg).error();
    }
    if (msg->contains("event") && (*msg)["event"].is_string()) {
      return std::optional<QmpEvent>(
          QmpEvent{(*msg)["event"].get<std::string>(), msg->value("data", json::object())});
    }
  }
}

Result<QmpEvent> QmpClient::WaitForEvent(const std::string& name, Millis timeout) {
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (it->name == name) {
      QmpEvent e = std::move(*it);
      events_.erase(it);
      return e;
    }
  }
  Deadline deadline = After(timeout);
  std::deque<QmpEvent> others;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    SV_ASSIGN_OR_RETURN(auto ev, WaitEvent(left));
    if (!ev) break;
    if (ev->name == name) {
      events_.insert(events_.begin(), others.begin(), others.end());
      return std::move(*ev);
    }
    others.push_back(std::move(*ev));
  }
  events_.insert(events_.begin(), others.begin(), others.end());
  return Error(ErrorCode::kTimeout, "QMP: no " + name + " event in time");
}

}  // namespace storevisor::vm
