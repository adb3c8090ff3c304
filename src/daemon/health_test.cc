// Health probes against servers on loopback: what a native `redis-cli ping` accepts and what
// it refuses.
#include "daemon/health.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace storevisor::daemon {
namespace {

// A one-connection server on 127.0.0.1: reads what the probe sends, then answers `reply`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), len), 0);
    EXPECT_EQ(::listen(fd_.get(), 1), 0);
    EXPECT_EQ(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] {
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) return;
      char buf[256];
      ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
      if (n > 0) got_.assign(buf, static_cast<size_t>(n));
      if (!reply_.empty()) (void)::send(c.get(), reply_.data(), reply_.size(), MSG_NOSIGNAL);
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  int port() const { return port_; }
  const std::string& got() const { return got_; }

 private:
  std::string reply_;
  UniqueFd fd_;
  int port_ = 0;
  std::string got_;
  std::thread thread_;
};

TEST(HealthTest, TcpSendExpectPassesOnTheRightAnswer) {
  OneShotServer server("+PONG\r\n");
  EXPECT_TRUE(ProbeTcp("", "127.0.0.1", server.port(), 2000, "PING\r\n", "+PONG").has_value());
}

TEST(HealthTest, TcpSendExpectFailsOnAnotherAnswer) {
  std::string message;
  {
    OneShotServer server("-LOADING Redis is loading the dataset in memory\r\n");
    auto st = ProbeTcp("", "127.0.0.1", server.port(), 2000, "PING\r\n", "+PONG");
    ASSERT_FALSE(st.has_value());
    message = st.error().message();
    EXPECT_EQ(server.got(), "PING\r\n");
  }
  EXPECT_NE(message.find("expected an answer starting with '+PONG', got '-LOADING"),
            std::string::npos)
      << message;
}

TEST(HealthTest, TcpExpectFailsWhenThePeerClosesOrIsSilent) {
  {
    OneShotServer closes("");
    auto st = ProbeTcp("", "127.0.0.1", closes.port(), 2000, "PING\r\n", "+PONG");
    EXPECT_FALSE(st.has_value());
  }
  {
    OneShotServer short_answer("+PO");
    auto st = ProbeTcp("", "127.0.0.1", short_answer.port(), 2000, "PING\r\n", "+PONG");
    EXPECT_FALSE(st.has_value());
  }
}

TEST(HealthTest, TcpConnectOnlyAndRefusedPort) {
  {
    OneShotServer server("");
    EXPECT_TRUE(ProbeTcp("", "127.0.0.1", server.port(), 2000).has_value());
  }
  // A port nobody listens on (taken and closed again): refused, not a pass.
  int port = 0;
  {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len), 0);
    ASSERT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    port = ntohs(sa.sin_port);
  }
  EXPECT_FALSE(ProbeTcp("", "127.0.0.1", port, 2000, "PING\r\n", "+PONG").has_value());
}

TEST(HealthTest, HttpStatusDecides) {
  {
    OneShotServer ok("HTTP/1.0 200 OK\r\n\r\n{}");
    EXPECT_TRUE(ProbeHttp("", "127.0.0.1", ok.port(), "/inventory.json", 2000).has_value());
    EXPECT_EQ(ok.got().rfind("GET /inventory.json HTTP/1.1\r\n", 0), 0u) << ok.got();
  }
  {
    OneShotServer missing("HTTP/1.0 404 Not Found\r\n\r\n");
    EXPECT_FALSE(ProbeHttp("", "127.0.0.1", missing.port(), "/x", 2000).has_value());
  }
  {
    OneShotServer garbage("SSH-2.0-OpenSSH_9.2\r\n");
    EXPECT_FALSE(ProbeHttp("", "127.0.0.1", garbage.port(), "/x", 2000).has_value());
  }
}

}  // namespace
}  // namespace storevisor::daemon
