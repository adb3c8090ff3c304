#include "image/manifest.h"

#include <nlohmann/json.hpp>

#include "common/json_depth.h"

namespace storevisor::image {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxDepth = 32;

constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

Error Bad(const std::string& what) { return Error(ErrorCode::kGuestFault, "manifest: " + what); }

// nlohmann's parser recurses once per nesting level: bound it before parsing.
bool TooDeep(std::string_view text) { return JsonNestingDepth(text) > kMaxDepth; }

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Descriptor> ParseDescriptor(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where + " is not an object");
  auto digest = j.find("digest");
  auto size = j.find("size");
  if (digest == j.end() || !digest->is_string())
    return Bad(where + ".digest is missing or not a string");
  if (size == j.end() || !size->is_number_unsigned())
    return Bad(where + ".size is missing or not an unsigned integer");
  Descriptor d;
  d.media_type = StringField(j, "mediaType");
  d.digest = digest->get<std::string>();
  d.size = size->get<uint64_t>();
  if (d.size > kMaxBlobBytes) return Bad(where + ".size " + std::to_string(d.size) + " is too big");
  SV_TRY_CTX(DigestHex(d.digest), "manifest: " + where);
  auto platform = j.find("platform");
  if (platform != j.end()) {
    if (!platform->is_object()) return Bad(where + ".platform is not an object");
    d.os = StringField(*platform, "os");
    d.architecture = StringField(*platform, "architecture");
    d.variant = StringField(*platform, "variant");
  }
  return d;
}

Result<std::vector<Descriptor>> ParseList(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_array())
    return Bad(std::string(key) + " is missing or not a list");
  if (it->size() > kMaxManifestEntries)
    return Bad(std::string(key) + " has " + std::to_string(it->size()) + " entries (at most " +
               std::to_string(kMaxManifestEntries) + ")");
  std::vector<Descriptor> out;
  for (size_t i = 0; i < it->size(); ++i) {
    SV_ASSIGN_OR_RETURN(
        Descriptor d, ParseDescriptor((*it)[i], std::string(key) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(d));
  }
  return out;
}

// "application/json; charset=utf-8" -> "application/json"
std::string_view BareType(std::string_view t) {
  t = t.substr(0, t.find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

bool IsIndexType(std::string_view t) { return t == kOciIndex || t == kDockerList; }
bool IsImageType(std::string_view t) { return t == kOciManifest || t == kDockerManifest; }

}  // namespace

Result<std::string> DigestHex(std::string_view digest) {
  if (digest.size() != 71 || digest.substr(0, 7) != "sha256:" ||
      digest.find_first_not_of("0123456789abcdef", 7) != std::string_view::npos) {
    std::string shown(digest.substr(0, 80));
    return Error(ErrorCode::kGuestFault, "bad digest '" + shown + "' (want sha256:<64 hex>)");
  }
  return std::string(digest.substr(7));
}

Result<Manifest> ParseManifest(std::string_view body, std::string_view content_type) {
  if (body.size() > kMaxManifestBytes)
    return Bad("is " + std::to_string(body.size()) + " bytes (at most " +
               std::to_string(kMaxManifestBytes) + ")");
  if (TooDeep(body)) return Bad("nests deeper than 32 levels");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("is not valid JSON");
  if (!j.is_object()) return Bad("is not a JSON object");
  auto version = j.find("schemaVersion");
  if (version == j.end() || !version->is_number_integer())
    return Bad("schemaVersion is missing or not an integer");
  if (version->get<int64_t>() != 2)
    return Error(ErrorCode::kUnsupported, "manifest: schemaVersion " +
                                              std::to_string(version->get<int64_t>()) +
                                              " is not supported (only schema 2 / OCI)");
  Manifest m;
  std::string declared = StringField(j, "mediaType");
  std::string_view header = BareType(content_type);
  // A generic JSON Content-Type says nothing; a specific one must match the body.
  if (!declared.empty() && (IsIndexType(header) || IsImageType(header)) && header != declared)
    return Bad("Content-Type " + std::string(header) + " disagrees with mediaType " + declared);
  m.media_type = declared.empty() ? std::string(header) : declared;
  bool is_index = IsIndexType(m.media_type) ||
                  (m.media_type.empty() && j.contains("manifests") && !j.contains("layers"));
  if (!is_index && !m.media_type.empty() && !IsImageType(m.media_type) &&
      m.media_type != "application/json")
    return Error(ErrorCode::kUnsupported,
                 "manifest: media type " + m.media_type + " is not an image manifest or index");
  if (is_index) {
    m.kind = ManifestKind::kIndex;
    SV_ASSIGN_OR_RETURN(m.manifests, ParseList(j, "manifests"));
    return m;
  }
  auto config = j.find("config");
  if (config == j.end()) return Bad("has no config");
  SV_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, "config"));
  SV_ASSIGN_OR_RETURN(m.layers, ParseList(j, "layers"));
  return m;
}

Result<Descriptor> PickPlatform(const Manifest& index, std::string_view os, std::string_view arch) {
  std::string seen;
  for (const auto& d : index.manifests) {
    if (d.os == os && d.architecture == arch) {
      if (IsIndexType(d.media_type))
        return Error(ErrorCode::kUnsupported, "nested image indexes are not supported");
      return d;
    }
    if (!seen.empty()) seen += ", ";
    seen += d.os + "/" + d.architecture;
  }
  return Error(ErrorCode::kNotFound, "the index has no " + std::string(os) + "/" +
                                         std::string(arch) +
                                         " image (it has: " + (seen.empty() ? "none" : seen) + ")");
}

std::string RegistryRef::StoreRef() const {
  std::string out = host;
  if (port != 0) out += ":" + std::to_string(port);
  out += "/" + repository;
  out += digest.empty() ? ":" + tag : "@" + digest;
  return out;
}

Result<RegistryRef> ParseRegistryRef(std::string_view ref) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 "bad image reference '" + std::string(ref.substr(0, 256)) + "': " + why +
                     " (want HOST[:PORT]/NAME[:TAG], e.g. 127.0.0.1:5000/busybox:latest)");
  };
  if (ref.empty() || ref.size() > 512) return bad("empty or too long");
  size_t slash = ref.find('/');
  if (slash == std::string_view::npos) return bad("no registry host");
  std::string_view hostport = ref.substr(0, slash);
  std::string_view rest = ref.substr(slash + 1);
  RegistryRef r;
  size_t colon = hostport.rfind(':');
  r.host = std::string(hostport.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view p = hostport.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string_view::npos)
      return bad("bad port");
    r.port = std::stoi(std::string(p));
    if (r.port < 1 || r.port > 65535) return bad("port out of range");
  }
  if (r.host.empty() ||
      r.host.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos)
    return bad("bad host");
  if (r.host.find('.') == std::string::npos && colon == std::string_view::npos &&
      r.host != "localhost")
    return bad("the first component must be a registry host (no default registry)");
  size_t at = rest.find('@');
  std::string_view name = rest;
  if (at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    name = rest.substr(0, at);
    SV_TRY_CTX(DigestHex(r.digest), "image reference");
  } else {
    size_t tag_colon = rest.rfind(':');
    if (tag_colon != std::string_view::npos &&
        rest.find('/', tag_colon) == std::string_view::npos) {
      r.tag = std::string(rest.substr(tag_colon + 1));
      name = rest.substr(0, tag_colon);
    } else {
      r.tag = "latest";
    }
    if (r.tag.empty() || r.tag.size() > 128 ||
        r.tag.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
            std::string::npos ||
        r.tag[0] == '.' || r.tag[0] == '-')
      return bad("bad tag");
  }
  // Repository: lowercase path components separated by '/', each [a-z0-9]+ with . _ - inside.
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.back() == '/' ||
      name.find("//") != std::string_view::npos ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-/") !=
          std::string_view::npos ||
      name.find("..") != std::string_view::npos)
    return bad("bad repository name");
  r.repository = std::string(name);
  return r;
}

}  // namespace storevisor::image
