// The Daemon object: drivers, threads, and the operator's actions on single workloads.
#include "daemon/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "common/files.h"
#include "daemon/drivers/cgroup.h"
#include "daemon/drivers/container_driver.h"
#include "daemon/drivers/legacy_driver.h"
#include "daemon/drivers/microvm_driver.h"
#include "daemon/metrics.h"

namespace storevisor::daemon {

namespace {

constexpr int kStopTimeoutMs = 5000;

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

}  // namespace

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
    Daemon* self = d.get();
    l.on_event = [self](const std::string& w, const std::string& type, const std::string& msg) {
      self->Event(w, type, msg);
    };
    d->drivers_["legacy-vm"] = std::make_unique<LegacyVmDriver>(l);
  }
  return d;
}

Daemon::~Daemon() { Shutdown(); }

Status Daemon::Start() {
  Adopt();
  reconciler_ = std::thread([this] { ReconcileLoop(); });
  supervisor_ = std::thread([this] { SuperviseLoop(); });
  return Ok();
}

void Daemon::Shutdown() {
  stopping_ = true;
  kick_cv_.notify_all();
  if (reconciler_.joinable()) reconciler_.join();
  if (supervisor_.joinable()) supervisor_.join();
}

Result<nlohmann::json> Daemon::WorkloadJson(const std::string& name) {
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!r) return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  Supervision s;
  {
    std::lock_guard lock(sup_mu_);
    s = Sup(name);
  }
  const bool running = r->phase == "running";
  // A container with a role (kind: vision in the profile) says so: "role": "vision".
  std::string role;
  if (auto spec = nlohmann::json::parse(r->spec_json, nullptr, false);
      spec.is_object() && spec.contains("role") && spec["role"].is_string()) {
    role = spec["role"].get<std::string>();
  }
  return nlohmann::json{
      {"name", r->name},
      {"kind", r->kind},
      {"role", role},
      {"state", r->desired == "running" ? r->phase : r->desired},
      {"health", r->health},
      {"pid", r->pid},
      {"uptimeMs", running ? NowMs() - r->started_at_ms : 0},
      {"startedAtMs", r->started_at_ms},
      {"restarts", r->restarts},
      {"exitCode", r->exit_code},
      {"cpuPercent", running ? s.cpu_percent : 0.0},
      {"memoryBytes", running ? s.memory_bytes : 0},
      {"usageSource", running ? s.usage_source : ""},
      {"address", r->address},
      {"lastError", r->last_error},
      {"desired", r->desired},
  };
}

Result<nlohmann::json> Daemon::Workloads() {
  SV_ASSIGN_OR_RETURN(auto records, store_->List());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : records) {
    auto j = WorkloadJson(r.name);
    if (j) out.push_back(*j);
  }
  return out;
}

Status Daemon::StopWorkload(const std::string& name) {
  std::lock_guard lock(LockFor(name));
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!r) return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  r->desired = "stopped";
  SV_TRY(store_->Put(*r));  // first the intent, so a crash now does not restart it
  if (Driver* d = DriverFor(r->kind)) SV_TRY(d->Remove(name, r->driver_state, kStopTimeoutMs));
  r->phase = "stopped";
  r->pid = 0;
  r->health = "none";
  SV_TRY(store_->Put(*r));
  Event(name, "stopped", name + " stopped by the operator");
  return Ok();
}

Status Daemon::StartWorkload(const std::string& name) {
  return RunFromProfile(name, OperatorStart::kStart);
}

Status Daemon::RestartWorkload(const std::string& name) {
  return RunFromProfile(name, OperatorStart::kRestart);
}

Status Daemon::RunFromProfile(const std::string& name, OperatorStart how) {
  SV_ASSIGN_OR_RETURN(Profile p, Desired());
  const Workload* w = p.Find(name);
  if (w == nullptr)
    return Error(ErrorCode::kNotFound, "no workload named '" + name + "' in the profile");
  const bool restart = how == OperatorStart::kRestart;
  std::lock_guard lock(LockFor(name));
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!restart && r && r->desired == "running" && r->phase == "running") {
    return Error(ErrorCode::kConflict, name + " is already running");
  }
  if (r) {
    // The intent first (an operator stop or rm is undone), so a crash now keeps it.
    r->desired = "running";
    if (restart) r->restarts++;
    SV_TRY(store_->Put(*r));
  }
  if (!restart) {  // a start after a stop begins with a clean backoff
    std::lock_guard sl(sup_mu_);
    Sup(name) = Supervision{};
  }
  return CreateInstance(*w, restart ? "restarted" : "started");
}

Status Daemon::RemoveWorkload(const std::string& name) {
  std::lock_guard lock(LockFor(name));
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!r) return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  SV_ASSIGN_OR_RETURN(Profile p, Desired());
  if (p.Find(name) == nullptr) return DeleteWorkload(name);
  // Still in the profile: keep the record as "removed" so the reconciler does not bring it
  // back until the next apply.
  r->desired = "removed";
  SV_TRY(store_->Put(*r));
  if (Driver* d = DriverFor(r->kind)) SV_TRY(d->Remove(name, r->driver_state, kStopTimeoutMs));
  SV_TRY(store_->ReleaseAddresses(name));
  r->phase = "stopped";
  r->pid = 0;
  r->runtime_hash.clear();
  SV_TRY(store_->Put(*r));
  Event(name, "removed", name + " removed by the operator (until the next apply)");
  return Ok();
}

Result<ExecOutput> Daemon::Exec(const std::string& name, const std::vector<std::string>& argv,
                                int timeout_ms) {
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!r) return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  if (r->phase != "running")
    return Error(ErrorCode::kConflict, name + " is not running (" + r->phase + ")");
  Driver* d = DriverFor(r->kind);
  if (d == nullptr) return Error(ErrorCode::kUnsupported, "no driver for " + r->kind);
  return d->Exec(name, r->driver_state, argv, timeout_ms);
}

Result<std::string> Daemon::LogPath(const std::string& name) {
  SV_ASSIGN_OR_RETURN(auto r, store_->Get(name));
  if (!r) return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  Driver* d = DriverFor(r->kind);
  if (d == nullptr) return Error(ErrorCode::kUnsupported, "no driver for " + r->kind);
  return d->LogPath(name);
}

std::string Daemon::Metrics() {
  std::vector<WorkloadMetrics> in;
  auto records = store_->List();
  if (records) {
    for (const auto& r : *records) {
      auto w = WorkloadJson(r.name);
      if (!w) continue;
      WorkloadMetrics m;
      m.name = r.name;
      m.kind = r.kind;
      m.state = (*w)["state"].get<std::string>();
      m.health = (*w)["health"].get<std::string>();
      m.restarts = (*w)["restarts"].get<int64_t>();
      m.cpu_percent = (*w)["cpuPercent"].get<double>();
      m.memory_bytes = (*w)["memoryBytes"].get<uint64_t>();
      if (m.state == "running" && (r.kind == "microvm" || r.kind == "legacy-vm")) {
        m.vm = true;
        // The accelerator the engine reported when it started the VM (in the record), or
        // what its status says now, with QEMU's counters (microvm: storevisor-vm status).
        auto ds =
            nlohmann::json::parse(r.driver_state.empty() ? "{}" : r.driver_state, nullptr, false);
        if (ds.is_object() && ds["accel"].is_string()) m.accel = ds["accel"].get<std::string>();
        if (Driver* d = DriverFor(r.kind)) {
          auto status = d->EngineStatus(r.name);
          if (status && status->is_object()) {
            auto a = status->find("accel");
            if (a != status->end() && a->is_string() && !a->get<std::string>().empty())
              m.accel = a->get<std::string>();
            auto c = status->find("counters");
            if (c != status->end()) m.counters = *c;
          } else if (!status && status.error().code() != ErrorCode::kUnsupported) {
            logger_.Warn("metrics", "status of " + r.name + ": " + status.error().message(),
                         {{"workload", r.name}});
          }
        }
      }
      in.push_back(std::move(m));
    }
  }
  return FormatMetrics(in);
}

void Daemon::PruneCgroupsIfNoWorkloads() {
  // Only with no record at all: then no create is under way that could have just made the
  // parent it is about to use (a record is written before every create).
  auto all = store_->List();
  if (all && all->empty()) PruneEmptyCgroups(std::string(kDaemonCgroupParent));
}

}  // namespace storevisor::daemon
