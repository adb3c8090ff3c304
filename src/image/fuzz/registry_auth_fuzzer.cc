// Fuzz target: the WWW-Authenticate challenge and token-server answer parsers (both come
// from the network) must refuse bad input, never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/registry_auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = storevisor::image::ParseWwwAuthenticate(text);
  if (c && c->scheme == "bearer" && c->realm.rfind("http", 0) != 0) __builtin_trap();
  (void)storevisor::image::ParseTokenResponse(text).has_value();
  return 0;
}
