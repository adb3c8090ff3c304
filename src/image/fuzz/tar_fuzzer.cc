// Fuzz target: the tar/layer reader must refuse bad archives, never crash or hang. Each
// input is both checked (CheckTar) and unpacked into a scratch directory, then removed.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/files.h"
#include "image/image.h"
#include "image/tar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  storevisor::image::MemorySource check(bytes);
  (void)storevisor::image::CheckTar(check).has_value();
  char dir[] = "/tmp/sv-tar-fuzz-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 0;
  storevisor::image::MemorySource src(bytes);
  storevisor::image::UnpackOptions o;
  o.max_entries = 1000;
  o.max_bytes = 16u << 20;
  (void)storevisor::image::UnpackLayer(src, dir, o).has_value();
  (void)storevisor::RemoveAll(dir);
  return 0;
}
