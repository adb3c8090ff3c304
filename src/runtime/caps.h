// Capability names and the raw capset/prctl calls (no libcap: five sets fit in a few
// syscalls, and the child that applies them must not allocate).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/runtime.h"

namespace storevisor::runtime {

// Every capability name this runtime knows, in number order.
std::vector<std::string> KnownCapabilities();

// "CAP_SYS_ADMIN" -> 21; -1 if unknown.
int CapabilityFromName(std::string_view name);

// 64-bit masks of each set, prepared before fork.
struct CapMasks {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};
CapMasks ToMasks(const Capabilities& caps);

// Checks at create what the init could not do after start: every capability of the
// effective, permitted, inheritable and ambient sets must be in the runtime's own bounding
// set (capset would fail with EPERM). The bounding set itself can only be narrowed.
Status CheckCapsAvailable(const Capabilities& caps);

// Drops every capability outside the bounding set (needs CAP_SETPCAP). Returns 0 or -errno.
int DropBounding(const CapMasks& m);
// Sets effective/permitted/inheritable and raises the ambient ones. Returns 0 or -errno.
int ApplyCaps(const CapMasks& m);

}  // namespace storevisor::runtime
