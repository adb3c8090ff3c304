// `storevisord shim`: one small detached process per container, like conmon. It runs the
// runtime's create and start, becomes the container's subreaper (so it gets its exit
// status), copies the container's stdout/stderr into a log file rotated at a size cap,
// and finally writes the exit status to exit_file. It outlives daemon restarts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace storevisor::daemon {

struct ShimOptions {
  std::string runtime;
  std::string root;
  std::string id;
  std::string bundle;
  std::string log_file;
  std::string exit_file;
  std::string pid_file;
  std::string shim_pid_file;  // "PID START_TICKS" of the shim itself, written first
  uint64_t log_max_bytes = 1 << 20;
  bool announce = false;  // "started PID" on stdout once the container runs (--announce 1)
};

// Parses `shim --runtime R --root D --id ID --bundle B --log F --exit-file F --pid-file F
// [--shim-pid-file F] [--announce 1] [--log-max N]`; returns the process exit
// status.
int ShimMain(const std::vector<std::string>& args);

}  // namespace storevisor::daemon
