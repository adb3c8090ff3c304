// The client against a scripted server on a unix socket: each test says what the "daemon"
// answers (whole, in pieces, truncated, oversized, or nothing) and checks the client's result.
#include "api/client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <thread>

namespace storevisor::api {
namespace {

// Serves one connection: reads the request's head (and Content-Length body), records it, then
// runs the script on the connection's fd.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(int fd)> script) : script_(std::move(script)) {
    char dir[] = "/tmp/sv-client-test-XXXXXX";
    dir_ = ::mkdtemp(dir);
    path_ = dir_ + "/s.sock";
    listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  Client MakeClient(int timeout_ms = 3000) {
    return Client(*ParseEndpoint(path_), ClientOptions{"", timeout_ms});
  }
  const std::string& request() const { return request_; }

 private:
  void Serve() {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) return;
    char buf[4096];
    while (request_.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(conn.get(), buf, sizeof buf);
      if (n <= 0) return;
      request_.append(buf, static_cast<size_t>(n));
    }
    const size_t cl = request_.find("Content-Length: ");
    if (cl != std::string::npos) {
      const size_t want =
          request_.find("\r\n\r\n") + 4 + std::strtoul(request_.c_str() + cl + 16, nullptr, 10);
      while (request_.size() < want) {
        ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) return;
        request_.append(buf, static_cast<size_t>(n));
      }
    }
    script_(conn.get());
  }

  std::function<void(int)> script_;
  std::string dir_;
  std::string path_;
  UniqueFd listener_;
  std::string request_;
  std::thread thread_;
};

void Send(int fd, const std::string& s) { ASSERT_TRUE(WriteAll(fd, s).has_value()); }

std::string Reply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(ApiClientTest, TypedCallDecodesTheReply) {
  ScriptedServer server([](int fd) {
    Send(fd, Reply(200, R"([{"name":"kv","kind":"container","state":"running","pid":9}])"));
  });
  auto list = server.MakeClient().Workloads();
  ASSERT_TRUE(list.has_value()) << list.error().message();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].pid, 9);
  EXPECT_EQ(server.request().rfind("GET /v1/workloads HTTP/1.1\r\n", 0), 0u) << server.request();
}

TEST(ApiClientTest, ApplySendsItsIdempotencyKey) {
  ScriptedServer server([](int fd) { Send(fd, Reply(200, R"({"generation":4,"steps":[]})")); });
  ApplyRequest req;
  req.yaml = "name: x";
  req.idempotency_key = "cli-abc";
  auto r = server.MakeClient().Apply(req);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->generation, 4);
  EXPECT_NE(server.request().find("Idempotency-Key: cli-abc\r\n"), std::string::npos);
  EXPECT_NE(server.request().find(R"("profile":"name: x")"), std::string::npos);
}

TEST(ApiClientTest, ErrorRepliesBecomeTheirCodes) {
  ScriptedServer server([](int fd) {
    Send(fd, Reply(404, R"({"error":"no workload named 'x'","code":"not-found"})"));
  });
  auto w = server.MakeClient().Workload("x");
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(w.error().message(), "no workload named 'x'");
}

TEST(ApiClientTest, MalformedRepliesAreErrorsNotAborts) {
  for (std::string reply : {
           std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[{,]}"),        // not JSON
           std::string("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":1}  "),  // not a list
           std::string("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n[{\"pid\":\"x\"}]"),
           std::string("HTTP/1.1 2x0 OK\r\n\r\n"),
           std::string("garbage\r\n\r\n"),
           std::string("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n"),
       }) {
    ScriptedServer server([reply](int fd) { Send(fd, reply); });
    auto list = server.MakeClient().Workloads();
    ASSERT_FALSE(list.has_value()) << reply;
    EXPECT_EQ(list.error().code(), ErrorCode::kGuestFault) << reply;
  }
}

TEST(ApiClientTest, TruncatedRepliesAreBrokenConnections) {
  for (std::string reply : {std::string(""), std::string("HTTP/1.1 200 OK\r\nContent-Le"),
                            std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[]")}) {
    ScriptedServer server([reply](int fd) { Send(fd, reply); });
    ApplyRequest req;
    req.idempotency_key = "k";
    auto r = server.MakeClient().Apply(req);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(IsBrokenConnection(r.error())) << r.error().message();
  }
}

TEST(ApiClientTest, HugeHeadsAreRefused) {
  ScriptedServer server([](int fd) {
    std::string head = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 2000; ++i) head += "X-Pad-" + std::to_string(i) + ": aaaaaaaaaa\r\n";
    (void)WriteAll(fd, head);
  });
  auto r = server.MakeClient().Workloads();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kGuestFault);
  EXPECT_NE(r.error().message().find("16 KiB"), std::string::npos) << r.error().message();
}

TEST(ApiClientTest, ASilentServerTimesOut) {
  ScriptedServer server([](int fd) {
    char c;
    (void)::read(fd, &c, 1);  // until the client gives up and closes
  });
  auto r = server.MakeClient(200).Workloads();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
}

TEST(ApiClientTest, StreamsComeInPiecesAndTruncatedEventsAreDropped) {
  ScriptedServer server([](int fd) {
    Send(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
    Send(fd, "id: 1\nevent: started\ndata: {\"id\":1,\"type\":\"sta");
    Send(fd, "rted\",\"workload\":\"kv\"}\n\nid: 2\nevent: x\ndata: {\"id\":2,");
  });
  std::vector<EventRecord> got;
  auto st = server.MakeClient().FollowEvents(0, [&](const EventRecord& e) {
    got.push_back(e);
    return true;
  });
  ASSERT_TRUE(st.has_value()) << st.error().message();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].workload, "kv");
}

TEST(ApiClientTest, MalformedEventsEndTheStreamWithAnError) {
  ScriptedServer server([](int fd) { Send(fd, "HTTP/1.1 200 OK\r\n\r\nid: 1\ndata: {nope\n\n"); });
  auto st = server.MakeClient().FollowEvents(0, [](const EventRecord&) { return true; });
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kGuestFault);
}

TEST(ApiClientTest, UpgradeKeepsTheBytesThatCameWithTheHead) {
  ScriptedServer server([](int fd) {
    Send(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n/ # ");
    Send(fd, "more");
  });
  auto raw = server.MakeClient().OpenConsole("vm");
  ASSERT_TRUE(raw.has_value()) << raw.error().message();
  std::string all = raw->early;
  char buf[64];
  ssize_t n;
  while ((n = ::read(raw->fd.get(), buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(all, "/ # more");
  EXPECT_NE(server.request().find("Upgrade: tcp\r\n"), std::string::npos);
}

TEST(ApiClientTest, ARefusedUpgradeIsTheDaemonsError) {
  ScriptedServer server([](int fd) {
    Send(fd, Reply(409, R"({"error":"the console of vm is in use","code":"conflict"})"));
  });
  auto raw = server.MakeClient().OpenConsole("vm");
  ASSERT_FALSE(raw.has_value());
  EXPECT_EQ(raw.error().code(), ErrorCode::kConflict);
}

TEST(ApiClientTest, ConnectErrorsSayWhy) {
  Client missing(*ParseEndpoint("/nonexistent/storevisord.sock"), ClientOptions{});
  auto r = missing.Workloads();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("is it running?"), std::string::npos);
}

TEST(ApiClientTest, PermissionDeniedIsNotUnavailable) {
  if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root to drop to another uid in a child";
  // A child with another uid cannot connect to a socket it may not write.
  char dir[] = "/tmp/sv-perm-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string sock = std::string(dir) + "/s.sock";
  UniqueFd l(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(l.get(), 1), 0);
  ASSERT_EQ(::chmod(sock.c_str(), 0600), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setuid(65534) != 0) ::_exit(1);
    auto fd = Connect(*ParseEndpoint(sock), kNoDeadline);
    ::_exit(!fd && fd.error().code() == ErrorCode::kPermissionDenied ? 0 : 2);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::unlink(sock.c_str());
  ::rmdir(dir);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(ApiClientTest, ParseResponseAndEndpoints) {
  auto r = ParseResponse("HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nuntil close");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "until close");
  EXPECT_EQ(r->Header("x-a"), "b");
  EXPECT_TRUE(ParseEndpoint("tcp:127.0.0.1:8080").has_value());
  EXPECT_EQ(ParseEndpoint("http://h:1/base/")->prefix, "/base");
  EXPECT_FALSE(ParseEndpoint("tcp:h").has_value());
  EXPECT_FALSE(ParseEndpoint("tcp:h:0").has_value());
  EXPECT_EQ(UrlEncode("a b/c"), "a%20b%2Fc");
}

}  // namespace
}  // namespace storevisor::api
