// The files storevisord keeps in its runtime directory while it serves: a locked pidfile
// (one daemon per runtime directory; scripts stop it by the pid inside) and the API socket,
// given to the operators' group and removed at exit.
#pragma once

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::daemon {

// A pidfile held under an exclusive flock for the daemon's life: a second daemon on the
// same file is refused with the first one's pid. The destructor removes the file.
class PidFile {
 public:
  static Result<PidFile> Acquire(const std::string& path);
  PidFile(PidFile&& other) noexcept = default;
  PidFile& operator=(PidFile&& other) = delete;
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  ~PidFile();

  const std::string& path() const { return path_; }

 private:
  PidFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// Unlinks a path when it goes out of scope (the API socket: clients that find no socket
// know at once that no daemon serves, instead of meeting "connection refused").
class RemoveAtExit {
 public:
  explicit RemoveAtExit(std::string path) : path_(std::move(path)) {}
  RemoveAtExit(const RemoveAtExit&) = delete;
  RemoveAtExit& operator=(const RemoveAtExit&) = delete;
  ~RemoveAtExit();

 private:
  std::string path_;
};

// Gives `path` to the group named `group` (the socket's 0660 then lets its members in).
Status ChangeGroup(const std::string& path, const std::string& group);

// The default pidfile: storevisord.pid beside the socket (in the runtime directory).
std::string DefaultPidFile(const std::string& socket_path);

}  // namespace storevisor::daemon
