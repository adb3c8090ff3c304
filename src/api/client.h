// The one client of storevisord's API: over its unix socket or TCP with a bearer token,
// typed calls (Apply, Workloads, ...), streams (logs -f, the SSE event stream) and the
// `Upgrade: tcp` raw stream the console uses. HTTP framing is Boost.Beast's parser; every
// failure, a malformed or truncated reply included, is an Error (never an exception or an
// abort). Used by the CLI, the vision service's event sink, the display relay and the health
// probes (HttpGet).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/types.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::api {

// "unix:/path", "/path", "tcp:HOST:PORT" or "http://HOST:PORT[/prefix]".
struct Endpoint {
  bool unix_socket = true;
  std::string path;  // the socket (unix)
  std::string host;  // tcp
  int port = 0;
  std::string prefix;  // http:// URLs: a path prefix before /v1/...
  std::string ToString() const;
};
Result<Endpoint> ParseEndpoint(std::string_view text);
// "HOST:PORT" (an IPv6 literal in brackets), the part both the API's endpoints and the vision
// service's events URL share; the error's message is the reason alone, for the caller to frame.
struct HostPort {
  std::string host;
  int port = 0;
};
Result<HostPort> ParseHostPort(std::string_view text);

using Clock = std::chrono::steady_clock;
// No deadline: wait as long as the daemon takes (an apply, `logs -f`).
inline constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

// A connected socket (non-blocking connect bounded by the deadline). EACCES is
// kPermissionDenied, a missing socket or refused connection kUnavailable.
Result<UniqueFd> Connect(const Endpoint& endpoint, Clock::time_point deadline);

struct Request {
  Request() = default;
  Request(std::string m, std::string t, std::string b = "")
      : method(std::move(m)), target(std::move(t)), body(std::move(b)) {}
  std::string method = "GET";
  std::string target;  // /v1/workloads?x=1
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& name) const;
};

// Limits on what a reply may be: larger is kGuestFault.
inline constexpr size_t kMaxReplyHead = 16 * 1024;
inline constexpr size_t kMaxReplyBody = 64u << 20;

// The request's bytes (HTTP/1.1, Connection: close unless an upgrade is asked).
std::string SerializeRequest(const Request& request, const std::string& host,
                             const std::string& bearer);
// One exchange on a connected socket: sends the request, reads the whole reply.
Result<Response> Exchange(int fd, const Request& request, const std::string& host,
                          const std::string& bearer, Clock::time_point deadline);

// True for the error of a connection that broke after the request was sent.
bool IsBrokenConnection(const Error& e);

// A whole reply in bytes (what Exchange reads, parsed the same way): for tests and fuzzing.
Result<Response> ParseResponse(std::string_view bytes);

// The error a non-2xx reply carries ({"error","code"}; the status when it has none).
Error ReplyError(const Response& response);

// A connection switched to raw bytes after a 101 (early: bytes that came with the head).
struct RawStream {
  UniqueFd fd;
  std::string early;
};

// Called with each piece of a streamed body; return false to stop reading.
using DataFn = std::function<bool(std::string_view)>;

struct ClientOptions {
  std::string bearer;  // sent as Authorization: Bearer (TCP endpoints)
  int timeout_ms = 0;  // per call, connect to last byte; 0: none
};

class Client {
 public:
  Client(Endpoint endpoint, ClientOptions options)
      : endpoint_(std::move(endpoint)), options_(std::move(options)) {}
  // From "unix:/path", "/path", "tcp:HOST:PORT" or "http://HOST:PORT".
  static Result<Client> Create(std::string_view endpoint, ClientOptions options);
  const Endpoint& endpoint() const { return endpoint_; }

  // The raw exchange (any status); the typed calls below turn non-2xx into errors.
  Result<Response> Call(Request request);

  Result<VersionInfo> Version();
  // POST /v1/apply (or /v1/diff when request.dry_run) with the Idempotency-Key header when
  // request.idempotency_key is set. A connection broken before the whole answer came is
  // kGuestFault with a message starting "connection broken" (IsBrokenConnection); ask
  // Generation(key) what became of the apply.
  Result<ApplyResponse> Apply(const ApplyRequest& request);
  Result<GenerationInfo> Generation(const std::string& key_or_digest);
  // The newest generations first (`storevisor history`).
  Result<std::vector<GenerationInfo>> Generations(int limit);
  // Applies an earlier generation's profile again, as a new generation.
  Result<ApplyResponse> Rollback(const RollbackRequest& request);
  Result<std::vector<WorkloadStatus>> Workloads();
  // GET /v1/images/in-use.
  Result<api::ImagesInUse> ImagesInUse();
  Result<WorkloadStatus> Workload(const std::string& name);
  // POST /v1/workloads/NAME/{start,stop,restart}, DELETE /v1/workloads/NAME for "rm".
  Status Operate(const std::string& name, const std::string& verb);
  Result<ExecResponse> Exec(const std::string& name, const ExecRequest& request);
  Result<std::vector<EventRecord>> Events(int64_t since);
  // Follows the SSE stream: each event as it comes, until on_event returns false or the
  // daemon closes.
  Status FollowEvents(int64_t since, const std::function<bool(const EventRecord&)>& on_event);
  // The log (tail: last lines, -1 all); with follow, new output until on_data says stop.
  Status Logs(const std::string& name, int64_t tail, bool follow, const DataFn& on_data);
  // POST /v1/events; returns the stored event's id.
  Result<int64_t> PostEvent(const std::string& json_body);
  Result<std::string> Screenshot(const std::string& name);
  Result<std::string> UsbAttach(const std::string& name, const std::string& device);
  Status UsbDetach(const std::string& name, const std::string& device);
  Result<std::string> Metrics();
  // POST /v1/workloads/NAME/console upgraded to the serial console's raw bytes.
  Result<RawStream> OpenConsole(const std::string& name);
  // GET /v1/workloads/NAME/display with the workload's display token: the VNC stream.
  Result<RawStream> OpenDisplay(const std::string& name, const std::string& display_token);

  // A streamed GET: the 200's body piece by piece to on_data; another status is an error.
  Status Stream(const std::string& target, const DataFn& on_data,
                const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Sends the request and returns the connection after the reply's head: 101 (upgrade)
  // or 200 (a stream that then carries raw bytes); another status is an error.
  Result<RawStream> OpenRaw(Request request, int want_status);

 private:
  Clock::time_point Deadline() const;
  Result<UniqueFd> Open(const Request& request, Clock::time_point deadline);
  Result<Response> CallOk(Request request);
  std::string Target(const std::string& target) const { return endpoint_.prefix + target; }

  Endpoint endpoint_;
  ClientOptions options_;
};

// A plain HTTP GET of host:port/path on a connected socket for health probes: the status.
Result<int> HttpGetStatus(int fd, const std::string& host, const std::string& path,
                          Clock::time_point deadline);

// Percent-encodes all but letters, digits and "-._~:" (for a query value or path segment).
std::string UrlEncode(std::string_view value);

}  // namespace storevisor::api
