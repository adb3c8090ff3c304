// The web dashboard served on the TCP listener (docs/dashboard.md): the bearer token is entered
// once on the login page and exchanged for a session (an HttpOnly, SameSite=Strict cookie);
// sessions live in memory, bounded and expiring. Requests carried by a session instead of the
// token pass a cross-site check: state-changing ones need the session's CSRF token in a header
// and, when the browser names an origin, this server's own. Without a session only the login
// page and its assets are served. Static files come from a directory (--web-dir) and are kept
// gzip-compressed in memory after their first use.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "daemon/api/http.h"

namespace storevisor::daemon {

inline constexpr std::string_view kSessionCookie = "sv_session";
inline constexpr std::string_view kCsrfHeader = "x-csrf-token";

// The value of cookie `name` in a Cookie header ("a=1; sv_session=ab12"); nullopt when absent
// or when the header is malformed or oversized. Values are kept only if they are cookie-octets.
std::optional<std::string> CookieValue(std::string_view header, std::string_view name);
// A field of an application/x-www-form-urlencoded body, percent-decoded; nullopt when absent
// or malformed (bad escape, NUL, more than 16 fields, a field over 4 KiB).
std::optional<std::string> FormField(std::string_view body, std::string_view name);
// Equal strings, in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// The file under root that a /ui/ path names (vendor packages are mapped to node_modules);
// nullopt for anything that could leave root (.., dot files, backslashes, empty segments).
std::optional<std::string> AssetPath(std::string_view root, std::string_view path);
// "text/javascript; charset=utf-8" for app.js, by extension.
std::string_view ContentTypeFor(std::string_view path);

struct DashboardSession {
  std::string id;    // the cookie's value: 32 random bytes, hex
  std::string csrf;  // the X-CSRF-Token value the page sends with state-changing requests
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
};

// Sessions in memory: at most `max`, each ending `idle_ms` after its last use and `max_age_ms`
// after its creation; a new one beyond the bound replaces the least recently used.
class SessionStore {
 public:
  SessionStore(size_t max, int64_t idle_ms, int64_t max_age_ms)
      : max_(max), idle_ms_(idle_ms), max_age_ms_(max_age_ms) {}
  Result<DashboardSession> Create(int64_t now_ms);
  // The live session with this id (its last use updated), compared in constant time.
  std::optional<DashboardSession> Find(std::string_view id, int64_t now_ms);
  void Remove(std::string_view id);
  size_t size() const;
  int64_t max_age_ms() const { return max_age_ms_; }

 private:
  void Expire(int64_t now_ms);  // under mu_

  const size_t max_;
  const int64_t idle_ms_;
  const int64_t max_age_ms_;
  mutable std::mutex mu_;
  std::vector<DashboardSession> sessions_;
};

struct DashboardOptions {
  std::string web_dir;  // index.html, login.html, *.js, *.css, node_modules/
  std::string token;    // the API's bearer token (empty: no login possible)
  size_t max_sessions = 32;
  int64_t idle_ms = 60LL * 60 * 1000;          // an hour without a request
  int64_t max_age_ms = 12LL * 60 * 60 * 1000;  // a working day
  int max_failed_logins_per_minute = 20;       // per client (IP)
  std::function<int64_t()> clock;              // ms; default: CLOCK_REALTIME
};

class Dashboard {
 public:
  explicit Dashboard(DashboardOptions options);

  // Paths the dashboard answers itself: /, /login, /logout, /ui/...
  static bool IsDashboardPath(std::string_view path);
  // The TCP listener's head check (with the bearer token's): a live session, or a page
  // served without one (the login page and its assets, / which redirects to it).
  bool Admits(const HttpRequest& request);
  // An API request carried by a session cookie rather than the token: kPermissionDenied when
  // it has no live session, or is state-changing without the session's CSRF token or from
  // another origin.
  Status CheckSessionRequest(const HttpRequest& request);
  // Pages, assets, login and logout (everything IsDashboardPath names but the WebSockets).
  // client: who asks (the peer's IP), for the limit on failed logins.
  void Serve(const HttpRequest& request, HttpConnection& conn, const std::string& client = "");
  // The session a request carries (nullopt: none or expired).
  std::optional<DashboardSession> SessionOf(const HttpRequest& request);
  size_t sessions() const { return sessions_.size(); }

 private:
  struct Asset {
    int64_t mtime_ns = 0;
    int64_t size = 0;
    std::string etag;
    std::string body;
    std::string gzip;  // empty when compression does not pay
  };
  int64_t Now() const;
  bool IsPublic(std::string_view path) const;
  // Origin and Sec-Fetch-Site name this server (or are absent: not a browser's cross-site
  // request).
  static bool SameOrigin(const HttpRequest& request);
  void Login(const HttpRequest& request, HttpConnection& conn, const std::string& client);
  void Logout(const HttpRequest& request, HttpConnection& conn);
  void ServeFile(const HttpRequest& request, HttpConnection& conn, const std::string& file);
  Result<Asset> LoadAsset(const std::string& file);

  DashboardOptions opt_;
  SessionStore sessions_;
  std::mutex mu_;  // assets_, failures_
  std::map<std::string, Asset> assets_;
  // Per client: times of its failed logins in the last minute.
  std::map<std::string, std::vector<int64_t>> failures_;
};

class Daemon;
class UsageHistory;

// One request on either listener. The unix socket serves the API alone; on TCP the dashboard
// answers its own paths, and an API request needs the bearer token or a session that passes
// CheckSessionRequest (dashboard_serve.cc).
// GET /ui/history/{name} answers from history.
void ServeWithDashboard(Daemon& daemon, Dashboard& dashboard, const UsageHistory& history,
                        const std::string& token, const HttpRequest& request, HttpConnection& conn,
                        const Peer& peer);
// GET /ui/ws/console/{name}: a microVM's serial console over a WebSocket (dashboard_ws.cc).
void ServeConsoleWebSocket(Daemon& daemon, Dashboard& dashboard, const HttpRequest& request,
                           HttpConnection& conn);
// GET /ui/ws/display/{name}: a legacy VM's screen for noVNC (RFB over a WebSocket; the daemon
// answers QEMU's VNC authentication and offers the browser None).
void ServeDisplayWebSocket(Daemon& daemon, Dashboard& dashboard, const HttpRequest& request,
                           HttpConnection& conn);
// Dashboard requests that last (the consoles' WebSockets): on the long pool.
bool IsLongDashboardRequest(const HttpRequest& request);
// web/ beside the binary (a build tree), else the package's /usr/share/storevisor/web.
std::string DefaultWebDir(const std::string& self_exe);

}  // namespace storevisor::daemon
