// A small HTTP/1.1 layer for the daemon's API: one request per connection, bodies by
// Content-Length only, streamed responses until close (SSE, logs). It serves a unix socket
// (and optionally TCP): Debian 12's cpp-httplib (0.11.4) cannot listen on AF_UNIX, and the
// subset needed here is small enough to own and fuzz (http_fuzzer). See docs/daemon.md.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::daemon {

inline constexpr size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr size_t kMaxBodyBytes = 2 * 1024 * 1024;

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

// Parses one request from the bytes received so far. nullopt: incomplete, read more.
// Errors are for malformed or oversized requests (answered with 400/413 and closed).
Result<std::optional<HttpRequest>> ParseHttpRequest(std::string_view data);

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};
// Parses a response's status line and headers; body_offset is where the body starts.
Result<std::optional<HttpResponse>> ParseHttpResponseHead(std::string_view data,
                                                          size_t* body_offset);

std::string_view HttpReason(int status);

// One accepted connection. A handler answers with Send() once, or StartStream() and then
// Write() until it returns false (the peer went away) or it is done.
class HttpConnection {
 public:
  explicit HttpConnection(UniqueFd fd) : fd_(std::move(fd)) {}
  bool Send(int status, std::string_view content_type, std::string_view body);
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

 private:
  UniqueFd fd_;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpConnection&, bool from_tcp)>;

// Accepts on the given listening sockets, one thread per connection (at most max_conns
// at once; more wait in the backlog).
class HttpServer {
 public:
  explicit HttpServer(HttpHandler handler, int max_conns = 64)
      : handler_(std::move(handler)), max_conns_(max_conns) {}
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void Serve(UniqueFd listener, bool is_tcp);  // starts an accept thread
  void Stop();

 private:
  void AcceptLoop(int fd, bool is_tcp);
  void HandleConnection(UniqueFd fd, bool is_tcp);
  HttpHandler handler_;
  int max_conns_;
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
  std::vector<UniqueFd> listeners_;
  std::vector<std::thread> acceptors_;
};

// A listening unix socket at path (replacing a stale one) with the given mode.
Result<UniqueFd> ListenUnix(const std::string& path, mode_t mode);
// A listening TCP socket on "host:port" (IPv4 literal).
Result<UniqueFd> ListenTcp(const std::string& address);
// Client side: a connected socket to "unix:/path" or "tcp:host:port" (or a bare path).
Result<UniqueFd> ConnectEndpoint(const std::string& endpoint);

}  // namespace storevisor::daemon
