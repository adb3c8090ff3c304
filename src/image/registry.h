// A client of the OCI distribution API (GET /v2/NAME/manifests/REF and
// /v2/NAME/blobs/DIGEST) over cpp-httplib, with Basic auth and the Bearer token flow on a
// 401. Internal to src/image: Store::Pull uses it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/error.h"
#include "image/manifest.h"
#include "image/registry_auth.h"

namespace httplib {
class Client;
}

namespace storevisor::image {

struct FetchedManifest {
  std::string body;
  std::string content_type;
  std::string digest;  // sha256 of body, checked against the reference or header
};

class RegistryClient {
 public:
  // insecure: plain HTTP; otherwise HTTPS with the system's CA certificates.
  // credentials: used only when the registry answers 401 (Basic: sent as is; Bearer: sent
  // to the token server, whose token is then used).
  RegistryClient(const RegistryRef& ref, bool insecure, int timeout_seconds,
                 RegistryCredentials credentials = {});
  RegistryClient(RegistryClient&&) noexcept;
  RegistryClient& operator=(RegistryClient&&) noexcept;
  ~RegistryClient();

  // A manifest or index by tag or digest, at most kMaxManifestBytes. When fetched by
  // digest (or when the registry sends Docker-Content-Digest) the body must hash to it.
  Result<FetchedManifest> GetManifest(const std::string& reference);

  // Streams a blob into `partial`, never holding it in memory. A partial file left by an
  // interrupted earlier attempt is resumed with a Range request (restarted if the registry
  // ignores the range). On success the file holds exactly d.size bytes hashing to
  // d.digest and is fsynced. A digest or size mismatch removes the file; an interrupted
  // transfer keeps it for the next attempt.
  Status DownloadBlob(const Descriptor& d, const std::string& partial,
                      const std::function<void(uint64_t done, uint64_t total)>& progress);

 private:
  std::string Url(const std::string& path) const;
  // After a 401: sets the Authorization the challenge asks for (once per client).
  Status Authenticate(const std::string& challenge, const std::string& what);
  Error Unauthorized(const std::string& what, const std::string& url) const;
  RegistryRef ref_;
  RegistryCredentials creds_;
  int timeout_seconds_ = 30;
  bool authenticated_ = false;
  std::string base_;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace storevisor::image
