// What storevisord's core knows: the desired generation and the observed state of every
// workload, with phases, health and the operator's intent as enums. Strings appear only at
// the edges (the state store's records, the API), through the conversions below.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/profile/profile.h"
#include "daemon/store/state_store.h"

namespace storevisor::daemon::core {

// Where a workload's instance is in its life.
enum class Phase {
  kPending,   // no instance yet (never made, or the last one was removed to be made again)
  kCreating,  // a driver Create is under way
  kRunning,   // an instance runs (or is being removed: see WorkloadState::op)
  kExited,    // the instance ended (it may be restarted, as its policy says)
  kFailed,    // the last Create failed (retried after a backoff)
  kStopped,   // no instance, on purpose (the operator's stop or rm)
};
enum class Health { kNone, kStarting, kHealthy, kUnhealthy };
// The operator's hold on a workload of the profile (`storevisor stop|rm`); an apply ends it.
enum class Intent { kRunning, kStopped, kRemoved };

std::string_view PhaseName(Phase phase);
std::string_view HealthName(Health health);
std::string_view IntentName(Intent intent);
std::optional<Phase> ParsePhase(std::string_view text);
std::optional<Health> ParseHealth(std::string_view text);
std::optional<Intent> ParseIntent(std::string_view text);

// A driver call under way for a workload: at most one at a time, so that no two instances
// of one workload can ever exist.
enum class Op { kNone, kCreate, kRemove, kInspect };

// What follows a Remove once the driver is done.
enum class AfterRemove {
  kDelete,    // the workload left the profile: its record goes
  kHold,      // the operator stopped or removed it: no instance until asked
  kRecreate,  // replaced or restarted: a new instance is made next
  kExited,    // found unhealthy: handled like an exit (the restart policy decides)
};

struct WorkloadState {
  std::string name;
  WorkloadKind kind = WorkloadKind::kContainer;
  Workload spec;             // what the current (or last) instance was made from
  std::string spec_json;     // the same, as stored (WorkloadToJson)
  std::string runtime_hash;  // of the instance that exists; empty when there is none
  std::string spec_hash;
  Intent intent = Intent::kRunning;
  Phase phase = Phase::kPending;
  Health health = Health::kNone;
  int64_t pid = 0;
  int64_t started_at_ms = 0;
  int64_t restarts = 0;
  int64_t exit_code = -1;
  std::string last_error;
  std::string address;
  std::string driver_state;

  // Supervision: in memory only, started afresh after a daemon restart.
  uint64_t instance = 0;  // counts creates; results about an older instance are dropped
  Op op = Op::kNone;
  AfterRemove after_remove = AfterRemove::kRecreate;
  std::string next_verb;           // the event word of the next create: restarted, replaced...
  int64_t failures = 0;            // consecutive failed runs or creates: the backoff's exponent
  int64_t retry_at_ms = 0;         // no create (or remove retry) before this
  bool restart_scheduled = false;  // an exit was judged: a restart waits for retry_at_ms
  bool gave_up = false;            // an exit was judged: no restart (policy, maxRetries)
  bool restart_requested = false;  // the operator's restart: a fresh instance next
  bool ended = false;              // a watched process of the instance ended: inspect it
  bool leftover = false;  // an instance judged ended may still hold processes: remove first
  bool loading = false;   // inspected because the daemon started (adopted/lost events)
  bool discard = false;   // its instance failed a trial rolled back: removed without a grace
  // Health checks of the current instance.
  bool check_running = false;
  int64_t next_check_ms = 0;
  bool check_ok = false;         // the last check passed
  int64_t healthy_since_ms = 0;  // when it was last marked healthy
  int health_failures = 0;       // consecutive failed checks that count
  std::string check_detail;      // the last failure's message
};

// A generation on trial (docs/daemon.md, "Generations, trial and rollback"): what it
// changed must stay healthy for commit_after_ms before it is committed; a failure before
// then rolls the box back to `base`, the last committed generation.
struct Trial {
  int64_t generation = 0;
  int64_t since_ms = 0;  // the trial began (or resumed after a restart of the daemon)
  int64_t commit_after_ms = 0;
  // The workloads the generation made or changed (instance or supervision settings), in
  // the profile's order: only they are judged.
  std::vector<std::string> changed;
  // Each changed workload's instance counter when the trial began: what was made before
  // (and failed before) is not held against the generation.
  std::map<std::string, uint64_t> instances_before;
  // Failed starts and exits of each changed workload during the trial (the core counts them).
  std::map<std::string, int> failures;
  int64_t base_generation = 0;  // 0: nothing committed before; a failure is final
  std::shared_ptr<const Profile> base;
};

// How long a trial waits for its workloads to become healthy at all, past commitAfter.
inline constexpr int64_t kTrialReadyMs = 300000;
// A changed workload fails its trial at this many failed starts or exits: one alone may be
// the host's hiccup (a slow boot under load), which its restart policy rides out.
inline constexpr int kTrialFailures = 2;

// The workloads of `next` that are new or differ from `base` (nullptr: all of them).
std::vector<std::string> ChangedWorkloads(const Profile* base, const Profile& next);

// The observed state of everything, owned by the core's loop.
struct Observed {
  std::map<std::string, WorkloadState> workloads;
  // What the networks set up on the host are (Desired::NetworksKey of the profile they were
  // made for); nullopt until the first set-up of this daemon's life. Keyed by content, not
  // by generation: re-applying the same profile does not set them up again.
  std::optional<std::string> networks_key;
  bool networks_busy = false;
  std::string networks_error;  // the last set-up's failure (empty once one succeeds)
  std::optional<Trial> trial;
  int64_t networks_retry_at_ms = 0;
  int64_t networks_failures = 0;
};

// The desired state: the generation applied last (its profile parsed and validated).
struct Desired {
  int64_t generation = 0;
  Profile profile;
  // RuntimeHash and SpecHash of each workload, filled by Index() (each hashes the workload's
  // JSON: worth doing once per generation, not once per decision). Empty: computed anew.
  std::map<std::string, std::pair<std::string, std::string>> hashes;
  std::string networks_key;  // NetworksKey(), filled by Index()
  void Index();
  // The networks and published ports of the profile, as one canonical text.
  std::string NetworksKey() const;
  std::string RuntimeHashOf(const Workload& w) const;
  std::string SpecHashOf(const Workload& w) const;
};

// The record stored for a workload, and back. Supervision fields are not stored.
WorkloadRecord ToRecord(const WorkloadState& state);
// An unreadable field (a phase word from a newer daemon, a spec that does not parse) is
// reported, never thrown.
Result<WorkloadState> FromRecord(const WorkloadRecord& record);

// The spec kept in a record (WorkloadToJson's form) read back for supervision: restart
// policy, health check, after:. The schema-reading helper: nothing else reads spec JSON.
Result<Workload> SpecFromJson(std::string_view json, const std::string& name);

}  // namespace storevisor::daemon::core
