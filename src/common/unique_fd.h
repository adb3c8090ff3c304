// UniqueFd owns a file descriptor; it closes it exactly once (no retry on EINTR: Linux
// has already closed the fd when close() reports EINTR, as AOSP libbase documents).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

#include "common/error.h"

namespace storevisor {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Catches `if (!fd)` written for `if (!fd.valid())`.
  bool operator!() const = delete;

  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// pipe2 with O_CLOEXEC (plus extra flags such as O_NONBLOCK).
Result<Pipe> MakePipe(int extra_flags = 0);

// open(2) with O_CLOEXEC; the error names the path.
Result<UniqueFd> OpenFile(const std::string& path, int flags, mode_t mode = 0);

// Writes all of data, retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view data);
// Reads until EOF or max_bytes; more than max_bytes is an error (untrusted sizes).
Result<std::string> ReadAll(int fd, size_t max_bytes);

}  // namespace storevisor
