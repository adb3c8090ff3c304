// `storevisor-runtime features`: the runtime-spec's features document (features.md), as
// runc prints it, listing only what this runtime implements (callers such as containerd
// and podman read it to know which fields they may set).
#include "runtime/caps.h"
#include "runtime/mounts.h"
#include "runtime/runtime.h"

namespace storevisor::runtime {

nlohmann::json FeaturesJson() {
  using json = nlohmann::json;
  json seccomp = {{"enabled", true},
                  {"actions",
                   {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
                  {"operators",
                   {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
                  {"archs",
                   {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
                    "SCMP_ARCH_X32"}},
                  {"knownFlags", json::array()},
                  {"supportedFlags", json::array()}};
  return {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.1.0"},
      {"hooks",
       {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", KnownMountOptions()},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}},
        {"capabilities", KnownCapabilities()},
        {"cgroup",
         {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", false}}},
        {"seccomp", seccomp},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}},
        {"intelRdt", {{"enabled", false}}}}},
      {"annotations", {{"io.storevisor.runtime.version", "0.1.0"}}}};
}

}  // namespace storevisor::runtime
