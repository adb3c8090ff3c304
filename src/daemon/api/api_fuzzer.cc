// Fuzz target: raw bytes as an API request must be parsed or refused, never crash: Beast's
// framing and our glue (target, query, header checks: the same code the server's sessions
// run), then the request-to-command parser and the server's request classification.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/api/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto req = storevisor::daemon::ParseHttpRequest(text);
  if (req && req->has_value()) {
    (void)storevisor::daemon::ParseApiRequest(**req);
    (void)storevisor::daemon::IsLongRequest(**req);
    (void)storevisor::daemon::TokenMatches("secret", **req);
  }
  return 0;
}
