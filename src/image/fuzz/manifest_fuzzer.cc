// Fuzz target: the registry manifest/index parser and the reference parser must refuse bad
// input, never crash or hang. The first byte picks the Content-Type the body comes with.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kTypes[] = {
      "", "application/json", "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"};
  std::string_view type = kTypes[data[0] % 5];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto m = storevisor::image::ParseManifest(body, type);
  if (m && m->kind == storevisor::image::ManifestKind::kIndex)
    (void)storevisor::image::PickPlatform(*m, "linux", "amd64").has_value();
  (void)storevisor::image::ParseRegistryRef(body).has_value();
  return 0;
}
