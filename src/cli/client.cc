#include "cli/client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "daemon/api/http.h"

namespace storevisor::cli {

namespace {

Result<UniqueFd> Send(const std::string& endpoint, const std::string& token,
                      const std::string& method, const std::string& path, const std::string& body,
                      const std::string& connection = "close") {
  auto fd = daemon::ConnectEndpoint(endpoint);
  if (!fd) {
    return Error(ErrorCode::kUnavailable, "cannot reach storevisord at " + endpoint + " (" +
                                              fd.error().message() +
                                              "); is it running? (--socket or STOREVISOR_SOCKET)");
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: storevisord\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty() || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "Connection: " + connection + "\r\n";
  if (connection == "Upgrade") req += "Upgrade: tcp\r\n";
  req += "\r\n" + body;
  SV_TRY(WriteAll(fd->get(), req));
  return std::move(*fd);
}

}  // namespace

int ReportReply(const Reply& r) {
  if (r.status >= 200 && r.status < 300) return 0;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::fprintf(stderr, "storevisor: %s\n",
               j.is_object() ? j.value("error", r.body).c_str() : r.body.c_str());
  const std::string code = j.is_object() ? j.value("code", "internal") : "internal";
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    if (ErrorCodeName(static_cast<ErrorCode>(c)) == code) {
      return ExitCodeFor(static_cast<ErrorCode>(c));
    }
  }
  return ExitCodeFor(r.status == 404 ? ErrorCode::kNotFound : ErrorCode::kInternal);
}

Result<Reply> Client::Call(const std::string& method, const std::string& path,
                           const std::string& body) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Send(endpoint_, token_, method, path, body));
  SV_ASSIGN_OR_RETURN(std::string raw, ReadAll(fd.get(), 64u << 20));
  size_t offset = 0;
  SV_ASSIGN_OR_RETURN(auto head, daemon::ParseHttpResponseHead(raw, &offset));
  if (!head) return Error(ErrorCode::kGuestFault, "storevisord closed the connection early");
  return Reply{head->status, raw.substr(offset)};
}

Result<std::optional<UniqueFd>> Client::Upgrade(const std::string& path, std::string* early,
                                                Reply* refusal) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Send(endpoint_, token_, "POST", path, "", "Upgrade"));
  std::string buf;
  char chunk[4096];
  while (buf.size() < daemon::kMaxHeaderBytes) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n <= 0) return Error(ErrorCode::kUnavailable, "storevisord closed the connection early");
    buf.append(chunk, static_cast<size_t>(n));
    size_t offset = 0;
    SV_ASSIGN_OR_RETURN(auto head, daemon::ParseHttpResponseHead(buf, &offset));
    if (!head) continue;
    if (head->status == 101) {
      *early = buf.substr(offset);
      return std::optional<UniqueFd>(std::move(fd));
    }
    SV_ASSIGN_OR_RETURN(std::string more, ReadAll(fd.get(), 1u << 20));
    *refusal = Reply{head->status, buf.substr(offset) + more};
    return std::optional<UniqueFd>();
  }
  return Error(ErrorCode::kGuestFault, "storevisord sent an oversized response head");
}

Result<Reply> Client::Stream(const std::string& path,
                             const std::function<bool(std::string_view)>& on_data) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Send(endpoint_, token_, "GET", path, ""));
  std::string buf;
  char chunk[8192];
  bool in_body = false;
  int status = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n <= 0) break;
    if (in_body) {
      if (!on_data(std::string_view(chunk, static_cast<size_t>(n)))) break;
      continue;
    }
    buf.append(chunk, static_cast<size_t>(n));
    size_t offset = 0;
    SV_ASSIGN_OR_RETURN(auto head, daemon::ParseHttpResponseHead(buf, &offset));
    if (!head) continue;
    status = head->status;
    in_body = true;
    if (status != 200) {  // the daemon's error: for the caller, not the stream's reader
      SV_ASSIGN_OR_RETURN(std::string more, ReadAll(fd.get(), 1u << 20));
      return Reply{status, buf.substr(offset) + more};
    }
    if (offset < buf.size() && !on_data(std::string_view(buf).substr(offset))) break;
  }
  return Reply{status, ""};
}

}  // namespace storevisor::cli
