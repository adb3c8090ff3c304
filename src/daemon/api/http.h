// The API's HTTP server: Boost.Beast parses the requests (one per connection; bodies by
// Content-Length), an io_context owned by the server reads them asynchronously under a
// whole-request deadline, and complete requests are answered on bounded pools: short ones on
// a fixed pool of workers, long ones (streams, console, display, exec) on a pool of their own.
// Each listener (the root-only unix socket, TCP) has its own acceptor, pools and limits, so
// nothing from the network can lock out the local operator. See docs/daemon.md, "API server".
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::daemon {

inline constexpr size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr size_t kMaxBodyBytes = 2 * 1024 * 1024;

// Who is on the other end: the uid of a unix peer (SO_PEERCRED), the address of a TCP one.
struct Peer {
  bool tcp = false;
  uid_t uid = 0;
  std::string address;  // "127.0.0.1:5555"
  std::string Key() const {
    return tcp ? address.substr(0, address.rfind(':')) : std::to_string(uid);
  }
  // ApplyRequest.identity: "unix:uid=0", "tcp:127.0.0.1:5555".
  std::string Identity() const {
    return tcp ? "tcp:" + address : "unix:uid=" + std::to_string(uid);
  }
};

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: /v1/workloads/kv?follow=1
  std::string path;    // percent-decoded path without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Query(const std::string& key, const std::string& fallback = "") const;
  std::string Header(const std::string& name) const;
};

// Parses one request from the bytes received so far with Beast's parser and our checks of
// what follows (target, query, refused Transfer-Encoding). nullopt: incomplete, read more.
// Errors are for malformed (kInvalidArgument) or oversized (kResourceExhausted) requests.
// Pure: the server's sessions and the fuzz target use the same checks.
Result<std::optional<HttpRequest>> ParseHttpRequest(std::string_view data);
// The part after Beast: method, target and fields into an HttpRequest (checked).
Status FillRequestHead(std::string_view method, std::string_view target,
                       const std::vector<std::pair<std::string, std::string>>& fields,
                       HttpRequest* request);

std::string_view HttpReason(int status);

// One request's connection while a handler answers it (blocking writes). A handler answers
// with Send() once, or StartStream()/SwitchProtocols() and then Write() until it returns
// false (the peer went away or the server stops) or it is done.
class HttpConnection {
 public:
  explicit HttpConnection(UniqueFd fd, std::string early_input = "")
      : fd_(std::move(fd)), early_input_(std::move(early_input)) {}
  // extra_headers: whole header lines, each ending in CRLF (Set-Cookie, Location, ...).
  bool Send(int status, std::string_view content_type, std::string_view body,
            std::string_view extra_headers = {});
  bool SendJson(int status, const std::string& json) {
    return Send(status, "application/json", json + "\n");
  }
  bool StartStream(std::string_view content_type);
  // 101 Switching Protocols (Upgrade: protocol): the connection then carries raw bytes both
  // ways, as Docker's attach does with "Upgrade: tcp".
  bool SwitchProtocols(std::string_view protocol);
  bool Write(std::string_view data);
  // True when the peer closed its side (for streams that mostly wait).
  bool PeerClosed();
  int fd() const { return fd_.get(); }
  // Bytes the client sent after its request (an upgraded stream's first input).
  std::string TakeEarlyInput() { return std::move(early_input_); }
  // The socket back to the server, which closes it.
  UniqueFd Release() { return std::move(fd_); }

 private:
  UniqueFd fd_;
  std::string early_input_;
};

struct HttpHandlers {
  // TCP only: whether the request's head presents the bearer token (checked before the body
  // is read; a failure is answered 401 and closed at once).
  std::function<bool(const HttpRequest&)> authorized;
  // Whether the request may last long (streams, console, display, exec): the long pool.
  std::function<bool(const HttpRequest&)> is_long;
  std::function<void(const HttpRequest&, HttpConnection&, const Peer&)> serve;
};

struct ListenerLimits {
  int max_pending = 4096;           // connections still sending their request
  int max_pending_per_peer = 4096;  // of those, from one uid or IP
  int workers = 4;                  // threads answering short requests
  int queue = 256;                  // short requests waiting for a worker
  int max_long = 32;                // long requests at once
  int max_active_per_peer = 64;     // requests being answered for one uid or IP
  int request_deadline_ms = 10000;  // to send the whole request (head and body)
};

class HttpServer {
 public:
  explicit HttpServer(HttpHandlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds a listener (before Start): its own acceptor, limits and pools.
  Status Listen(UniqueFd listener, bool is_tcp, const ListenerLimits& limits);
  void Start();
  // Closes the listeners and every connection, ends the streams, joins every thread.
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A listening unix socket at path (replacing a stale one) with the given mode.
Result<UniqueFd> ListenUnix(const std::string& path, mode_t mode);
// A listening TCP socket on "host:port" (IPv4 literal).
Result<UniqueFd> ListenTcp(const std::string& address);
// Raises RLIMIT_NOFILE's soft limit to the hard one (each connection is a descriptor).
void RaiseFileLimit();

}  // namespace storevisor::daemon
