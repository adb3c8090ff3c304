// Test-only harness shared by the tests that run storevisor-vision binaries (the offload tests
// and the daemon end-to-end test): spawn `storevisor-vision serve`, read the port it prints,
// and poll for a condition.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::vision::testing {

struct Instance {
  ChildProcess process;
  int port = 0;
};

// Starts `storevisor-vision serve ARGS...` from the build tree, behind an optional command
// prefix (e.g. `ip netns exec NS`), and waits for the one line with the bound port. The child
// dies with the test process.
inline Result<Instance> StartInstance(std::vector<std::string> prefix,
                                      std::vector<std::string> args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  SpawnOptions opts;
  opts.argv = std::move(prefix);
  opts.argv.push_back(std::string(SV_BINARY_DIR) + "/bin/storevisor-vision");
  opts.argv.emplace_back("serve");
  for (auto& a : args) opts.argv.push_back(std::move(a));
  opts.stdout_fd = write_end.get();
  opts.stderr_fd = -1;
  opts.die_with_parent = true;
  SV_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(opts));
  write_end = UniqueFd();
  std::string line;
  char ch = 0;
  while (read(read_end.get(), &ch, 1) == 1 && ch != '\n') line += ch;
  if (line.empty() || line.find_first_not_of("0123456789") != std::string::npos) {
    return Error(ErrorCode::kUnavailable, "storevisor-vision printed no port (got '" + line + "')");
  }
  return Instance{std::move(child), std::stoi(line)};
}

// Polls pred every 100 ms for up to `seconds`.
template <typename Pred>
bool Eventually(Pred pred, int seconds = 40) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace storevisor::vision::testing
