// Streaming SHA-256 (OpenSSL EVP) giving "sha256:<hex>" digests. Internal to src/image.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <string>

namespace storevisor::image {

class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { Reset(); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  void Reset() { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  void Update(const char* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  // Finishes the digest; call Reset() before hashing again.
  std::string Digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

inline std::string Sha256Of(std::string_view data) {
  Hasher h;
  h.Update(data.data(), data.size());
  return h.Digest();
}

}  // namespace storevisor::image
