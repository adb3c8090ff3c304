// Image manifests and indexes as a registry (or an OCI layout) serves them: a strict parser
// for untrusted JSON, and image references of the form HOST[:PORT]/NAME[:TAG|@DIGEST].
// Internal to src/image (the public header is image/image.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::image {

// Limits applied to everything a registry sends before it is trusted.
inline constexpr size_t kMaxManifestBytes = 4u << 20;
inline constexpr size_t kMaxManifestEntries = 1000;
inline constexpr uint64_t kMaxBlobBytes = uint64_t{64} << 30;

struct Descriptor {
  std::string media_type;
  std::string digest;  // sha256:<64 lowercase hex>
  uint64_t size = 0;
  std::string os, architecture, variant;  // index entries only
};

enum class ManifestKind { kImage, kIndex };

struct Manifest {
  ManifestKind kind = ManifestKind::kImage;
  std::string media_type;
  Descriptor config;                  // kImage
  std::vector<Descriptor> layers;     // kImage, bottom first
  std::vector<Descriptor> manifests;  // kIndex
};

// "sha256:<64 hex>" -> the hex; anything else is a guest fault.
Result<std::string> DigestHex(std::string_view digest);

// Parses a manifest or index (OCI or Docker schema 2). content_type is the HTTP
// Content-Type (may be empty); the body's own mediaType wins when both are present and
// they must agree. Refuses schema 1, missing or malformed descriptors, more than
// kMaxManifestEntries entries, bodies above kMaxManifestBytes or nested deeper than 32.
Result<Manifest> ParseManifest(std::string_view body, std::string_view content_type);

// The index entry for os/architecture (variant ignored unless several match, then the
// first). NotFound names the platforms the index has.
Result<Descriptor> PickPlatform(const Manifest& index, std::string_view os, std::string_view arch);

struct RegistryRef {
  std::string host;  // host name or IPv4 address
  int port = 0;      // 0: the scheme's default
  std::string repository;
  std::string tag;     // empty when pulled by digest
  std::string digest;  // sha256:... when pulled by digest
  // HOST[:PORT]/NAME:TAG (or NAME@DIGEST): the name the image gets in the store.
  std::string StoreRef() const;
  std::string Reference() const { return digest.empty() ? tag : digest; }
};

// HOST[:PORT]/NAME[:TAG|@sha256:...]; the host part is mandatory (there is no default
// registry) and must contain a '.' or ':' or be "localhost".
Result<RegistryRef> ParseRegistryRef(std::string_view ref);

}  // namespace storevisor::image
