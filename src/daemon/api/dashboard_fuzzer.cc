// Fuzz target: what the dashboard reads from outside must be parsed or refused, never crash:
// a raw request through the server's parser, then its Cookie header, a login form body, the
// asset path and the session and cross-site checks; the raw bytes as a Cookie header and as a
// form body too. (WebSocket frames are Beast's.)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/api/dashboard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace storevisor::daemon;  // NOLINT(google-build-using-namespace): a fuzz entry
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)CookieValue(text, kSessionCookie);
  (void)FormField(text, "token");
  (void)AssetPath("/w", text);
  auto req = ParseHttpRequest(text);
  if (!req || !req->has_value()) return 0;
  const HttpRequest& r = **req;
  (void)CookieValue(r.Header("cookie"), kSessionCookie);
  (void)FormField(r.body, "token");
  (void)AssetPath("/w", r.path);
  (void)ContentTypeFor(r.path);
  (void)Dashboard::IsDashboardPath(r.path);
  DashboardOptions o;
  o.web_dir = "/nonexistent";
  o.token = "secret";
  o.clock = [] { return int64_t{1000}; };
  Dashboard dashboard(o);
  (void)dashboard.Admits(r);
  (void)dashboard.CheckSessionRequest(r);
  return 0;
}
