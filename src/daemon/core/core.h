// The core of storevisord: the one owner of the desired and observed state. It takes
// commands (apply, the operator's stop/start/restart/rm) and observations (driver results,
// processes that ended, check results), runs Decide until nothing more is to be done,
// records what changed in the state store, and hands back the effects for the owner's loop
// to run (drivers on a worker pool). Single-threaded by design: the loop (owner.h) calls it,
// and so does the deterministic simulation test, with fake drivers and a fake clock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/types.h"
#include "common/error.h"
#include "common/log.h"
#include "daemon/core/decide.h"
#include "daemon/core/state.h"
#include "daemon/drivers/driver.h"
#include "daemon/store/store.h"

namespace storevisor::daemon::core {

// Work for the owner's loop: driver calls, probes, network set-up, process watches, and
// kPrune: the last workload is gone (the empty cgroup parents may go).
struct Effect {
  enum class Type { kCreate, kRemove, kInspect, kCheck, kSetUpNetworks, kWatch, kPrune };
  Type type = Type::kCreate;
  std::string name;
  uint64_t instance = 0;
  std::string verb;  // kCreate: created|started|restarted|replaced
  WorkloadKind kind = WorkloadKind::kContainer;
  Workload workload;                // kCreate: the desired spec; kCheck: the instance's
  std::vector<NetAttachment> nets;  // kCreate
  std::string driver_state;         // kRemove, kInspect, kCheck, kWatch
  int64_t pid = 0;                  // kCheck
  std::string address;              // kCheck
  int64_t generation = 0;           // kSetUpNetworks
  std::string networks_key;         // kSetUpNetworks: Desired::NetworksKey
  bool last_workload = false;       // kRemove: nothing is left once it is deleted
  bool at_once = false;  // kRemove: a failed trial's instance: killed without a grace period
  std::shared_ptr<const Profile> profile;  // kSetUpNetworks
};
std::string_view EffectName(Effect::Type type);

// What comes back into the core.
struct Observation {
  enum class Type { kCreated, kRemoved, kInspected, kChecked, kNetworks, kProcessEnded };
  Type type = Type::kCreated;
  std::string name;
  uint64_t instance = 0;
  Status status = Ok();      // kCreated, kRemoved, kInspected, kNetworks: the call's outcome
  InstanceInfo info;         // kCreated, kInspected
  bool check_ok = false;     // kChecked
  std::string detail;        // kChecked: why it failed; kProcessEnded: which process
  int64_t generation = 0;    // kNetworks
  std::string networks_key;  // kNetworks: what was set up (the effect's)
};

// The answer to an operator's command, once what it asked for happened (or failed).
using Done = std::function<void(Status)>;
using ApplyDone = std::function<void(Result<api::ApplyResponse>)>;

enum class OperatorVerb { kStop, kStart, kRestart, kRemove };

struct CoreOptions {
  // How long a command waits for what it asked (a start whose after: entries never
  // become ready) before it is answered with kTimeout; the workload keeps trying.
  int64_t command_timeout_ms = 120000;
  int64_t store_retry_ms = 1000;  // a failed state-store write is tried again after this
  int keep_generations = 50;      // generations kept for history and rollback
};

// A validated apply, ready for the core (parsing and host checks happen before).
struct ApplyCommand {
  api::ApplyRequest request;
  Profile profile;
  std::string digest;
  int64_t restores = 0;  // `storevisor rollback`: the generation whose profile this is
};

class Core {
 public:
  Core(Store& store, const Logger& logger, CoreOptions options = {});

  // Reads the desired generation and every record; what was running or half-made is to be
  // inspected (the effects of the first Step). A record that cannot be read is reported
  // and left alone.
  Status Load(int64_t now_ms);

  void Apply(ApplyCommand command, int64_t now_ms, const ApplyDone& done);
  void Operator(OperatorVerb verb, const std::string& name, int64_t now_ms, Done done);
  void Observe(Observation observation, int64_t now_ms);

  // Decides until nothing more is to be done, writes what changed, and returns the effects
  // to run. Call after every command or observation (and at WakeAtMs()).
  std::vector<Effect> Step(int64_t now_ms);
  // The next moment a Step is due if nothing happens before (backoffs, checks, retries).
  int64_t WakeAtMs() const { return wake_at_ms_; }

  const Observed& observed() const { return observed_; }
  const Desired& desired() const { return desired_; }
  // Whether the state store refused writes since it last succeeded (records wait in memory).
  bool store_failing() const { return store_failing_; }
  uint64_t store_write_failures() const { return store_write_failures_; }
  // Counts the events written so far (the owner wakes event-stream readers when it grows).
  uint64_t events_written() const { return events_written_; }
  // Answers every waiting command with kUnavailable (the daemon stops).
  void Shutdown();

 private:
  struct Waiter {
    OperatorVerb verb;
    std::string name;
    uint64_t instance_before = 0;
    int64_t deadline_ms = 0;
    Done done;
  };

  void ApplyAction(const Action& a, int64_t now, std::vector<Effect>* effects);
  void StartCreate(const Action& a, int64_t now, std::vector<Effect>* effects);
  void StartRemove(const Action& a, std::vector<Effect>* effects);
  void OnCreated(WorkloadState& s, const Observation& o, int64_t now, std::vector<Effect>* effects);
  void OnRemoved(WorkloadState& s, const Observation& o, int64_t now);
  void OnInspected(WorkloadState& s, const Observation& o, int64_t now);
  void OnChecked(WorkloadState& s, const Observation& o, int64_t now);
  void SettleWaiters(int64_t now);
  std::optional<Status> WaiterOutcome(const Waiter& w) const;
  void Flush(int64_t now);
  void Emit(const std::string& workload, const std::string& type, const std::string& message,
            int64_t now);
  void StartTrial(const Profile* base_of_changes, int64_t now);
  void CountTrialFailure(const std::string& name);
  // The desired generation becomes the one a failed trial rolls back to.
  void CommitDesired();
  Status ResumeTrial(int64_t now);
  void EndTrial(const Action& a, int64_t now);
  void Dirty(const std::string& name) { dirty_.insert(name); }
  WorkloadState* Find(const std::string& name);
  Result<std::vector<NetAttachment>> Attach(const Workload& w);

  Store& store_;
  Logger logger_;
  CoreOptions options_;
  Desired desired_;
  Observed observed_;
  std::vector<Effect> pending_effects_;  // made by commands and observations, out at Step
  std::set<std::string> dirty_;          // records to write
  std::set<std::string> deleted_;        // records to delete (and their addresses)
  std::set<std::string> released_;       // owners whose addresses go back to the pool
  // Events to write, in order; one that ends a trial is written with the trial's outcome
  // (and the restored profile) in one transaction.
  struct TrialEnd {
    int64_t generation = 0;
    std::string outcome;
    std::string reason;
    int64_t restore_to = 0;
  };
  struct PendingEvent {
    Event event;
    std::optional<TrialEnd> trial_end;
  };
  std::deque<PendingEvent> events_;
  // The last committed generation: what a failed trial rolls back to (null: none yet).
  std::shared_ptr<const Profile> committed_;
  int64_t committed_generation_ = 0;
  std::vector<Waiter> waiters_;
  int64_t wake_at_ms_ = 0;
  bool store_failing_ = false;
  uint64_t store_write_failures_ = 0;
  uint64_t events_written_ = 0;
  int64_t store_retry_at_ms_ = 0;
};

}  // namespace storevisor::daemon::core
