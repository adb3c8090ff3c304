#include "image/registry_auth.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "common/files.h"

namespace storevisor::image {
namespace {

Error Bad(const std::string& why) {
  return Error(ErrorCode::kGuestFault, "registry WWW-Authenticate header: " + why);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~/:=").find(c) != std::string_view::npos;
}

void SkipSpace(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// One `key=value` or `key="value"` parameter at i.
Status ParseParam(std::string_view s, size_t& i, std::string& key, std::string& value) {
  size_t start = i;
  while (i < s.size() &&
         (std::isalnum(static_cast<unsigned char>(s[i])) != 0 || s[i] == '_' || s[i] == '-')) {
    ++i;
  }
  if (i == start) return Bad("expected a parameter name at offset " + std::to_string(i));
  key = Lower(s.substr(start, i - start));
  SkipSpace(s, i);
  if (i >= s.size() || s[i] != '=') return Bad("parameter '" + key + "' has no '='");
  ++i;
  SkipSpace(s, i);
  value.clear();
  if (i < s.size() && s[i] == '"') {
    ++i;
    for (;;) {
      if (i >= s.size()) return Bad("unterminated quoted value of '" + key + "'");
      char c = s[i++];
      if (c == '"') break;
      if (c == '\\') {
        if (i >= s.size()) return Bad("dangling escape in '" + key + "'");
        c = s[i++];
      }
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return Bad("control character in '" + key + "'");
      value += c;
    }
  } else {
    size_t vstart = i;
    while (i < s.size() && IsTokenChar(s[i])) ++i;
    if (i == vstart) return Bad("empty value of '" + key + "'");
    value = std::string(s.substr(vstart, i - vstart));
  }
  return Ok();
}

bool HttpUrl(const std::string& u) {
  return (u.rfind("http://", 0) == 0 && u.size() > 7) ||
         (u.rfind("https://", 0) == 0 && u.size() > 8);
}

Result<std::string> DecodeBase64(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    int v = val(in[i]);
    if (v < 0) return Error(ErrorCode::kInvalidArgument, "not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  for (; i < in.size(); ++i) {
    if (in[i] != '=') return Error(ErrorCode::kInvalidArgument, "not base64");
  }
  return out;
}

}  // namespace

Result<AuthChallenge> ParseWwwAuthenticate(std::string_view header) {
  if (header.size() > kMaxChallengeBytes)
    return Bad("longer than " + std::to_string(kMaxChallengeBytes) + " bytes");
  size_t i = 0;
  SkipSpace(header, i);
  size_t start = i;
  while (i < header.size() && std::isalpha(static_cast<unsigned char>(header[i])) != 0) ++i;
  AuthChallenge c;
  c.scheme = Lower(header.substr(start, i - start));
  if (c.scheme != "basic" && c.scheme != "bearer") {
    return Bad("unsupported scheme '" + std::string(header.substr(start, i - start)).substr(0, 32) +
               "' (Basic and Bearer are)");
  }
  bool first = true;
  for (;;) {
    SkipSpace(header, i);
    if (i >= header.size()) break;
    if (!first) {
      if (header[i] != ',') return Bad("expected ',' at offset " + std::to_string(i));
      ++i;
      SkipSpace(header, i);
      if (i >= header.size()) break;  // a trailing comma is tolerated
    }
    first = false;
    std::string key, value;
    SV_TRY(ParseParam(header, i, key, value));
    if (key == "realm") c.realm = value;
    if (key == "service") c.service = value;
    if (key == "scope") c.scope = value;
  }
  if (c.scheme == "bearer" && !HttpUrl(c.realm))
    return Bad("a Bearer challenge needs an http(s) realm, got '" + c.realm.substr(0, 100) + "'");
  return c;
}

Result<std::string> ParseTokenResponse(std::string_view body) {
  if (body.size() > kMaxTokenResponseBytes)
    return Error(ErrorCode::kGuestFault, "token server answer larger than 1 MiB, refused");
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(ErrorCode::kGuestFault, "token server answer is not a JSON object");
  for (const char* key : {"token", "access_token"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) {
      std::string t = it->get<std::string>();
      for (char ch : t) {
        if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
          return Error(ErrorCode::kGuestFault, "token server sent a token with control characters");
      }
      return t;
    }
  }
  return Error(ErrorCode::kGuestFault, "token server answer has no \"token\" or \"access_token\"");
}

Result<RegistryCredentials> CredentialsFromAuthFile(const std::string& path,
                                                    const std::string& host_port) {
  auto text = ReadFile(path, 1u << 20);
  if (!text) return std::move(text).error().Context("registry auth file");
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(ErrorCode::kInvalidArgument,
                 path + ": not a JSON object (expected {\"auths\":...})");
  RegistryCredentials out;
  auto auths = j.find("auths");
  if (auths == j.end()) return out;
  if (!auths->is_object())
    return Error(ErrorCode::kInvalidArgument, path + ": auths: not an object");
  auto entry = auths->find(host_port);
  if (entry == auths->end()) return out;
  if (!entry->is_object())
    return Error(ErrorCode::kInvalidArgument, path + ": auths." + host_port + ": not an object");
  auto auth = entry->find("auth");
  if (auth == entry->end() || !auth->is_string())
    return Error(ErrorCode::kInvalidArgument,
                 path + ": auths." + host_port + ".auth: missing (base64 of user:password)");
  auto decoded = DecodeBase64(auth->get<std::string>());
  size_t colon = decoded ? decoded->find(':') : std::string::npos;
  if (!decoded || colon == std::string::npos || colon == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": auths." + host_port + ".auth: not base64 of user:password");
  }
  out.username = decoded->substr(0, colon);
  out.password = decoded->substr(colon + 1);
  return out;
}

}  // namespace storevisor::image
