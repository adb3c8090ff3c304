#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/unique_fd.h"

namespace storevisor {

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  auto content = ReadAll(fd.get(), max_bytes);
  if (!content) return std::move(content).error().Context("read " + path);
  return content;
}

static std::string DirName(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

namespace {

Status WriteAndRename(const std::string& path, std::string_view data, mode_t mode, bool sync) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    SV_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    Status written = WriteAll(fd.get(), data);
    if (sync && written && ::fsync(fd.get()) != 0) written = ErrnoError("fsync " + tmp);
    if (!written) {
      ::unlink(tmp.c_str());
      return std::move(written).error().Context("write " + path);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error err = ErrnoError("rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return err;
  }
  if (!sync) return Ok();
  SV_ASSIGN_OR_RETURN(UniqueFd dir, OpenFile(DirName(path), O_RDONLY | O_DIRECTORY));
  if (::fsync(dir.get()) != 0) return ErrnoError("fsync directory of " + path);
  return Ok();
}

}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  return WriteAndRename(path, data, mode, true);
}

Status WriteFileReplace(const std::string& path, std::string_view data, mode_t mode) {
  return WriteAndRename(path, data, mode, false);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoError("mkdir " + path, ec.value());
  // create_directories uses 0777 & ~umask; tighten the leaf to what the caller asked.
  if (::chmod(path.c_str(), mode) != 0) return ErrnoError("chmod " + path);
  return Ok();
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoError("remove " + path, ec.value());
  return Ok();
}

}  // namespace storevisor
