// Internal: unix stream sockets with deadlines, for the QMP and agent clients.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::vm::internal {

using Deadline = std::chrono::steady_clock::time_point;

// Connects to a unix socket, retrying while it does not exist yet or refuses, until
// the deadline (QEMU creates its sockets a little after it starts).
Result<UniqueFd> ConnectUnix(const std::string& path, Deadline deadline);
// Sends all bytes; with pass_fd >= 0 the first chunk carries it (SCM_RIGHTS).
Status SendAll(int fd, std::string_view data, int pass_fd = -1);
// Reads what is available, waiting until the deadline. Empty string: peer closed
// (kUnavailable); kTimeout when nothing came.
Result<std::string> ReadSome(int fd, Deadline deadline);

}  // namespace storevisor::vm::internal
