// Fuzzes the PPM reader: screendumps show what the guest drew, so their content is the
// guest's, and a corrupt file must never be read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "legacy/legacy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto image = storevisor::legacy::ParsePpm(text);
  if (image && static_cast<size_t>(image->width) * image->height <= 65536) {
    (void)storevisor::legacy::IsBlank(*image);
    (void)storevisor::legacy::PrepareForOcr(*image, 2);
  }
  return 0;
}
