// Fuzz target: config.json and process.json parsing must reject, never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/runtime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = storevisor::runtime::ParseSpec(text);
  (void)spec.has_value();
  auto process = storevisor::runtime::ParseProcess(text);
  (void)process.has_value();
  return 0;
}
