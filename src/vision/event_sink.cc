// EventSink: pushes each event to storevisord as `POST /v1/events` with a JSON body, over a
// unix socket or TCP. One background thread owns the connection work; producers (the
// pipeline threads, under the event log's lock) only append to a bounded queue, so a slow or
// absent daemon never holds up a frame. The HTTP exchange is the API's client (src/api).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <thread>

#include "api/client.h"
#include "common/unique_fd.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using Clock = std::chrono::steady_clock;

std::string Rfc3339(double epoch_seconds) {
  const auto secs = static_cast<time_t>(epoch_seconds);
  const int ms = static_cast<int>((epoch_seconds - static_cast<double>(secs)) * 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                std::clamp(ms, 0, 999));
  return buf;
}

// One request on a fresh connection through the API's client; returns the HTTP status.
Result<int> PostOnce(const EventsEndpoint& ep, const std::string& body, double timeout_ms) {
  const auto deadline =
      Clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_ms * 1000));
  api::Endpoint target;
  target.unix_socket = ep.unix_socket;
  target.path = ep.path;
  target.host = ep.host;
  target.port = ep.port;
  SV_ASSIGN_OR_RETURN(UniqueFd fd, api::Connect(target, deadline));
  api::Request request{"POST", ep.request_path, body};
  SV_ASSIGN_OR_RETURN(
      api::Response reply,
      api::Exchange(fd.get(), request, ep.unix_socket ? "localhost" : ep.host, "", deadline));
  return reply.status;
}

class Sink : public EventSink {
 public:
  Sink(EventsEndpoint endpoint, EventSinkOptions options, std::shared_ptr<Metrics> metrics)
      : endpoint_(std::move(endpoint)), options_(std::move(options)), metrics_(std::move(metrics)) {
    Publish();
    thread_ = std::thread([this] { Loop(); });
  }
  ~Sink() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void Push(const StreamEvent& event) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= options_.queue_capacity) {
        queue_.pop_front();  // the newest events matter most to a store dashboard
        stats_.dropped++;
      }
      queue_.emplace_back(next_id_++, EventToDaemonJson(event).dump());
      stats_.queued = queue_.size();
    }
    cv_.notify_one();
  }

  Stats GetStats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  void Loop() {
    double backoff_ms = options_.backoff_min_ms;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      const auto [id, body] = queue_.front();
      lock.unlock();
      auto status = PostOnce(endpoint_, body, options_.timeout_ms);
      lock.lock();
      const bool taken = status && *status >= 200 && *status < 300;
      const bool refused = status && *status >= 400 && *status < 500;
      if (taken || refused) {
        // The head may have been dropped by Push meanwhile; only pop what we sent.
        if (!queue_.empty() && queue_.front().first == id) queue_.pop_front();
        (taken ? stats_.pushed : stats_.rejected)++;
        stats_.queued = queue_.size();
        backoff_ms = options_.backoff_min_ms;
        if (refused) stats_.last_error = "HTTP " + std::to_string(*status);
        lock.unlock();
        Publish();
        lock.lock();
        continue;
      }
      stats_.failures++;
      stats_.last_error = status ? "HTTP " + std::to_string(*status) : status.error().message();
      lock.unlock();
      Publish();
      lock.lock();
      cv_.wait_for(lock, std::chrono::microseconds(static_cast<int64_t>(backoff_ms * 1000)),
                   [this] { return stop_; });
      if (stop_) return;
      backoff_ms = std::min(backoff_ms * 2, options_.backoff_max_ms);
    }
  }

  void Publish() {
    const Stats s = GetStats();
    metrics_->SetValue("storevisor_vision_events_pushed_total", "counter",
                       "Events storevisord accepted.", static_cast<double>(s.pushed));
    metrics_->SetValue("storevisor_vision_events_dropped_total", "counter",
                       "Events dropped because the push queue was full.",
                       static_cast<double>(s.dropped));
    metrics_->SetValue("storevisor_vision_events_rejected_total", "counter",
                       "Events storevisord refused (HTTP 4xx); not retried.",
                       static_cast<double>(s.rejected));
    metrics_->SetValue("storevisor_vision_events_push_failures_total", "counter",
                       "Failed pushes (daemon away, timeout, HTTP 5xx); retried with backoff.",
                       static_cast<double>(s.failures));
    metrics_->SetValue("storevisor_vision_events_queued", "gauge", "Events waiting to be pushed.",
                       static_cast<double>(s.queued));
  }

  EventsEndpoint endpoint_;
  EventSinkOptions options_;
  std::shared_ptr<Metrics> metrics_;
  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, std::string>> queue_;  // (id, JSON body), oldest first
  uint64_t next_id_ = 0;
  Stats stats_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after everything above is built
};

}  // namespace

Result<EventsEndpoint> ParseEventsUrl(std::string_view url) {
  EventsEndpoint ep;
  const auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "events url \"" + std::string(url.substr(0, 200)) +
                                                  "\": " + why +
                                                  " (use unix:/path/to.sock or http://host:port)");
  };
  if (url.starts_with("unix:")) {
    ep.unix_socket = true;
    ep.path = std::string(url.substr(5));
    if (ep.path.empty() || ep.path[0] != '/') return bad("the socket path must be absolute");
    if (ep.path.size() >= sizeof(sockaddr_un{}.sun_path)) return bad("socket path too long");
    if (ep.path.find('\0') != std::string::npos) return bad("NUL in the socket path");
    return ep;
  }
  if (!url.starts_with("http://")) return bad("unknown scheme");
  std::string_view rest = url.substr(7);
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string prefix(rest.substr(slash));
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    for (const char c : prefix) {
      if (c <= ' ' || c == 0x7f || c == '?' || c == '#') return bad("bad character in the path");
    }
    ep.request_path = prefix + "/v1/events";
  }
  auto hp = api::ParseHostPort(hostport);
  if (!hp) return bad(hp.error().message());
  ep.host = std::move(hp->host);
  ep.port = hp->port;
  return ep;
}

Result<int> ParseHttpStatusLine(std::string_view head) {
  const size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, std::min(eol, size_t{200}));
  const auto bad = [&] {
    return Error(ErrorCode::kUnavailable,
                 "not an HTTP/1.x answer: \"" + std::string(line.substr(0, 60)) + "\"");
  };
  if (eol == std::string_view::npos || !line.starts_with("HTTP/1.") || line.size() < 12 ||
      line[8] != ' ') {
    return bad();
  }
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return bad();
    code = code * 10 + (line[i] - '0');
  }
  if (code < 100 || (line.size() > 12 && line[12] != ' ')) return bad();
  return code;
}

nlohmann::json EventToDaemonJson(const StreamEvent& e) {
  return {{"source", e.pipeline},
          {"type", e.type == "placement" ? "placement_changed" : e.type},
          {"time", Rfc3339(e.time)},
          {"data", e.detail.is_object() ? e.detail : nlohmann::json::object()}};
}

Result<std::unique_ptr<EventSink>> EventSink::Start(const EventSinkOptions& options,
                                                    std::shared_ptr<Metrics> metrics) {
  SV_ASSIGN_OR_RETURN(EventsEndpoint ep, ParseEventsUrl(options.url));
  if (options.queue_capacity == 0) {
    return Error(ErrorCode::kInvalidArgument, "events queue capacity must be at least 1");
  }
  return std::unique_ptr<EventSink>(
      std::make_unique<Sink>(std::move(ep), options, std::move(metrics)));
}

}  // namespace storevisor::vision
