// ParseProcNetSockets on arbitrary text, as each of the four protocols.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6"}) {
    for (const auto& b : storevisor::net::ParseProcNetSockets(text, proto)) {
      if (b.port <= 0 || b.port > 65535) __builtin_trap();
    }
  }
  return 0;
}
