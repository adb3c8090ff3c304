// The state store as the core sees it: an interface, so the whole daemon runs in a unit test
// on an in-memory store (core/testing.h) and in production on SQLite (state_store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "daemon/store/records.h"

namespace storevisor::daemon {

class Store {
 public:
  virtual ~Store() = default;

  virtual Status SetMeta(const std::string& key, const std::string& value) = 0;
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;

  virtual Status Put(const WorkloadRecord& record) = 0;
  virtual Result<std::optional<WorkloadRecord>> Get(const std::string& name) = 0;
  virtual Result<std::vector<WorkloadRecord>> List() = 0;
  virtual Status Delete(const std::string& name) = 0;

  // An event (its ts_ms as given; the store numbers it). Returns its id.
  virtual Result<int64_t> AddEvent(const Event& event) = 0;
  virtual Result<std::vector<Event>> EventsSince(int64_t after_id, int limit) = 0;

  // Next free address of subnet (a.b.c.d/len) for owner, or the one it already has; the
  // first host address is the network's gateway and never handed out.
  virtual Result<std::string> AllocateAddress(const std::string& network, const std::string& subnet,
                                              const std::string& owner) = 0;
  virtual Status ReleaseAddresses(const std::string& owner) = 0;

  // Stores the profile (meta "profile", "profile_file"), a new generation numbered one past
  // the last, and the event make_event builds from that number, as one transaction: a crash
  // leaves all of it or none. A generation still on trial becomes "superseded"; of the
  // older ones the newest `keep` are kept (and always the last committed one, which a
  // rollback needs). Returns the record as stored.
  virtual Result<GenerationRecord> CommitApply(
      GenerationRecord record, int keep,
      const std::function<Event(int64_t generation)>& make_event) = 0;
  // The generation stored with this idempotency key, or else the newest with this digest.
  virtual Result<std::optional<GenerationRecord>> FindGeneration(
      const std::string& key_or_digest) = 0;
  virtual Result<std::optional<GenerationRecord>> GetGeneration(int64_t generation) = 0;
  // The newest generations first, at most limit of them.
  virtual Result<std::vector<GenerationRecord>> ListGenerations(int limit) = 0;
  // The newest committed generation older than `before`.
  virtual Result<std::optional<GenerationRecord>> LastCommitted(int64_t before) = 0;
  // Ends generation's trial as one transaction: its outcome, reason and time, the event,
  // and when restore_to is not 0 that generation's profile made the desired one again
  // (meta "profile", "profile_file", "generation").
  virtual Status EndTrial(int64_t generation, const std::string& outcome, const std::string& reason,
                          int64_t at_ms, int64_t restore_to, const Event& event) = 0;
};

}  // namespace storevisor::daemon
