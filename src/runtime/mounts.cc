#include "runtime/mounts.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

namespace storevisor::runtime {
namespace {

struct FlagName {
  std::string_view name;
  bool clear;
  unsigned long flag;
};

constexpr std::array<FlagName, 24> kFlags = {{
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
}};

long OpenAt2(int dirfd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
}

// Creates `name` (a directory, or an empty file for file mounts) in the directory dirfd;
// an existing entry is fine.
Status CreateEntry(int dirfd, const std::string& name, bool dir, const std::string& path) {
  if (dir) {
    if (::mkdirat(dirfd, name.c_str(), 0755) != 0 && errno != EEXIST)
      return ErrnoError("mkdir " + path + " in the container root");
    return Ok();
  }
  int f = ::openat(dirfd, name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (f < 0 && errno != EEXIST) return ErrnoError("create " + path + " in the container root");
  if (f >= 0) ::close(f);
  return Ok();
}

}  // namespace

std::vector<std::string> KnownMountOptions() {
  static constexpr const char* kOthers[] = {
      "bind",    "rbind",    "shared",     "rshared",     "slave",     "rslave",
      "private", "rprivate", "unbindable", "runbindable", "tmpcopyup", "notmpcopyup"};
  std::vector<std::string> out;
  out.reserve(kFlags.size() + std::size(kOthers));
  for (const auto& f : kFlags) out.emplace_back(f.name);
  for (const char* o : kOthers) out.emplace_back(o);
  return out;
}

unsigned long ParsePropagation(const std::string& name) {
  if (name.empty() || name == "rslave") return MS_SLAVE | MS_REC;
  if (name == "slave") return MS_SLAVE;
  if (name == "shared") return MS_SHARED;
  if (name == "rshared") return MS_SHARED | MS_REC;
  if (name == "private") return MS_PRIVATE;
  if (name == "rprivate") return MS_PRIVATE | MS_REC;
  if (name == "unbindable") return MS_UNBINDABLE;
  if (name == "runbindable") return MS_UNBINDABLE | MS_REC;
  return 0;
}

MountFlags ParseMountOptions(const std::vector<std::string>& options) {
  MountFlags m;
  for (const auto& o : options) {
    if (o == "bind" || o == "rbind") {
      m.bind = true;
      m.recursive = m.recursive || o == "rbind";
      continue;
    }
    if (o != "slave" && o != "shared" && o != "private" && o != "unbindable" && o != "rslave" &&
        o != "rshared" && o != "rprivate" && o != "runbindable") {
      bool known = false;
      for (const auto& f : kFlags) {
        if (f.name == o) {
          m.flags = f.clear ? (m.flags & ~f.flag) : (m.flags | f.flag);
          known = true;
          break;
        }
      }
      // Runtime extensions other runtimes accept (crun's tmpcopyup, SELinux relabel z/Z,
      // podman's U) are not mount data: the kernel would refuse them. They are ignored.
      static constexpr std::string_view kIgnored[] = {"tmpcopyup", "notmpcopyup",  "z",       "Z",
                                                      "U",         "copy-symlink", "defaults"};
      bool ignored = std::find(std::begin(kIgnored), std::end(kIgnored), o) != std::end(kIgnored);
      if (!known && !ignored) m.data += (m.data.empty() ? "" : ",") + o;
      continue;
    }
    m.propagation = ParsePropagation(o);
  }
  return m;
}

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Result<UniqueFd> EnsureInRoot(int root_fd, const std::string& path, bool dir) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string part = path.substr(pos, next - pos);
    if (part == "..") return Error(ErrorCode::kInvalidArgument, "path " + path + " contains '..'");
    if (!part.empty() && part != ".") parts.push_back(part);
    pos = next + 1;
  }
  // Usually the path, or at least its parent, exists: one or two lookups, confined to the
  // root just like the walk below.
  if (!parts.empty()) {
    long whole = OpenAt2(root_fd, path, O_PATH);
    if (whole >= 0) return UniqueFd(static_cast<int>(whole));
    if (errno != ENOENT) return ErrnoError("resolve " + path + " in the container root");
    std::string parent;
    for (size_t i = 0; i + 1 < parts.size(); ++i) parent += "/" + parts[i];
    long pfd =
        parent.empty() ? ::fcntl(root_fd, F_DUPFD_CLOEXEC, 3) : OpenAt2(root_fd, parent, O_PATH);
    if (pfd >= 0) {
      UniqueFd p(static_cast<int>(pfd));
      SV_TRY(CreateEntry(p.get(), parts.back(), dir, path));
      whole = OpenAt2(root_fd, path, O_PATH);
      if (whole < 0) return ErrnoError("resolve " + path + " in the container root");
      return UniqueFd(static_cast<int>(whole));
    }
    if (errno != ENOENT) return ErrnoError("resolve " + parent + " in the container root");
  }
  UniqueFd cur(static_cast<int>(::fcntl(root_fd, F_DUPFD_CLOEXEC, 3)));
  if (!cur.valid()) return ErrnoError("dup root fd");
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    prefix += "/" + parts[i];
    long fd = OpenAt2(root_fd, prefix, O_PATH);
    if (fd < 0 && errno == ENOENT) {
      SV_TRY(CreateEntry(cur.get(), parts[i], !last || dir, prefix));
      fd = OpenAt2(root_fd, prefix, O_PATH);
    }
    if (fd < 0) return ErrnoError("resolve " + prefix + " in the container root");
    cur.reset(static_cast<int>(fd));
  }
  return cur;
}

}  // namespace storevisor::runtime
