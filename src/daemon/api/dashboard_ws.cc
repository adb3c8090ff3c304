// The dashboard's consoles over WebSockets (Beast): a microVM's serial console relayed both
// ways between the browser's WebSocket and the console's unix socket, on an io_context of the
// request's own (one thread: the long pool's). Only for a live session from this origin.
#include <unistd.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
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

// Relays until either side closes; every operation runs on ioc's one thread.
class ConsoleRelay {
 public:
  ConsoleRelay(asio::io_context& ioc, asio::ip::tcp::socket browser)
      : ws_(std::move(browser)), serial_(ioc) {}

  Status Accept(const HttpRequest& request, const std::string& socket_path) {
    beast::http::request<beast::http::string_body> head;
    head.method_string(request.method);
    head.target(request.target);
    head.version(11);
    for (const auto& [name, value] : request.headers) head.set(name, value);
    boost::system::error_code ec;
    serial_.connect(asio::local::stream_protocol::endpoint(socket_path), ec);
    if (ec) return Error(ErrorCode::kUnavailable, "console socket: " + ec.message());
    ws_.read_message_max(64 * 1024);
    ws_.accept(head, ec);
    if (ec) return Error(ErrorCode::kInvalidArgument, "WebSocket handshake: " + ec.message());
    ws_.binary(true);
    return Ok();
  }

  void Start() {
    ReadBrowser();
    ReadSerial();
  }

 private:
  void ReadBrowser() {
    ws_.async_read(from_browser_, [this](const boost::system::error_code& ec, size_t /*n*/) {
      if (ec) return Close();
      asio::async_write(serial_, from_browser_.data(),
                        [this](const boost::system::error_code& wec, size_t /*n*/) {
                          if (wec) return Close();
                          from_browser_.consume(from_browser_.size());
                          ReadBrowser();
                        });
    });
  }

  void ReadSerial() {
    serial_.async_read_some(
        asio::buffer(from_serial_), [this](const boost::system::error_code& ec, size_t n) {
          if (ec) return Close();
          ws_.async_write(asio::buffer(from_serial_.data(), n),
                          [this](const boost::system::error_code& wec, size_t /*n*/) {
                            if (wec) return Close();
                            ReadSerial();
                          });
        });
  }

  // Either side gone: both sockets closed, which ends the other side's pending operations.
  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    serial_.close(ignored);
    beast::get_lowest_layer(ws_).close(ignored);
  }

  websocket::stream<asio::ip::tcp::socket> ws_;
  asio::local::stream_protocol::socket serial_;
  beast::flat_buffer from_browser_;
  std::array<char, 4096> from_serial_{};
  bool closed_ = false;
};

void SendError(HttpConnection& conn, int status, const Error& e) {
  conn.SendJson(status, api::ErrorJson(e));
}

}  // namespace

void ServeConsoleWebSocket(Daemon& daemon, Dashboard& dashboard, const HttpRequest& request,
                           HttpConnection& conn) {
  if (auto st = dashboard.CheckSessionRequest(request); !st) {
    return SendError(conn, 403, st.error());
  }
  if (request.method != "GET" || request.Header("upgrade").find("websocket") == std::string::npos) {
    return SendError(conn, 400, Error(ErrorCode::kInvalidArgument, "expected a WebSocket upgrade"));
  }
  constexpr std::string_view kPrefix = "/ui/ws/console/";
  const std::string name = request.path.substr(kPrefix.size());
  if (name.empty() || name.find('/') != std::string::npos) {
    return SendError(conn, 404, Error(ErrorCode::kNotFound, "no such console"));
  }
  auto socket = daemon.ClaimConsole(name);
  if (!socket) return SendError(conn, HttpStatusFor(socket.error().code()), socket.error());
  // The relay's socket is a duplicate: the server still owns (and may shut down) the original.
  const int fd = ::dup(conn.fd());
  if (fd < 0) {
    daemon.ReleaseConsole(name);
    return SendError(conn, 500, ErrnoError("dup"));
  }
  {
    asio::io_context ioc;
    boost::system::error_code ec;
    asio::ip::tcp::socket browser(ioc);
    browser.assign(asio::ip::tcp::v4(), fd, ec);
    if (ec) ::close(fd);
    ConsoleRelay relay(ioc, std::move(browser));
    Status st =
        ec ? Status(Error(ErrorCode::kInternal, ec.message())) : relay.Accept(request, *socket);
    if (st) {
      daemon.logger().Info("api", "console of " + name + " attached (dashboard)",
                           {{"workload", name}});
      relay.Start();
      ioc.run();
    } else {
      daemon.logger().Warn("api", "console of " + name + ": " + st.error().message(),
                           {{"workload", name}});
    }
  }
  daemon.ReleaseConsole(name);
  daemon.logger().Info("api", "console of " + name + " detached (dashboard)", {{"workload", name}});
}

}  // namespace storevisor::daemon
