// SystemPrecheckHost (precheck.h): the image lookup the container driver does, the file
// system, /proc/meminfo.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>

#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/drivers/container_driver.h"
#include "daemon/precheck.h"

namespace storevisor::daemon {

Status SystemPrecheckHost::ImagePresent(const std::string& ref) const {
  SV_ASSIGN_OR_RETURN(ImageLocation where, LocateImage(image_root_, image_dir_, ref));
  (void)where;
  return Ok();
}

Status SystemPrecheckHost::Readable(const std::string& path) const {
  // Opened as QEMU will open it (O_NONBLOCK: a FIFO must not hang the apply).
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return ErrnoError(path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(path);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Error(ErrorCode::kInvalidArgument, path + ": not a file or block device");
  }
  return Ok();
}

std::optional<uint64_t> SystemPrecheckHost::AvailableMemory() const {
  auto meminfo = ReadFile("/proc/meminfo", 65536);
  if (!meminfo) return std::nullopt;
  const size_t pos = meminfo->find("MemAvailable:");
  if (pos == std::string::npos) return std::nullopt;
  return std::strtoull(meminfo->c_str() + pos + 13, nullptr, 10) * 1024;
}

}  // namespace storevisor::daemon
