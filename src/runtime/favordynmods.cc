// The cgroup2 `favordynmods` mount option (see runtime.h): read from and set through
// /proc/self/mountinfo and a remount that keeps every other option.
#include <sys/mount.h>

#include <sstream>
#include <utility>
#include <vector>

#include "common/files.h"
#include "runtime/runtime.h"

namespace storevisor::runtime {
namespace {

struct MountLine {
  std::string mount_options;  // per-mount: rw,nosuid,relatime...
  std::string super_options;  // the filesystem's: rw,nsdelegate,favordynmods...
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Result<std::string> Cgroup2MountPoint(const std::string& mount_root) {
  SV_ASSIGN_OR_RETURN(CgroupMode mode, DetectCgroupMode(mount_root));
  if (mode == CgroupMode::kUnified) return mount_root;
  if (mode == CgroupMode::kHybrid) return mount_root + "/unified";
  return Error(ErrorCode::kUnsupported,
               "favordynmods: this host has no cgroup2 mount to carry the option (legacy v1)");
}

Result<MountLine> FindMount(const std::string& point) {
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo", 4u << 20));
  std::stringstream in(text);
  std::optional<MountLine> found;
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mount-point mount-options [optional...] - type source super
    std::stringstream f(line);
    std::string id, parent, dev, root, where, opts;
    f >> id >> parent >> dev >> root >> where >> opts;
    if (where != point) continue;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::stringstream tail(line.substr(dash + 3));
    std::string type, source, super;
    tail >> type >> source >> super;
    if (type != "cgroup2") continue;
    found = MountLine{opts, super};  // the last one listed is the one on top
  }
  if (!found) return Error(ErrorCode::kNotFound, "favordynmods: no cgroup2 mount at " + point);
  return *found;
}

unsigned long MountFlags(const std::string& mount_options) {
  static const std::pair<const char*, unsigned long> kFlags[] = {
      {"ro", MS_RDONLY},         {"nosuid", MS_NOSUID},          {"nodev", MS_NODEV},
      {"noexec", MS_NOEXEC},     {"noatime", MS_NOATIME},        {"nodiratime", MS_NODIRATIME},
      {"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME}};
  unsigned long flags = 0;
  for (const auto& o : Split(mount_options)) {
    for (const auto& [name, bit] : kFlags) {
      if (o == name) flags |= bit;
    }
  }
  return flags;
}

}  // namespace

Result<bool> CgroupFavorDynmods(const std::string& mount_root) {
  SV_ASSIGN_OR_RETURN(std::string point, Cgroup2MountPoint(mount_root));
  SV_ASSIGN_OR_RETURN(MountLine m, FindMount(point));
  for (const auto& o : Split(m.super_options)) {
    if (o == "favordynmods") return true;
  }
  return false;
}

Status SetCgroupFavorDynmods(bool on, const std::string& mount_root) {
  SV_ASSIGN_OR_RETURN(std::string point, Cgroup2MountPoint(mount_root));
  SV_ASSIGN_OR_RETURN(MountLine m, FindMount(point));
  std::string data;
  for (const auto& o : Split(m.super_options)) {
    if (o == "rw" || o == "ro" || o == "favordynmods") continue;
    data += (data.empty() ? "" : ",") + o;
  }
  if (on) data += std::string(data.empty() ? "" : ",") + "favordynmods";
  // MS_REMOUNT also resets the per-mount flags: pass the current ones back.
  unsigned long flags = MS_REMOUNT | MountFlags(m.mount_options);
  if (::mount(nullptr, point.c_str(), nullptr, flags, data.c_str()) != 0) {
    int err = errno;
    return ErrnoError("favordynmods: remount " + point + " with '" + data + "'", err);
  }
  SV_ASSIGN_OR_RETURN(bool now, CgroupFavorDynmods(mount_root));
  if (now != on) {
    return Error(ErrorCode::kUnsupported,
                 "favordynmods: the kernel ignored the option on " + point + " (Linux < 6.0?)");
  }
  return Ok();
}

}  // namespace storevisor::runtime
