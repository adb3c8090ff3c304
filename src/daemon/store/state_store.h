// The daemon's state: desired profile, one record per workload (what was applied and what
// is observed), the event log and IP allocations, in SQLite with WAL and full sync, so a
// kill -9 of the daemon at any moment loses no committed record.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "daemon/store/store.h"

namespace storevisor::daemon {

class StateStore : public Store {
 public:
  static Result<std::unique_ptr<StateStore>> Open(const std::string& path);
  ~StateStore() override;
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  Status SetMeta(const std::string& key, const std::string& value) override;
  Result<std::optional<std::string>> GetMeta(const std::string& key) override;

  Status Put(const WorkloadRecord& record) override;
  Result<std::optional<WorkloadRecord>> Get(const std::string& name) override;
  Result<std::vector<WorkloadRecord>> List() override;
  Status Delete(const std::string& name) override;

  Result<GenerationRecord> CommitApply(
      GenerationRecord record, int keep,
      const std::function<Event(int64_t generation)>& make_event) override;
  Result<std::optional<GenerationRecord>> FindGeneration(const std::string& key_or_digest) override;
  Result<std::optional<GenerationRecord>> GetGeneration(int64_t generation) override;
  Result<std::vector<GenerationRecord>> ListGenerations(int limit) override;
  Result<std::optional<GenerationRecord>> LastCommitted(int64_t before) override;
  Status EndTrial(int64_t generation, const std::string& outcome, const std::string& reason,
                  int64_t at_ms, int64_t restore_to, const Event& event) override;

  Result<int64_t> AddEvent(const Event& event) override;
  Result<std::vector<Event>> EventsSince(int64_t after_id, int limit) override;

  Result<std::string> AllocateAddress(const std::string& network, const std::string& subnet,
                                      const std::string& owner) override;
  Status ReleaseAddresses(const std::string& owner) override;

 private:
  explicit StateStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  // Runs body as one IMMEDIATE transaction, rolled back when it fails (mu_ held).
  Status InTransaction(const std::function<Status()>& body);
  sqlite3* db_;
  std::mutex mu_;
};

int64_t NowMs();

}  // namespace storevisor::daemon
