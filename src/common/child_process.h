// ChildProcess: a spawned program owned by RAII. Unless detached or waited for, the
// destructor kills (SIGKILL) and reaps it, so a failing caller never leaves strays.
// A pidfd tracks the child so waits with timeouts need no SIGCHLD handler.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor {

struct SpawnOptions {
  std::vector<std::string> argv;                // argv[0] is looked up in PATH when it has no '/'
  std::optional<std::vector<std::string>> env;  // nullopt: inherit
  int stdin_fd = -1;                            // -1: /dev/null
  int stdout_fd = -2;                           // -2: inherit, -1: /dev/null
  int stderr_fd = -2;                           // -2: inherit, -1: /dev/null
  std::string cwd;                              // empty: inherit
  bool new_session = false;      // setsid(): detach from our terminal and process group
  bool die_with_parent = false;  // PR_SET_PDEATHSIG(SIGKILL)
  bool no_thp = false;           // PR_SET_THP_DISABLE: no transparent huge pages (kept by execve)
  // The executable, when it is not argv[0] (execve's path apart from argv, as OCI hooks
  // have): used as given, no PATH lookup. Empty: argv[0], looked up as above.
  std::string program;
};

// How a process ended.
struct ExitStatus {
  bool exited = false;  // true: exit_code is valid; false: killed by term_signal
  int exit_code = 0;
  int term_signal = 0;

  bool success() const { return exited && exit_code == 0; }
  std::string ToString() const;
};

class ChildProcess {
 public:
  static Result<ChildProcess> Spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }

  // Waits for the child to end; nullopt timeout waits forever. kTimeout if it did not.
  Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  Status Kill(int signal);
  // Gives up ownership: the child outlives this object (it is not killed nor reaped).
  pid_t Detach();

 private:
  ChildProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_ = -1;
  UniqueFd pidfd_;
};

struct CommandOutput {
  ExitStatus status;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a command to completion, capturing stdout and stderr (each capped at max_output).
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = std::chrono::minutes(5),
                                 size_t max_output = 16u << 20);

// pidfd_open(2).
Result<UniqueFd> OpenPidFd(pid_t pid);

}  // namespace storevisor
