#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/files.h"
#include "common/unique_fd.h"
#include "image/image.h"
#include "image/manifest.h"
#include "image/passwd.h"
#include "image/registry.h"
#include "image/sha256.h"
#include "image/tar.h"
#include "runtime/runtime.h"

namespace storevisor::image {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxJsonBlob = 4u << 20;

std::string JoinPath(std::string a, std::string_view b) {
  a += '/';
  a += b;
  return a;
}

class HashingSource : public Source {
 public:
  explicit HashingSource(Source& inner) : inner_(inner) {}
  Result<size_t> Read(char* buf, size_t n) override {
    SV_ASSIGN_OR_RETURN(size_t got, inner_.Read(buf, n));
    hasher_.Update(buf, got);
    bytes_ += got;
    return got;
  }
  Status Drain() {
    char buf[65536];
    for (;;) {
      SV_ASSIGN_OR_RETURN(size_t n, Read(buf, sizeof buf));
      if (n == 0) return Ok();
    }
  }
  std::string Digest() { return hasher_.Digest(); }
  uint64_t bytes() const { return bytes_; }

 private:
  Source& inner_;
  Hasher hasher_;
  uint64_t bytes_ = 0;
};

std::string Now() {
  time_t t = ::time(nullptr);
  tm g{};
  ::gmtime_r(&t, &g);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

Result<std::string> HexOf(const std::string& digest) {
  if (digest.size() != 71 || digest.rfind("sha256:", 0) != 0 ||
      digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
    return Error(ErrorCode::kGuestFault, "bad digest '" + digest + "' (want sha256:<64 hex>)");
  }
  return digest.substr(7);
}

Result<json> ParseJson(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return Error(ErrorCode::kGuestFault, what + ": invalid JSON: " + e.what());
  }
}

// Holds the store's exclusive lock for mutations.
class Lock {
 public:
  static Result<Lock> Take(const std::string& root) {
    SV_TRY(MakeDirs(root, 0700));
    SV_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(root + "/lock", O_RDWR | O_CREAT, 0600));
    if (::flock(fd.get(), LOCK_EX) != 0) return ErrnoError("lock " + root);
    return Lock(std::move(fd));
  }

 private:
  explicit Lock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

class Index {
 public:
  static Result<Index> Load(const std::string& root) {
    Index idx;
    idx.path_ = root + "/index.json";
    auto text = ReadFile(idx.path_, 64u << 20);
    if (!text) {
      if (text.error().sys_errno() == ENOENT) return idx;
      return std::move(text).error();
    }
    SV_ASSIGN_OR_RETURN(json j, ParseJson(*text, idx.path_));
    try {
      for (auto& [ref, r] : j.at("images").items()) {
        ImageRecord rec;
        rec.ref = ref;
        rec.manifest_digest = r.at("manifest").get<std::string>();
        rec.config_digest = r.at("config").get<std::string>();
        rec.layers = r.at("layers").get<std::vector<std::string>>();
        rec.size = r.at("size").get<uint64_t>();
        rec.created = r.at("created").get<std::string>();
        idx.images[ref] = rec;
      }
    } catch (const json::exception& e) {
      return Error(ErrorCode::kIo, idx.path_ + " is corrupt: " + e.what());
    }
    return idx;
  }
  Status Save() const {
    json images = json::object();
    for (const auto& [ref, r] : images_view()) {
      images[ref] = {{"manifest", r.manifest_digest},
                     {"config", r.config_digest},
                     {"layers", r.layers},
                     {"size", r.size},
                     {"created", r.created}};
    }
    return WriteFileAtomic(path_, json{{"version", 1}, {"images", images}}.dump(1), 0600);
  }
  const std::map<std::string, ImageRecord>& images_view() const { return images; }
  std::map<std::string, ImageRecord> images;

 private:
  std::string path_;
};

Result<Descriptor> ParseDescriptor(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string() || !j.contains("size") ||
      !j["size"].is_number_unsigned()) {
    return Error(ErrorCode::kGuestFault, where + ": a descriptor needs digest and size");
  }
  Descriptor d;
  d.media_type = j.value("mediaType", "");
  d.digest = j["digest"].get<std::string>();
  d.size = j["size"].get<uint64_t>();
  SV_TRY_CTX(HexOf(d.digest), where);
  return d;
}

class StoreImpl {
 public:
  explicit StoreImpl(std::string root) : root_(std::move(root)) {}

  std::string BlobPath(const std::string& digest) const {
    return root_ + "/blobs/sha256/" + digest.substr(7);
  }
  std::string LayerPath(const std::string& digest) const {
    return root_ + "/layers/" + digest.substr(7);
  }

  Status Prepare() const {
    for (const char* d : {"/blobs/sha256", "/layers", "/tmp", "/bundles"})
      SV_TRY(MakeDirs(root_ + d, 0700));
    return Ok();
  }

  // Copies a file into the blob store, checking digest (and size when known).
  Status IngestFile(const std::string& file, const std::string& digest,
                    std::optional<uint64_t> size) {
    SV_TRY(HexOf(digest));
    if (::access(BlobPath(digest).c_str(), F_OK) == 0) return Ok();
    SV_ASSIGN_OR_RETURN(UniqueFd in, OpenFile(file, O_RDONLY));
    std::string tmp =
        root_ + "/tmp/blob-" + digest.substr(7, 16) + "-" + std::to_string(::getpid());
    SV_ASSIGN_OR_RETURN(UniqueFd out, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    FdSource src(in.get());
    HashingSource h(src);
    char buf[65536];
    for (;;) {
      auto n = h.Read(buf, sizeof buf);
      if (!n) return std::move(n).error().Context(file);
      if (*n == 0) break;
      SV_TRY(WriteAll(out.get(), std::string_view(buf, *n)));
      if (size && h.bytes() > *size) break;
    }
    std::string got = h.Digest();
    if ((size && h.bytes() != *size) || got != digest) {
      ::unlink(tmp.c_str());
      return Error(ErrorCode::kGuestFault,
                   "blob " + file + ": digest mismatch: expected " + digest +
                       (size ? " (" + std::to_string(*size) + " bytes)" : "") + ", got " + got +
                       " (" + std::to_string(h.bytes()) + " bytes)");
    }
    if (::fsync(out.get()) != 0) return ErrnoError("fsync " + tmp);
    if (::rename(tmp.c_str(), BlobPath(digest).c_str()) != 0)
      return ErrnoError("rename blob " + digest);
    return Ok();
  }

  Result<std::string> IngestBytes(const std::string& data) {
    std::string tmp = root_ + "/tmp/json-" + std::to_string(::getpid());
    SV_TRY(WriteFileAtomic(tmp, data, 0600));
    Hasher h;
    h.Update(data.data(), data.size());
    std::string digest = h.Digest();
    Status s = IngestFile(tmp, digest, data.size());
    ::unlink(tmp.c_str());
    SV_TRY(s);
    return digest;
  }

  // Unpacks a layer blob once; checks the uncompressed stream against diff_id.
  Status UnpackBlob(const std::string& digest, const std::string& diff_id, const UnpackOptions& o) {
    std::string final_dir = LayerPath(digest);
    if (::access(final_dir.c_str(), F_OK) == 0) return Ok();
    std::string tmp =
        root_ + "/tmp/layer-" + digest.substr(7, 16) + "-" + std::to_string(::getpid());
    (void)RemoveAll(tmp);
    SV_TRY(MakeDirs(tmp, 0755));
    Status s = UnpackInto(digest, diff_id, tmp, o);
    if (!s) {
      (void)RemoveAll(tmp);
      return s;
    }
    // The index will refer to this layer: its files must be on disk before its name is
    // (after a power cut, a layer dir of empty files would pass as unpacked). One syncfs
    // covers the whole tree; an import is long anyway.
    {
      UniqueFd d(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!d.valid() || ::syncfs(d.get()) != 0) {
        (void)RemoveAll(tmp);
        return ErrnoError("sync layer " + digest);
      }
    }
    if (::rename(tmp.c_str(), final_dir.c_str()) != 0) return ErrnoError("rename layer " + digest);
    UniqueFd parent(::open(final_dir.substr(0, final_dir.rfind('/')).c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent.valid() || ::fsync(parent.get()) != 0) return ErrnoError("fsync layers dir");
    return Ok();
  }

  Status UnpackInto(const std::string& digest, const std::string& diff_id, const std::string& dir,
                    const UnpackOptions& o) {
    SV_ASSIGN_OR_RETURN(UniqueFd in, OpenFile(BlobPath(digest), O_RDONLY));
    FdSource file(in.get());
    SV_ASSIGN_OR_RETURN(auto plain, MaybeDecompress(file));
    HashingSource h(*plain);
    SV_TRY_CTX(UnpackLayer(h, dir, o), "layer " + digest);
    SV_TRY(h.Drain());
    if (!diff_id.empty() && h.Digest() != diff_id) {
      return Error(ErrorCode::kGuestFault, "layer " + digest + ": uncompressed digest " +
                                               h.Digest() +
                                               " does not match the config's diff_id " + diff_id);
    }
    return Ok();
  }

  Result<json> ReadJsonBlob(const std::string& digest) const {
    SV_ASSIGN_OR_RETURN(std::string text, ReadFile(BlobPath(digest), kMaxJsonBlob));
    return ParseJson(text, "blob " + digest);
  }

  // Makes sure a blob is in blobs/ (verified); i is the layer's index, or -1 for the config.
  using BlobFetcher = std::function<Status(const Descriptor& d, int i)>;

  // Ingests what a parsed image manifest names, through fetch (an OCI layout's blob
  // directory or a registry), and unpacks its layers (each once, shared by digest).
  Result<ImageRecord> ImportImage(const Manifest& manifest, const std::string& manifest_digest,
                                  const std::string& ref, bool allow_devices,
                                  const std::function<void(const std::string&)>& progress,
                                  const BlobFetcher& fetch) {
    if (manifest.kind != ManifestKind::kImage)
      return Error(ErrorCode::kUnsupported,
                   "nested image indexes are not supported; export one platform");
    const Descriptor& config = manifest.config;
    if (config.size > kMaxJsonBlob)
      return Error(ErrorCode::kGuestFault, "config " + config.digest + " is " +
                                               std::to_string(config.size) + " bytes (at most " +
                                               std::to_string(kMaxJsonBlob) + ")");
    SV_TRY_CTX(fetch(config, -1), "config");
    SV_ASSIGN_OR_RETURN(json cfg, ReadJsonBlob(config.digest));
    std::vector<std::string> diff_ids;
    try {
      diff_ids = cfg.at("rootfs").at("diff_ids").get<std::vector<std::string>>();
    } catch (const json::exception&) {
      return Error(ErrorCode::kGuestFault, "config " + config.digest + ": no rootfs.diff_ids");
    }
    if (diff_ids.size() != manifest.layers.size()) {
      return Error(ErrorCode::kGuestFault, "config lists " + std::to_string(diff_ids.size()) +
                                               " diff_ids for " +
                                               std::to_string(manifest.layers.size()) + " layers");
    }
    ImageRecord rec{ref, manifest_digest, config.digest, {}, 0, Now()};
    for (size_t i = 0; i < diff_ids.size(); ++i) {
      const Descriptor& l = manifest.layers[i];
      if (l.media_type.find("zstd") != std::string::npos) {
        return Error(ErrorCode::kUnsupported,
                     "layer " + l.digest + " is zstd-compressed (unsupported)");
      }
      if (progress)
        progress("layer " + std::to_string(i + 1) + "/" + std::to_string(diff_ids.size()) + " " +
                 l.digest.substr(0, 19) + " " + std::to_string(l.size) + " bytes");
      SV_TRY_CTX(fetch(l, static_cast<int>(i)), "layer");
      SV_TRY(UnpackBlob(l.digest, diff_ids[i], {allow_devices}));
      rec.layers.push_back(l.digest);
      rec.size += l.size;
    }
    return rec;
  }

  // Imports everything an image manifest names from an OCI layout's blob directory.
  Result<ImageRecord> ImportManifest(const std::string& layout, const Descriptor& m,
                                     const std::string& ref, const ImportOptions& o) {
    auto blob = [&](const Descriptor& d) { return layout + "/blobs/sha256/" + d.digest.substr(7); };
    if (m.size > kMaxManifestBytes)
      return Error(ErrorCode::kGuestFault, "manifest " + m.digest + " is too big");
    SV_TRY_CTX(IngestFile(blob(m), m.digest, m.size), "manifest");
    SV_ASSIGN_OR_RETURN(std::string text, ReadFile(BlobPath(m.digest), kMaxManifestBytes));
    SV_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(text, m.media_type));
    return ImportImage(
        manifest, m.digest, ref, o.allow_devices, o.progress,
        [&](const Descriptor& d, int) { return IngestFile(blob(d), d.digest, d.size); });
  }

  // Downloads a blob from a registry into tmp/, then renames it into blobs/ (verified).
  Status FetchFromRegistry(RegistryClient& client, const Descriptor& d, int layer, int layers,
                           const PullOptions& o) {
    SV_TRY(HexOf(d.digest));
    if (::access(BlobPath(d.digest).c_str(), F_OK) == 0) {
      if (o.bytes) o.bytes({layer, layers, d.digest, d.size, d.size, true});
      return Ok();
    }
    std::string partial = root_ + "/tmp/pull-" + d.digest.substr(7) + ".partial";
    SV_TRY(client.DownloadBlob(d, partial, [&](uint64_t done, uint64_t total) {
      if (o.bytes) o.bytes({layer, layers, d.digest, done, total, false});
    }));
    if (::rename(partial.c_str(), BlobPath(d.digest).c_str()) != 0)
      return ErrnoError("rename blob " + d.digest);
    return Ok();
  }

  Result<std::vector<ImageRecord>> ImportOciLayout(const std::string& dir, const ImportOptions& o) {
    SV_ASSIGN_OR_RETURN(std::string layout_text, ReadFile(dir + "/oci-layout", 4096));
    SV_ASSIGN_OR_RETURN(json layout, ParseJson(layout_text, "oci-layout"));
    if (layout.value("imageLayoutVersion", "") != "1.0.0") {
      return Error(ErrorCode::kGuestFault, "oci-layout: unsupported imageLayoutVersion");
    }
    SV_ASSIGN_OR_RETURN(std::string index_text, ReadFile(dir + "/index.json", kMaxJsonBlob));
    SV_ASSIGN_OR_RETURN(json index, ParseJson(index_text, "index.json"));
    if (!index.contains("manifests") || !index["manifests"].is_array()) {
      return Error(ErrorCode::kGuestFault, "index.json: no manifests");
    }
    std::vector<ImageRecord> out;
    for (size_t i = 0; i < index["manifests"].size(); ++i) {
      const json& m = index["manifests"][i];
      SV_ASSIGN_OR_RETURN(Descriptor d,
                          ParseDescriptor(m, "index.json manifests[" + std::to_string(i) + "]"));
      if (d.media_type.find("index") != std::string::npos ||
          d.media_type.find("manifest.list") != std::string::npos) {
        return Error(ErrorCode::kUnsupported,
                     "nested image indexes are not supported; export one platform");
      }
      std::string name;
      if (m.contains("annotations") && m["annotations"].is_object()) {
        name = m["annotations"].value("org.opencontainers.image.ref.name", "");
        if (name.empty()) name = m["annotations"].value("io.containerd.image.name", "");
      }
      if (name.find(':') == std::string::npos && !name.empty() && !o.ref.empty()) name = o.ref;
      if (name.find(':') == std::string::npos && !name.empty())
        name.insert(0, "image:");  // a bare tag
      if (name.empty()) name = o.ref;
      if (name.empty())
        return Error(ErrorCode::kInvalidArgument, "the archive names no image: give NAME:TAG");
      SV_ASSIGN_OR_RETURN(std::string ref, NormalizeRef(name));
      SV_ASSIGN_OR_RETURN(ImageRecord rec, ImportManifest(dir, d, ref, o));
      out.push_back(rec);
    }
    return out;
  }

  Result<std::vector<ImageRecord>> ImportDockerArchive(const std::string& dir,
                                                       const ImportOptions& o) {
    SV_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/manifest.json", kMaxJsonBlob));
    SV_ASSIGN_OR_RETURN(json manifest, ParseJson(text, "manifest.json"));
    if (!manifest.is_array()) return Error(ErrorCode::kGuestFault, "manifest.json: not an array");
    std::vector<ImageRecord> out;
    for (const auto& entry : manifest) {
      std::string config_file;
      std::vector<std::string> layers, tags;
      try {
        config_file = entry.at("Config").get<std::string>();
        layers = entry.at("Layers").get<std::vector<std::string>>();
        if (entry.contains("RepoTags") && entry["RepoTags"].is_array())
          tags = entry["RepoTags"].get<std::vector<std::string>>();
      } catch (const json::exception& e) {
        return Error(ErrorCode::kGuestFault, std::string("manifest.json: ") + e.what());
      }
      for (const auto& f : layers) {
        if (f.find("..") != std::string::npos || f.empty() || f[0] == '/') {
          return Error(ErrorCode::kGuestFault, "manifest.json: bad layer path '" + f + "'");
        }
      }
      if (config_file.find("..") != std::string::npos || config_file.empty() ||
          config_file[0] == '/') {
        return Error(ErrorCode::kGuestFault, "manifest.json: bad config path");
      }
      SV_ASSIGN_OR_RETURN(std::string cfg_text, ReadFile(JoinPath(dir, config_file), kMaxJsonBlob));
      SV_ASSIGN_OR_RETURN(std::string config_digest, IngestBytes(cfg_text));
      // The config's file name is its digest in docker save output: check it when it is.
      std::string base = fs::path(config_file).stem().string();
      if (base.size() == 64 && "sha256:" + base != config_digest) {
        std::string msg = "config ";
        msg += config_file;
        msg += ": digest mismatch (got ";
        msg += config_digest;
        msg += ")";
        return Error(ErrorCode::kGuestFault, msg);
      }
      SV_ASSIGN_OR_RETURN(json cfg, ParseJson(cfg_text, config_file));
      std::vector<std::string> diff_ids;
      try {
        diff_ids = cfg.at("rootfs").at("diff_ids").get<std::vector<std::string>>();
      } catch (const json::exception&) {
        return Error(ErrorCode::kGuestFault, config_file + ": no rootfs.diff_ids");
      }
      if (diff_ids.size() != layers.size())
        return Error(ErrorCode::kGuestFault, "layer count does not match diff_ids");
      std::string ref = tags.empty() ? o.ref : tags[0];
      if (ref.empty())
        return Error(ErrorCode::kInvalidArgument, "the archive names no image: give NAME:TAG");
      SV_ASSIGN_OR_RETURN(ref, NormalizeRef(ref));
      ImageRecord rec{ref, "", config_digest, {}, 0, Now()};
      json oci_layers = json::array();
      for (size_t i = 0; i < layers.size(); ++i) {
        std::string file = dir + "/" + layers[i];
        struct stat st {};
        if (::stat(file.c_str(), &st) != 0) return ErrnoError("layer " + layers[i]);
        if (o.progress)
          o.progress("layer " + std::to_string(i + 1) + "/" + std::to_string(layers.size()) + " " +
                     diff_ids[i].substr(0, 19));
        // docker-archive layers are uncompressed: the blob digest is the diff_id.
        SV_TRY_CTX(IngestFile(file, diff_ids[i], static_cast<uint64_t>(st.st_size)),
                   "layer " + layers[i]);
        SV_TRY(UnpackBlob(diff_ids[i], diff_ids[i], {o.allow_devices}));
        rec.layers.push_back(diff_ids[i]);
        rec.size += static_cast<uint64_t>(st.st_size);
        oci_layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                              {"digest", diff_ids[i]},
                              {"size", st.st_size}});
      }
      json m = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"config",
                 {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                  {"digest", config_digest},
                  {"size", cfg_text.size()}}},
                {"layers", oci_layers}};
      SV_ASSIGN_OR_RETURN(rec.manifest_digest, IngestBytes(m.dump()));
      out.push_back(rec);
    }
    return out;
  }

  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// Extracts an outer archive (OCI layout tar, docker-archive) into dir, with the same
// checks as a layer.
Status ExtractArchive(const std::string& file, const std::string& dir) {
  SV_ASSIGN_OR_RETURN(UniqueFd in, OpenFile(file, O_RDONLY));
  FdSource src(in.get());
  SV_TRY_CTX(UnpackLayer(src, dir, {}), file);
  return Ok();
}

Result<std::string> ReadDirTree(const std::string& dir, TarWriter& tar) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return ErrnoError("walk " + dir, ec.value());
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  std::map<std::pair<dev_t, ino_t>, std::string> seen;
  for (const auto& p : paths) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return ErrnoError("stat " + p.string());
    TarEntry e;
    e.path = p.lexically_relative(dir).string();
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime = st.st_mtime;
    if (S_ISDIR(st.st_mode)) {
      e.type = '5';
      e.path += "/";
    } else if (S_ISLNK(st.st_mode)) {
      e.type = '2';
      char buf[4096];
      ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
      if (n < 0) return ErrnoError("readlink " + p.string());
      e.linkname.assign(buf, static_cast<size_t>(n));
    } else if (S_ISREG(st.st_mode)) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (st.st_nlink > 1 && seen.count(key)) {
        e.type = '1';
        e.linkname = seen[key];
      } else {
        seen[key] = e.path;
        e.type = '0';
        e.size = static_cast<uint64_t>(st.st_size);
      }
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      e.type = S_ISCHR(st.st_mode) ? '3' : '4';
      e.devmajor = major(st.st_rdev);
      e.devminor = minor(st.st_rdev);
    } else if (S_ISFIFO(st.st_mode)) {
      e.type = '6';
    } else {
      continue;  // sockets are not archived
    }
    if (e.type == '0' && e.size > 0) {
      SV_ASSIGN_OR_RETURN(UniqueFd f, OpenFile(p.string(), O_RDONLY | O_NOFOLLOW));
      int fd = f.get();
      SV_TRY(tar.Add(e, [fd](char* buf, size_t n) -> Result<size_t> {
        ssize_t r = ::read(fd, buf, n);
        if (r < 0) return ErrnoError("read");
        return static_cast<size_t>(r);
      }));
    } else {
      SV_TRY(tar.Add(e));
    }
  }
  return std::string();
}

}  // namespace

Result<std::string> NormalizeRef(const std::string& ref) {
  if (ref.empty() || ref.size() > 255 ||
      ref.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@") !=
          std::string::npos ||
      ref[0] == '/' || ref[0] == ':' || ref.find("..") != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 "bad image reference '" + ref + "' (want NAME[:TAG])");
  }
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash))
    return ref + ":latest";
  if (colon + 1 == ref.size())
    return Error(ErrorCode::kInvalidArgument, "empty tag in '" + ref + "'");
  return ref;
}

Store::Store(std::string root) : root_(std::move(root)) {}

Result<std::vector<ImageRecord>> Store::Import(const std::string& path, const ImportOptions& o) {
  SV_ASSIGN_OR_RETURN(Lock lock, Lock::Take(root_));
  StoreImpl s(root_);
  SV_TRY(s.Prepare());
  std::string dir = path;
  std::string scratch;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("import " + path);
  if (!S_ISDIR(st.st_mode)) {
    scratch = root_ + "/tmp/archive-" + std::to_string(::getpid());
    (void)RemoveAll(scratch);
    SV_TRY(MakeDirs(scratch, 0700));
    if (o.progress) o.progress("reading " + path);
    Status x = ExtractArchive(path, scratch);
    if (!x) {
      (void)RemoveAll(scratch);
      return std::move(x).error();
    }
    dir = scratch;
  }
  Result<std::vector<ImageRecord>> recs =
      ::access((dir + "/oci-layout").c_str(), F_OK) == 0 ? s.ImportOciLayout(dir, o)
      : ::access((dir + "/manifest.json").c_str(), F_OK) == 0
          ? s.ImportDockerArchive(dir, o)
          : Result<std::vector<ImageRecord>>(
                Error(ErrorCode::kInvalidArgument,
                      path + ": neither an OCI image layout nor a docker-archive"));
  if (!scratch.empty()) (void)RemoveAll(scratch);
  if (!recs) return std::move(recs).error().Context("import " + path);
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  for (const auto& r : *recs) idx.images[r.ref] = r;
  SV_TRY(idx.Save());
  return recs;
}

Result<ImageRecord> Store::BuildFromDir(const std::string& dir, const std::string& ref_in,
                                        const BuildOptions& o) {
  SV_ASSIGN_OR_RETURN(std::string ref, NormalizeRef(ref_in));
  SV_ASSIGN_OR_RETURN(Lock lock, Lock::Take(root_));
  StoreImpl s(root_);
  SV_TRY(s.Prepare());
  std::string tmp = root_ + "/tmp/build-" + std::to_string(::getpid()) + ".tar";
  {
    SV_ASSIGN_OR_RETURN(UniqueFd out, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    TarWriter tar(out.get());
    if (o.progress) o.progress("packing " + dir);
    auto packed = ReadDirTree(dir, tar);
    if (!packed) {
      ::unlink(tmp.c_str());
      return std::move(packed).error().Context("build-from-dir " + dir);
    }
    SV_TRY(tar.Finish());
  }
  SV_ASSIGN_OR_RETURN(UniqueFd in, OpenFile(tmp, O_RDONLY));
  FdSource src(in.get());
  HashingSource h(src);
  SV_TRY(h.Drain());
  std::string layer = h.Digest();
  uint64_t size = h.bytes();
  Status ing = s.IngestFile(tmp, layer, size);
  ::unlink(tmp.c_str());
  SV_TRY(ing);
  if (o.progress)
    o.progress("unpacking layer " + layer.substr(0, 19) + " (" + std::to_string(size) + " bytes)");
  // The directory is the builder's own: device nodes in it (debootstrap's /dev) are kept.
  SV_TRY(s.UnpackBlob(layer, layer, {true}));
  json config = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"created", Now()},
      {"config", {{"Env", o.env}, {"Cmd", o.cmd}, {"WorkingDir", o.workdir}, {"User", o.user}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {layer}}}},
      {"history", {{{"created", Now()}, {"created_by", "storevisor image build-from-dir"}}}}};
  std::string cfg_text = config.dump();
  SV_ASSIGN_OR_RETURN(std::string cfg, s.IngestBytes(cfg_text));
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config",
             {{"mediaType", "application/vnd.oci.image.config.v1+json"},
              {"digest", cfg},
              {"size", cfg_text.size()}}},
            {"layers",
             {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
               {"digest", layer},
               {"size", size}}}}};
  SV_ASSIGN_OR_RETURN(std::string manifest, s.IngestBytes(m.dump()));
  ImageRecord rec{ref, manifest, cfg, {layer}, size, Now()};
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  idx.images[ref] = rec;
  SV_TRY(idx.Save());
  return rec;
}

Result<ImageRecord> Store::Pull(const std::string& ref_text, const PullOptions& o) {
  SV_ASSIGN_OR_RETURN(RegistryRef ref, ParseRegistryRef(ref_text));
  SV_ASSIGN_OR_RETURN(std::string store_ref, NormalizeRef(ref.StoreRef()));
  SV_ASSIGN_OR_RETURN(Lock lock, Lock::Take(root_));
  StoreImpl s(root_);
  SV_TRY(s.Prepare());
  RegistryClient client(ref, o.insecure, o.timeout_seconds,
                        RegistryCredentials{o.username, o.password});
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  say("fetching manifest " + ref.StoreRef());
  SV_ASSIGN_OR_RETURN(FetchedManifest fetched, client.GetManifest(ref.Reference()));
  SV_ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(fetched.body, fetched.content_type));
  if (manifest.kind == ManifestKind::kIndex) {
    SV_ASSIGN_OR_RETURN(Descriptor pick, PickPlatform(manifest, o.os, o.architecture));
    say("index: picked " + o.os + "/" + o.architecture + " manifest " + pick.digest.substr(0, 19));
    SV_ASSIGN_OR_RETURN(fetched, client.GetManifest(pick.digest));
    if (fetched.body.size() != pick.size)
      return Error(ErrorCode::kGuestFault,
                   "manifest " + pick.digest + " is " + std::to_string(fetched.body.size()) +
                       " bytes, the index says " + std::to_string(pick.size));
    SV_ASSIGN_OR_RETURN(manifest, ParseManifest(fetched.body, fetched.content_type));
  }
  SV_ASSIGN_OR_RETURN(std::string manifest_digest, s.IngestBytes(fetched.body));
  const int layers = static_cast<int>(manifest.layers.size());
  SV_ASSIGN_OR_RETURN(ImageRecord rec,
                      s.ImportImage(manifest, manifest_digest, store_ref, o.allow_devices,
                                    o.progress, [&](const Descriptor& d, int i) {
                                      return s.FetchFromRegistry(client, d, i, layers, o);
                                    }));
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  idx.images[rec.ref] = rec;
  SV_TRY(idx.Save());
  return rec;
}

Result<std::vector<ImageRecord>> Store::List() const {
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  std::vector<ImageRecord> out;
  for (const auto& [ref, r] : idx.images) out.push_back(r);
  return out;
}

Result<ImageRecord> Store::Find(const std::string& ref_in) const {
  SV_ASSIGN_OR_RETURN(std::string ref, NormalizeRef(ref_in));
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  auto it = idx.images.find(ref);
  if (it == idx.images.end())
    return Error(ErrorCode::kNotFound, "image " + ref + " is not in the store (see `image ls`)");
  return it->second;
}

Status Store::Remove(const std::string& ref_in) {
  SV_ASSIGN_OR_RETURN(std::string ref, NormalizeRef(ref_in));
  SV_ASSIGN_OR_RETURN(Lock lock, Lock::Take(root_));
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  if (idx.images.erase(ref) == 0)
    return Error(ErrorCode::kNotFound, "image " + ref + " is not in the store");
  return idx.Save();
}

Result<GcReport> Store::Gc() {
  SV_ASSIGN_OR_RETURN(Lock lock, Lock::Take(root_));
  StoreImpl s(root_);
  SV_TRY(s.Prepare());
  SV_ASSIGN_OR_RETURN(Index idx, Index::Load(root_));
  std::set<std::string> keep;
  for (const auto& [ref, r] : idx.images) {
    keep.insert(r.manifest_digest.substr(7));
    keep.insert(r.config_digest.substr(7));
    for (const auto& l : r.layers) keep.insert(l.substr(7));
  }
  // Layers under a live bundle's overlay stay, even if their image was removed.
  for (const auto& e : fs::directory_iterator(root_ + "/bundles")) {
    auto text = ReadFile(e.path().string(), 1 << 20);
    if (!text) continue;
    auto j = json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("layers")) {
      for (const auto& l : j["layers"]) {
        if (l.is_string() && l.get<std::string>().size() > 7)
          keep.insert(l.get<std::string>().substr(7));
      }
    }
  }
  GcReport report;
  for (const auto& e : fs::directory_iterator(root_ + "/blobs/sha256")) {
    if (keep.count(e.path().filename().string())) continue;
    report.bytes_freed += e.file_size();
    SV_TRY(RemoveAll(e.path().string()));
    ++report.blobs_removed;
  }
  for (const auto& e : fs::directory_iterator(root_ + "/layers")) {
    if (keep.count(e.path().filename().string())) continue;
    SV_TRY(RemoveAll(e.path().string()));
    ++report.layers_removed;
  }
  SV_TRY(RemoveAll(root_ + "/tmp"));
  SV_TRY(MakeDirs(root_ + "/tmp", 0700));
  return report;
}

Result<std::string> Store::ConfigJson(const std::string& ref) const {
  SV_ASSIGN_OR_RETURN(ImageRecord r, Find(ref));
  StoreImpl s(root_);
  return ReadFile(s.BlobPath(r.config_digest), kMaxJsonBlob);
}

namespace {

std::vector<std::string> StringsOr(const json& c, const char* key) {
  if (c.contains(key) && c[key].is_array()) {
    std::vector<std::string> out;
    for (const auto& v : c[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
    return out;
  }
  return {};
}

// A small file below root, resolved as if root were "/" (symlinks cannot leave it).
Result<std::string> ReadInRoot(const std::string& root, const std::string& rel) {
  SV_ASSIGN_OR_RETURN(UniqueFd dir, OpenFile(root, O_PATH | O_DIRECTORY | O_CLOEXEC));
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dir.get(), rel.c_str(), &how, sizeof how);
  if (fd < 0) return ErrnoError("open " + rel + " in the image");
  UniqueFd file(static_cast<int>(fd));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(file.get(), buf, sizeof buf);
    if (n < 0) return ErrnoError("read " + rel + " in the image");
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > (1u << 20))
      return Error(ErrorCode::kGuestFault, rel + " in the image is larger than 1 MiB");
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string PathKey(const std::string& path) {
  Hasher h;
  h.Update(path.data(), path.size());
  return h.Digest().substr(7, 32);
}

Result<json> BundleConfig(
    const json& image_config, const std::string& hostname,
    const std::function<Result<ResolvedUser>(const std::string&)>& resolve_user) {
  json spec = runtime::DefaultSpecJson();
  json c = image_config.contains("config") && image_config["config"].is_object()
               ? image_config["config"]
               : json::object();
  std::vector<std::string> args = StringsOr(c, "Entrypoint");
  for (const auto& a : StringsOr(c, "Cmd")) args.push_back(a);
  if (args.empty()) args = {"/bin/sh"};
  spec["process"]["args"] = args;
  spec["process"]["terminal"] = false;
  std::vector<std::string> env = StringsOr(c, "Env");
  if (env.empty()) env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  spec["process"]["env"] = env;
  std::string wd = c.value("WorkingDir", "");
  spec["process"]["cwd"] = wd.empty() || wd[0] != '/' ? "/" : wd;
  std::string user = c.value("User", "");
  if (!user.empty() && user != "root") {
    if (!resolve_user) return Error(ErrorCode::kInternal, "no user resolver");
    SV_ASSIGN_OR_RETURN(ResolvedUser u, resolve_user(user));
    spec["process"]["user"] = {{"uid", u.uid}, {"gid", u.gid}};
    if (!u.additional_gids.empty()) spec["process"]["user"]["additionalGids"] = u.additional_gids;
  }
  spec["root"]["readonly"] = false;
  spec["hostname"] = hostname;
  spec["linux"]["seccomp"] = runtime::DefaultSeccompProfileJson();
  return spec;
}

}  // namespace

Status Store::MakeBundle(const std::string& ref, const std::string& bundle) {
  SV_ASSIGN_OR_RETURN(ImageRecord r, Find(ref));
  StoreImpl s(root_);
  SV_TRY(s.Prepare());
  SV_ASSIGN_OR_RETURN(json cfg, s.ReadJsonBlob(r.config_digest));
  std::string host = r.ref.substr(r.ref.rfind('/') == std::string::npos ? 0 : r.ref.rfind('/') + 1);
  host = host.substr(0, host.find(':'));
  if (::mkdir(bundle.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir " + bundle);
  for (const char* d : {"/rootfs", "/upper", "/work"}) SV_TRY(MakeDirs(bundle + d, 0755));
  std::string lower;
  for (auto it = r.layers.rbegin(); it != r.layers.rend(); ++it) {
    lower += (lower.empty() ? "" : ":") + s.LayerPath(*it);
  }
  std::string opts =
      "lowerdir=" + lower + ",upperdir=" + bundle + "/upper,workdir=" + bundle + "/work";
  // overlayfs needs two lower layers when there is no upper: we always give it an upper.
  if (::mount("overlay", (bundle + "/rootfs").c_str(), "overlay", 0, opts.c_str()) != 0) {
    return ErrnoError("mount overlay for " + bundle);
  }
  // A named user is looked up in the image's own /etc/passwd and /etc/group, read through
  // the mounted root with RESOLVE_IN_ROOT so a symlinked /etc cannot point at the host's.
  auto resolve = [&](const std::string& user) -> Result<ResolvedUser> {
    std::string passwd = ReadInRoot(bundle + "/rootfs", "etc/passwd").value_or("");
    std::string group = ReadInRoot(bundle + "/rootfs", "etc/group").value_or("");
    return ResolveImageUser(user, passwd, group);
  };
  auto spec = BundleConfig(cfg, host, resolve);
  if (!spec) {
    (void)::umount2((bundle + "/rootfs").c_str(), MNT_DETACH);
    return std::move(spec).error().Context("image " + r.ref);
  }
  std::string abs = fs::absolute(bundle).string();
  SV_TRY(WriteFileAtomic(root_ + "/bundles/" + PathKey(abs),
                         json{{"bundle", abs}, {"ref", r.ref}, {"layers", r.layers}}.dump(), 0600));
  return WriteFileAtomic(bundle + "/config.json", spec->dump(2) + "\n", 0644);
}

Status Store::RemoveBundle(const std::string& bundle) {
  std::string rootfs = bundle + "/rootfs";
  if (::umount2(rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoError("unmount " + rootfs);
  }
  std::string abs = fs::absolute(bundle).string();
  ::unlink((root_ + "/bundles/" + PathKey(abs)).c_str());
  return RemoveAll(bundle);
}

}  // namespace storevisor::image
