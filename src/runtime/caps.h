// Capability names and the raw capset/prctl calls (no libcap: five sets fit in a few
// syscalls, and the child that applies them must not allocate).
#pragma once

#include <string_view>

#include "runtime/runtime.h"

namespace storevisor::runtime {

// "CAP_SYS_ADMIN" -> 21; -1 if unknown.
int CapabilityFromName(std::string_view name);

// 64-bit masks of each set, prepared before fork.
struct CapMasks {
  uint64_t bounding = 0, effective = 0, inheritable = 0, permitted = 0, ambient = 0;
};
CapMasks ToMasks(const Capabilities& caps);

// Drops every capability outside the bounding set (needs CAP_SETPCAP). Returns 0 or -errno.
int DropBounding(const CapMasks& m);
// Sets effective/permitted/inheritable and raises the ambient ones. Returns 0 or -errno.
int ApplyCaps(const CapMasks& m);

}  // namespace storevisor::runtime
