// The dashboard's consoles over WebSockets (Beast), each relayed both ways to a unix socket on
// an io_context of the request's own (one thread: the long pool's), only for a live session
// from this origin:
//  - a microVM's serial console: bytes as they are;
//  - a legacy VM's screen for noVNC: the daemon answers QEMU's VNC authentication itself (DES
//    challenge-response with the profile's password) and offers the browser security type
//    None, then relays RFB unchanged. The VNC password never reaches the browser.
#define OPENSSL_SUPPRESS_DEPRECATED  // DES_ecb_encrypt: VNC's authentication is DES, by spec
#include <openssl/des.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "api/json.h"
#include "daemon/api/dashboard.h"
#include "daemon/daemon.h"

namespace storevisor::daemon {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

// A browser's WebSocket and a unix socket, relayed both ways until either side closes; every
// asynchronous operation runs on ioc's one thread.
class SocketRelay {
 public:
  SocketRelay(asio::io_context& ioc, asio::ip::tcp::socket browser)
      : ws_(std::move(browser)), unix_(ioc) {}

  Status Connect(const std::string& path) {
    error_code ec;
    unix_.connect(asio::local::stream_protocol::endpoint(path), ec);
    if (ec) return Error(ErrorCode::kUnavailable, "connect " + path + ": " + ec.message());
    // The handshakes below read synchronously: a VM that says nothing cannot hold the thread.
    timeval tv{10, 0};
    ::setsockopt(unix_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return Ok();
  }

  Status Accept(const HttpRequest& request) {
    beast::http::request<beast::http::string_body> head;
    head.method_string(request.method);
    head.target(request.target);
    head.version(11);
    for (const auto& [name, value] : request.headers) head.set(name, value);
    // noVNC asks for the "binary" subprotocol; a browser drops a socket that gets none.
    const std::string proto = request.Header("sec-websocket-protocol");
    const bool binary = proto.find("binary") != std::string::npos;
    ws_.set_option(websocket::stream_base::decorator([binary](websocket::response_type& res) {
      if (binary) res.set(beast::http::field::sec_websocket_protocol, "binary");
    }));
    ws_.read_message_max(256 * 1024);
    error_code ec;
    ws_.accept(head, ec);
    if (ec) return Error(ErrorCode::kInvalidArgument, "WebSocket handshake: " + ec.message());
    ws_.binary(true);
    return Ok();
  }

  // Synchronous steps of a handshake, before Run.
  Status ReadUnix(void* data, size_t n) {
    error_code ec;
    asio::read(unix_, asio::buffer(data, n), ec);
    if (ec) return Error(ErrorCode::kUnavailable, "VNC: " + ec.message());
    return Ok();
  }
  Status WriteUnix(const void* data, size_t n) {
    error_code ec;
    asio::write(unix_, asio::buffer(data, n), ec);
    if (ec) return Error(ErrorCode::kUnavailable, "VNC: " + ec.message());
    return Ok();
  }
  Status WriteBrowser(const void* data, size_t n) {
    error_code ec;
    ws_.write(asio::buffer(data, n), ec);
    if (ec) return Error(ErrorCode::kUnavailable, "WebSocket: " + ec.message());
    return Ok();
  }
  // Exactly n bytes from the browser, however its messages split them.
  Result<std::string> ReadBrowser(size_t n) {
    while (from_browser_.size() < n) {
      error_code ec;
      ws_.read(from_browser_, ec);
      if (ec) return Error(ErrorCode::kUnavailable, "WebSocket: " + ec.message());
    }
    std::string out = beast::buffers_to_string(from_browser_.data()).substr(0, n);
    from_browser_.consume(n);
    return out;
  }

  // Relays until either side closes (what the browser sent ahead goes first).
  void Run(asio::io_context& ioc) {
    timeval none{0, 0};
    ::setsockopt(unix_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    if (from_browser_.size() > 0) {
      if (!WriteUnix(from_browser_.data().data(), from_browser_.size())) return;
      from_browser_.consume(from_browser_.size());
    }
    ReadFromBrowser();
    ReadFromUnix();
    ioc.run();
  }

 private:
  void ReadFromBrowser() {
    ws_.async_read(from_browser_, [this](const error_code& ec, size_t /*n*/) {
      if (ec) return Close();
      asio::async_write(unix_, from_browser_.data(), [this](const error_code& wec, size_t /*n*/) {
        if (wec) return Close();
        from_browser_.consume(from_browser_.size());
        ReadFromBrowser();
      });
    });
  }

  void ReadFromUnix() {
    unix_.async_read_some(asio::buffer(from_unix_), [this](const error_code& ec, size_t n) {
      if (ec) return Close();
      ws_.async_write(asio::buffer(from_unix_.data(), n),
                      [this](const error_code& wec, size_t /*n*/) {
                        if (wec) return Close();
                        ReadFromUnix();
                      });
    });
  }

  // Either side gone: both sockets closed, which ends the other side's pending operations.
  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    unix_.close(ignored);
    beast::get_lowest_layer(ws_).close(ignored);
  }

  websocket::stream<asio::ip::tcp::socket> ws_;
  asio::local::stream_protocol::socket unix_;
  beast::flat_buffer from_browser_;
  std::array<char, 16384> from_unix_{};
  bool closed_ = false;
};

void SendError(HttpConnection& conn, int status, const Error& e) {
  conn.SendJson(status, api::ErrorJson(e));
}

// The workload named after prefix in the path, or "" for a malformed one.
std::string NameAfter(const std::string& path, std::string_view prefix) {
  std::string name = path.substr(prefix.size());
  if (name.empty() || name.size() > 64 || name.find('/') != std::string::npos) return "";
  return name;
}

// The checks of both WebSockets: a session from this origin, a GET that asks to upgrade.
bool CheckUpgrade(Dashboard& dashboard, const HttpRequest& request, HttpConnection& conn) {
  if (auto st = dashboard.CheckSessionRequest(request); !st) {
    SendError(conn, 403, st.error());
    return false;
  }
  if (request.method != "GET" || request.Header("upgrade").find("websocket") == std::string::npos) {
    SendError(conn, 400, Error(ErrorCode::kInvalidArgument, "expected a WebSocket upgrade"));
    return false;
  }
  return true;
}

// Runs fn(relay, ioc) with the browser's connection (a duplicate descriptor: the server keeps,
// and may shut down, the original) in a relay of its own.
template <typename Fn>
Status WithRelay(HttpConnection& conn, Fn fn) {
  const int fd = ::dup(conn.fd());
  if (fd < 0) return ErrnoError("dup");
  asio::io_context ioc;
  error_code ec;
  asio::ip::tcp::socket browser(ioc);
  browser.assign(asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return Error(ErrorCode::kInternal, "socket: " + ec.message());
  }
  SocketRelay relay(ioc, std::move(browser));
  return fn(relay, ioc);
}

// VNC authentication's response: the challenge encrypted with DES, the key being the password
// (8 bytes, zero-padded) with each byte's bits reversed (RFC 6143 7.2.2, as every VNC does).
std::array<unsigned char, 16> VncResponse(const std::string& password,
                                          const std::array<unsigned char, 16>& challenge) {
  DES_cblock key{};
  for (size_t i = 0; i < 8 && i < password.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(password[i]);
    unsigned char r = 0;
    for (int b = 0; b < 8; ++b) r |= static_cast<unsigned char>(((c >> b) & 1) << (7 - b));
    key[i] = r;
  }
  DES_key_schedule schedule;
  DES_set_key_unchecked(&key, &schedule);
  std::array<unsigned char, 16> out{};
  for (size_t block = 0; block < 2; ++block) {
    DES_cblock in{};
    DES_cblock enc{};
    std::copy_n(challenge.begin() + static_cast<std::ptrdiff_t>(block * 8), 8, in);
    DES_ecb_encrypt(&in, &enc, &schedule, DES_ENCRYPT);
    std::copy_n(enc, 8, out.begin() + static_cast<std::ptrdiff_t>(block * 8));
  }
  return out;
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// RFB 3.8 with QEMU up to its SecurityResult, as the client (the daemon knows the password).
Status VncLogin(SocketRelay& relay, const std::string& password) {
  std::array<char, 12> version{};
  SV_TRY(relay.ReadUnix(version.data(), version.size()));
  if (std::string_view(version.data(), 4) != "RFB ") {
    return Error(ErrorCode::kUnavailable, "VNC: not an RFB server");
  }
  SV_TRY(relay.WriteUnix("RFB 003.008\n", 12));
  unsigned char count = 0;
  SV_TRY(relay.ReadUnix(&count, 1));
  if (count == 0) return Error(ErrorCode::kUnavailable, "VNC: the server refused the connection");
  std::array<unsigned char, 255> types{};
  SV_TRY(relay.ReadUnix(types.data(), count));
  const auto offered = [&](unsigned char t) {
    return std::find(types.begin(), types.begin() + count, t) != types.begin() + count;
  };
  if (offered(2) && !password.empty()) {
    const unsigned char choice = 2;
    SV_TRY(relay.WriteUnix(&choice, 1));
    std::array<unsigned char, 16> challenge{};
    SV_TRY(relay.ReadUnix(challenge.data(), challenge.size()));
    const auto response = VncResponse(password, challenge);
    SV_TRY(relay.WriteUnix(response.data(), response.size()));
  } else if (offered(1)) {
    const unsigned char choice = 1;
    SV_TRY(relay.WriteUnix(&choice, 1));
  } else {
    return Error(ErrorCode::kUnsupported, "VNC: no security type the daemon speaks (None, VNC)");
  }
  std::array<unsigned char, 4> result{};
  SV_TRY(relay.ReadUnix(result.data(), result.size()));
  if (BigEndian32(result.data()) != 0) {
    return Error(ErrorCode::kPermissionDenied, "VNC: the VM refused the daemon's password");
  }
  return Ok();
}

// RFB 3.8 with the browser up to its SecurityResult, as the server offering None only.
Status BrowserHandshake(SocketRelay& relay) {
  SV_TRY(relay.WriteBrowser("RFB 003.008\n", 12));
  SV_ASSIGN_OR_RETURN(std::string version, relay.ReadBrowser(12));
  if (version.rfind("RFB 003.", 0) != 0) {
    return Error(ErrorCode::kInvalidArgument, "RFB: not a VNC client");
  }
  const unsigned char offer[] = {1, 1};  // one type: None (the daemon has authenticated)
  SV_TRY(relay.WriteBrowser(offer, sizeof offer));
  SV_ASSIGN_OR_RETURN(std::string choice, relay.ReadBrowser(1));
  if (choice[0] != 1) return Error(ErrorCode::kInvalidArgument, "RFB: security type not offered");
  const unsigned char ok[] = {0, 0, 0, 0};
  return relay.WriteBrowser(ok, sizeof ok);
}

}  // namespace

void ServeConsoleWebSocket(Daemon& daemon, Dashboard& dashboard, const HttpRequest& request,
                           HttpConnection& conn) {
  if (!CheckUpgrade(dashboard, request, conn)) return;
  const std::string name = NameAfter(request.path, "/ui/ws/console/");
  if (name.empty()) return SendError(conn, 404, Error(ErrorCode::kNotFound, "no such console"));
  auto socket = daemon.ClaimConsole(name);
  if (!socket) return SendError(conn, HttpStatusFor(socket.error().code()), socket.error());
  Status st = WithRelay(conn, [&](SocketRelay& relay, asio::io_context& ioc) -> Status {
    SV_TRY(relay.Connect(*socket));
    SV_TRY(relay.Accept(request));
    daemon.logger().Info("api", "console of " + name + " attached (dashboard)",
                         {{"workload", name}});
    relay.Run(ioc);
    return Ok();
  });
  if (!st) {
    daemon.logger().Warn("api", "console of " + name + ": " + st.error().message(),
                         {{"workload", name}});
  }
  daemon.ReleaseConsole(name);
  daemon.logger().Info("api", "console of " + name + " detached (dashboard)", {{"workload", name}});
}

void ServeDisplayWebSocket(Daemon& daemon, Dashboard& dashboard, const HttpRequest& request,
                           HttpConnection& conn) {
  if (!CheckUpgrade(dashboard, request, conn)) return;
  const std::string name = NameAfter(request.path, "/ui/ws/display/");
  if (name.empty()) return SendError(conn, 404, Error(ErrorCode::kNotFound, "no such screen"));
  auto vnc = daemon.DashboardDisplay(name);
  if (!vnc) return SendError(conn, HttpStatusFor(vnc.error().code()), vnc.error());
  Status st = WithRelay(conn, [&](SocketRelay& relay, asio::io_context& ioc) -> Status {
    SV_TRY(relay.Connect(vnc->socket));
    // QEMU first: a VM that refuses is answered with an HTTP error, not a dead WebSocket.
    if (Status login = VncLogin(relay, vnc->password); !login) {
      SendError(conn, HttpStatusFor(login.error().code()), login.error());
      return login;
    }
    SV_TRY(relay.Accept(request));
    SV_TRY(BrowserHandshake(relay));
    daemon.logger().Info("api", "screen of " + name + " opened (dashboard)", {{"workload", name}});
    relay.Run(ioc);
    return Ok();
  });
  if (!st) {
    daemon.logger().Warn("api", "screen of " + name + ": " + st.error().message(),
                         {{"workload", name}});
  }
  daemon.logger().Info("api", "screen of " + name + " closed (dashboard)", {{"workload", name}});
}

}  // namespace storevisor::daemon
