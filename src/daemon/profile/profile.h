// The store profile: the declarative description of everything one box runs.
//
// A profile is YAML (apiVersion storevisor.io/v1, kind StoreProfile). ParseProfile turns
// its text into a validated Profile or an Error whose message names the file, the line,
// the field path and what was expected: "demo.yaml:14: spec.workloads[1].memory: expected
// a size such as 256Mi, got 'lots'". The schema is documented in docs/profile.md.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::daemon {

inline constexpr std::string_view kApiVersion = "storevisor.io/v1";
inline constexpr size_t kMaxProfileBytes = 1u << 20;

enum class WorkloadKind { kMicroVm, kLegacyVm, kContainer };
enum class RestartPolicy { kAlways, kOnFailure, kNever };
enum class HealthType { kNone, kExec, kHttp, kTcp, kScreen };
enum class UpdateStrategy { kRecreate, kManual };

std::string_view KindName(WorkloadKind kind);
std::string_view RestartPolicyName(RestartPolicy policy);
std::string_view HealthTypeName(HealthType type);
std::string_view UpdateStrategyName(UpdateStrategy strategy);

struct Restart {
  RestartPolicy policy = RestartPolicy::kAlways;
  int64_t backoff_initial_ms = 500;  // first delay; doubles up to backoff_max_ms
  int64_t backoff_max_ms = 30000;
  int max_retries = 0;  // on-failure: give up after this many restarts (0: never give up)
};

struct HealthCheck {
  HealthType type = HealthType::kNone;
  std::vector<std::string> exec;  // kExec: argv run inside the workload
  int port = 0;                   // kHttp, kTcp
  std::string path = "/";         // kHttp
  std::string send;               // kTcp: written after connecting ("" = connect only)
  std::string expect;             // kTcp: the answer must start with it ("" = no read)
  std::string screen_text;        // kScreen (legacy-vm): OCR must read it; empty: not blank
  int64_t interval_ms = 2000;
  int64_t timeout_ms = 1000;
  int retries = 3;              // consecutive failures before the workload is unhealthy
  int64_t start_period_ms = 0;  // failures in this window after start do not count
};

// One after: entry. `condition`: what the dependency must have reached (running, or running
// and healthy); `holds`: what of this workload waits for it (its creation, or only its being
// reported healthy: it starts at once). The compose-like model of docs/profile.md.
enum class AfterCondition { kHealthy, kStarted };
enum class AfterHolds { kStart, kHealth };
struct AfterRule {
  AfterCondition condition = AfterCondition::kHealthy;
  AfterHolds holds = AfterHolds::kStart;
  bool operator==(const AfterRule& o) const { return condition == o.condition && holds == o.holds; }
};

struct PortMapping {
  int host = 0;
  int container = 0;
  int line = 0;  // where it is declared, for apply-time messages (not part of the spec)
};

struct MountSpec {
  std::string source;  // empty: a fresh tmpfs
  std::string target;
  bool read_only = false;
};

struct DiskSpec {
  std::string path;
  bool read_only = false;
  std::string format = "raw";  // legacy-vm: raw | qcow2
  bool overlay = false;        // legacy-vm: a per-VM qcow2 overlay on path (a shared base)
};

// legacy-vm only (docs/legacy-vm.md); parsed in profile/legacy_fields.cc.
struct LegacySpec {
  std::string machine = "pc";        // pc | q35
  std::string firmware = "seabios";  // seabios | ovmf
  std::string firmware_code;         // "" = Debian's default file
  std::string firmware_vars;         // ovmf: the vars template ("" = Debian's)
  std::string devices = "virtio";    // virtio | emulated (IDE disks, e1000 NIC)
  std::string vga = "std";           // std | cirrus | qxl | virtio | none
  std::string vnc_listen = "unix";   // none | unix | loopback
  int vnc_display = 0;               // loopback: port 5900 + display
  std::string vnc_password;          // at most 8 characters (VNC's scheme)
  std::string display_token;         // the daemon's display endpoint wants it
  bool tpm = false;                  // swtpm
  std::vector<std::string> usb;      // vendor:product or bus-port
};

struct Workload {
  std::string name;
  WorkloadKind kind = WorkloadKind::kContainer;
  std::string role;  // "vision" for the vision service; free text otherwise
  int line = 0;      // where it is declared, for later messages

  // container
  std::string image;   // an image reference (name:tag)
  std::string rootfs;  // or a directory used as the read-only root
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string workdir;
  std::vector<MountSpec> mounts;
  std::vector<PortMapping> ports;

  // microvm, legacy-vm
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::vector<DiskSpec> disks;
  bool snapshot = false;
  bool ksm = false;
  bool tracing = false;  // microvm: keep the guest kernel's tracefs (the engine's guest_tracing)
  LegacySpec legacy;     // legacy-vm

  // every kind
  double cpus = 1.0;
  std::string cpuset;  // "0-1,3"; empty: not pinned
  uint64_t memory_bytes = 0;
  std::vector<std::string> networks;
  Restart restart;
  HealthCheck health;
  std::vector<std::string> after;                // names, in the order given
  std::map<std::string, AfterRule> after_rules;  // entries that are not the default rule
  UpdateStrategy update = UpdateStrategy::kRecreate;
};

struct Network {
  std::string name;
  std::string subnet;              // a.b.c.d/len, IPv4
  std::vector<std::string> allow;  // other networks this one may talk to
  int line = 0;
};

struct Profile {
  std::string file;  // as given to ParseProfile, for messages
  std::string name;
  std::string store;
  std::string device;
  double cpu_overcommit = 1.0;     // pinned CPU demand allowed per CPU
  double memory_overcommit = 1.0;  // memory allowed as a multiple of the host's
  // How long every workload a generation changed must stay healthy before the generation is
  // committed; a failure before then rolls it back (docs/daemon.md, "Generations").
  int64_t commit_after_ms = 60000;
  // false (`rollback: never`): a generation that fails its trial is marked failed and stays,
  // its workloads retried as their restart policies say.
  bool auto_rollback = true;
  std::vector<Network> networks;
  std::vector<Workload> workloads;

  const Workload* Find(std::string_view name) const;
};

// The rule of w's after: entry `dep` (the default one when it was given as a bare name).
AfterRule RuleOf(const Workload& w, const std::string& dep);

// Parses and validates a profile (syntax, types, references between workloads and
// networks, cycles in after:). Host-dependent checks are in CheckOvercommit.
Result<Profile> ParseProfile(std::string_view text, std::string_view file);

struct HostResources {
  int cpus = 1;
  uint64_t memory_bytes = 0;
};

// Refuses a profile whose pinned CPUs or memory exceed the host times the allowed ratio,
// saying by how much.
Status CheckOvercommit(const Profile& profile, const HostResources& host);

// The CPUs of a cpuset string ("0-2,5"), or an error saying what is wrong.
Result<std::vector<int>> ParseCpuset(std::string_view text);
// "256Mi", "1Gi", "512M", "1048576" -> bytes.
Result<uint64_t> ParseSize(std::string_view text);
// "500ms", "2s", "1m", "1h" -> milliseconds.
Result<int64_t> ParseDuration(std::string_view text);

struct Ipv4Subnet {
  uint32_t base = 0;  // host order, masked
  int prefix = 0;
};
// "10.88.1.0/24" (prefix 8..30).
Result<Ipv4Subnet> ParseSubnet(std::string_view text);
std::string Ipv4ToString(uint32_t addr);
// Whether text is well-formed UTF-8 (profiles and API bodies must be).
bool IsValidUtf8(std::string_view text);

// Canonical JSON of a workload (every field), used for hashing and the API.
nlohmann::json WorkloadToJson(const Workload& workload);
// A stable hash of the fields that shape the running instance (a change needs a replace).
std::string RuntimeHash(const Workload& workload);
// A stable hash of every field (a change without a runtime change is an in-place update).
std::string SpecHash(const Workload& workload);

}  // namespace storevisor::daemon
