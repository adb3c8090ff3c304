// The daemon's state: desired profile, one record per workload (what was applied and what
// is observed), the event log and IP allocations, in SQLite with WAL and full sync, so a
// kill -9 of the daemon at any moment loses no committed record.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace storevisor::daemon {

// What the daemon knows about one workload.
struct WorkloadRecord {
  std::string name;
  std::string kind;
  std::string spec_json;     // the spec the current instance was made from (or is being)
  std::string runtime_hash;  // of the running instance; empty when none was made yet
  std::string spec_hash;
  std::string desired = "running";  // running | stopped (operator) | removed (operator)
  std::string phase = "pending";    // pending creating running exited failed stopped
  std::string health = "none";      // none starting healthy unhealthy
  int64_t pid = 0;
  int64_t started_at_ms = 0;
  int64_t restarts = 0;
  int64_t exit_code = -1;
  std::string last_error;
  std::string address;
  std::string driver_state;  // driver's own JSON (shim pid, state dir...)
};

struct Event {
  int64_t id = 0;
  int64_t ts_ms = 0;
  std::string workload;
  std::string type;
  std::string message;
  // Events posted by other services (POST /v1/events): who sent it, its own RFC 3339 time
  // and its data object as JSON text; all empty for the daemon's own events.
  std::string source;
  std::string time;
  std::string data;
};

class StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> Open(const std::string& path);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  Status SetMeta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> GetMeta(const std::string& key);

  Status Put(const WorkloadRecord& record);
  Result<std::optional<WorkloadRecord>> Get(const std::string& name);
  Result<std::vector<WorkloadRecord>> List();
  Status Delete(const std::string& name);

  Result<int64_t> AddEvent(const std::string& workload, const std::string& type,
                           const std::string& message);
  // An event from another service (source, time, data already validated by the API).
  Result<int64_t> AddExternalEvent(const Event& event);
  Result<std::vector<Event>> EventsSince(int64_t after_id, int limit);

  // Next free address of subnet (a.b.c.d/len) for owner, or the one it already has; the
  // first host address is the network's gateway and never handed out.
  Result<std::string> AllocateAddress(const std::string& network, const std::string& subnet,
                                      const std::string& owner);
  Status ReleaseAddresses(const std::string& owner);

 private:
  explicit StateStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  sqlite3* db_;
  std::mutex mu_;
};

int64_t NowMs();

}  // namespace storevisor::daemon
