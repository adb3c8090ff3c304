#include "daemon/service/runtime_files.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <unistd.h>

#include <vector>

namespace storevisor::daemon {

Result<PidFile> PidFile::Acquire(const std::string& path) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDWR | O_CREAT, 0644));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoError("pidfile " + path + ": flock");
    auto held = ReadAll(fd.get(), 64);
    std::string pid = held ? *held : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Error(ErrorCode::kConflict,
                 "another storevisord (pid " + (pid.empty() ? "?" : pid) + ") holds " + path);
  }
  if (::ftruncate(fd.get(), 0) != 0) return ErrnoError("pidfile " + path + ": truncate");
  SV_TRY(WriteAll(fd.get(), std::to_string(::getpid()) + "\n"));
  return PidFile(path, std::move(fd));
}

PidFile::~PidFile() {
  // Unlinked while still locked: a daemon starting now creates a new file and locks that.
  if (fd_.valid()) ::unlink(path_.c_str());
}

RemoveAtExit::~RemoveAtExit() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status ChangeGroup(const std::string& path, const std::string& group) {
  std::vector<char> buf(16384);
  struct group entry {};
  struct group* found = nullptr;
  int rc;
  while ((rc = ::getgrnam_r(group.c_str(), &entry, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1u << 20)) {
    buf.resize(buf.size() * 4);
  }
  if (rc != 0) return ErrnoError("group '" + group + "'", rc);
  if (found == nullptr) {
    return Error(ErrorCode::kNotFound, "socket group '" + group +
                                           "': no such group (the package's postinst makes "
                                           "'storevisor'; or set socket-group empty)");
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
    return ErrnoError("chown " + path + " to group " + group);
  }
  return Ok();
}

std::string DefaultPidFile(const std::string& socket_path) {
  auto slash = socket_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : socket_path.substr(0, slash);
  return dir + "/storevisord.pid";
}

}  // namespace storevisor::daemon
