// Storevisor's image store: the one public header of src/image.
//
// Content-addressed: blobs/sha256/<hex> holds every manifest, config and layer blob,
// verified (sha256 and size) before it is renamed into place; layers/<hex> holds each
// layer unpacked once (overlayfs whiteouts and opaque directories) and shared by every
// image that uses it; index.json maps NAME:TAG to a manifest, rewritten atomically (temp
// file, fsync, rename) under an exclusive lock. Whatever fails leaves only tmp/ debris,
// which the next gc removes: never a half-written blob, layer or index.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace storevisor::image {

class Source;  // image/tar.h: a byte stream

struct UnpackOptions {
  bool allow_devices = false;  // device nodes are refused unless asked for
  uint64_t max_entries = 2'000'000;
  uint64_t max_bytes = uint64_t{64} << 30;
};

struct UnpackStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

// Unpacks a (possibly gzip-compressed) layer tar into dest, an existing empty directory.
// Refuses, naming the entry: absolute paths, '..', symlinks whose relative target leaves
// the root, hard links to anything outside the layer, device nodes (unless allowed),
// truncated or corrupt archives.
Result<UnpackStats> UnpackLayer(Source& src, const std::string& dest, const UnpackOptions& o);
// Reads a whole tar, checking headers and paths, writing nothing (fuzzing, validation).
Status CheckTar(Source& src);

struct ImageRecord {
  std::string ref;              // NAME:TAG
  std::string manifest_digest;  // sha256:...
  std::string config_digest;
  std::vector<std::string> layers;  // layer blob digests, bottom first
  uint64_t size = 0;                // sum of the layer blobs
  std::string created;              // when it entered this store (RFC 3339)
};

struct ImportOptions {
  bool allow_devices = false;
  std::string ref;  // name to give an image the archive does not name
  std::function<void(const std::string&)> progress;  // one line per step
};

struct BuildOptions {
  std::vector<std::string> cmd = {"/bin/sh"};
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  std::string workdir = "/";
  std::string user;  // image config User: "", "name", "uid", "name:group"...
  std::function<void(const std::string&)> progress;
};

// Bytes of one blob arriving during a pull (called often: throttle any display).
struct PullProgress {
  int layer = 0;  // 0-based layer index, -1 for the image config
  int layers = 0;
  std::string digest;
  uint64_t done = 0;
  uint64_t total = 0;
  bool cached = false;  // already in the store: nothing was downloaded
};

struct PullOptions {
  bool insecure = false;  // plain HTTP; otherwise HTTPS with the system's CA certificates
  bool allow_devices = false;
  std::string os = "linux";  // the platform picked from an image index
  std::string architecture = "amd64";
  int timeout_seconds = 30;  // connect and per-read timeout
  // Registry credentials, used only when the registry answers 401 (Basic auth, or sent to
  // the token server of the Bearer flow). Never printed.
  std::string username;
  std::string password;
  std::function<void(const std::string&)> progress;  // one line per step
  std::function<void(const PullProgress&)> bytes;
};

struct GcReport {
  uint64_t blobs_removed = 0;
  uint64_t layers_removed = 0;
  uint64_t bytes_freed = 0;
};

// "busybox" -> "busybox:latest"; refuses empty names and odd characters.
Result<std::string> NormalizeRef(const std::string& ref);

class Store {
 public:
  explicit Store(std::string root = "/var/lib/storevisor/images");
  const std::string& root() const { return root_; }

  // An OCI image layout (directory or tar) or a docker-archive tar (`docker save`).
  Result<std::vector<ImageRecord>> Import(const std::string& path, const ImportOptions& o);
  // Packs dir as a one-layer image.
  Result<ImageRecord> BuildFromDir(const std::string& dir, const std::string& ref,
                                   const BuildOptions& o);
  // Pulls HOST[:PORT]/NAME[:TAG|@DIGEST] from an OCI distribution registry (anonymous, Basic
  // auth or the Bearer token flow, see PullOptions):
  // manifest or index (picks o.os/o.architecture), then config and layers, each streamed
  // to tmp/ while hashed, verified (digest and size) and renamed into blobs/; layers
  // already in the store are not downloaded again. An interrupted download is resumed by
  // the next pull (HTTP Range); the index only changes when everything is in place. The
  // image is named by the reference as given (HOST:PORT/NAME:TAG).
  Result<ImageRecord> Pull(const std::string& ref, const PullOptions& o);
  Result<std::vector<ImageRecord>> List() const;
  Result<ImageRecord> Find(const std::string& ref) const;
  Status Remove(const std::string& ref);
  // Removes blobs and layers no image (and no live bundle) references, and tmp/ debris.
  Result<GcReport> Gc();
  // Makes an OCI bundle for the runtime: bundle/rootfs is an overlayfs of the image's
  // layers with bundle/upper as its writable layer, bundle/config.json comes from the
  // image config (entrypoint, cmd, env, workdir, user) with the default seccomp profile.
  Status MakeBundle(const std::string& ref, const std::string& bundle);
  // Unmounts and removes a bundle made by MakeBundle.
  Status RemoveBundle(const std::string& bundle);
  // The image's config JSON (for inspect).
  Result<std::string> ConfigJson(const std::string& ref) const;

 private:
  std::string root_;
};

// `storevisor image ...` / storevisor-image: returns the exit status (docs/exit-codes.md).
int RunImageCli(const std::vector<std::string>& args);

}  // namespace storevisor::image
