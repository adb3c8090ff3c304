// Fuzz target: arbitrary bytes as a store profile must parse or be refused, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/profile/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto profile = storevisor::daemon::ParseProfile(text, "fuzz.yaml");
  if (profile) {
    (void)storevisor::daemon::CheckOvercommit(*profile, {4, 1ULL << 30});
    for (const auto& w : profile->workloads) (void)storevisor::daemon::SpecHash(w);
  }
  return 0;
}
