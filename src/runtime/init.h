// The container's init before execve: runs in the cloned child, sets up everything the
// spec asks for inside the new namespaces, reports to the runtime over a socket, and
// (for `create`) blocks on the exec fifo until `start`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

namespace storevisor::runtime {

// Messages on the sync socket (SOCK_SEQPACKET, one per datagram).
inline constexpr char kMsgGo = 'G';     // runtime -> init: cgroup joined, maps written; 'G'+pid
inline constexpr char kMsgReady = 'R';  // init -> runtime: set up, about to wait/exec
inline constexpr char kMsgError = 'E';  // init -> runtime: 'E' + message, then exit

// The runtime's end: waits for 'R' (ok) or 'E' (the init's error, returned as
// kFailedPrecondition); an init that ends without either is reaped and reported with its
// wait status.
Status WaitForInitReady(int sync_fd, pid_t pid);

struct InitConfig {
  const Spec* spec = nullptr;
  const Process* process = nullptr;  // spec->process, or exec's process
  std::string rootfs;                // absolute
  std::string bundle;                // absolute
  int sync_fd = -1;
  int fifo_fd = -1;               // O_PATH fd of exec.fifo (create), -1 for run
  int host_proc_fd = -1;          // the host's /proc, to reopen the fifo after pivot_root
  int console_fd = -1;            // connected console socket when process.terminal
  bool wait_go_early = false;     // user namespace or hooks: wait for 'G' before any setup
  bool unshare_cgroupns = false;  // v1: make the cgroup namespace after joining the cgroup
  std::optional<SeccompProgram> seccomp;
  int preserve_fds = 0;
  CgroupMode cgroup_mode = CgroupMode::kLegacy;
  std::vector<std::string> cgroup_dirs;  // for /sys/fs/cgroup inside the container
  // The OCI state for hooks run by the init (createContainer, startContainer), without
  // status and pid: the init adds them (pid from the 'G' message).
  nlohmann::json hook_state;
};

// Never returns: execs the container's process or _exits with status 1 after sending
// 'E' + message on sync_fd (or printing it on stderr once the runtime is gone).
[[noreturn]] void RunContainerInit(const InitConfig& c);

// Shared with exec: switch to the process's user, capabilities, seccomp and execve.
[[noreturn]] void FinishAndExec(const Process& p, const std::optional<SeccompProgram>& seccomp,
                                int preserve_fds, int report_fd);

// In the process that is to own a terminal (inside the container's mount namespace): opens
// a pty from the container's devpts, sends the master over console_fd (runc's
// --console-socket protocol: one byte with SCM_RIGHTS), makes the slave the controlling
// terminal of a new session and stdin/stdout/stderr.
Status SetUpTerminal(int console_fd);

// Connects to a --console-socket listener.
Result<UniqueFd> ConnectConsole(const std::string& path);

// Receives the pty master sent by SetUpTerminal on a socket.
Result<UniqueFd> ReceivePtyMaster(int sock);

// What runc does for `exec -t` without --console-socket: copies our stdin to the pty master
// and the master to our stdout (stdin switched to raw mode while it is a terminal, window
// size copied) until the process side of the pty is closed.
Status RelayTerminal(int master);

// Runs one hook with the state JSON on stdin, honouring its timeout.
Status RunHook(const Hook& hook, const std::string& state_json);

}  // namespace storevisor::runtime
