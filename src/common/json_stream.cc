// JsonStream: frames and parses untrusted JSON (QMP, the guest agent both ways). The
// framer tracks strings and nesting itself, so it can refuse too-deep input before
// nlohmann's recursive parser sees it, and bound memory before a message ends.
#include "common/json_stream.h"

namespace storevisor {

using nlohmann::json;

void JsonStream::ResetFrame() {
  cur_.clear();
  depth_ = 0;
  in_frame_ = false;
  in_string_ = false;
  escape_ = false;
  overflow_ = false;
  overflow_why_.clear();
}

void JsonStream::EndFrame() {
  if (overflow_) {
    ready_.emplace_back(Error(ErrorCode::kGuestFault, "JSON message dropped: " + overflow_why_));
  } else {
    json j = json::parse(cur_, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      ready_.emplace_back(
          Error(ErrorCode::kGuestFault, "malformed JSON message (" + std::to_string(cur_.size()) +
                                            " bytes): not valid JSON or not UTF-8"));
    } else {
      ready_.emplace_back(std::move(j));
    }
  }
  ResetFrame();
}

void JsonStream::Feed(std::string_view bytes) {
  for (char c : bytes) {
    if (static_cast<unsigned char>(c) == 0xFF) {  // agent resync marker
      if (in_frame_) ++resyncs_;
      ResetFrame();
      continue;
    }
    if (!in_frame_) {
      if (c == '{') {
        in_frame_ = true;
        depth_ = 1;
        cur_.assign(1, c);
      } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
        ++garbage_;
      }
      continue;
    }
    if (!overflow_) {
      if (cur_.size() >= limits_.max_message) {
        overflow_ = true;
        overflow_why_ = "larger than " + std::to_string(limits_.max_message) + " bytes";
        cur_.clear();
        cur_.shrink_to_fit();
      } else {
        cur_.push_back(c);
      }
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > limits_.max_depth && !overflow_) {
        overflow_ = true;
        overflow_why_ = "nested deeper than " + std::to_string(limits_.max_depth);
        cur_.clear();
        cur_.shrink_to_fit();
      }
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) EndFrame();
    }
  }
  // A peer flooding small messages cannot grow us without bound: past the cap the
  // oldest unread ones go (a reply we wait for is read as it arrives, never this old).
  while (ready_.size() > limits_.max_queued) ready_.pop_front();
}

std::optional<Result<json>> JsonStream::Next() {
  if (ready_.empty()) return std::nullopt;
  Result<json> r = std::move(ready_.front());
  ready_.pop_front();
  return r;
}

}  // namespace storevisor
