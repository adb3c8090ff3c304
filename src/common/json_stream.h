// JsonStream: frames a byte stream of untrusted JSON objects (QMP from QEMU, the guest
// agent's replies on the host, the host's requests inside the guest) and parses each
// with caps on size and nesting. Shared by src/vm and the static guest agent
// (src/guest, built by scripts/setup.d/20-guest.sh), so it depends only on error.h
// and nlohmann-json.
#pragma once

#include <cstddef>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace storevisor {

struct JsonLimits {
  size_t max_message = 4u << 20;  // bytes in one top-level object
  int max_depth = 64;             // nesting of objects and arrays
  size_t max_queued = 1024;       // parsed messages waiting to be read
};

// Frames a byte stream into top-level JSON objects and parses each with caps on size
// and nesting. Garbage between objects is skipped and counted; a 0xFF byte (the agent's
// resync marker) drops a partial object. Oversized or too-deep objects are dropped and
// reported as errors from Next(); the stream stays usable.
class JsonStream {
 public:
  explicit JsonStream(JsonLimits limits = {}) : limits_(limits) {}
  void Feed(std::string_view bytes);
  // The next message: a parsed object, an error (kGuestFault) for a bad one, or
  // nullopt when no complete message is buffered.
  std::optional<Result<nlohmann::json>> Next();
  size_t garbage_bytes() const { return garbage_; }
  size_t resyncs() const { return resyncs_; }

 private:
  void ResetFrame();
  void EndFrame();
  JsonLimits limits_;
  std::string cur_;
  std::deque<Result<nlohmann::json>> ready_;
  size_t garbage_ = 0;
  size_t resyncs_ = 0;
  int depth_ = 0;
  bool in_frame_ = false;
  bool in_string_ = false;
  bool escape_ = false;
  bool overflow_ = false;  // this frame broke a limit: discard to its end
  std::string overflow_why_;
};

}  // namespace storevisor
