// Fuzzes the legacy-VM config parser and the USB id parser: profiles come from users and,
// through the daemon's API, from the network.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "legacy/legacy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = storevisor::legacy::ParseConfig(text, "fuzz");
  if (config) (void)storevisor::legacy::ConfigToJson(*config, false);
  (void)storevisor::legacy::ParseUsbId(text.substr(0, 64));
  return 0;
}
