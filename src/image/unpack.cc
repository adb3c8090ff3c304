// Layer unpacking: every entry is created relative to the layer directory, with its parent
// resolved by openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) and the last component made
// with *at calls that never follow a symlink. So neither '..' nor an absolute path nor a
// symlink planted by an earlier entry can reach outside; such entries are refused anyway,
// with the entry's name, before anything is written for them.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <vector>

#include "image/image.h"
#include "image/tar.h"

namespace storevisor::image {
namespace {

Error Refused(const std::string& path, const std::string& why) {
  return Error(ErrorCode::kGuestFault, "layer entry '" + path + "': " + why);
}

// Splits an archive path into clean components; refuses absolute paths and '..'.
Result<std::vector<std::string>> CleanPath(const std::string& raw) {
  if (!raw.empty() && raw[0] == '/') return Refused(raw, "absolute path");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t next = raw.find('/', pos);
    if (next == std::string::npos) next = raw.size();
    std::string part = raw.substr(pos, next - pos);
    if (part == "..") return Refused(raw, "path escapes the root ('..')");
    if (!part.empty() && part != ".") parts.push_back(part);
    pos = next + 1;
  }
  return parts;
}

std::string JoinParts(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out.empty() ? "." : out;
}

// A relative symlink target must stay inside the root when read lexically from where the
// link sits; absolute targets are fine (they resolve against the container's root).
bool SymlinkEscapes(const std::vector<std::string>& link_parts, const std::string& target) {
  if (!target.empty() && target[0] == '/') return false;
  int depth = static_cast<int>(link_parts.size()) - 1;
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t next = target.find('/', pos);
    if (next == std::string::npos) next = target.size();
    std::string part = target.substr(pos, next - pos);
    if (part == "..") {
      if (--depth < 0) return true;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    pos = next + 1;
  }
  return false;
}

Result<UniqueFd> OpenDirInRoot(int root, const std::string& rel) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
  if (fd < 0) return ErrnoError("open " + rel + " in the layer");
  return UniqueFd(static_cast<int>(fd));
}

// mkdir -p of the parents, each resolved in the root.
Result<UniqueFd> ParentDir(int root, const std::vector<std::string>& parts) {
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string prefix = JoinParts(parts, i);
    auto fd = OpenDirInRoot(root, prefix);
    if (fd) continue;
    SV_ASSIGN_OR_RETURN(UniqueFd up, OpenDirInRoot(root, JoinParts(parts, i - 1)));
    if (::mkdirat(up.get(), parts[i - 1].c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError("mkdir " + prefix);
    }
  }
  return OpenDirInRoot(root, JoinParts(parts, parts.size() - 1));
}

// Removes what is at name (a later entry replaces an earlier one), unless both are dirs.
Status ClearSlot(int dir, const std::string& name, bool want_dir) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Ok();
  if (S_ISDIR(st.st_mode)) {
    if (want_dir) return Ok();
    return Error(ErrorCode::kGuestFault,
                 "layer replaces directory " + name + " with a non-directory");
  }
  if (::unlinkat(dir, name.c_str(), 0) != 0) return ErrnoError("unlink " + name);
  return Ok();
}

Status WriteFileData(int dir, const std::string& name, const TarEntry& e, TarReader& tar) {
  int fd = ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create " + e.path);
  UniqueFd out(fd);
  std::vector<char> buf(1 << 16);
  uint64_t written = 0;
  for (;;) {
    SV_ASSIGN_OR_RETURN(size_t n, tar.ReadData(buf.data(), buf.size()));
    if (n == 0) break;
    SV_TRY(WriteAll(fd, std::string_view(buf.data(), n)));
    written += n;
  }
  if (written != e.size) return Refused(e.path, "short data");
  return Ok();
}

Status SetMeta(int dir, const std::string& name, const TarEntry& e, bool symlink) {
  if (::fchownat(dir, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("chown " + e.path);
  }
  if (!symlink && ::fchmodat(dir, name.c_str(), e.mode, 0) != 0)
    return ErrnoError("chmod " + e.path);
  timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
  ::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  return Ok();
}

// Layer xattrs (PAX SCHILY.xattr.*), set after chown (which drops security.capability).
// user.*, security.capability (file capabilities, e.g. ping) and POSIX ACLs are applied;
// trusted.overlay.* is refused: it would forge overlayfs metadata (opaque, redirects) that
// only whiteout entries may create; other namespaces (security.selinux...) are skipped.
Status SetXattrs(int dir, const std::string& name, const TarEntry& e) {
  for (const auto& [key, value] : e.xattrs) {
    if (key.rfind("trusted.overlay.", 0) == 0)
      return Refused(e.path, "xattr " + key + " is reserved for overlayfs");
    bool wanted = key.rfind("user.", 0) == 0 || key == "security.capability" ||
                  key == "system.posix_acl_access" || key == "system.posix_acl_default";
    if (!wanted) continue;
    // dir is an O_PATH fd inside the root and name one component: no symlink is followed.
    std::string p = "/proc/self/fd/" + std::to_string(dir) + "/" + name;
    if (::lsetxattr(p.c_str(), key.c_str(), value.data(), value.size(), 0) != 0) {
      // user.* cannot be set on symlinks and devices: the kernel's rule, not an image fault.
      if (errno == EPERM && key.rfind("user.", 0) == 0 && e.type != '0' && e.type != '5') continue;
      return ErrnoError("set xattr " + key + " on " + e.path);
    }
  }
  return Ok();
}

Status Whiteout(int dir, const std::string& name, const std::string& path) {
  if (name == ".wh..wh..opq") {
    // Opaque directory: overlayfs hides the lower layers' content of this directory.
    if (::fsetxattr(dir, "trusted.overlay.opaque", "y", 1, 0) != 0) {
      // dir is an O_PATH fd: set the xattr through its /proc path.
      std::string p = "/proc/self/fd/" + std::to_string(dir);
      if (::setxattr(p.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return ErrnoError("mark opaque directory " + path);
      }
    }
    return Ok();
  }
  std::string hidden = name.substr(4);
  if (hidden.empty() || hidden == "." || hidden == "..") return Refused(path, "bad whiteout name");
  SV_TRY(ClearSlot(dir, hidden, false));
  // overlayfs' whiteout: a 0/0 character device named like the hidden entry.
  if (::mknodat(dir, hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
    return ErrnoError("whiteout " + path);
  return Ok();
}

Status Hardlink(int root, int dir, const std::string& name, const TarEntry& e) {
  SV_ASSIGN_OR_RETURN(auto target, CleanPath(e.linkname));
  if (target.empty()) return Refused(e.path, "hard link to the root");
  auto tdir = OpenDirInRoot(root, JoinParts(target, target.size() - 1));
  struct stat st {};
  if (!tdir || ::fstatat(tdir->get(), target.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Refused(e.path, "hard link target '" + e.linkname + "' is not in this layer");
  }
  if (S_ISDIR(st.st_mode)) return Refused(e.path, "hard link to a directory");
  SV_TRY(ClearSlot(dir, name, false));
  if (::linkat(tdir->get(), target.back().c_str(), dir, name.c_str(), 0) != 0) {
    return ErrnoError("link " + e.path);
  }
  return Ok();
}

Status CreateEntry(int root, int dir, const std::string& name, const TarEntry& e, TarReader& tar);

Status UnpackEntry(int root, const TarEntry& e, TarReader& tar, const UnpackOptions& o) {
  SV_ASSIGN_OR_RETURN(auto parts, CleanPath(e.path));
  if (parts.empty()) return Ok();  // "./": the root itself
  const std::string& name = parts.back();
  if ((e.type == '3' || e.type == '4') && !o.allow_devices) {
    return Refused(e.path, "device node (import with --allow-devices to accept)");
  }
  if (e.type == '2' && SymlinkEscapes(parts, e.linkname)) {
    return Refused(e.path, "symlink target '" + e.linkname + "' escapes the root");
  }
  SV_ASSIGN_OR_RETURN(UniqueFd dir, ParentDir(root, parts));
  if (name.rfind(".wh.", 0) == 0) {
    return Whiteout(dir.get(), name, e.path);
  }
  SV_TRY(CreateEntry(root, dir.get(), name, e, tar));
  if (e.xattrs.empty() || e.type == '1') return Ok();
  return SetXattrs(dir.get(), name, e);
}

Status CreateEntry(int root, int dir, const std::string& name, const TarEntry& e, TarReader& tar) {
  switch (e.type) {
    case '0':
      SV_TRY(ClearSlot(dir, name, false));
      SV_TRY(WriteFileData(dir, name, e, tar));
      return SetMeta(dir, name, e, false);
    case '5':
      SV_TRY(ClearSlot(dir, name, true));
      if (::mkdirat(dir, name.c_str(), 0755) != 0 && errno != EEXIST)
        return ErrnoError("mkdir " + e.path);
      return SetMeta(dir, name, e, false);
    case '2':
      SV_TRY(ClearSlot(dir, name, false));
      if (::symlinkat(e.linkname.c_str(), dir, name.c_str()) != 0)
        return ErrnoError("symlink " + e.path);
      return SetMeta(dir, name, e, true);
    case '1':
      return Hardlink(root, dir, name, e);
    case '3':
    case '4':
    case '6': {
      SV_TRY(ClearSlot(dir, name, false));
      mode_t type = e.type == '3' ? S_IFCHR : (e.type == '4' ? S_IFBLK : S_IFIFO);
      if (::mknodat(dir, name.c_str(), type | e.mode, makedev(e.devmajor, e.devminor)) != 0) {
        return ErrnoError("mknod " + e.path);
      }
      return SetMeta(dir, name, e, false);
    }
    default:
      return Refused(e.path, std::string("unsupported entry type '") + e.type + "'");
  }
}

}  // namespace

Result<UnpackStats> UnpackLayer(Source& src, const std::string& dest, const UnpackOptions& o) {
  int raw = ::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return ErrnoError("open layer directory " + dest);
  UniqueFd root(raw);
  SV_ASSIGN_OR_RETURN(auto input, MaybeDecompress(src));
  TarReader tar(*input);
  UnpackStats stats;
  for (;;) {
    SV_ASSIGN_OR_RETURN(auto entry, tar.Next());
    if (!entry) break;
    if (++stats.entries > o.max_entries) {
      return Error(ErrorCode::kGuestFault,
                   "layer has more than " + std::to_string(o.max_entries) + " entries");
    }
    stats.bytes += entry->size;
    if (stats.bytes > o.max_bytes)
      return Error(ErrorCode::kGuestFault, "layer unpacks to more than the size limit");
    SV_TRY(UnpackEntry(root.get(), *entry, tar, o));
  }
  return stats;
}

Status CheckTar(Source& src) {
  SV_ASSIGN_OR_RETURN(auto input, MaybeDecompress(src));
  TarReader tar(*input);
  for (;;) {
    SV_ASSIGN_OR_RETURN(auto entry, tar.Next());
    if (!entry) return Ok();
    SV_TRY(CleanPath(entry->path));
  }
}

}  // namespace storevisor::image
