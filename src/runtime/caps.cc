#include "runtime/caps.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace storevisor::runtime {
namespace {

constexpr std::array<std::string_view, 41> kCapNames = {"CAP_CHOWN",
                                                        "CAP_DAC_OVERRIDE",
                                                        "CAP_DAC_READ_SEARCH",
                                                        "CAP_FOWNER",
                                                        "CAP_FSETID",
                                                        "CAP_KILL",
                                                        "CAP_SETGID",
                                                        "CAP_SETUID",
                                                        "CAP_SETPCAP",
                                                        "CAP_LINUX_IMMUTABLE",
                                                        "CAP_NET_BIND_SERVICE",
                                                        "CAP_NET_BROADCAST",
                                                        "CAP_NET_ADMIN",
                                                        "CAP_NET_RAW",
                                                        "CAP_IPC_LOCK",
                                                        "CAP_IPC_OWNER",
                                                        "CAP_SYS_MODULE",
                                                        "CAP_SYS_RAWIO",
                                                        "CAP_SYS_CHROOT",
                                                        "CAP_SYS_PTRACE",
                                                        "CAP_SYS_PACCT",
                                                        "CAP_SYS_ADMIN",
                                                        "CAP_SYS_BOOT",
                                                        "CAP_SYS_NICE",
                                                        "CAP_SYS_RESOURCE",
                                                        "CAP_SYS_TIME",
                                                        "CAP_SYS_TTY_CONFIG",
                                                        "CAP_MKNOD",
                                                        "CAP_LEASE",
                                                        "CAP_AUDIT_WRITE",
                                                        "CAP_AUDIT_CONTROL",
                                                        "CAP_SETFCAP",
                                                        "CAP_MAC_OVERRIDE",
                                                        "CAP_MAC_ADMIN",
                                                        "CAP_SYSLOG",
                                                        "CAP_WAKE_ALARM",
                                                        "CAP_BLOCK_SUSPEND",
                                                        "CAP_AUDIT_READ",
                                                        "CAP_PERFMON",
                                                        "CAP_BPF",
                                                        "CAP_CHECKPOINT_RESTORE"};

uint64_t Mask(const std::vector<int>& caps) {
  uint64_t m = 0;
  for (int c : caps) m |= uint64_t{1} << c;
  return m;
}

}  // namespace

std::vector<std::string> KnownCapabilities() { return {kCapNames.begin(), kCapNames.end()}; }

int CapabilityFromName(std::string_view name) {
  for (size_t i = 0; i < kCapNames.size(); ++i) {
    if (kCapNames[i] == name) return static_cast<int>(i);
  }
  return -1;
}

CapMasks ToMasks(const Capabilities& caps) {
  return {Mask(caps.bounding), Mask(caps.effective), Mask(caps.inheritable), Mask(caps.permitted),
          Mask(caps.ambient)};
}

Status CheckCapsAvailable(const Capabilities& caps) {
  const std::pair<const char*, const std::vector<int>*> sets[] = {
      {"effective", &caps.effective},
      {"permitted", &caps.permitted},
      {"inheritable", &caps.inheritable},
      {"ambient", &caps.ambient}};
  for (const auto& [name, list] : sets) {
    for (int c : *list) {
      if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) continue;
      return Error(ErrorCode::kFailedPrecondition,
                   std::string("process.capabilities.") + name + ": " +
                       std::string(kCapNames[static_cast<size_t>(c)]) +
                       " is not in this host's capability bounding set, so the container "
                       "cannot have it");
    }
  }
  return Ok();
}

int DropBounding(const CapMasks& m) {
  for (int c = 0; c < 64; ++c) {
    if ((m.bounding >> c) & 1) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the kernel's last capability
      return -errno;
    }
  }
  return 0;
}

int ApplyCaps(const CapMasks& m) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = static_cast<uint32_t>(m.effective);
  data[1].effective = static_cast<uint32_t>(m.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(m.permitted);
  data[1].permitted = static_cast<uint32_t>(m.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(m.inheritable);
  data[1].inheritable = static_cast<uint32_t>(m.inheritable >> 32);
  if (::syscall(SYS_capset, &header, data) != 0) return -errno;
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return -errno;
  }
  // The kernel keeps an ambient capability only if it is permitted and inheritable; specs
  // (runc's default among them) often list ambient ones without inheritable: skip those.
  uint64_t ambient = m.ambient & m.permitted & m.inheritable;
  for (int c = 0; c < 64; ++c) {
    if (((ambient >> c) & 1) == 0) continue;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0) return -errno;
  }
  return 0;
}

}  // namespace storevisor::runtime
