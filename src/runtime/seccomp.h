// Seccomp: the spec's profile is compiled with libseccomp in the runtime process (before
// fork), cached as raw BPF under <root>/seccomp/<sha256 of the profile>.bpf, and the
// container's init loads the ready program with one seccomp(2) call before execve.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace storevisor::runtime {

struct SeccompProgram {
  std::vector<sock_filter> filter;
  unsigned int flags = 0;  // SECCOMP_FILTER_FLAG_*
};

// Compiles (or loads from cache_dir when non-empty) the BPF program for a profile.
Result<SeccompProgram> CompileSeccomp(const Seccomp& profile, const std::string& cache_dir);
// Parses a profile given as JSON (the default profile, a profile file).
Result<Seccomp> SeccompFromJson(const nlohmann::json& j);
// Installs the program in the calling thread; async-signal-safe. Returns 0 or -errno.
int LoadSeccomp(const SeccompProgram& program);
// Hex sha256 of data (OpenSSL).
std::string Sha256Hex(std::string_view data);

}  // namespace storevisor::runtime
