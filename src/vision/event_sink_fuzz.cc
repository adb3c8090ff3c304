// Fuzz target over the event sink's parsers of outside input: the events URL (from the
// config or the command line) and the status line of storevisord's answer.
#include <cstdint>
#include <string_view>

#include "vision/vision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)storevisor::vision::ParseEventsUrl(input);
  (void)storevisor::vision::ParseHttpStatusLine(input);
  return 0;
}
