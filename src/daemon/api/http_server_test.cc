// The server's limits with a trivial handler: tokens checked before the body, the
// whole-request deadline, half-sent floods that age out, full pools answered 503, and a Stop
// that ends open streams.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>

#include "daemon/api/http.h"

namespace storevisor::daemon {
namespace {

class ServerFixture {
 public:
  ServerFixture(const ListenerLimits& limits, bool tcp, HttpHandlers handlers)
      : server_(std::move(handlers)) {
    ::signal(SIGPIPE, SIG_IGN);  // as storevisord: writes to a closed peer are errors
    if (tcp) {
      UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof sa;
      EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len), 0);
      EXPECT_EQ(::listen(fd.get(), 128), 0);
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
      port_ = ntohs(sa.sin_port);
      EXPECT_TRUE(server_.Listen(std::move(fd), true, limits).has_value());
    } else {
      char dir[] = "/tmp/sv-server-test-XXXXXX";
      dir_ = ::mkdtemp(dir);
      path_ = dir_ + "/s.sock";
      auto fd = ListenUnix(path_, 0600);
      EXPECT_TRUE(fd.has_value());
      EXPECT_TRUE(server_.Listen(std::move(*fd), false, limits).has_value());
    }
    server_.Start();
  }
  ~ServerFixture() {
    server_.Stop();
    if (!path_.empty()) {
      ::unlink(path_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  UniqueFd Connect() {
    if (port_ != 0) {
      UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<uint16_t>(port_));
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
      return fd;
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  }
  HttpServer& server() { return server_; }

 private:
  HttpServer server_;
  int port_ = 0;
  std::string dir_;
  std::string path_;
};

// Everything the server sends until it closes (or 10 s pass: a hung server fails the test).
std::string ReadToEnd(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return out + "<no end>";
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

HttpHandlers Echo(std::atomic<int>* served = nullptr) {
  return HttpHandlers{[](const HttpRequest& r) { return r.Header("authorization") == "Bearer t"; },
                      [](const HttpRequest& r) { return r.path == "/stream"; },
                      [served](const HttpRequest& r, HttpConnection& conn, const Peer& peer) {
                        if (served != nullptr) ++*served;
                        if (r.path == "/stream") {
                          conn.StartStream("text/plain");
                          while (conn.Write("tick\n") && !conn.PeerClosed()) {
                            std::this_thread::sleep_for(std::chrono::milliseconds(10));
                          }
                          return;
                        }
                        conn.Send(200, "text/plain", peer.Identity() + " " + r.body);
                      }};
}

const char kGet[] = "GET /x HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n";

TEST(ApiServerTest, AnswersWithThePeersIdentity) {
  ServerFixture unix_server(ListenerLimits{}, false, Echo());
  UniqueFd fd = unix_server.Connect();
  ASSERT_TRUE(WriteAll(fd.get(), kGet).has_value());
  EXPECT_NE(ReadToEnd(fd.get()).find("unix:uid=" + std::to_string(::getuid())), std::string::npos);
  ServerFixture tcp_server(ListenerLimits{}, true, Echo());
  UniqueFd t = tcp_server.Connect();
  ASSERT_TRUE(WriteAll(t.get(),
                       "POST /x HTTP/1.1\r\nAuthorization: Bearer t\r\n"
                       "Content-Length: 3\r\n\r\nabc")
                  .has_value());
  const std::string got = ReadToEnd(t.get());
  EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("tcp:127.0.0.1:"), std::string::npos) << got;
  EXPECT_NE(got.find(" abc"), std::string::npos) << got;
}

TEST(ApiServerTest, TcpWithoutTheTokenIsRefusedBeforeItsBody) {
  std::atomic<int> served{0};
  ServerFixture server(ListenerLimits{}, true, Echo(&served));
  UniqueFd fd = server.Connect();
  // The body never comes: the refusal must not wait for it.
  ASSERT_TRUE(WriteAll(fd.get(), "POST /x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n").has_value());
  const std::string got = ReadToEnd(fd.get());
  EXPECT_EQ(got.rfind("HTTP/1.1 401 ", 0), 0u) << got;
  EXPECT_NE(got.find("missing or wrong bearer token"), std::string::npos);
  EXPECT_EQ(served, 0);
}

TEST(ApiServerTest, TheWholeRequestHasADeadline) {
  ListenerLimits limits;
  limits.request_deadline_ms = 300;
  ServerFixture server(limits, false, Echo());
  UniqueFd fd = server.Connect();
  // One byte every 50 ms: each read is quick, the request as a whole is not.
  std::string got;
  for (char c : std::string("GET /x HTTP/1.1\r\nX-Slow: ") + std::string(100, 'a')) {
    if (::send(fd.get(), &c, 1, MSG_NOSIGNAL) != 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  got = ReadToEnd(fd.get());
  EXPECT_EQ(got.rfind("HTTP/1.1 408 ", 0), 0u) << got;
}

TEST(ApiServerTest, HalfSentFloodsAgeOutInsteadOfLockingOut) {
  ListenerLimits limits;
  limits.max_pending = 16;
  limits.max_pending_per_peer = 8;
  ServerFixture server(limits, false, Echo());
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 200; ++i) {
    slow.push_back(server.Connect());
    ASSERT_TRUE(WriteAll(slow.back().get(), "GET /x HTTP/1.1\r\nX-Half: ").has_value());
  }
  UniqueFd fd = server.Connect();
  ASSERT_TRUE(WriteAll(fd.get(), kGet).has_value());
  const std::string got = ReadToEnd(fd.get());
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0u) << got;
  // The oldest were told why they were dropped.
  EXPECT_NE(ReadToEnd(slow.front().get()).find("503"), std::string::npos);
}

TEST(ApiServerTest, AFullPoolAnswers503) {
  std::latch release(1);
  std::atomic<int> started{0};
  ListenerLimits limits;
  limits.workers = 1;
  limits.queue = 0;
  ServerFixture server(limits, false,
                       HttpHandlers{[](const HttpRequest&) { return true; },
                                    [](const HttpRequest&) { return false; },
                                    [&](const HttpRequest&, HttpConnection& conn, const Peer&) {
                                      ++started;
                                      release.wait();
                                      conn.Send(200, "text/plain", "late");
                                    }});
  UniqueFd first = server.Connect();
  ASSERT_TRUE(WriteAll(first.get(), kGet).has_value());
  while (started == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  UniqueFd second = server.Connect();
  ASSERT_TRUE(WriteAll(second.get(), kGet).has_value());
  const std::string got = ReadToEnd(second.get());
  EXPECT_EQ(got.rfind("HTTP/1.1 503 ", 0), 0u) << got;
  release.count_down();
  EXPECT_NE(ReadToEnd(first.get()).find("late"), std::string::npos);
}

TEST(ApiServerTest, StopEndsOpenStreams) {
  auto server = std::make_unique<ServerFixture>(ListenerLimits{}, false, Echo());
  UniqueFd fd = server->Connect();
  ASSERT_TRUE(WriteAll(fd.get(), "GET /stream HTTP/1.1\r\n\r\n").has_value());
  char buf[64];
  ASSERT_GT(::read(fd.get(), buf, sizeof buf), 0);
  server.reset();  // joins every thread: must not hang on the stream
  EXPECT_NE(ReadToEnd(fd.get()), "<no end>");
}

TEST(ApiServerTest, MalformedAndOversizedRequestsAreRefused) {
  ServerFixture server(ListenerLimits{}, false, Echo());
  UniqueFd bad = server.Connect();
  ASSERT_TRUE(WriteAll(bad.get(), "GET /x HTTP/1.1\r\nBad Header: x\r\n\r\n").has_value());
  EXPECT_EQ(ReadToEnd(bad.get()).rfind("HTTP/1.1 400 ", 0), 0u);
  UniqueFd huge = server.Connect();
  (void)WriteAll(huge.get(), "GET /x HTTP/1.1\r\nX: " + std::string(20000, 'a'));
  EXPECT_EQ(ReadToEnd(huge.get()).rfind("HTTP/1.1 413 ", 0), 0u);
  UniqueFd body = server.Connect();
  (void)WriteAll(body.get(), "POST /x HTTP/1.1\r\nContent-Length: 3000000\r\n\r\n");
  EXPECT_EQ(ReadToEnd(body.get()).rfind("HTTP/1.1 413 ", 0), 0u);
}

}  // namespace
}  // namespace storevisor::daemon
