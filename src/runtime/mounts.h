// Mount options and path resolution inside the container's root, shared by the init.
#pragma once

#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "runtime/runtime.h"

namespace storevisor::runtime {

struct MountFlags {
  unsigned long flags = 0;        // MS_* applied at mount time
  unsigned long propagation = 0;  // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC)
  std::string data;               // the rest: "mode=755,size=65536k"
  bool bind = false;
  bool recursive = false;
};

// Splits OCI mount options into flags, propagation and filesystem data.
MountFlags ParseMountOptions(const std::vector<std::string>& options);
// Every option name ParseMountOptions knows (for `features`).
std::vector<std::string> KnownMountOptions();
// "rslave" -> MS_SLAVE|MS_REC; "" -> the default (rslave, as runc). 0 if unknown.
unsigned long ParsePropagation(const std::string& name);

// Opens `path` (absolute inside the container) below root_fd, never leaving the root:
// symlinks resolve as if root_fd were "/". Missing components are created (directories,
// or an empty file for the last one when !dir). Returns an O_PATH fd.
Result<UniqueFd> EnsureInRoot(int root_fd, const std::string& path, bool dir);

// "/proc/self/fd/N" for mounting onto a resolved fd.
std::string FdPath(int fd);

}  // namespace storevisor::runtime
