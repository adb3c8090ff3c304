// Test helper: a scripted QMP or guest-agent peer on the other end of a socketpair.
// Each step waits for a request containing `expect` (or nothing when empty) and then
// writes `reply` verbatim, so tests can send garbage, partial lines and stale replies.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"

namespace storevisor::vm::testing {

struct Step {
  std::string expect;  // substring the next request must contain ("" = do not read)
  std::string reply;   // bytes to write back
  bool close_after = false;
};

class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::vector<Step> steps) {
    int sv[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    client_ = UniqueFd(sv[0]);
    peer_ = UniqueFd(sv[1]);
    thread_ = std::thread([this, steps = std::move(steps)] { Play(steps); });
  }
  ~ScriptedPeer() {
    if (thread_.joinable()) thread_.join();
  }
  UniqueFd TakeClientFd() { return std::move(client_); }
  // What the peer received, for assertions after the client is done.
  std::string received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  void Play(const std::vector<Step>& steps) {
    for (const auto& s : steps) {
      if (!s.expect.empty() && !ReadUntil(s.expect)) break;
      size_t off = 0;
      while (off < s.reply.size()) {
        ssize_t n = ::write(peer_.get(), s.reply.data() + off, s.reply.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      if (s.close_after) {
        peer_.reset();
        return;
      }
    }
    // Drain until the client closes, so late writes do not fail with EPIPE.
    char buf[4096];
    pollfd p{peer_.get(), POLLIN, 0};
    while (::poll(&p, 1, 2000) > 0) {
      ssize_t n = ::read(peer_.get(), buf, sizeof buf);
      if (n <= 0) break;
      received_.append(buf, static_cast<size_t>(n));
    }
  }
  bool ReadUntil(const std::string& needle) {
    char buf[4096];
    while (received_.find(needle, scanned_) == std::string::npos) {
      pollfd p{peer_.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      ssize_t n = ::read(peer_.get(), buf, sizeof buf);
      if (n <= 0) return false;
      received_.append(buf, static_cast<size_t>(n));
    }
    scanned_ = received_.find(needle, scanned_) + needle.size();
    return true;
  }
  UniqueFd client_;
  UniqueFd peer_;
  std::thread thread_;
  std::string received_;
  size_t scanned_ = 0;
};

}  // namespace storevisor::vm::testing
