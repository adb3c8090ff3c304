#include "image/registry.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "common/files.h"
#include "common/unique_fd.h"
#include "image/sha256.h"

namespace storevisor::image {
namespace {

constexpr const char* kAcceptManifests =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// An HTTP status other than success, turned into the error a user can act on.
Error StatusError(int status, const std::string& what, const std::string& url) {
  std::string where = what + " (" + url + "): HTTP " + std::to_string(status);
  switch (status) {
    case 401:
    case 403:
      return Error(ErrorCode::kPermissionDenied, where + ": access denied by the registry");
    case 404:
      return Error(ErrorCode::kNotFound, where + ": not in the registry");
    case 429:
    case 502:
    case 503:
    case 504:
      return Error(ErrorCode::kUnavailable, where + ": the registry is busy; try again");
    default:
      return Error(ErrorCode::kGuestFault, where + ": unexpected answer from the registry");
  }
}

Error TransportError(httplib::Error e, const std::string& what, const std::string& url) {
  ErrorCode code = e == httplib::Error::Read || e == httplib::Error::Write
                       ? ErrorCode::kIo
                       : ErrorCode::kUnavailable;
  if (e == httplib::Error::Connection) code = ErrorCode::kUnavailable;
  return Error(code, what + " (" + url + "): " + httplib::to_string(e) +
                         " error talking to the registry (is it running and reachable?)");
}

std::optional<uint64_t> ContentLength(const httplib::Response& r) {
  if (!r.has_header("Content-Length")) return std::nullopt;
  const std::string v = r.get_header_value("Content-Length");
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoull(v);
}

}  // namespace

RegistryClient::RegistryClient(const RegistryRef& ref, bool insecure, int timeout_seconds,
                               RegistryCredentials credentials)
    : ref_(ref), creds_(std::move(credentials)), timeout_seconds_(timeout_seconds) {
  base_ = (insecure ? "http://" : "https://") + ref.host;
  if (ref.port != 0) base_ += ":" + std::to_string(ref.port);
  http_ = std::make_unique<httplib::Client>(base_);
  http_->set_connection_timeout(timeout_seconds, 0);
  http_->set_read_timeout(timeout_seconds, 0);
  http_->set_write_timeout(timeout_seconds, 0);
  http_->set_follow_location(true);
  // Blobs are verified byte for byte: never let the client transform them.
  http_->set_decompress(false);
  http_->set_keep_alive(true);
}

RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;
RegistryClient::~RegistryClient() = default;

std::string RegistryClient::Url(const std::string& path) const { return base_ + path; }

Error RegistryClient::Unauthorized(const std::string& what, const std::string& url) const {
  if (creds_.empty()) {
    return Error(ErrorCode::kPermissionDenied,
                 what + " (" + url +
                     "): HTTP 401: the registry wants credentials: give --username and "
                     "--password-stdin, STOREVISOR_REGISTRY_USERNAME/_PASSWORD, or --authfile");
  }
  return Error(ErrorCode::kPermissionDenied,
               what + " (" + url + "): HTTP 401: the registry refused the credentials of user '" +
                   creds_.username + "' (wrong password?)");
}

Status RegistryClient::Authenticate(const std::string& challenge, const std::string& what) {
  if (authenticated_ || challenge.empty()) return Unauthorized(what, base_);
  authenticated_ = true;
  SV_ASSIGN_OR_RETURN(AuthChallenge c, ParseWwwAuthenticate(challenge));
  if (c.scheme == "basic") {
    if (creds_.empty()) return Unauthorized(what, base_);
    http_->set_basic_auth(creds_.username, creds_.password);
    return Ok();
  }
  // Bearer: GET realm?service=...&scope=... (with our credentials, if any) for a token.
  size_t host_end = c.realm.find('/', c.realm.find("//") + 2);
  std::string origin = c.realm.substr(0, host_end);
  std::string path = host_end == std::string::npos ? "/" : c.realm.substr(host_end);
  std::string scope = c.scope.empty() ? "repository:" + ref_.repository + ":pull" : c.scope;
  httplib::Params params;
  if (!c.service.empty()) params.emplace("service", c.service);
  params.emplace("scope", scope);
  httplib::Client token_client(origin);
  token_client.set_connection_timeout(timeout_seconds_, 0);
  token_client.set_read_timeout(timeout_seconds_, 0);
  if (!creds_.empty()) token_client.set_basic_auth(creds_.username, creds_.password);
  std::string body;
  int status = 0;
  bool too_big = false;
  auto res = token_client.Get(
      path, params, httplib::Headers{},
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (body.size() + n > kMaxTokenResponseBytes) {
          too_big = true;
          return false;
        }
        body.append(data, n);
        return true;
      });
  const std::string where = "token for " + scope + " from " + c.realm;
  if (too_big) return Error(ErrorCode::kGuestFault, where + ": answer larger than 1 MiB, refused");
  if (!res) return TransportError(res.error(), where, c.realm);
  if (status == 401 || status == 403) {
    return Error(ErrorCode::kPermissionDenied,
                 where + ": HTTP " + std::to_string(status) +
                     (creds_.empty() ? ": the token server wants credentials (--username, "
                                       "--password-stdin or --authfile)"
                                     : ": the token server refused the credentials of user '" +
                                           creds_.username + "' (wrong password?)"));
  }
  if (status != 200) return StatusError(status, where, c.realm);
  SV_ASSIGN_OR_RETURN(std::string token, ParseTokenResponse(body));
  http_->set_bearer_token_auth(token);
  return Ok();
}

Result<FetchedManifest> RegistryClient::GetManifest(const std::string& reference) {
  const std::string path = "/v2/" + ref_.repository + "/manifests/" + reference;
  const std::string what = "manifest " + ref_.repository + ":" + reference;
  FetchedManifest out;
  std::string header_digest;
  for (int attempt = 0;; ++attempt) {
    out = FetchedManifest{};
    header_digest.clear();
    int status = 0;
    bool too_big = false;
    std::string challenge;
    auto res = http_->Get(
        path, {{"Accept", kAcceptManifests}},
        [&](const httplib::Response& r) {
          status = r.status;
          if (status == 401) {
            challenge = r.get_header_value("WWW-Authenticate");
            return false;
          }
          out.content_type = r.get_header_value("Content-Type");
          header_digest = r.get_header_value("Docker-Content-Digest");
          auto len = ContentLength(r);
          if (status == 200 && len && *len > kMaxManifestBytes) too_big = true;
          return !too_big;
        },
        [&](const char* data, size_t n) {
          if (out.body.size() + n > kMaxManifestBytes) {
            too_big = true;
            return false;
          }
          out.body.append(data, n);
          return true;
        });
    if (status == 401) {
      if (attempt > 0) return Unauthorized(what, Url(path));
      SV_TRY_CTX(Authenticate(challenge, what), what);
      continue;
    }
    if (too_big)
      return Error(ErrorCode::kGuestFault,
                   what + ": larger than " + std::to_string(kMaxManifestBytes) + " bytes, refused");
    if (!res) return TransportError(res.error(), what, Url(path));
    if (status != 200) return StatusError(status, what, Url(path));
    break;
  }
  out.digest = Sha256Of(out.body);
  if (reference.rfind("sha256:", 0) == 0 && out.digest != reference)
    return Error(ErrorCode::kGuestFault,
                 what + ": the registry sent a manifest hashing to " + out.digest);
  if (header_digest.rfind("sha256:", 0) == 0 && header_digest != out.digest)
    return Error(ErrorCode::kGuestFault, what + ": Docker-Content-Digest says " + header_digest +
                                             " but the body hashes to " + out.digest);
  return out;
}

Status RegistryClient::DownloadBlob(
    const Descriptor& d, const std::string& partial,
    const std::function<void(uint64_t done, uint64_t total)>& progress) {
  const std::string path = "/v2/" + ref_.repository + "/blobs/" + d.digest;
  const std::string what = "blob " + d.digest;
  SV_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  Hasher hasher;
  uint64_t have = 0;
  // Resume: hash what an earlier attempt already wrote (never more than the blob's size).
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat " + partial);
  if (static_cast<uint64_t>(st.st_size) > d.size && ::ftruncate(fd.get(), 0) != 0)
    return ErrnoError("truncate " + partial);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return ErrnoError("read " + partial);
    if (n == 0) break;
    hasher.Update(buf, static_cast<size_t>(n));
    have += static_cast<uint64_t>(n);
  }
  const uint64_t resumed_from = have;
  std::optional<Error> failure;
  auto fail = [&](Error e) {
    failure = std::move(e);
    return false;
  };
  const bool complete = have >= d.size;
  for (int attempt = 0; !complete; ++attempt) {
    httplib::Headers headers;
    if (have > 0) headers.emplace("Range", "bytes=" + std::to_string(have) + "-");
    int status = 0;
    std::string challenge;
    auto res = http_->Get(
        path, headers,
        [&](const httplib::Response& r) {
          status = r.status;
          if (status == 401) {
            challenge = r.get_header_value("WWW-Authenticate");
            return false;
          }
          if (status == 200 && have > 0) {
            // The registry ignored the range: start over.
            if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0)
              return fail(ErrnoError("truncate " + partial));
            hasher.Reset();
            have = 0;
          } else if (status == 206) {
            std::string range = r.get_header_value("Content-Range");
            std::string want = "bytes " + std::to_string(have) + "-";
            if (range.rfind(want, 0) != 0) {
              std::string msg = what;
              msg += ": asked for ";
              msg += want;
              msg += " but got Content-Range '";
              msg += range.substr(0, 100);
              msg += "'";
              return fail(Error(ErrorCode::kGuestFault, msg));
            }
          } else if (status != 200) {
            return fail(StatusError(status, what, Url(path)));
          }
          auto len = ContentLength(r);
          if (len && have + *len > d.size)
            return fail(Error(ErrorCode::kGuestFault,
                              what + ": the registry announces " + std::to_string(have + *len) +
                                  " bytes, the manifest says " + std::to_string(d.size)));
          return true;
        },
        [&](const char* data, size_t n) {
          if (status != 200 && status != 206) return true;  // a redirect's body
          if (have + n > d.size)
            return fail(Error(ErrorCode::kGuestFault,
                              what + ": the registry sent more than the manifest's " +
                                  std::to_string(d.size) + " bytes"));
          Status w = WriteAll(fd.get(), std::string_view(data, n));
          if (!w) return fail(std::move(w).error().Context("write " + partial));
          hasher.Update(data, n);
          have += n;
          if (progress) progress(have, d.size);
          return true;
        });
    if (status == 401) {
      if (attempt > 0) return Unauthorized(what, Url(path));
      SV_TRY_CTX(Authenticate(challenge, what), what);
      continue;
    }
    if (failure) {
      if (failure->code() == ErrorCode::kGuestFault) ::unlink(partial.c_str());
      return std::move(*failure);
    }
    if (!res) {
      return TransportError(res.error(), what, Url(path))
          .Context("interrupted after " + std::to_string(have) + " of " + std::to_string(d.size) +
                   " bytes (kept for resuming: pull again)");
    }
    break;
  }
  if (complete && progress) progress(have, d.size);
  if (have != d.size) {
    return Error(ErrorCode::kGuestFault,
                 what + ": truncated: the registry sent " + std::to_string(have) + " of " +
                     std::to_string(d.size) + " bytes (kept for resuming: pull again)");
  }
  std::string got = hasher.Digest();
  if (got != d.digest) {
    ::unlink(partial.c_str());
    return Error(ErrorCode::kGuestFault,
                 what + ": digest mismatch: the registry's " + std::to_string(d.size) +
                     " bytes hash to " + got +
                     (resumed_from > 0 ? " (resumed at " + std::to_string(resumed_from) + ")"
                                       : std::string()));
  }
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync " + partial);
  return Ok();
}

}  // namespace storevisor::image
