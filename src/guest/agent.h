// The project's minimal QEMU guest agent for initramfs-only guests. It speaks the
// qemu-ga wire protocol (JSON objects over a virtio-serial port, 0xFF as a resync
// marker) for the commands Storevisor needs: guest-ping, guest-sync,
// guest-sync-delimited, guest-info, guest-exec, guest-exec-status, guest-shutdown and
// guest-get-osinfo. The protocol logic lives here, free of I/O policy, so the host
// can unit-test it; agent_main.cc owns the port and the poll loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storevisor::guest {

// Requests are framed by storevisor::JsonStream (common/json_stream.h), the same
// capped framer the host uses for everything the guest sends.

// The reply to input the framer refused (oversized, too deep, malformed): qemu-ga
// answers bad input with a GenericError too, so the host is not left waiting.
std::string ErrorReply(std::string_view desc);

std::string Base64Encode(std::string_view in);
// Returns nullopt on invalid input.
std::optional<std::string> Base64Decode(std::string_view in);

// What a finished or running guest-exec child has produced so far.
struct ExecState {
  pid_t pid = -1;
  int out_fd = -1;  // -1 when closed or not captured
  int err_fd = -1;
  std::string out;
  std::string err;
  bool out_truncated = false;
  bool err_truncated = false;
  bool exited = false;
  int wait_status = 0;
};

// Hooks the agent uses to act on the system; tests replace them.
struct AgentSystem {
  // Starts a process; fills pid and pipe fds. Returns an error message on failure.
  std::function<std::optional<std::string>(
      const std::string& path, const std::vector<std::string>& args,
      const std::vector<std::string>& env, const std::string& input, bool capture,
      ExecState* state)>
      spawn;
  // Requests a power state change ("powerdown", "halt", "reboot").
  std::function<void(const std::string& mode)> shutdown;
  // Returns the os-info object (kernel release, os-release fields).
  std::function<nlohmann::json()> os_info;
};

class Agent {
 public:
  static constexpr size_t kMaxCapture = 16u << 20;  // qemu-ga's limit per stream
  static constexpr size_t kMaxExecs = 64;

  explicit Agent(AgentSystem system) : system_(std::move(system)) {}

  // Handles one request; returns the bytes to send back (possibly empty: guest-shutdown
  // has no reply on success, as in qemu-ga).
  std::string Handle(std::string_view message);
  std::string HandleRequest(const nlohmann::json& request);

  // For the I/O loop: the running execs (to poll their pipes and reap them).
  std::map<int64_t, ExecState>& execs() { return execs_; }

 private:
  nlohmann::json Dispatch(const std::string& cmd, const nlohmann::json& args, bool* no_reply);
  nlohmann::json Exec(const nlohmann::json& args);
  nlohmann::json ExecStatus(const nlohmann::json& args);
  AgentSystem system_;
  std::map<int64_t, ExecState> execs_;
};

// Appends up to `limit` bytes in total to `buf`; sets *truncated when cut.
void AppendCapped(std::string* buf, std::string_view data, size_t limit, bool* truncated);

// The agent's process (agent_main.cc): serves the port argv[1] (default
// /dev/virtio-ports/org.qemu.guest_agent.0) until it fails; returns the exit status.
int AgentMain(int argc, char** argv);

}  // namespace storevisor::guest
