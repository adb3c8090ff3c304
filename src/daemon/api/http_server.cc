// Sockets and the connection loop of the API server and client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "daemon/api/http.h"

namespace storevisor::daemon {

namespace {

constexpr int kReadTimeoutMs = 10000;  // a client must send its request within this

Result<sockaddr_in> ParseHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "expected HOST:PORT, got '" + address + "'");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return Error(ErrorCode::kInvalidArgument, "expected an IPv4 address, got '" + host + "'");
  }
  char* end = nullptr;
  long port = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    return Error(ErrorCode::kInvalidArgument, "bad port in '" + address + "'");
  }
  sa.sin_port = htons(static_cast<uint16_t>(port));
  return sa;
}

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "socket path too long: " + path);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

}  // namespace

bool HttpConnection::Send(int status, std::string_view content_type, std::string_view body) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(HttpReason(status)) +
                     "\r\nContent-Type: " + std::string(content_type) +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  return WriteAll(fd_.get(), head).has_value() && WriteAll(fd_.get(), body).has_value();
}

bool HttpConnection::StartStream(std::string_view content_type) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(content_type) +
                     "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
  return WriteAll(fd_.get(), head).has_value();
}

bool HttpConnection::SwitchProtocols(std::string_view protocol) {
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                     std::string(protocol) + "\r\n\r\n";
  return WriteAll(fd_.get(), head).has_value();
}

bool HttpConnection::Write(std::string_view data) { return WriteAll(fd_.get(), data).has_value(); }

bool HttpConnection::PeerClosed() {
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLHUP | POLLERR)) != 0) return true;
  char c = 0;
  return ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Serve(UniqueFd listener, bool is_tcp) {
  int fd = listener.get();
  listeners_.push_back(std::move(listener));
  acceptors_.emplace_back([this, fd, is_tcp] { AcceptLoop(fd, is_tcp); });
}

void HttpServer::Stop() {
  stopping_ = true;
  for (auto& l : listeners_) ::shutdown(l.get(), SHUT_RDWR);
  for (auto& t : acceptors_) {
    if (t.joinable()) t.join();
  }
  acceptors_.clear();
}

void HttpServer::AcceptLoop(int fd, bool is_tcp) {
  while (!stopping_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;
    int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    UniqueFd owned(conn);
    while (active_.load() >= max_conns_ && !stopping_) ::usleep(10000);
    ++active_;
    std::thread([this, c = std::move(owned), is_tcp]() mutable {
      HandleConnection(std::move(c), is_tcp);
      --active_;
    }).detach();
  }
}

void HttpServer::HandleConnection(UniqueFd fd, bool is_tcp) {
  HttpConnection conn(std::move(fd));
  std::string buffer;
  char chunk[8192];
  while (true) {
    auto parsed = ParseHttpRequest(buffer);
    if (!parsed) {
      int status = parsed.error().code() == ErrorCode::kResourceExhausted ? 413 : 400;
      conn.SendJson(status, nlohmann::json{{"error", parsed.error().message()},
                                           {"code", ErrorCodeName(parsed.error().code())}}
                                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    if (parsed->has_value()) {
      handler_(**parsed, conn, is_tcp);
      return;
    }
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, kReadTimeoutMs) <= 0) return;
    ssize_t n = ::recv(conn.fd(), chunk, sizeof chunk, 0);
    if (n <= 0) return;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

Result<UniqueFd> ListenUnix(const std::string& path, mode_t mode) {
  SV_ASSIGN_OR_RETURN(sockaddr_un sa, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  ::unlink(path.c_str());  // a stale socket from a killed daemon
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return ErrnoError("bind " + path);
  }
  if (::chmod(path.c_str(), mode) != 0) return ErrnoError("chmod " + path);
  if (::listen(fd.get(), 128) != 0) return ErrnoError("listen " + path);
  return fd;
}

Result<UniqueFd> ListenTcp(const std::string& address) {
  SV_ASSIGN_OR_RETURN(sockaddr_in sa, ParseHostPort(address));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return ErrnoError("bind " + address);
  }
  if (::listen(fd.get(), 128) != 0) return ErrnoError("listen " + address);
  return fd;
}

Result<UniqueFd> ConnectEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("tcp:", 0) == 0) {
    SV_ASSIGN_OR_RETURN(sockaddr_in sa, ParseHostPort(endpoint.substr(4)));
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoError("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      return ErrnoError("connect " + endpoint);
    }
    return fd;
  }
  std::string path = endpoint.rfind("unix:", 0) == 0 ? endpoint.substr(5) : endpoint;
  SV_ASSIGN_OR_RETURN(sockaddr_un sa, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return ErrnoError("connect " + path);
  }
  return fd;
}

}  // namespace storevisor::daemon
