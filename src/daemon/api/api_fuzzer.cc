// Fuzz target: raw bytes as an API request (HTTP head, query, JSON body) must be parsed
// into a command or refused, never crash; also response heads (the CLI parses those).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/api/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto req = storevisor::daemon::ParseHttpRequest(text);
  if (req && req->has_value()) (void)storevisor::daemon::ParseApiRequest(**req);
  size_t offset = 0;
  (void)storevisor::daemon::ParseHttpResponseHead(text, &offset);
  return 0;
}
