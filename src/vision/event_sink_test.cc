// Events pushed to storevisord: `POST /v1/events` with {source, type, time, data}, over TCP
// (a real cpp-httplib server) and over a unix socket (a small real HTTP server below); the
// daemon being away (retries with backoff, nothing lost within the queue), a full queue (never
// blocks, drops counted in /metrics), 5xx retried, 4xx dropped; the URL and status-line
// parsers on nasty input; and a real pipeline's face_seen reaching the server.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <regex>
#include <thread>

#include "common/files.h"
#include "common/unique_fd.h"
#include "vision/test_images.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using nlohmann::json;

template <typename Pred>
bool Eventually(Pred pred, int seconds = 20) {
  for (int i = 0; i < seconds * 50; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// HTTP/1.1 over a unix socket, one request per connection: records each request's line and
// body and answers with the next status of a script (then 204).
class UnixHttpServer {
 public:
  UnixHttpServer(std::string path, std::vector<int> statuses = {})
      : path_(std::move(path)), statuses_(std::move(statuses)) {
    unlink(path_.c_str());
    fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_.get(), 16), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~UnixHttpServer() {
    stop_ = true;
    thread_.join();
    unlink(path_.c_str());
  }
  UnixHttpServer(const UnixHttpServer&) = delete;
  UnixHttpServer& operator=(const UnixHttpServer&) = delete;

  std::vector<std::pair<std::string, std::string>> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      UniqueFd conn(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn.valid()) Serve(conn.get());
    }
  }
  void Serve(int fd) {
    std::string data;
    char buf[4096];
    size_t need = std::string::npos;
    while (data.size() < need) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
      const size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        std::smatch m;
        const std::string head = data.substr(0, end);
        static const std::regex kLength("Content-Length: (\\d+)", std::regex::icase);
        need = end + 4 + (std::regex_search(head, m, kLength) ? std::stoul(m[1]) : 0);
      }
    }
    int status = 204;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const size_t end = data.find("\r\n\r\n");
      requests_.emplace_back(data.substr(0, data.find("\r\n")), data.substr(end + 4));
      if (next_ < statuses_.size()) status = statuses_[next_++];
    }
    const std::string answer =
        "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n";
    (void)send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
  }

  std::string path_;
  std::vector<int> statuses_;
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> requests_;
  size_t next_ = 0;
  std::thread thread_;
};

std::string SocketPath(const std::string& name) {
  return ::testing::TempDir() + "/sv-ev-" + name + "-" + std::to_string(getpid()) + ".sock";
}

StreamEvent MakeEvent(int i) {
  return {static_cast<uint64_t>(i),
          1764070000.25,
          "till-1",
          "item_scanned",
          {{"code", std::to_string(i)}}};
}

EventSinkOptions FastOptions(const std::string& url) {
  EventSinkOptions o;
  o.url = url;
  o.timeout_ms = 1000;
  o.backoff_min_ms = 20;
  o.backoff_max_ms = 200;
  return o;
}

TEST(EventsUrlTest, AcceptsUnixAndHttp) {
  auto u = ParseEventsUrl("unix:/run/storevisor/d.sock");
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->unix_socket);
  EXPECT_EQ(u->path, "/run/storevisor/d.sock");
  EXPECT_EQ(u->request_path, "/v1/events");
  auto h = ParseEventsUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->host, "127.0.0.1");
  EXPECT_EQ(h->port, 8080);
  auto p = ParseEventsUrl("http://daemon.local:80/api/");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->request_path, "/api/v1/events");
  auto v6 = ParseEventsUrl("http://[::1]:9");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
}

TEST(EventsUrlTest, RefusesBadUrlsSayingWhy) {
  for (const std::string& bad : std::vector<std::string>{
           "", "unix:", "unix:relative.sock", "unix:/" + std::string(200, 'a'), "https://h:1",
           "http://", "http://host", "http://:80", "http://h:0", "http://h:65536", "http://h:8x",
           "http://h:123456", "http://h h:80", "http://h:80/a b", "ftp://h:21",
           std::string("unix:/a\0b", 9), "http://h:80/x?y"}) {
    auto r = ParseEventsUrl(bad);
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find("events url"), std::string::npos);
    }
  }
}

TEST(HttpStatusLineTest, ParsesAndRefuses) {
  EXPECT_EQ(*ParseHttpStatusLine("HTTP/1.1 204 No Content\r\n\r\n"), 204);
  EXPECT_EQ(*ParseHttpStatusLine("HTTP/1.0 500\r\n"), 500);
  for (const std::string& bad :
       std::vector<std::string>{"", "HTTP/1.1 204", "HTTP/2 200 OK\r\n", "HTTP/1.1 2x4 A\r\n",
                                "HTTP/1.1 099 A\r\n", "HTTP/1.1  200 A\r\n", "HTTP/1.1 2000\r\n",
                                std::string("HTTP/1.1 \0\0\0\r\n", 14), "garbage\r\n"}) {
    EXPECT_FALSE(ParseHttpStatusLine(bad).has_value()) << bad;
  }
}

TEST(EventContractTest, SourceTypeRfc3339TimeAndData) {
  StreamEvent e{7, 1764070000.25, "till-1", "placement", {{"to", "cloud"}, {"reason", "r"}}};
  const json j = EventToDaemonJson(e);
  EXPECT_EQ(j["source"], "till-1");
  EXPECT_EQ(j["type"], "placement_changed");
  EXPECT_EQ(j["time"], "2025-11-25T11:26:40.250Z");
  EXPECT_EQ(j["data"]["to"], "cloud");
  e.detail = nullptr;  // data is always an object
  EXPECT_TRUE(EventToDaemonJson(e)["data"].is_object());
}

TEST(EventSinkTest, DeliversOverTcpToARealHttpServer) {
  httplib::Server daemon;
  std::mutex mu;
  std::vector<json> got;
  daemon.Post("/v1/events", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(json::parse(req.body, nullptr, false));
    EXPECT_EQ(req.get_header_value("Content-Type"), "application/json");
    res.status = 202;
  });
  const int port = daemon.bind_to_any_port("127.0.0.1");
  std::thread t([&] { daemon.listen_after_bind(); });
  {
    auto metrics = std::make_shared<Metrics>();
    auto sink = EventSink::Start(FastOptions("http://127.0.0.1:" + std::to_string(port)), metrics);
    ASSERT_TRUE(sink.has_value()) << sink.error().message();
    for (int i = 0; i < 5; ++i) (*sink)->Push(MakeEvent(i));
    ASSERT_TRUE(Eventually([&] { return (*sink)->GetStats().pushed == 5; }));
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(got.size(), 5U);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(got[i]["source"], "till-1");
      EXPECT_EQ(got[i]["type"], "item_scanned");
      EXPECT_EQ(got[i]["data"]["code"], std::to_string(i));  // in order
    }
    EXPECT_NE(metrics->Render().find("storevisor_vision_events_pushed_total 5"), std::string::npos);
  }
  daemon.stop();
  t.join();
}

TEST(EventSinkTest, RetriesWithBackoffWhileTheDaemonIsAwayOverAUnixSocket) {
  const std::string path = SocketPath("away");
  unlink(path.c_str());
  auto metrics = std::make_shared<Metrics>();
  auto sink = EventSink::Start(FastOptions("unix:" + path), metrics);
  ASSERT_TRUE(sink.has_value()) << sink.error().message();
  for (int i = 0; i < 6; ++i) (*sink)->Push(MakeEvent(i));
  ASSERT_TRUE(Eventually([&] { return (*sink)->GetStats().failures >= 3; }));
  // The client library's words for a daemon that is not there (src/api/client.cc).
  EXPECT_NE((*sink)->GetStats().last_error.find("cannot reach storevisord"), std::string::npos)
      << (*sink)->GetStats().last_error;
  EXPECT_EQ((*sink)->GetStats().queued, 6U);
  UnixHttpServer daemon(path);  // the daemon comes up
  ASSERT_TRUE(Eventually([&] { return (*sink)->GetStats().pushed == 6; }));
  const auto reqs = daemon.Requests();
  ASSERT_EQ(reqs.size(), 6U);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].first, "POST /v1/events HTTP/1.1");
    const json body = json::parse(reqs[i].second);
    EXPECT_EQ(body["data"]["code"], std::to_string(i));
    EXPECT_TRUE(std::regex_match(body["time"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  }
  EXPECT_NE(metrics->Render().find("storevisor_vision_events_push_failures_total"),
            std::string::npos);
}

TEST(EventSinkTest, AFullQueueNeverBlocksAndCountsDrops) {
  auto metrics = std::make_shared<Metrics>();
  EventSinkOptions o = FastOptions("unix:" + SocketPath("nobody"));
  o.queue_capacity = 8;
  auto sink = EventSink::Start(o, metrics);
  ASSERT_TRUE(sink.has_value());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) (*sink)->Push(MakeEvent(i));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(ms, 500) << "Push blocked";
  EXPECT_EQ((*sink)->GetStats().dropped, 992U);
  EXPECT_EQ((*sink)->GetStats().queued, 8U);
  ASSERT_TRUE(Eventually([&] {
    return metrics->Render().find("storevisor_vision_events_dropped_total 992") !=
           std::string::npos;
  })) << metrics->Render();
}

TEST(EventSinkTest, ServerErrorsAreRetriedClientErrorsAreNot) {
  const std::string path = SocketPath("codes");
  UnixHttpServer daemon(path, {503, 500, 204, 400});
  auto sink = EventSink::Start(FastOptions("unix:" + path), std::make_shared<Metrics>());
  ASSERT_TRUE(sink.has_value());
  (*sink)->Push(MakeEvent(1));  // 503, 500, then taken
  ASSERT_TRUE(Eventually([&] { return (*sink)->GetStats().pushed == 1; }));
  EXPECT_EQ((*sink)->GetStats().failures, 2U);
  (*sink)->Push(MakeEvent(2));  // 400: refused, not retried
  ASSERT_TRUE(Eventually([&] { return (*sink)->GetStats().rejected == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(daemon.Requests().size(), 4U);
  EXPECT_EQ((*sink)->GetStats().queued, 0U);
}

TEST(EventSinkTest, APipelinesFaceSeenReachesTheDaemon) {
  const std::string path = SocketPath("pipe");
  UnixHttpServer daemon(path);
  auto config =
      ParseServiceConfig({{"events_url", "unix:" + path},
                          {"pipelines",
                           {{{"name", "door"},
                             {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}}},
                             {"fps", 20}}}}},
                         "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto sink = EventSink::Start(FastOptions(config->events_url), metrics);
  ASSERT_TRUE(sink.has_value());
  events->Subscribe([s = sink->get()](const StreamEvent& e) { s->Push(e); });
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_TRUE(Eventually([&] {
    for (const auto& [line, body] : daemon.Requests()) {
      const json j = json::parse(body, nullptr, false);
      if (j.value("type", "") == "face_seen" && j.value("source", "") == "door") return true;
    }
    return false;
  }));
  (*p)->Stop();
}

TEST(EventSinkTest, ConfigRefusesABadEventsUrl) {
  auto c = ParseServiceConfig({{"events_url", "tcp://x"}}, "store.yaml");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message().find("events_url"), std::string::npos) << c.error().message();
}

}  // namespace
}  // namespace storevisor::vision
