// Registry authentication: the WWW-Authenticate challenge of a 401 (Basic, or the Bearer
// token flow of the distribution spec), the token server's answer, and where credentials
// come from. Internal to src/image.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace storevisor::image {

struct RegistryCredentials {
  std::string username;
  std::string password;  // never printed, never put in an error message
  bool empty() const { return username.empty() && password.empty(); }
};

struct AuthChallenge {
  std::string scheme;  // "basic" or "bearer" (lower case)
  std::string realm;   // bearer: the token endpoint URL
  std::string service;
  std::string scope;
};

inline constexpr size_t kMaxChallengeBytes = 8192;
inline constexpr size_t kMaxTokenResponseBytes = 1u << 20;

// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`
// or `Basic realm="Registry"`. Strict: quoted or token values, comma separated, known
// schemes only, size-capped; a bearer challenge needs an http(s) realm.
Result<AuthChallenge> ParseWwwAuthenticate(std::string_view header);

// The token server's JSON: {"token": "..."} or {"access_token": "..."}.
Result<std::string> ParseTokenResponse(std::string_view body);

// containers-auth.json / docker config.json: {"auths": {"HOST[:PORT]": {"auth":
// base64("user:password")}}}. Returns empty credentials when the file has no entry for the
// host; an unreadable or malformed file is an error naming the file.
Result<RegistryCredentials> CredentialsFromAuthFile(const std::string& path,
                                                    const std::string& host_port);

}  // namespace storevisor::image
