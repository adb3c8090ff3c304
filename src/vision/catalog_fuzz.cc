// Fuzz target over the product catalog parser (a JSON file from outside, named by the
// config's `catalog:`). Whatever parses must be clean: non-empty names and image paths
// without control characters, names unique, paths anchored at the catalog's directory.
#include <cstdint>
#include <set>
#include <string_view>

#include "vision/vision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto items = storevisor::vision::ParseCatalog(text, "/srv/catalog/catalog.json");
  if (!items) return 0;
  std::set<std::string> names;
  for (const auto& it : *items) {
    if (it.name.empty() || it.image_path.empty() || it.image_path[0] != '/') __builtin_trap();
    for (const std::string* s : {&it.name, &it.image_path}) {
      for (char c : *s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
      }
    }
    if (!names.insert(it.name).second) __builtin_trap();
  }
  return 0;
}
