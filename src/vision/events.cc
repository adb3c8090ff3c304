// EventLog: a bounded ring of recent events (GET /events?since=N); listeners (the EventSink that
// pushes to storevisord) see each event as it is added.
#include <algorithm>
#include <chrono>

#include "vision/vision.h"

namespace storevisor::vision {

uint64_t EventLog::Add(const std::string& pipeline, const std::string& type,
                       nlohmann::json detail) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard<std::mutex> lock(mu_);
  StreamEvent e{next_seq_++, now, pipeline, type, std::move(detail)};
  if (ring_.size() >= capacity_) ring_.erase(ring_.begin());
  ring_.push_back(std::move(e));
  for (const auto& listener : listeners_) listener(ring_.back());
  return ring_.back().seq;
}

void EventLog::Subscribe(std::function<void(const StreamEvent&)> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.push_back(std::move(listener));
}

std::vector<StreamEvent> EventLog::Since(uint64_t since) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StreamEvent> out;
  std::copy_if(ring_.begin(), ring_.end(), std::back_inserter(out),
               [&](const StreamEvent& e) { return e.seq > since; });
  return out;
}

nlohmann::json EventLog::ToJson(uint64_t since) const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : Since(since)) {
    arr.push_back({{"seq", e.seq},
                   {"time", e.time},
                   {"pipeline", e.pipeline},
                   {"type", e.type},
                   {"detail", e.detail}});
  }
  return arr;
}

}  // namespace storevisor::vision
