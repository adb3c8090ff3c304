#include "runtime/init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "common/child_process.h"
#include "runtime/caps.h"
#include "runtime/mounts.h"

namespace storevisor::runtime {
namespace {

// Sends the error to the runtime (or stderr once it is gone) and ends the init. After
// `start`, report_fd is the exec fifo's write end: `start` reads the message from it (and
// the container's stderr gets it too, since `start` may have gone).
[[noreturn]] void Die(int report_fd, const Error& e) {
  std::string msg = std::string(1, kMsgError) + e.message();
  if (report_fd < 0 || ::send(report_fd, msg.data(), msg.size(), MSG_NOSIGNAL) < 0) {
    bool fifo = report_fd >= 0 && errno == ENOTSOCK;
    std::string line = "storevisor-runtime: container init: " + e.message() + "\n";
    (void)!::write(2, line.data(), line.size());
    if (fifo) {
      ::signal(SIGPIPE, SIG_IGN);
      (void)!::write(report_fd, msg.data(), msg.size());
    }
  }
  ::_exit(1);
}

#define INIT_TRY(fd, expr)                                        \
  do {                                                            \
    auto&& init_result_ = (expr);                                 \
    if (!init_result_.has_value()) Die(fd, init_result_.error()); \
  } while (0)

Status WaitFor(int fd, char expected, pid_t* pid = nullptr) {
  char buf[256];
  ssize_t n;
  do {
    n = ::recv(fd, buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return Error(ErrorCode::kCancelled, "the runtime went away during set-up");
  if (buf[0] != expected) return Error(ErrorCode::kInternal, "unexpected sync message");
  // 'G' carries the init's pid as the host sees it (for the state its hooks get).
  if (pid != nullptr)
    *pid = static_cast<pid_t>(
        std::strtol(std::string(buf + 1, static_cast<size_t>(n - 1)).c_str(), nullptr, 10));
  return Ok();
}

Status DoMount(const std::string& src, const std::string& dst, const char* type,
               unsigned long flags, const std::string& data, const std::string& what) {
  if (::mount(src.c_str(), dst.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    return ErrnoError("mount " + what);
  }
  return Ok();
}

// Current lock-relevant flags of a mount, so a read-only remount keeps nosuid/nodev/noexec
// (the kernel refuses to clear locked flags in a user namespace).
unsigned long ExistingFlags(const std::string& path) {
  struct statvfs sv {};
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  return f;
}

Status RemountRo(const std::string& path, unsigned long extra, const std::string& what) {
  return DoMount("", path, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | ExistingFlags(path) | extra,
                 "", "read-only " + what);
}

// Makes a mount and every mount below it read-only in one call, keeping their other flags
// (no statvfs, no remount per mount).
Status SetReadOnlyTree(const std::string& path, const std::string& what) {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(AT_FDCWD, path.c_str(), AT_RECURSIVE, &attr, sizeof attr) != 0) {
    if (errno == ENOSYS) return RemountRo(path, 0, what);
    return ErrnoError("make " + what + " read-only");
  }
  return Ok();
}

// A fd opened before a mount still names the covered directory: re-resolve the path to
// reach the new mount for remounts and propagation changes.
Result<UniqueFd> Reopen(int root_fd, const std::string& path, bool dir) {
  return EnsureInRoot(root_fd, path, dir);
}

Status BindMount(const Mount& m, const MountFlags& f, int root_fd, bool dir,
                 const std::string& source) {
  SV_ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(root_fd, m.destination, dir));
  SV_TRY(DoMount(source, FdPath(target.get()), nullptr, MS_BIND | (f.recursive ? MS_REC : 0), "",
                 m.destination + " (bind from " + source + ")"));
  unsigned long lock = f.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (lock != 0) {
    SV_ASSIGN_OR_RETURN(UniqueFd mounted, Reopen(root_fd, m.destination, dir));
    std::string p = FdPath(mounted.get());
    SV_TRY(DoMount("", p, nullptr, MS_REMOUNT | MS_BIND | lock | ExistingFlags(p), "",
                   m.destination + " (remount)"));
  }
  return Ok();
}

Status MountCgroupFs(const InitConfig& c, const Mount& m, const MountFlags& f, int root_fd) {
  SV_ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(root_fd, m.destination, true));
  std::string tpath = FdPath(target.get());
  unsigned long base = f.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
  if (c.cgroup_mode == CgroupMode::kUnified) {
    if (c.spec->HasNamespace(NamespaceType::kCgroup)) {
      return DoMount("cgroup2", tpath, "cgroup2", base | (f.flags & MS_RDONLY), "", m.destination);
    }
    SV_TRY(DoMount(c.cgroup_dirs.at(0), tpath, nullptr, MS_BIND, "", m.destination));
    if ((f.flags & MS_RDONLY) == 0) return Ok();
    SV_ASSIGN_OR_RETURN(UniqueFd mounted, Reopen(root_fd, m.destination, true));
    return RemountRo(FdPath(mounted.get()), 0, m.destination);
  }
  // v1/hybrid: a tmpfs with one bind mount per hierarchy, showing the container's own
  // cgroup as that hierarchy's root (what runc does).
  SV_TRY(DoMount("cgroup", tpath, "tmpfs", base, "mode=755", m.destination));
  for (const auto& dir : c.cgroup_dirs) {
    std::string rest = dir.substr(std::strlen("/sys/fs/cgroup/"));
    std::string name = rest.substr(0, rest.find('/'));
    SV_ASSIGN_OR_RETURN(UniqueFd sub, EnsureInRoot(root_fd, m.destination + "/" + name, true));
    std::string spath = FdPath(sub.get());
    SV_TRY(DoMount(dir, spath, nullptr, MS_BIND, "", m.destination + "/" + name));
  }
  if (f.flags & MS_RDONLY) {
    // The tmpfs and all its binds at once.
    SV_ASSIGN_OR_RETURN(UniqueFd mounted, Reopen(root_fd, m.destination, true));
    SV_TRY(SetReadOnlyTree(FdPath(mounted.get()), m.destination));
  }
  return Ok();
}

Status MountOne(const InitConfig& c, const Mount& m, int root_fd) {
  MountFlags f = ParseMountOptions(m.options);
  if (m.type == "bind") f.bind = true;
  if (m.type == "cgroup" || m.type == "cgroup2") return MountCgroupFs(c, m, f, root_fd);
  std::string source = m.source;
  bool dir = true;
  if (f.bind) {
    if (!source.empty() && source[0] != '/') source = c.bundle + "/" + source;
    struct stat st {};
    if (::stat(source.c_str(), &st) != 0)
      return ErrnoError("mount " + m.destination + ": source " + source);
    dir = S_ISDIR(st.st_mode);
  }
  if (f.bind) {
    SV_TRY(BindMount(m, f, root_fd, dir, source));
  } else {
    SV_ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(root_fd, m.destination, dir));
    Status s =
        DoMount(source, FdPath(target.get()), m.type.c_str(), f.flags, f.data, m.destination);
    if (!s && m.type == "sysfs" && (errno == EPERM || errno == EACCES)) {
      // Without its own network namespace a container may not mount sysfs: bind the host's.
      MountFlags rf = f;
      rf.recursive = true;
      s = BindMount(m, rf, root_fd, true, "/sys");
    }
    SV_TRY(s);
  }
  if (f.propagation != 0) {
    SV_ASSIGN_OR_RETURN(UniqueFd mounted, Reopen(root_fd, m.destination, dir));
    SV_TRY(DoMount("", FdPath(mounted.get()), nullptr, f.propagation, "", m.destination));
  }
  return Ok();
}

bool DevIsBound(const Spec& spec) {
  for (const auto& m : spec.mounts) {
    if (m.destination == "/dev") return m.type == "bind" || ParseMountOptions(m.options).bind;
  }
  return false;
}

Status MakeDevice(const Device& d, int root_fd, bool userns) {
  if (userns) {
    // mknod is refused in a user namespace: bind the host's node instead.
    SV_ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(root_fd, d.path, false));
    return DoMount(d.path, FdPath(target.get()), nullptr, MS_BIND, "", d.path);
  }
  std::string dir = d.path.substr(0, d.path.find_last_of('/'));
  SV_ASSIGN_OR_RETURN(UniqueFd parent, EnsureInRoot(root_fd, dir.empty() ? "/" : dir, true));
  std::string name = d.path.substr(d.path.find_last_of('/') + 1);
  mode_t type = d.type == 'b' ? S_IFBLK : (d.type == 'p' ? S_IFIFO : S_IFCHR);
  ::unlinkat(parent.get(), name.c_str(), 0);
  // mknod is subject to the umask: clear it so the mode is exact without a chmod.
  mode_t old_umask = ::umask(0);
  int made = ::mknodat(parent.get(), name.c_str(), type | (d.file_mode & 07777),
                       makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor)));
  ::umask(old_umask);
  if (made != 0 && errno == EPERM) {
    // The device cgroup denies mknod of a device the spec denies: bind the host's node, as
    // runc does (opening it stays denied).
    parent.reset();
    SV_ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(root_fd, d.path, false));
    return DoMount(d.path, FdPath(target.get()), nullptr, MS_BIND, "", d.path);
  }
  if (made != 0) return ErrnoError("mknod " + d.path);
  // The node belongs to the init's ids (root here): chown only when the spec asks otherwise.
  if ((d.uid != ::geteuid() || d.gid != ::getegid()) &&
      ::fchownat(parent.get(), name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("chown " + d.path);
  }
  return Ok();
}

Status SetUpDev(const InitConfig& c, int root_fd) {
  bool userns = c.spec->HasNamespace(NamespaceType::kUser);
  if (!DevIsBound(*c.spec)) {
    static constexpr struct {
      const char* path;
      int minor_major[2];
    } kDefaults[] = {{"/dev/null", {1, 3}},   {"/dev/zero", {1, 5}},    {"/dev/full", {1, 7}},
                     {"/dev/random", {1, 8}}, {"/dev/urandom", {1, 9}}, {"/dev/tty", {5, 0}}};
    for (const auto& d : kDefaults) {
      Device dev{'c', d.path, d.minor_major[0], d.minor_major[1], 0666, 0, 0};
      SV_TRY(MakeDevice(dev, root_fd, userns));
    }
    SV_ASSIGN_OR_RETURN(UniqueFd dev, EnsureInRoot(root_fd, "/dev", true));
    static constexpr std::pair<const char*, const char*> kLinks[] = {
        {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},         {"/proc/kcore", "core"}};
    for (const auto& [target, name] : kLinks) {
      if (::symlinkat(target, dev.get(), name) != 0 && errno != EEXIST) {
        return ErrnoError(std::string("symlink /dev/") + name);
      }
    }
  }
  for (const auto& d : c.spec->devices) SV_TRY(MakeDevice(d, root_fd, userns));
  return Ok();
}

Status PivotRoot(const std::string& rootfs) {
  if (::chdir(rootfs.c_str()) != 0) return ErrnoError("chdir " + rootfs);
  // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "."
  // then drops it, with no put_old directory to create and clean (runc and crun do this).
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return ErrnoError("pivot_root " + rootfs);
  if (::mount("", ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
    return ErrnoError("make old root rslave");
  if (::umount2(".", MNT_DETACH) != 0) return ErrnoError("unmount the old root");
  if (::chdir("/") != 0) return ErrnoError("chdir /");
  return Ok();
}

Status MaskPaths(const Spec& spec) {
  for (const auto& p : spec.masked_paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) continue;  // nothing to hide
    if (S_ISDIR(st.st_mode)) {
      SV_TRY(DoMount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0", "masked " + p));
    } else {
      SV_TRY(DoMount("/dev/null", p, nullptr, MS_BIND, "", "masked " + p));
    }
  }
  for (const auto& p : spec.readonly_paths) {
    if (::access(p.c_str(), F_OK) != 0) continue;
    SV_TRY(DoMount(p, p, nullptr, MS_BIND | MS_REC, "", "read-only " + p));
    SV_TRY(SetReadOnlyTree(p, p));
  }
  return Ok();
}

// The propagation set on every mount before the rootfs is made: rslave, or rprivate when
// the spec asks for it.
unsigned long InitialPropagation(unsigned long wanted) {
  return wanted == (MS_PRIVATE | MS_REC) ? wanted : (MS_SLAVE | MS_REC);
}

// The state JSON for hooks the init runs: pid as the host sees it (spec: runtime.md State).
std::string InitHookState(const InitConfig& c, const char* status, pid_t host_pid) {
  nlohmann::json j = c.hook_state;
  j["status"] = status;
  j["pid"] = host_pid;
  return j.dump();
}

Status SetUpRootfs(const InitConfig& c, pid_t host_pid) {
  const Spec& s = *c.spec;
  unsigned long prop = ParsePropagation(s.rootfs_propagation);
  if (prop == 0)
    return Error(ErrorCode::kInvalidArgument, "linux.rootfsPropagation: unknown value");
  // Our mounts must not leak to the host: make everything a slave (private when asked)
  // before touching anything. Any other rootfsPropagation is applied to the new root after
  // pivot_root (FinishRootfs): an unbindable "/" would refuse the rootfs bind mount below.
  SV_TRY(DoMount("", "/", nullptr, InitialPropagation(prop), "", "/ (propagation)"));
  SV_TRY(DoMount(c.rootfs, c.rootfs, nullptr, MS_BIND | MS_REC, "", "the root " + c.rootfs));
  int root_raw = ::open(c.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_raw < 0) return ErrnoError("open root " + c.rootfs);
  UniqueFd root_fd(root_raw);
  for (const auto& m : s.mounts) SV_TRY(MountOne(c, m, root_fd.get()));
  SV_TRY(SetUpDev(c, root_fd.get()));
  if (!s.hooks.create_container.empty()) {
    std::string state = InitHookState(c, "creating", host_pid);
    for (const auto& h : s.hooks.create_container)
      SV_TRY_CTX(RunHook(h, state), "createContainer hook");
  }
  root_fd.reset();
  return PivotRoot(c.rootfs);
}

// After hostname and sysctls (they write /proc/sys, which readonlyPaths usually protects).
Status FinishRootfs(const Spec& s) {
  SV_TRY(MaskPaths(s));
  if (s.root_readonly) SV_TRY(RemountRo("/", 0, "root"));
  unsigned long prop = ParsePropagation(s.rootfs_propagation);
  if (prop != InitialPropagation(prop))
    SV_TRY(DoMount("", "/", nullptr, prop, "", "/ (rootfsPropagation)"));
  return Ok();
}

Status WriteSysctls(const Spec& s) {
  for (const auto& [key, value] : s.sysctl) {
    std::string path = "/proc/sys/" + key;
    for (size_t i = 10; i < path.size(); ++i) {
      if (path[i] == '.') path[i] = '/';
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("sysctl " + key);
    UniqueFd owned(fd);
    SV_TRY_CTX(WriteAll(fd, value), "sysctl " + key);
  }
  return Ok();
}

Status JoinNamespaces(const Spec& s, bool user_pass) {
  static constexpr std::pair<NamespaceType, int> kKinds[] = {
      {NamespaceType::kUser, CLONE_NEWUSER},     {NamespaceType::kIpc, CLONE_NEWIPC},
      {NamespaceType::kUts, CLONE_NEWUTS},       {NamespaceType::kNetwork, CLONE_NEWNET},
      {NamespaceType::kCgroup, CLONE_NEWCGROUP}, {NamespaceType::kMount, CLONE_NEWNS}};
  for (const auto& [type, flag] : kKinds) {
    if ((type == NamespaceType::kUser) != user_pass) continue;
    const Namespace* ns = s.FindNamespace(type);
    if (ns == nullptr || ns->path.empty()) continue;
    int fd = ::open(ns->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open namespace " + ns->path);
    UniqueFd owned(fd);
    if (::setns(fd, flag) != 0) return ErrnoError("join namespace " + ns->path);
  }
  return Ok();
}

// Blocks until `start` opens the fifo for reading, then tells it we are going. The write
// end is returned to be held until execve closes it (close-on-exec): `start` waits for
// that to run the poststart hooks after the process was executed, as the spec wants.
Result<UniqueFd> WaitForStart(const InitConfig& c) {
  std::string self = "self/fd/" + std::to_string(c.fifo_fd);
  int fd = ::openat(c.host_proc_fd, self.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open exec fifo");
  UniqueFd owned(fd);
  if (::write(fd, "0", 1) != 1) return ErrnoError("write exec fifo");
  return owned;
}

std::string LookPath(const Process& p);

// What `create` can tell before the process is run: the program exists and is
// executable in the container's root (runc checks this in its init too).
Status CheckExecutable(const Process& p) {
  std::string path = LookPath(p);
  std::string resolved = path;
  if (!path.empty() && path[0] != '/') resolved = p.cwd + "/" + path;
  if (path.find('/') == std::string::npos || ::access(resolved.c_str(), X_OK) != 0) {
    return Error(ErrorCode::kNotFound,
                 "exec: \"" + p.args[0] + "\": executable file not found in the container");
  }
  return Ok();
}

std::string LookPath(const Process& p) {
  const std::string& prog = p.args[0];
  if (prog.find('/') != std::string::npos) return prog;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : p.env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find(':', pos);
    if (next == std::string::npos) next = path.size();
    std::string candidate = path.substr(pos, next - pos) + "/" + prog;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = next + 1;
  }
  return prog;
}

Status SetUser(const User& u) {
  std::vector<gid_t> groups(u.additional_gids.begin(), u.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) != 0 && errno != EPERM)
    return ErrnoError("setgroups");
  if (::setresgid(u.gid, u.gid, u.gid) != 0) return ErrnoError("setgid " + std::to_string(u.gid));
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return ErrnoError("keep capabilities");
  if (::setresuid(u.uid, u.uid, u.uid) != 0) return ErrnoError("setuid " + std::to_string(u.uid));
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return ErrnoError("clear keep capabilities");
  return Ok();
}

Status ApplyRlimits(const Process& p) {
  for (const auto& r : p.rlimits) {
    rlimit lim{r.soft, r.hard};
    if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) != 0) {
      return ErrnoError("setrlimit " + std::to_string(r.resource) + " to " +
                        std::to_string(r.soft) + ":" + std::to_string(r.hard) +
                        " (raising a hard limit needs CAP_SYS_RESOURCE)");
    }
  }
  return Ok();
}

}  // namespace

Status SetUpTerminal(int console_fd) {
  int master = ::open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return ErrnoError("open /dev/ptmx for the terminal");
  UniqueFd owned_master(master);
  int unlock = 0;
  if (::ioctl(master, TIOCSPTLCK, &unlock) != 0) return ErrnoError("unlock pty");
  int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return ErrnoError("open pty peer");
  UniqueFd owned_slave(slave);
  char byte = 'c';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &master, sizeof(int));
  if (::sendmsg(console_fd, &msg, MSG_NOSIGNAL) < 0)
    return ErrnoError("send pty to console socket");
  if (::setsid() < 0) return ErrnoError("setsid");
  if (::ioctl(slave, TIOCSCTTY, 0) != 0) return ErrnoError("set controlling terminal");
  for (int i = 0; i < 3; ++i) {
    if (::dup2(slave, i) < 0) return ErrnoError("dup pty");
  }
  return Ok();
}

[[noreturn]] void FinishAndExec(const Process& p, const std::optional<SeccompProgram>& seccomp,
                                int preserve_fds, int report_fd) {
  INIT_TRY(report_fd, ApplyRlimits(p));
  CapMasks caps = p.capabilities ? ToMasks(*p.capabilities) : CapMasks{};
  if (p.capabilities && DropBounding(caps) != 0)
    Die(report_fd, ErrnoError("drop bounding capabilities"));
  // Without no_new_privileges, loading a filter needs CAP_SYS_ADMIN: do it while we have it.
  if (seccomp && !p.no_new_privileges && LoadSeccomp(*seccomp) != 0) {
    Die(report_fd, ErrnoError("load seccomp filter"));
  }
  INIT_TRY(report_fd, SetUser(p.user));
  if (p.user.umask) ::umask(*p.user.umask);
  if (::chdir(p.cwd.c_str()) != 0) Die(report_fd, ErrnoError("chdir to process.cwd " + p.cwd));
  if (p.capabilities && ApplyCaps(caps) != 0) Die(report_fd, ErrnoError("set capabilities"));
  if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Die(report_fd, ErrnoError("set no_new_privileges"));
  }
  if (seccomp && p.no_new_privileges && LoadSeccomp(*seccomp) != 0) {
    Die(report_fd, ErrnoError("load seccomp filter"));
  }
  std::string path = LookPath(p);
  std::vector<char*> argv, envp;
  for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : p.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::syscall(SYS_close_range, 3 + preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
  // execve keeps ignored signals ignored: a container must not inherit the runtime's
  // caller's SIG_IGN (storevisord ignores SIGPIPE, so `yes | head` never ended inside its
  // containers). Handlers are reset by execve itself; the mask is cleared here too.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction now {};
    if (::sigaction(sig, nullptr, &now) == 0 && now.sa_handler == SIG_IGN) ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(path.c_str(), argv.data(), envp.data());
  Die(report_fd, ErrnoError("exec " + p.args[0]));
}

[[noreturn]] void RunContainerInit(const InitConfig& c) {
  const Spec& s = *c.spec;
  int fd = c.sync_fd;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  INIT_TRY(fd, JoinNamespaces(s, true));
  pid_t host_pid = 0;  // known from 'G' on; the runtime sends it early when hooks need it
  if (c.wait_go_early) INIT_TRY(fd, WaitFor(fd, kMsgGo, &host_pid));
  INIT_TRY(fd, JoinNamespaces(s, false));
  if (s.HasNamespace(NamespaceType::kUser) &&
      (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)) {
    Die(fd, ErrnoError("become root in the user namespace"));
  }
  if (s.HasNamespace(NamespaceType::kMount)) {
    INIT_TRY(fd, SetUpRootfs(c, host_pid));
  } else if (::chroot(c.rootfs.c_str()) != 0 || ::chdir("/") != 0) {
    // No mount namespace: nothing can be mounted without touching the host's mounts, but
    // the process still runs in its root (as runc and crun do).
    Die(fd, ErrnoError("chroot " + c.rootfs));
  }
  if (s.HasNamespace(NamespaceType::kUts)) {
    if (!s.hostname.empty() && ::sethostname(s.hostname.data(), s.hostname.size()) != 0) {
      Die(fd, ErrnoError("sethostname"));
    }
    if (!s.domainname.empty() && ::setdomainname(s.domainname.data(), s.domainname.size()) != 0) {
      Die(fd, ErrnoError("setdomainname"));
    }
  }
  INIT_TRY(fd, WriteSysctls(s));
  if (s.HasNamespace(NamespaceType::kMount)) INIT_TRY(fd, FinishRootfs(s));
  if (!c.wait_go_early) INIT_TRY(fd, WaitFor(fd, kMsgGo, &host_pid));
  if (c.unshare_cgroupns && ::unshare(CLONE_NEWCGROUP) != 0)
    Die(fd, ErrnoError("unshare cgroup namespace"));
  if (c.process->terminal) {
    if (c.console_fd < 0)
      Die(fd, Error(ErrorCode::kInvalidArgument, "process.terminal needs --console-socket"));
    INIT_TRY(fd, SetUpTerminal(c.console_fd));
    ::close(c.console_fd);
  }
  if (!c.process->args.empty()) INIT_TRY(fd, CheckExecutable(*c.process));
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  if (::send(fd, &kMsgReady, 1, MSG_NOSIGNAL) != 1) ::_exit(1);
  // From here on the runtime may be gone (create returned): errors go to stderr. The sync
  // socket stays open (close-on-exec): `run` waits for its end to know the process was
  // executed before it runs the poststart hooks. Likewise the fifo's write end for `start`.
  UniqueFd fifo_writer;
  if (c.fifo_fd >= 0) {
    auto w = WaitForStart(c);
    if (!w) Die(-1, w.error());
    fifo_writer = std::move(*w);
  }
  if (c.host_proc_fd >= 0) ::close(c.host_proc_fd);
  // Failures from here on reach `start` through the fifo, or `run` through the socket.
  int report = fifo_writer.valid() ? fifo_writer.get() : fd;
  if (!s.hooks.start_container.empty()) {
    // `start` was called: the container is created, its process not yet executed.
    std::string state = InitHookState(c, "created", host_pid);
    for (const auto& h : s.hooks.start_container) INIT_TRY(report, RunHook(h, state));
  }
  FinishAndExec(*c.process, c.seccomp, c.preserve_fds, report);
}

namespace {

// A hook need not read its stdin: when it exits first, the write must fail with EPIPE,
// not kill the runtime with SIGPIPE (that left a half-made container and exit status 0).
void WriteIgnoringSigpipe(int fd, const std::string& data) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  Status s = WriteAll(fd, data);
  if (!s && s.error().sys_errno() == EPIPE && !sigismember(&old, SIGPIPE)) {
    timespec none{};
    (void)::sigtimedwait(&pipe_only, nullptr, &none);  // drop the SIGPIPE it raised
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace

Status RunHook(const Hook& hook, const std::string& state_json) {
  SV_ASSIGN_OR_RETURN(Pipe in, MakePipe());
  SpawnOptions o;
  o.argv = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  o.env = hook.env;
  o.stdin_fd = in.read.get();
  // execv semantics (the spec): the program is `path`, argv is `args` as given, argv[0]
  // included (a multi-call binary such as busybox dispatches on it).
  o.program = hook.path;
  SV_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(o));
  in.read.reset();
  WriteIgnoringSigpipe(in.write.get(), state_json);
  in.write.reset();
  std::optional<std::chrono::milliseconds> timeout;
  if (hook.timeout_s) timeout = std::chrono::seconds(*hook.timeout_s);
  auto status = child.Wait(timeout);
  if (!status) return std::move(status).error().Context("hook " + hook.path);
  if (!status->success()) {
    return Error(ErrorCode::kFailedPrecondition, "hook " + hook.path + " " + status->ToString());
  }
  return Ok();
}

}  // namespace storevisor::runtime
