// Fuzz target: resolving an image user through untrusted /etc/passwd and /etc/group text.
// Input: USER '\n' PASSWD '\0' GROUP.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/passwd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string_view user = in.substr(0, nl);
  std::string_view rest = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  size_t nul = rest.find('\0');
  std::string_view passwd = rest.substr(0, nul);
  std::string_view group =
      nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  (void)storevisor::image::ResolveImageUser(user, passwd, group).has_value();
  return 0;
}
