// The Daemon object: drivers, the owner's loop, and what the API reads and asks of it.
// Every change to the workloads goes through the owner (core/owner.h); reads come from the
// snapshot it publishes after each step.
#include "daemon/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/files.h"
#include "daemon/drivers/cgroup.h"
#include "daemon/drivers/container_driver.h"
#include "daemon/drivers/legacy_driver.h"
#include "daemon/drivers/microvm_driver.h"
#include "daemon/effects.h"
#include "daemon/metrics.h"
#include "daemon/net_check.h"
#include "daemon/precheck.h"
#include "image/sha256.h"

namespace storevisor::daemon {

namespace {

HostResources ReadHost() {
  HostResources host;
  host.cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  auto meminfo = ReadFile("/proc/meminfo", 65536);
  if (meminfo) {
    size_t pos = meminfo->find("MemTotal:");
    if (pos != std::string::npos) {
      host.memory_bytes = std::strtoull(meminfo->c_str() + pos + 9, nullptr, 10) * 1024;
    }
  }
  return host;
}

api::EventRecord ToApi(const Event& e) {
  return {e.id, e.ts_ms, e.workload, e.type, e.message, e.source, e.time, e.data};
}

// The state `ps` shows: the phase, or the operator's hold.
std::string StateWord(const core::WorkloadState& s) {
  return s.intent == core::Intent::kRunning ? std::string(core::PhaseName(s.phase))
                                            : std::string(core::IntentName(s.intent));
}

// The instances that exist now, for the memory rule of CheckMemoryForApply.
std::vector<RunningInstance> RunningInstances(const core::Snapshot& snap) {
  std::vector<RunningInstance> out;
  for (const auto& [name, s] : snap.workloads) {
    const bool exists = s.phase == core::Phase::kRunning || s.phase == core::Phase::kCreating;
    if (exists && !s.runtime_hash.empty()) {
      out.push_back({name, s.runtime_hash, s.spec.memory_bytes});
    }
  }
  return out;
}

Error NoWorkload(const std::string& name) {
  return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
}

}  // namespace

Daemon::Daemon(DaemonOptions options, const Logger& logger)
    : opt_(std::move(options)), logger_(logger) {}

Result<std::unique_ptr<Daemon>> Daemon::Create(const DaemonOptions& options, const Logger& logger) {
  std::unique_ptr<Daemon> d(new Daemon(options, logger));  // NOLINT: private constructor
  SV_TRY(MakeDirs(options.state_dir, 0700));
  SV_ASSIGN_OR_RETURN(d->store_, StateStore::Open(options.state_dir + "/state.db"));
  d->host_ = ReadHost();
  ContainerDriverOptions c;
  c.runtime = options.runtime;
  c.root = options.state_dir + "/runtime";
  c.state_dir = options.state_dir + "/containers";
  c.log_dir = options.state_dir + "/logs";
  c.image_root = options.image_root;
  c.image_dir = options.image_dir;
  c.self_exe = options.self_exe;
  d->drivers_["container"] = std::make_unique<ContainerDriver>(c);
  Daemon* self = d.get();
  if (!options.vm_tool.empty()) {
    MicroVmDriverOptions v;
    v.tool = options.vm_tool;
    v.state_dir = options.state_dir + "/vms";
    v.snapshot_dir = options.state_dir + "/snapshots";
    d->drivers_["microvm"] = std::make_unique<MicroVmDriver>(v);
  }
  if (!options.legacy_tool.empty()) {
    LegacyDriverOptions l;
    l.tool = options.legacy_tool;
    l.state_dir = options.state_dir + "/legacy";
    l.on_event = [self](const std::string& w, const std::string& type, const std::string& msg) {
      self->Event(w, type, msg);
    };
    d->drivers_["legacy-vm"] = std::make_unique<LegacyVmDriver>(l);
  }
  d->effects_ = std::make_unique<DaemonEffects>(
      *d->store_, logger, d->drivers_,
      options.nft_table.empty() ? net::DefaultTableName(options.state_dir) : options.nft_table);
  core::OwnerOptions owner;
  owner.housekeeping = [self](const core::Snapshot& snap) {
    self->effects_->ReleaseKeptNetworks(snap);
    for (const auto& [name, s] : snap.workloads) {
      if (s.phase != core::Phase::kRunning) continue;
      if (Driver* driver = self->DriverFor(std::string(KindName(s.kind)))) driver->Maintain(name);
    }
  };
  d->owner_ = std::make_unique<core::Owner>(*d->store_, logger, *d->effects_, std::move(owner));
  d->effects_->SetSnapshotSource([self] { return self->owner_->snapshot(); });
  return d;
}

Daemon::~Daemon() { Shutdown(); }

Status Daemon::Start() { return owner_->Start(); }

void Daemon::Shutdown() {
  if (owner_) owner_->Stop();
}

Driver* Daemon::DriverFor(const std::string& kind) {
  auto it = drivers_.find(kind);
  return it == drivers_.end() ? nullptr : it->second.get();
}

void Daemon::Event(const std::string& workload, const std::string& type,
                   const std::string& message) {
  ::storevisor::daemon::Event e;
  e.ts_ms = NowMs();
  e.workload = workload;
  e.type = type;
  e.message = message;
  if (auto id = store_->AddEvent(e); !id) {
    logger_.Error("daemon", "event not stored: " + id.error().message(), {{"workload", workload}});
  } else if (owner_) {
    owner_->NotifyEvents();
  }
  logger_.Info("daemon", message, {{"workload", workload}, {"event", type}});
}

Result<api::ApplyResponse> Daemon::Apply(const api::ApplyRequest& request) {
  return ApplyProfile(request, 0);
}

Result<api::ApplyResponse> Daemon::ApplyProfile(const api::ApplyRequest& request,
                                                int64_t restores) {
  const std::string& file = request.file;
  SV_ASSIGN_OR_RETURN(Profile profile, ParseProfile(request.yaml, file));
  SV_TRY(CheckOvercommit(profile, host_));
  {
    // Before anything is touched: every image and VM file the profile needs, and memory
    // for what it starts (precheck.h).
    const SystemPrecheckHost host(opt_.image_root, opt_.image_dir);
    SV_TRY(CheckProfileNeeds(profile, host));
    SV_TRY(CheckMemoryForApply(profile, RunningInstances(*owner_->snapshot()), host));
  }
  SV_TRY(CheckLegacyWorkloads(profile));
  {
    // Before anything is touched: subnets against each other and the host, published ports
    // against other processes' sockets (the applied profile's own ports are this daemon's).
    std::optional<Profile> current;
    auto yaml = store_->GetMeta("profile");
    auto stored_file = store_->GetMeta("profile_file");
    if (yaml && *yaml) {
      auto parsed = ParseProfile(**yaml, stored_file && *stored_file ? **stored_file : "");
      if (parsed) current = std::move(*parsed);
    }
    SV_TRY(CheckNetworksAtApply(profile, current ? &*current : nullptr, effects_->RecordedBridges(),
                                net::SystemHostProbe()));
  }
  for (const auto& w : profile.workloads) {
    if (DriverFor(std::string(KindName(w.kind))) == nullptr) {
      return Error(ErrorCode::kUnsupported,
                   file + ":" + std::to_string(w.line) + ": workload '" + w.name + "': kind " +
                       std::string(KindName(w.kind)) + " has no driver in this storevisord");
    }
  }
  core::ApplyCommand cmd;
  cmd.request = request;
  cmd.profile = std::move(profile);
  cmd.digest = image::Sha256Of(request.yaml);
  cmd.restores = restores;
  return owner_->Apply(std::move(cmd));
}

api::GenerationInfo Daemon::InfoOf(const GenerationRecord& g) const {
  api::GenerationInfo info;
  info.generation = g.generation;
  info.digest = g.digest;
  info.idempotency_key = g.idempotency_key;
  info.profile = g.profile_name;
  info.applied_at_ms = g.applied_at_ms;
  info.identity = g.identity;
  info.outcome = g.outcome;
  info.reason = g.reason;
  info.decided_at_ms = g.decided_at_ms;
  info.restores = g.restores;
  const auto snap = owner_->snapshot();
  info.current = snap != nullptr && snap->generation == g.generation;
  return info;
}

Result<std::vector<api::GenerationInfo>> Daemon::Generations(int limit) {
  SV_ASSIGN_OR_RETURN(auto list, store_->ListGenerations(limit));
  std::vector<api::GenerationInfo> out;
  out.reserve(list.size());
  for (const auto& g : list) out.push_back(InfoOf(g));
  return out;
}

Result<api::ApplyResponse> Daemon::Rollback(int64_t generation, const std::string& identity,
                                            const std::string& idempotency_key) {
  std::optional<GenerationRecord> target;
  if (generation == 0) {
    const auto snap = owner_->snapshot();
    const int64_t current = snap != nullptr ? snap->generation : 0;
    SV_ASSIGN_OR_RETURN(target, store_->LastCommitted(current));
    if (!target) {
      return Error(ErrorCode::kNotFound, "no committed generation older than the current one (" +
                                             std::to_string(current) + "); see storevisor history");
    }
  } else {
    SV_ASSIGN_OR_RETURN(target, store_->GetGeneration(generation));
    if (!target) {
      return Error(ErrorCode::kNotFound, "generation " + std::to_string(generation) +
                                             " is not kept; see storevisor history");
    }
  }
  api::ApplyRequest req;
  req.yaml = target->yaml;
  req.file = target->file;
  req.identity = identity;
  req.idempotency_key = idempotency_key;
  return ApplyProfile(req, target->generation);
}

api::ImagesInUse Daemon::ImagesInUse() {
  auto snap = owner_->snapshot();
  std::vector<const Workload*> instances;
  for (const auto& [name, s] : snap->workloads) {
    if (!s.runtime_hash.empty()) instances.push_back(&s.spec);
  }
  // The last committed generation's too: while another is on trial, a rollback needs them.
  std::optional<Profile> committed;
  if (auto g = store_->LastCommitted(snap->generation + 1); g && *g) {
    if (auto p = ParseProfile((*g)->yaml, (*g)->file)) committed = std::move(*p);
  }
  api::ImagesInUse out;
  out.image_root = opt_.image_root;
  out.image_dir = opt_.image_dir;
  const std::vector<const Profile*> profiles = {snap->profile.get(),
                                                committed ? &*committed : nullptr};
  for (auto& use : ::storevisor::daemon::ImagesInUse(profiles, instances)) {
    out.images.push_back({std::move(use.image), std::move(use.workloads)});
  }
  return out;
}

Result<api::GenerationInfo> Daemon::FindGeneration(const std::string& key_or_digest) {
  std::optional<GenerationRecord> g;
  const bool number = !key_or_digest.empty() && key_or_digest.size() <= 18 &&
                      key_or_digest.find_first_not_of("0123456789") == std::string::npos;
  if (number) {
    SV_ASSIGN_OR_RETURN(g, store_->GetGeneration(std::strtoll(key_or_digest.c_str(), nullptr, 10)));
  }
  if (!g) {
    SV_ASSIGN_OR_RETURN(g, store_->FindGeneration(key_or_digest));
  }
  if (!g) {
    return Error(
        ErrorCode::kNotFound,
        "no generation numbered, or apply stored with key or digest, '" + key_or_digest + "'");
  }
  return InfoOf(*g);
}

Daemon::Usage Daemon::SampleUsage(const std::string& name, int64_t pid) {
  std::string source = "cgroup";
  auto usage = ReadCgroupUsage(WorkloadCgroupPath(name));
  if (!usage) {
    usage = ReadProcessUsage(pid);
    source = "process";
  }
  if (!usage) return {};
  const int64_t now = NowMs();
  std::lock_guard lock(usage_mu_);
  Sample& s = usage_[name];
  if (s.source != source) s = Sample{0, 0, source, 0};  // two counters do not compare
  // A rate over at least a second since the previous reading, so two quick reads are not noise.
  if (s.at_ms > 0 && now - s.at_ms >= 1000) {
    const double used_ns = static_cast<double>(usage->cpu_ns - std::min(usage->cpu_ns, s.cpu_ns));
    s.cpu_percent = 100.0 * used_ns / (static_cast<double>(now - s.at_ms) * 1e6);
  }
  if (s.at_ms == 0 || now - s.at_ms >= 1000) {
    s.cpu_ns = usage->cpu_ns;
    s.at_ms = now;
  }
  return {source, s.cpu_percent, usage->memory_bytes};
}

api::WorkloadStatus Daemon::StatusOf(const core::WorkloadState& s, int64_t now) {
  api::WorkloadStatus out;
  const bool running = s.phase == core::Phase::kRunning;
  out.name = s.name;
  out.kind = std::string(KindName(s.kind));
  out.role = s.spec.role;
  out.state = StateWord(s);
  out.health = std::string(core::HealthName(s.health));
  out.pid = s.pid;
  out.uptime_ms = running ? now - s.started_at_ms : 0;
  out.started_at_ms = s.started_at_ms;
  out.restarts = s.restarts;
  out.exit_code = s.exit_code;
  out.address = s.address;
  out.last_error = s.last_error;
  out.desired = std::string(core::IntentName(s.intent));
  for (const PortMapping& p : s.spec.ports) {
    out.ports.push_back(std::to_string(p.host) + ":" + std::to_string(p.container));
  }
  if (running) {
    Usage u = SampleUsage(s.name, s.pid);
    out.cpu_percent = u.cpu_percent;
    out.memory_bytes = u.memory_bytes;
    out.usage_source = u.source;
  }
  return out;
}

Result<std::vector<api::WorkloadStatus>> Daemon::Workloads() {
  auto snap = owner_->snapshot();
  const int64_t now = NowMs();
  std::vector<api::WorkloadStatus> out;
  out.reserve(snap->workloads.size());
  for (const auto& [name, s] : snap->workloads) out.push_back(StatusOf(s, now));
  return out;
}

Result<api::WorkloadStatus> Daemon::WorkloadStatus(const std::string& name) {
  auto snap = owner_->snapshot();
  auto it = snap->workloads.find(name);
  if (it == snap->workloads.end()) return NoWorkload(name);
  return StatusOf(it->second, NowMs());
}

Result<std::vector<api::EventRecord>> Daemon::EventsSince(int64_t after_id, int limit) {
  SV_ASSIGN_OR_RETURN(auto events, store_->EventsSince(after_id, limit));
  std::vector<api::EventRecord> out;
  out.reserve(events.size());
  for (const auto& e : events) out.push_back(ToApi(e));
  return out;
}

Result<int64_t> Daemon::PostEvent(const api::EventRecord& event) {
  ::storevisor::daemon::Event e;
  e.ts_ms = NowMs();
  e.workload = event.workload;
  e.type = event.type;
  e.message = event.message;
  e.source = event.source;
  e.time = event.time;
  e.data = event.data;
  SV_ASSIGN_OR_RETURN(int64_t id, store_->AddEvent(e));
  owner_->NotifyEvents();
  return id;
}

bool Daemon::WaitForEvents(int64_t after_id, int timeout_ms) {
  // The store says whether there is one; the owner's count (every event stored, by the core
  // or from outside it) wakes the wait.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  uint64_t seen = owner_->events_written();
  while (true) {
    auto next = store_->EventsSince(after_id, 1);
    if (next && !next->empty()) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    const uint64_t now_seen = owner_->WaitEvents(seen, static_cast<int>(left.count()));
    if (now_seen == seen) return false;  // timed out (or stopping)
    seen = now_seen;
  }
}

Status Daemon::StopWorkload(const std::string& name) {
  return owner_->Operator(core::OperatorVerb::kStop, name);
}

Status Daemon::StartWorkload(const std::string& name) {
  return owner_->Operator(core::OperatorVerb::kStart, name);
}

Status Daemon::RestartWorkload(const std::string& name) {
  return owner_->Operator(core::OperatorVerb::kRestart, name);
}

Status Daemon::RemoveWorkload(const std::string& name) {
  return owner_->Operator(core::OperatorVerb::kRemove, name);
}

Result<api::ExecResponse> Daemon::Exec(const std::string& name, const api::ExecRequest& request) {
  SV_ASSIGN_OR_RETURN(Running w, RunningWorkload(name));
  SV_ASSIGN_OR_RETURN(ExecOutput out,
                      w.driver->Exec(name, w.driver_state, request.argv, request.timeout_ms));
  return api::ExecResponse{out.exit_code, std::move(out.out), std::move(out.err)};
}

Result<std::string> Daemon::LogPath(const std::string& name) {
  auto snap = owner_->snapshot();
  auto it = snap->workloads.find(name);
  if (it == snap->workloads.end()) return NoWorkload(name);
  const std::string kind(KindName(it->second.kind));
  Driver* d = DriverFor(kind);
  if (d == nullptr) return Error(ErrorCode::kUnsupported, "no driver for " + kind);
  return d->LogPath(name);
}

Result<Daemon::Running> Daemon::RunningWorkload(const std::string& name) {
  auto snap = owner_->snapshot();
  auto it = snap->workloads.find(name);
  if (it == snap->workloads.end()) return NoWorkload(name);
  const core::WorkloadState& s = it->second;
  const std::string kind(KindName(s.kind));
  Driver* d = DriverFor(kind);
  if (d == nullptr) return Error(ErrorCode::kUnsupported, "no driver for " + kind);
  if (s.phase != core::Phase::kRunning || s.intent != core::Intent::kRunning) {
    return Error(ErrorCode::kConflict, name + " is not running (" + StateWord(s) + ")");
  }
  return Running{kind, d, s.driver_state};
}

std::string Daemon::Metrics() {
  std::vector<WorkloadMetrics> in;
  auto snap = owner_->snapshot();
  const int64_t now = NowMs();
  for (const auto& [name, s] : snap->workloads) {
    const api::WorkloadStatus w = StatusOf(s, now);
    WorkloadMetrics m;
    m.name = name;
    m.kind = w.kind;
    m.state = w.state;
    m.health = w.health;
    m.restarts = w.restarts;
    m.cpu_percent = w.cpu_percent;
    m.memory_bytes = w.memory_bytes;
    if (m.state == "running" && (w.kind == "microvm" || w.kind == "legacy-vm")) {
      m.vm = true;
      // The accelerator the engine reported when it started the VM (in the record), or
      // what its status says now, with QEMU's counters (microvm: storevisor-vm status).
      auto ds =
          nlohmann::json::parse(s.driver_state.empty() ? "{}" : s.driver_state, nullptr, false);
      if (ds.is_object() && ds.contains("accel") && ds["accel"].is_string()) {
        m.accel = ds["accel"].get<std::string>();
      }
      if (Driver* d = DriverFor(w.kind)) {
        auto status = d->EngineStatus(name);
        if (status && status->is_object()) {
          auto a = status->find("accel");
          if (a != status->end() && a->is_string() && !a->get<std::string>().empty())
            m.accel = a->get<std::string>();
          auto c = status->find("counters");
          if (c != status->end()) m.counters = *c;
        } else if (!status && status.error().code() != ErrorCode::kUnsupported) {
          logger_.Warn("metrics", "status of " + name + ": " + status.error().message(),
                       {{"workload", name}});
        }
      }
    }
    in.push_back(std::move(m));
  }
  return FormatMetrics(in, StoreMetrics{snap->store_failing, snap->store_write_failures});
}

}  // namespace storevisor::daemon
