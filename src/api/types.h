// The API's request and response types: what storevisord answers and what its clients (the
// CLI, the vision service's event sink, the dashboard, the fleet agent) send. States travel as
// the words documented in docs/openapi.yaml; the daemon's core keeps them as enums and
// converts once at this edge. JSON conversions live in one place (src/api/json.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace storevisor::api {

// One workload as `ps` shows it.
struct WorkloadStatus {
  std::string name;
  std::string kind;    // microvm | legacy-vm | container
  std::string role;    // "vision" for the vision service, else ""
  std::string state;   // pending creating running exited failed stopped removed
  std::string health;  // none starting healthy unhealthy
  int64_t pid = 0;
  int64_t uptime_ms = 0;
  int64_t started_at_ms = 0;
  int64_t restarts = 0;
  int64_t exit_code = -1;
  double cpu_percent = 0;
  uint64_t memory_bytes = 0;
  std::string usage_source;  // cgroup | process | ""
  std::string address;
  std::string last_error;
  std::string desired;             // running | stopped | removed (the operator's hold)
  std::vector<std::string> ports;  // published on the host: "HOST:CONTAINER" (TCP)
};

struct PlanStep {
  std::string action;  // create update replace delete
  std::string name;
  std::string reason;
};

struct ApplyRequest {
  std::string yaml;
  std::string file = "profile.yaml";  // for messages: file:line: field
  bool dry_run = false;
  // A client that retries an apply whose answer it lost sends the same key: the daemon
  // answers with the generation stored the first time instead of storing a second one.
  std::string idempotency_key;
  std::string identity;  // who applied it (set by the server from the connection)
};

struct ApplyResponse {
  std::string profile;
  int64_t generation = 0;  // the generation stored (0 for a dry run)
  std::string digest;      // sha256 of the profile text
  bool dry_run = false;
  bool duplicate = false;  // an earlier apply with the same idempotency key was answered
  std::vector<PlanStep> steps;
  std::vector<std::string> held;
};

// GET /v1/generations/{number, key or digest}: whether an apply was stored and what became
// of it; GET /v1/generations lists them (`storevisor history`).
struct GenerationInfo {
  int64_t generation = 0;
  std::string digest;
  std::string idempotency_key;
  std::string profile;
  int64_t applied_at_ms = 0;
  std::string identity;
  std::string outcome;  // trial | committed | rolled-back | failed | superseded
  std::string reason;   // why it was rolled back or failed
  int64_t decided_at_ms = 0;
  int64_t restores = 0;  // a rollback: the generation whose profile it applied again
  bool current = false;  // the generation enforced now
};

// POST /v1/rollback: apply an earlier generation's profile again (0: the newest committed
// generation older than the one enforced now).
struct RollbackRequest {
  int64_t generation = 0;
  std::string idempotency_key;
};

// GET /v1/images/in-use: the images the applied profile and the existing instances use,
// and where this daemon resolves `image:` refs (`storevisor image rm` refuses those).
struct ImageUse {
  std::string image;  // NAME:TAG
  std::vector<std::string> workloads;
};
struct ImagesInUse {
  std::string image_root;  // the image store
  std::string image_dir;   // directory images ("" for none)
  std::vector<ImageUse> images;
};

struct ExecRequest {
  std::vector<std::string> argv;
  int timeout_ms = 30000;
};

struct ExecResponse {
  int exit_code = -1;
  std::string out;
  std::string err;
};

struct EventRecord {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string workload;
  std::string type;
  std::string message;
  // Events posted by other services: who sent it, its RFC 3339 time, its data (JSON text).
  std::string source;
  std::string time;
  std::string data;
};

struct VersionInfo {
  std::string version;
  std::string api = "v1";
  std::string profile_api_version;
};

// GET /v1/box: the machine and what runs on it, for the dashboard's box panel.
struct BoxInfo {
  std::string version;
  std::string hostname;
  std::string kernel;
  int64_t uptime_s = 0;
  int cpus = 0;
  double load[3] = {0, 0, 0};
  uint64_t memory_total_bytes = 0;
  uint64_t memory_available_bytes = 0;
  uint64_t disk_total_bytes = 0;  // the state directory's file system
  uint64_t disk_free_bytes = 0;
  std::string accel;  // kvm | tcg: what a VM started now would run on
  std::string accel_reason;
  uint64_t ksm_saved_bytes = 0;  // pages_sharing * page size (0 when KSM is off)
  std::string profile;
  int64_t generation = 0;
  int64_t workloads = 0;
  int64_t last_event_id = 0;  // where a client starts following /v1/events
};

struct ErrorBody {
  std::string error;
  std::string code;  // ErrorCodeName: invalid-argument, not-found, ...
};

}  // namespace storevisor::api
