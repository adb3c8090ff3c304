// The records the state store keeps (state_store.h, store.h).
#pragma once

#include <cstdint>
#include <string>

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

// What became of a generation (docs/daemon.md, "Generations, trial and rollback").
inline constexpr char kOutcomeTrial[] = "trial";             // applied; its workloads on trial
inline constexpr char kOutcomeCommitted[] = "committed";     // passed its trial
inline constexpr char kOutcomeRolledBack[] = "rolled-back";  // failed; the last committed runs
inline constexpr char kOutcomeFailed[] = "failed";           // failed with nothing to roll back to
inline constexpr char kOutcomeSuperseded[] = "superseded";   // a newer apply came during its trial

// One accepted apply: the profile text and who applied it, kept so that a client whose
// connection broke can ask whether it was stored, for `storevisor history` and for rollback.
struct GenerationRecord {
  int64_t generation = 0;
  std::string digest;  // sha256 of yaml
  std::string idempotency_key;
  std::string profile_name;
  std::string file;
  std::string yaml;
  std::string identity;
  int64_t applied_at_ms = 0;
  std::string outcome = kOutcomeTrial;
  std::string reason;         // why it was rolled back (or failed)
  int64_t decided_at_ms = 0;  // when the outcome was decided (0 while on trial)
  int64_t restores = 0;       // `storevisor rollback`: the generation whose profile it applied
};

}  // namespace storevisor::daemon
