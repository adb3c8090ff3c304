#include "api/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <boost/beast/http.hpp>
#include <cctype>
#include <cstring>
#include <memory>

#include "api/json.h"

namespace storevisor::api {

namespace {

namespace http = boost::beast::http;

constexpr int kPollForever = -1;

int PollTimeout(Clock::time_point deadline) {
  if (deadline == kNoDeadline) return kPollForever;
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1 << 30));
}

Status WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, PollTimeout(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError("poll");
    if (r == 0) return Error(ErrorCode::kTimeout, "storevisord did not answer in time");
    return Ok();
  }
}

Status SendAll(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    SV_TRY(WaitFor(fd, POLLOUT, deadline));
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0)
      return Error(ErrorCode::kGuestFault,
                   "connection broken (send: " + std::string(std::strerror(errno)) + ")");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

// Appends what the socket has; 0 at end of stream.
Result<size_t> ReadSome(int fd, std::string* buf, Clock::time_point deadline) {
  char chunk[16384];
  while (true) {
    SV_TRY(WaitFor(fd, POLLIN, deadline));
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0)
      return Error(ErrorCode::kGuestFault,
                   "connection broken (recv: " + std::string(std::strerror(errno)) + ")");
    buf->append(chunk, static_cast<size_t>(n));
    return static_cast<size_t>(n);
  }
}

Error Malformed(const std::string& what) {
  return Error(ErrorCode::kGuestFault, "storevisord sent a malformed reply: " + what);
}

Error BeastError(const boost::system::error_code& ec) {
  if (ec == http::error::header_limit) return Malformed("head larger than 16 KiB");
  if (ec == http::error::body_limit) return Malformed("body larger than 64 MiB");
  return Malformed(ec.message());
}

// Reads a reply's head (and with eager, its whole body) through Beast's parser. `buf` keeps
// the bytes that came after what the parser took.
template <class Parser>
Status ReadHead(int fd, Parser& parser, std::string* buf, Clock::time_point deadline, bool* eof) {
  while (!parser.is_header_done()) {
    if (!buf->empty()) {
      boost::system::error_code ec;
      const size_t used = parser.put(boost::asio::buffer(buf->data(), buf->size()), ec);
      buf->erase(0, used);
      if (ec && ec != http::error::need_more) return BeastError(ec);
      if (parser.is_header_done()) break;
      if (buf->size() > kMaxReplyHead) return Malformed("head larger than 16 KiB");
    }
    SV_ASSIGN_OR_RETURN(size_t n, ReadSome(fd, buf, deadline));
    if (n == 0) {
      *eof = true;
      return Error(ErrorCode::kGuestFault,
                   "connection broken: storevisord closed it before the reply's head");
    }
  }
  return Ok();
}

Response ToResponse(const http::response<http::string_body>& msg) {
  Response r;
  r.status = static_cast<int>(msg.result_int());
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(field.value());
  }
  r.body = msg.body();
  return r;
}

// Reads the rest of a reply whose head the parser has: by Content-Length or until close.
Status FinishBody(int fd, http::response_parser<http::string_body>& parser, std::string* buf,
                  Clock::time_point deadline) {
  parser.eager(true);
  while (!parser.is_done()) {
    if (!buf->empty()) {
      boost::system::error_code ec;
      const size_t used = parser.put(boost::asio::buffer(buf->data(), buf->size()), ec);
      buf->erase(0, used);
      if (ec && ec != http::error::need_more) return BeastError(ec);
      if (parser.is_done()) break;
    }
    SV_ASSIGN_OR_RETURN(size_t n, ReadSome(fd, buf, deadline));
    if (n == 0) {
      boost::system::error_code ec;
      parser.put_eof(ec);
      if (ec) {
        return Error(ErrorCode::kGuestFault,
                     "connection broken: storevisord closed it in the middle of the reply");
      }
      break;
    }
  }
  return Ok();
}

// Reads one whole reply.
Result<Response> ReadReply(int fd, Clock::time_point deadline) {
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxReplyHead);
  parser.body_limit(kMaxReplyBody);
  parser.eager(true);
  std::string buf;
  bool eof = false;
  SV_TRY(ReadHead(fd, parser, &buf, deadline, &eof));
  SV_TRY(FinishBody(fd, parser, &buf, deadline));
  return ToResponse(parser.get());
}

template <typename T, typename F>
Result<T> Decode(const Response& r, F from_json) {
  auto j = ParseJson(r.body);
  if (!j) return Malformed("body is not JSON");
  auto v = from_json(*j);
  if (!v) return Malformed(v.error().message());
  return v;
}

Result<UniqueFd> ConnectTo(const sockaddr* addr, socklen_t len, int family,
                           Clock::time_point deadline, const std::string& what) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoError("socket");
  if (::connect(fd.get(), addr, len) != 0) {
    int err = errno;
    if (err == EINPROGRESS || err == EAGAIN) {
      SV_TRY(WaitFor(fd.get(), POLLOUT, deadline));
      socklen_t err_len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len);
    }
    if (err == EACCES || err == EPERM) {
      return Error(ErrorCode::kPermissionDenied,
                   "permission denied on storevisord's socket " + what +
                       " (run as root or as a member of the socket's group)",
                   err);
    }
    if (err != 0) {
      return Error(ErrorCode::kUnavailable,
                   "cannot reach storevisord at " + what + " (" + std::strerror(err) +
                       "); is it running? (--socket or STOREVISOR_SOCKET)",
                   err);
    }
  }
  return fd;
}

}  // namespace

std::string Endpoint::ToString() const {
  return unix_socket ? path : "tcp:" + host + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text) {
  const auto bad = [](const char* why) { return Error(ErrorCode::kInvalidArgument, why); };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("host and port are required");
  std::string_view host = text.substr(0, colon);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > 253) return bad("bad host");
  for (const char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':')) {
      return bad("bad character in the host");
    }
  }
  const std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5) return bad("bad port");
  int p = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return bad("bad port");
    p = p * 10 + (c - '0');
  }
  if (p < 1 || p > 65535) return bad("port out of range");
  return HostPort{std::string(host), p};
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  Endpoint ep;
  const auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 "endpoint \"" + std::string(text.substr(0, 200)) + "\": " + why +
                     " (use /path/to.sock, unix:/path, tcp:HOST:PORT or http://HOST:PORT)");
  };
  std::string_view hostport;
  if (text.starts_with("tcp:")) {
    hostport = text.substr(4);
  } else if (text.starts_with("http://")) {
    std::string_view rest = text.substr(7);
    const size_t slash = rest.find('/');
    hostport = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
      ep.prefix = std::string(rest.substr(slash));
      while (!ep.prefix.empty() && ep.prefix.back() == '/') ep.prefix.pop_back();
      for (char c : ep.prefix) {
        if (c <= ' ' || c == 0x7f || c == '?' || c == '#') return bad("bad character in the path");
      }
    }
  } else {
    ep.path = std::string(text.starts_with("unix:") ? text.substr(5) : text);
    if (ep.path.empty()) return bad("empty socket path");
    if (ep.path.size() >= sizeof(sockaddr_un{}.sun_path)) return bad("socket path too long");
    if (ep.path.find('\0') != std::string::npos) return bad("NUL in the socket path");
    return ep;
  }
  ep.unix_socket = false;
  auto hp = ParseHostPort(hostport);
  if (!hp) return bad(hp.error().message());
  ep.host = std::move(hp->host);
  ep.port = hp->port;
  return ep;
}

Result<UniqueFd> Connect(const Endpoint& ep, Clock::time_point deadline) {
  if (ep.unix_socket) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, ep.path.data(), ep.path.size());  // length checked when parsed
    return ConnectTo(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, AF_UNIX, deadline,
                     ep.path);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &found);
  if (rc != 0) {
    return Error(ErrorCode::kUnavailable, "resolving " + ep.host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
  Error last(ErrorCode::kUnavailable, "no address for " + ep.host);
  for (const addrinfo* a = list.get(); a != nullptr; a = a->ai_next) {
    auto fd = ConnectTo(a->ai_addr, a->ai_addrlen, a->ai_family, deadline, ep.ToString());
    if (fd) return fd;
    last = fd.error();
  }
  return last;
}

std::string Response::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string SerializeRequest(const Request& request, const std::string& host,
                             const std::string& bearer) {
  http::request<http::string_body> msg;
  msg.version(11);
  msg.method_string(request.method);
  msg.target(request.target);
  msg.set(http::field::host, host);
  msg.set(http::field::user_agent, "storevisor");
  if (!bearer.empty()) msg.set(http::field::authorization, "Bearer " + bearer);
  bool upgrade = false;
  for (const auto& [name, value] : request.headers) {
    msg.set(name, value);
    upgrade = upgrade || boost::beast::iequals(name, "upgrade");
  }
  msg.set(http::field::connection, upgrade ? "Upgrade" : "close");
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    msg.set(http::field::content_type, request.content_type);
    msg.body() = request.body;
    msg.prepare_payload();
  }
  std::string head;
  for (const auto& field : msg) {
    head += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
  }
  return request.method + " " + request.target + " HTTP/1.1\r\n" + head + "\r\n" + request.body;
}

Result<Response> Exchange(int fd, const Request& request, const std::string& host,
                          const std::string& bearer, Clock::time_point deadline) {
  SV_TRY(SendAll(fd, SerializeRequest(request, host, bearer), deadline));
  return ReadReply(fd, deadline);
}

Result<Response> ParseResponse(std::string_view bytes) {
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxReplyHead);
  parser.body_limit(kMaxReplyBody);
  parser.eager(true);
  boost::system::error_code ec;
  size_t used = 0;
  while (!parser.is_done() && used < bytes.size()) {
    const size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec) return BeastError(ec);
    if (n == 0) break;
  }
  if (!parser.is_header_done()) {
    if (bytes.size() > kMaxReplyHead) return Malformed("head larger than 16 KiB");
    return Error(ErrorCode::kGuestFault,
                 "connection broken: storevisord closed it before the reply's head");
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec) {
      return Error(ErrorCode::kGuestFault,
                   "connection broken: storevisord closed it in the middle of the reply");
    }
  }
  return ToResponse(parser.get());
}

bool IsBrokenConnection(const Error& e) {
  return e.code() == ErrorCode::kGuestFault && e.message().rfind("connection broken", 0) == 0;
}

Error ReplyError(const Response& r) {
  auto j = ParseJson(r.body);
  if (j) {
    auto body = ErrorBodyFromJson(*j);
    if (body && !body->error.empty()) {
      return Error(body->code.empty() ? ErrorCode::kInternal : ErrorCodeFromName(body->code),
                   body->error);
    }
  }
  const ErrorCode code = r.status == 404   ? ErrorCode::kNotFound
                         : r.status == 401 ? ErrorCode::kPermissionDenied
                         : r.status == 403 ? ErrorCode::kPermissionDenied
                         : r.status == 503 ? ErrorCode::kUnavailable
                         : r.status == 400 ? ErrorCode::kInvalidArgument
                                           : ErrorCode::kInternal;
  std::string text = r.body.substr(0, 200);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return Error(code, "storevisord answered HTTP " + std::to_string(r.status) +
                         (text.empty() ? "" : ": " + text));
}

Result<Client> Client::Create(std::string_view endpoint, ClientOptions options) {
  SV_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(endpoint));
  return Client(std::move(ep), std::move(options));
}

Clock::time_point Client::Deadline() const {
  if (options_.timeout_ms <= 0) return kNoDeadline;
  return Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
}

Result<UniqueFd> Client::Open(const Request& request, Clock::time_point deadline) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Connect(endpoint_, deadline));
  const std::string host = endpoint_.unix_socket ? "storevisord" : endpoint_.host;
  SV_TRY(SendAll(fd.get(), SerializeRequest(request, host, options_.bearer), deadline));
  return fd;
}

Result<Response> Client::Call(Request request) {
  request.target = Target(request.target);
  const auto deadline = Deadline();
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Open(request, deadline));
  return ReadReply(fd.get(), deadline);
}

Result<Response> Client::CallOk(Request request) {
  SV_ASSIGN_OR_RETURN(Response r, Call(std::move(request)));
  if (r.status < 200 || r.status >= 300) return ReplyError(r);
  return r;
}

Result<VersionInfo> Client::Version() {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/v1/version"}));
  return Decode<VersionInfo>(r, VersionInfoFromJson);
}

Result<ApplyResponse> Client::Apply(const ApplyRequest& request) {
  Request req{"POST", request.dry_run ? "/v1/diff" : "/v1/apply", Dump(ToJson(request))};
  if (!request.idempotency_key.empty()) {
    req.headers.emplace_back("Idempotency-Key", request.idempotency_key);
  }
  SV_ASSIGN_OR_RETURN(Response r, CallOk(std::move(req)));
  return Decode<ApplyResponse>(r, ApplyResponseFromJson);
}

Result<GenerationInfo> Client::Generation(const std::string& key_or_digest) {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/v1/generations/" + UrlEncode(key_or_digest)}));
  return Decode<GenerationInfo>(r, GenerationInfoFromJson);
}

Result<std::vector<GenerationInfo>> Client::Generations(int limit) {
  SV_ASSIGN_OR_RETURN(Response r,
                      CallOk({"GET", "/v1/generations?limit=" + std::to_string(limit)}));
  return Decode<std::vector<GenerationInfo>>(r, GenerationListFromJson);
}

Result<ApplyResponse> Client::Rollback(const RollbackRequest& request) {
  Request req{"POST", "/v1/rollback", Dump(ToJson(request))};
  if (!request.idempotency_key.empty()) {
    req.headers.emplace_back("Idempotency-Key", request.idempotency_key);
  }
  SV_ASSIGN_OR_RETURN(Response r, CallOk(std::move(req)));
  return Decode<ApplyResponse>(r, ApplyResponseFromJson);
}

Result<api::ImagesInUse> Client::ImagesInUse() {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/v1/images/in-use"}));
  return Decode<api::ImagesInUse>(r, ImagesInUseFromJson);
}

Result<std::vector<WorkloadStatus>> Client::Workloads() {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/v1/workloads"}));
  return Decode<std::vector<WorkloadStatus>>(r, WorkloadListFromJson);
}

Result<WorkloadStatus> Client::Workload(const std::string& name) {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/v1/workloads/" + UrlEncode(name)}));
  return Decode<WorkloadStatus>(r, WorkloadStatusFromJson);
}

Status Client::Operate(const std::string& name, const std::string& verb) {
  const std::string path = "/v1/workloads/" + UrlEncode(name);
  Request req = verb == "rm" ? Request{"DELETE", path} : Request{"POST", path + "/" + verb};
  SV_TRY(CallOk(std::move(req)));
  return Ok();
}

Result<ExecResponse> Client::Exec(const std::string& name, const ExecRequest& request) {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"POST", "/v1/workloads/" + UrlEncode(name) + "/exec",
                                          Dump(ToJson(request))}));
  return Decode<ExecResponse>(r, ExecResponseFromJson);
}

Result<std::vector<EventRecord>> Client::Events(int64_t since) {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/v1/events?since=" + std::to_string(since)}));
  return Decode<std::vector<EventRecord>>(r, EventListFromJson);
}

Status Client::FollowEvents(int64_t since,
                            const std::function<bool(const EventRecord&)>& on_event) {
  std::string pending;
  Status bad = Ok();
  SV_TRY(Stream("/v1/events?follow=1&since=" + std::to_string(since), [&](std::string_view d) {
    pending.append(d);
    if (pending.size() > (1u << 20) && pending.find("\n\n") == std::string::npos) {
      bad = Malformed("an event longer than 1 MiB");
      return false;
    }
    // One SSE event per blank-line-terminated block; its data line holds the JSON.
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      const std::string block = pending.substr(0, end);
      pending.erase(0, end + 2);
      const size_t data = block.rfind("data: ");
      if (data == std::string::npos) continue;
      const size_t eol = block.find('\n', data);
      auto j = ParseJson(std::string_view(block).substr(data + 6, eol - data - 6));
      if (!j) {
        bad = Malformed("an event's data is not JSON");
        return false;
      }
      auto e = EventRecordFromJson(*j);
      if (!e) {
        bad = Malformed(e.error().message());
        return false;
      }
      if (!on_event(*e)) return false;
    }
    return true;
  }));
  return bad;
}

Status Client::Logs(const std::string& name, int64_t tail, bool follow, const DataFn& on_data) {
  return Stream("/v1/workloads/" + UrlEncode(name) + "/logs?tail=" + std::to_string(tail) +
                    (follow ? "&follow=1" : ""),
                on_data);
}

Result<int64_t> Client::PostEvent(const std::string& json_body) {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"POST", "/v1/events", json_body}));
  auto j = ParseJson(r.body);
  if (!j || !j->is_object() || !(*j)["id"].is_number_integer()) {
    return Malformed("expected {\"id\": N}");
  }
  return (*j)["id"].get<int64_t>();
}

Result<std::string> Client::Screenshot(const std::string& name) {
  SV_ASSIGN_OR_RETURN(Response r,
                      CallOk({"GET", "/v1/workloads/" + UrlEncode(name) + "/screenshot"}));
  return std::move(r.body);
}

Result<std::string> Client::UsbAttach(const std::string& name, const std::string& device) {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"POST", "/v1/workloads/" + UrlEncode(name) + "/usb",
                                          Dump(nlohmann::json{{"device", device}})}));
  auto j = ParseJson(r.body);
  if (!j || !j->is_object() || !(*j)["id"].is_string()) return Malformed("expected {\"id\": ...}");
  return (*j)["id"].get<std::string>();
}

Status Client::UsbDetach(const std::string& name, const std::string& device) {
  SV_TRY(
      CallOk({"DELETE", "/v1/workloads/" + UrlEncode(name) + "/usb?device=" + UrlEncode(device)}));
  return Ok();
}

Result<std::string> Client::Metrics() {
  SV_ASSIGN_OR_RETURN(Response r, CallOk({"GET", "/metrics"}));
  return std::move(r.body);
}

Result<RawStream> Client::OpenConsole(const std::string& name) {
  Request req{"POST", "/v1/workloads/" + UrlEncode(name) + "/console"};
  req.headers.emplace_back("Upgrade", "tcp");
  return OpenRaw(std::move(req), 101);
}

Result<RawStream> Client::OpenDisplay(const std::string& name, const std::string& display_token) {
  Request req{"GET", "/v1/workloads/" + UrlEncode(name) + "/display"};
  req.headers.emplace_back("X-Display-Token", display_token);
  return OpenRaw(std::move(req), 200);
}

Result<RawStream> Client::OpenRaw(Request request, int want_status) {
  request.target = Target(request.target);
  const auto deadline = Deadline();
  SV_ASSIGN_OR_RETURN(UniqueFd fd, Open(request, deadline));
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxReplyHead);
  parser.eager(false);
  std::string buf;
  bool eof = false;
  SV_TRY(ReadHead(fd.get(), parser, &buf, deadline, &eof));
  const int status = static_cast<int>(parser.get().result_int());
  if (status != want_status) {
    // The refusal: a short JSON error, read whole (a few seconds at most).
    parser.body_limit(kMaxReplyHead);
    SV_TRY(FinishBody(fd.get(), parser, &buf, Clock::now() + std::chrono::seconds(5)));
    return ReplyError(ToResponse(parser.get()));
  }
  return RawStream{std::move(fd), std::move(buf)};
}

Status Client::Stream(const std::string& target, const DataFn& on_data,
                      const std::vector<std::pair<std::string, std::string>>& headers) {
  Request req{"GET", target};
  req.headers = headers;
  SV_ASSIGN_OR_RETURN(RawStream raw, OpenRaw(std::move(req), 200));
  if (!raw.early.empty() && !on_data(raw.early)) return Ok();
  std::string buf;
  while (true) {
    buf.clear();
    SV_ASSIGN_OR_RETURN(size_t n, ReadSome(raw.fd.get(), &buf, Deadline()));
    if (n == 0) return Ok();
    if (!on_data(buf)) return Ok();
  }
}

Result<int> HttpGetStatus(int fd, const std::string& host, const std::string& path,
                          Clock::time_point deadline) {
  Request req{"GET", path};
  SV_TRY(SendAll(fd, SerializeRequest(req, host, ""), deadline));
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxReplyHead);
  std::string buf;
  bool eof = false;
  SV_TRY(ReadHead(fd, parser, &buf, deadline, &eof));
  return static_cast<int>(parser.get().result_int());
}

std::string UrlEncode(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace storevisor::api
