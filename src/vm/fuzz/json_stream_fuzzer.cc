// Fuzz target: the untrusted JSON reader that QMP and guest-agent input pass through,
// plus the agent client's handling of whatever replies it frames.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vm/vm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Split the input at arbitrary points (first byte chooses the chunk size) so that
  // partial messages across reads are exercised too.
  size_t chunk = size > 0 ? (data[0] % 17) + 1 : 1;
  storevisor::vm::JsonStream stream(
      storevisor::vm::JsonLimits{.max_message = 4096, .max_depth = 16, .max_queued = 8});
  for (size_t off = 0; off < in.size(); off += chunk) {
    stream.Feed(in.substr(off, chunk));
    while (auto m = stream.Next()) {
      if (m->has_value()) {
        const auto& j = m->value();
        if (j.contains("return") && j["return"].is_object()) {
          auto it = j["return"].find("out-data");
          if (it != j["return"].end() && it->is_string()) {
            (void)storevisor::vm::DecodeBase64(it->get<std::string>());
          }
        }
      }
    }
  }
  (void)storevisor::vm::DecodeBase64(in);
  return 0;
}
