// The dashboard's sessions, login, cross-site checks and static files (dashboard.h).
#include "daemon/api/dashboard.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "api/json.h"
#include "common/files.h"

namespace storevisor::daemon {

namespace {

constexpr size_t kMaxCookieHeader = 8192;
constexpr size_t kMaxFormFields = 16;
constexpr size_t kMaxFormField = 4096;
constexpr size_t kMaxAssetBytes = 8u << 20;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> FormDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexDigit(in[i + 1]);
      const int lo = HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '\0') {
      return std::nullopt;
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 6265 cookie-octet.
bool IsCookieOctet(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == 0x21 || (u >= 0x23 && u <= 0x2B) || (u >= 0x2D && u <= 0x3A) ||
         (u >= 0x3C && u <= 0x5B) || (u >= 0x5D && u <= 0x7E);
}

Result<std::string> RandomHex(size_t bytes) {
  std::array<unsigned char, 64> buf{};
  if (bytes > buf.size()) return Error(ErrorCode::kInvalidArgument, "too many random bytes");
  size_t got = 0;
  while (got < bytes) {
    const ssize_t n = ::getrandom(buf.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("getrandom");
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    out += kHex[buf[i] >> 4];
    out += kHex[buf[i] & 15];
  }
  return out;
}

// gzip of data at the best ratio (assets are compressed once); empty when zlib fails.
std::string Gzip(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return "";
  }
  std::string out(deflateBound(&z, data.size()), '\0');
  // zlib's interface is not const-correct; it does not write through next_in.
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

// Headers on every dashboard answer: no framing by other sites, scripts only from here, no
// referrer leaving the box (same-origin, not no-referrer: with no-referrer Chrome sends
// "Origin: null" on the login form's own POST).
constexpr std::string_view kSecurityHeaders =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: same-origin\r\n";

std::string Redirect(std::string_view location) {
  return "Location: " + std::string(location) + "\r\nCache-Control: no-store\r\n" +
         std::string(kSecurityHeaders);
}

void SendJsonError(HttpConnection& conn, int status, const Error& e) {
  conn.Send(status, "application/json", api::ErrorJson(e) + "\n",
            "Cache-Control: no-store\r\n" + std::string(kSecurityHeaders));
}

bool AcceptsGzip(const HttpRequest& request) {
  // Good enough for browsers, which all send "gzip" as a plain token; q=0 is not honoured.
  const std::string ae = request.Header("accept-encoding");
  return ae.find("gzip") != std::string::npos;
}

}  // namespace

std::optional<std::string> CookieValue(std::string_view header, std::string_view name) {
  if (header.size() > kMaxCookieHeader || name.empty()) return std::nullopt;
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view pair = Trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos || Trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = Trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!std::all_of(value.begin(), value.end(), IsCookieOctet)) return std::nullopt;
    return std::string(value);
  }
  return std::nullopt;
}

std::optional<std::string> FormField(std::string_view body, std::string_view name) {
  size_t fields = 0;
  while (!body.empty()) {
    if (++fields > kMaxFormFields) return std::nullopt;
    const size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (pair.size() > kMaxFormField) return std::nullopt;
    const size_t eq = pair.find('=');
    auto key = FormDecode(pair.substr(0, eq));
    if (!key) return std::nullopt;
    if (*key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return FormDecode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
  return diff == 0;
}

std::optional<std::string> AssetPath(std::string_view root, std::string_view path) {
  constexpr std::string_view kUi = "/ui/";
  if (path.substr(0, kUi.size()) != kUi) return std::nullopt;
  std::string_view rest = path.substr(kUi.size());
  if (rest.empty() || rest.size() > 512) return std::nullopt;
  // Each segment a plain name: nothing can climb out of root or name a hidden file.
  std::string_view check = rest;
  while (true) {
    const size_t slash = check.find('/');
    const std::string_view seg = check.substr(0, slash);
    if (seg.empty() || seg.front() == '.') return std::nullopt;
    for (char c : seg) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7F || c == '\\' || c == ':') return std::nullopt;
    }
    if (slash == std::string_view::npos) break;
    check = check.substr(slash + 1);
  }
  if (ContentTypeFor(rest).empty()) return std::nullopt;
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kVendor = {{
      {"vendor/xterm/", "node_modules/@xterm/xterm/"},
      {"vendor/novnc/", "node_modules/@novnc/novnc/"},
      {"vendor/uplot/", "node_modules/uplot/"},
  }};
  for (const auto& [prefix, dir] : kVendor) {
    if (rest.substr(0, prefix.size()) == prefix) {
      return std::string(root) + "/" + std::string(dir) + std::string(rest.substr(prefix.size()));
    }
  }
  // The page's own files: not the installed packages nor npm's files.
  if (rest.find('/') != std::string_view::npos) return std::nullopt;
  if (rest.substr(0, 7) == "package") return std::nullopt;
  return std::string(root) + "/" + std::string(rest);
}

std::string_view ContentTypeFor(std::string_view path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return "";
  const std::string_view ext = path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  return "";
}

Result<DashboardSession> SessionStore::Create(int64_t now_ms) {
  DashboardSession s;
  SV_ASSIGN_OR_RETURN(s.id, RandomHex(32));
  SV_ASSIGN_OR_RETURN(s.csrf, RandomHex(32));
  s.created_ms = now_ms;
  s.last_used_ms = now_ms;
  std::lock_guard lock(mu_);
  Expire(now_ms);
  if (sessions_.size() >= max_ && !sessions_.empty()) {
    auto lru = std::min_element(
        sessions_.begin(), sessions_.end(),
        [](const auto& a, const auto& b) { return a.last_used_ms < b.last_used_ms; });
    sessions_.erase(lru);
  }
  sessions_.push_back(s);
  return s;
}

std::optional<DashboardSession> SessionStore::Find(std::string_view id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Expire(now_ms);
  // Every session is compared, whole: the time taken says nothing about the ids.
  DashboardSession* found = nullptr;
  for (auto& s : sessions_) {
    if (ConstantTimeEquals(s.id, id)) found = &s;
  }
  if (found == nullptr || id.empty()) return std::nullopt;
  found->last_used_ms = now_ms;
  return *found;
}

void SessionStore::Remove(std::string_view id) {
  std::lock_guard lock(mu_);
  std::erase_if(sessions_, [id](const auto& s) { return ConstantTimeEquals(s.id, id); });
}

size_t SessionStore::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void SessionStore::Expire(int64_t now_ms) {
  std::erase_if(sessions_, [&](const auto& s) {
    return now_ms - s.last_used_ms >= idle_ms_ || now_ms - s.created_ms >= max_age_ms_;
  });
}

Dashboard::Dashboard(DashboardOptions options)
    : opt_(std::move(options)), sessions_(opt_.max_sessions, opt_.idle_ms, opt_.max_age_ms) {}

int64_t Dashboard::Now() const {
  if (opt_.clock) return opt_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool Dashboard::IsDashboardPath(std::string_view path) {
  return path == "/" || path == "/login" || path == "/logout" || path == "/favicon.ico" ||
         path.substr(0, 4) == "/ui/";
}

bool Dashboard::IsPublic(std::string_view path) const {
  return path == "/" || path == "/login" || path == "/favicon.ico" || path == "/ui/login.css" ||
         path == "/ui/logo.svg";
}

std::optional<DashboardSession> Dashboard::SessionOf(const HttpRequest& request) {
  auto id = CookieValue(request.Header("cookie"), kSessionCookie);
  if (!id || id->empty()) return std::nullopt;
  return sessions_.Find(*id, Now());
}

bool Dashboard::Admits(const HttpRequest& request) {
  if (IsPublic(request.path)) return true;
  return SessionOf(request).has_value();
}

bool Dashboard::SameOrigin(const HttpRequest& request) {
  const std::string site = request.Header("sec-fetch-site");
  if (!site.empty() && site != "same-origin" && site != "none") return false;
  const std::string origin = request.Header("origin");
  if (origin.empty()) return true;
  const std::string host = request.Header("host");
  return !host.empty() && origin == "http://" + host;
}

Status Dashboard::CheckSessionRequest(const HttpRequest& request) {
  auto session = SessionOf(request);
  if (!session) {
    return Error(ErrorCode::kPermissionDenied, "missing or wrong bearer token, and no session");
  }
  const bool safe = request.method == "GET" || request.method == "HEAD";
  if (!SameOrigin(request)) {
    return Error(ErrorCode::kPermissionDenied, "cross-site request refused");
  }
  if (!safe && !ConstantTimeEquals(request.Header(std::string(kCsrfHeader)), session->csrf)) {
    return Error(ErrorCode::kPermissionDenied,
                 "missing or wrong X-CSRF-Token for this session's request");
  }
  return Ok();
}

void Dashboard::Serve(const HttpRequest& request, HttpConnection& conn, const std::string& client) {
  const std::string& p = request.path;
  const std::string& m = request.method;
  const bool get = m == "GET" || m == "HEAD";
  if (p == "/login" && m == "POST") return Login(request, conn, client);
  if (p == "/logout" && m == "POST") return Logout(request, conn);
  if (!get) {
    return SendJsonError(conn, 405, Error(ErrorCode::kUnsupported, "use GET for " + p));
  }
  auto session = SessionOf(request);
  if (p == "/") {
    if (!session) return (void)conn.Send(303, "text/plain", "", Redirect("/login"));
    return ServeFile(request, conn, opt_.web_dir + "/index.html");
  }
  if (p == "/login") {
    if (session) return (void)conn.Send(303, "text/plain", "", Redirect("/"));
    return ServeFile(request, conn, opt_.web_dir + "/login.html");
  }
  if (p == "/favicon.ico") return ServeFile(request, conn, opt_.web_dir + "/logo.svg");
  if (!session && !IsPublic(p)) {
    return SendJsonError(conn, 401, Error(ErrorCode::kPermissionDenied, "log in first"));
  }
  if (p == "/ui/session") {
    nlohmann::json j{{"csrf", session->csrf},
                     {"expires_in_ms", opt_.max_age_ms - (Now() - session->created_ms)}};
    conn.Send(200, "application/json", api::Dump(j) + "\n",
              "Cache-Control: no-store\r\n" + std::string(kSecurityHeaders));
    return;
  }
  auto file = AssetPath(opt_.web_dir, p);
  if (!file) return SendJsonError(conn, 404, Error(ErrorCode::kNotFound, "no such page"));
  ServeFile(request, conn, *file);
}

void Dashboard::Login(const HttpRequest& request, HttpConnection& conn, const std::string& client) {
  if (!SameOrigin(request)) {
    return SendJsonError(conn, 403,
                         Error(ErrorCode::kPermissionDenied, "cross-site login refused"));
  }
  const int64_t now = Now();
  {
    // Guessing the token is bounded: a few failures a minute per client, whose count is
    // bounded too (clients without a failure in the last minute are forgotten first).
    constexpr size_t kMaxClients = 4096;
    std::lock_guard lock(mu_);
    auto old = [now](int64_t t) { return now - t >= 60000; };
    if (failures_.size() >= kMaxClients) {
      for (auto it = failures_.begin(); it != failures_.end();) {
        std::erase_if(it->second, old);
        it = it->second.empty() ? failures_.erase(it) : std::next(it);
      }
    }
    auto& mine = failures_[client];
    std::erase_if(mine, old);
    if (failures_.size() > kMaxClients ||
        static_cast<int>(mine.size()) >= opt_.max_failed_logins_per_minute) {
      return SendJsonError(conn, 429,
                           Error(ErrorCode::kUnavailable, "too many failed logins; wait a minute"));
    }
  }
  auto token = FormField(request.body, "token");
  if (token) {
    while (!token->empty() && (token->back() == ' ' || token->back() == '\n')) token->pop_back();
  }
  if (!token || opt_.token.empty() || !ConstantTimeEquals(*token, opt_.token)) {
    {
      std::lock_guard lock(mu_);
      failures_[client].push_back(now);
    }
    std::string page = ReadFile(opt_.web_dir + "/login.html", 1u << 20).value_or("");
    const std::string marker = "<!--error-->";
    const size_t at = page.find(marker);
    if (at != std::string::npos) {
      page.replace(at, marker.size(),
                   "<p class=\"error\" id=\"login-error\" role=\"alert\">Wrong token.</p>");
    } else {
      page = "Wrong token.\n";
    }
    conn.Send(401, "text/html; charset=utf-8", page,
              "Cache-Control: no-store\r\n" + std::string(kSecurityHeaders));
    return;
  }
  auto session = sessions_.Create(now);
  if (!session) return SendJsonError(conn, 500, session.error());
  const std::string cookie =
      "Set-Cookie: " + std::string(kSessionCookie) + "=" + session->id +
      "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(opt_.max_age_ms / 1000) +
      "\r\n";
  conn.Send(303, "text/plain", "", cookie + Redirect("/"));
}

void Dashboard::Logout(const HttpRequest& request, HttpConnection& conn) {
  if (auto st = CheckSessionRequest(request); !st) {
    return SendJsonError(conn, 403, st.error());
  }
  if (auto id = CookieValue(request.Header("cookie"), kSessionCookie)) sessions_.Remove(*id);
  const std::string clear = "Set-Cookie: " + std::string(kSessionCookie) +
                            "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n";
  conn.Send(303, "text/plain", "", clear + Redirect("/login"));
}

Result<Dashboard::Asset> Dashboard::LoadAsset(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(ErrorCode::kNotFound, "no such file");
  }
  const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  {
    std::lock_guard lock(mu_);
    auto it = assets_.find(file);
    if (it != assets_.end() && it->second.mtime_ns == mtime && it->second.size == st.st_size) {
      return it->second;
    }
  }
  Asset a;
  a.mtime_ns = mtime;
  a.size = st.st_size;
  SV_ASSIGN_OR_RETURN(a.body, ReadFile(file, kMaxAssetBytes));
  a.etag = "\"" + std::to_string(mtime) + "-" + std::to_string(st.st_size) + "\"";
  if (a.body.size() > 512) {
    a.gzip = Gzip(a.body);
    if (a.gzip.size() >= a.body.size()) a.gzip.clear();
  }
  std::lock_guard lock(mu_);
  assets_[file] = a;
  return a;
}

void Dashboard::ServeFile(const HttpRequest& request, HttpConnection& conn,
                          const std::string& file) {
  auto asset = LoadAsset(file);
  if (!asset) return SendJsonError(conn, 404, Error(ErrorCode::kNotFound, "no such page"));
  // Revalidated on each load (no-cache): a new version of the daemon's files shows at once.
  std::string headers = "Cache-Control: no-cache\r\nETag: " + asset->etag +
                        "\r\nVary: Accept-Encoding\r\n" + std::string(kSecurityHeaders);
  if (request.Header("if-none-match") == asset->etag) {
    conn.Send(304, ContentTypeFor(file), "", headers);
    return;
  }
  const bool gz = !asset->gzip.empty() && AcceptsGzip(request);
  if (gz) headers += "Content-Encoding: gzip\r\n";
  const std::string& body = gz ? asset->gzip : asset->body;
  if (request.method == "HEAD") {
    // The head alone (its Content-Length counts the empty body sent).
    conn.Send(200, ContentTypeFor(file), "", headers);
    return;
  }
  conn.Send(200, ContentTypeFor(file), body, headers);
}

}  // namespace storevisor::daemon
