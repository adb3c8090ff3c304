#include "daemon/drivers/microvm_driver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/drivers/cgroup.h"
#include "daemon/drivers/tool_call.h"
#include "net/net.h"
#include "vm/vm.h"

namespace storevisor::daemon {

namespace {

std::string TapName(const std::string& name, size_t index) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "svt%08x%u", h, static_cast<unsigned>(index % 10));
  return buf;
}

// The longest wait between two guest-exec-status polls: the agent client starts at 10 ms and
// doubles, so short commands answer fast, while a long one (a benchmark in `storevisor exec`)
// is not polled every 10 ms for minutes: each poll costs the guest CPU under TCG (about 20%
// more QEMU CPU over a 5 s command at a fixed 10 ms, measured by bench/overhead).
constexpr vm::Millis kAgentPoll(100);

// storevisor-vm's status for "snapshot is stale or does not match" (docs/vm.md).
constexpr int kVmStaleSnapshot = 8;

uint64_t Fnv64(const std::string& s, uint64_t h = 14695981039346656037ULL) {
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return h;
}

// size:mtime of a file, so the snapshot key changes when an input is replaced.
std::string FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":missing";
  return path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

Status EnsureKsmRunning(const std::string& run_file) {
  if (run_file.empty()) return Ok();
  auto now = ReadFile(run_file, 64);
  if (!now) return Ok();  // no KSM in this kernel: mem_merge alone does nothing, not an error
  if (!now->empty() && (*now)[0] == '1') return Ok();
  // Only memory marked mergeable (QEMU's mem-merge=on for VMs with `ksm: true`) is scanned,
  // so running ksmd touches no other workload. It is left on: others may rely on it.
  UniqueFd fd(::open(run_file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), "1", 1) != 1) {
    return Error(ErrorCode::kPermissionDenied, "switching KSM on (" + run_file +
                                                   "): " + std::strerror(errno) +
                                                   "; run storevisord as root or set ksm: false");
  }
  return Ok();
}

nlohmann::json MakeVmConfig(const Workload& w, const std::string& console_log,
                            const std::vector<std::string>& taps,
                            const std::string& console_socket) {
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : w.disks) disks.push_back({{"path", d.path}, {"readonly", d.read_only}});
  nlohmann::json nets = nlohmann::json::array();
  for (const auto& t : taps) nets.push_back({{"tap", t}});
  nlohmann::json j = {
      {"name", w.name},
      {"kernel", w.kernel},
      {"cpus", std::max(1, static_cast<int>(std::ceil(w.cpus)))},
      {"memory_mib", std::max<uint64_t>(128, w.memory_bytes >> 20)},
      {"disks", disks},
      {"nets", nets},
      {"serial", "file:" + console_log},
      {"mem_merge", w.ksm},
      {"guest_tracing", w.tracing},
  };
  if (!w.initrd.empty()) j["initrd"] = w.initrd;
  if (!w.cmdline.empty()) j["cmdline"] = w.cmdline;
  if (!console_socket.empty()) j["console_socket"] = console_socket;
  return j;
}

Result<std::string> MicroVmDriver::ConsoleSocket(const std::string& name) {
  std::string path = ConsoleSocketPath(name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Error(ErrorCode::kFailedPrecondition,
                 name + " has no console socket (" + path +
                     "): it was started by an older storevisord; `storevisor restart " + name +
                     "` gives it one");
  }
  return path;
}

std::string MicroVmDriver::LogPath(const std::string& name) const {
  return Dir(name) + "/console.log";
}

Result<InstanceInfo> MicroVmDriver::Create(const Workload& w,
                                           const std::vector<NetAttachment>& nets) {
  SV_TRY(Remove(w.name, "", 2000));
  const std::string dir = Dir(w.name);
  SV_TRY(MakeDirs(dir + "/run"));
  std::vector<std::string> taps;
  for (size_t i = 0; i < nets.size(); ++i) {
    const std::string tap = TapName(w.name, i);
    SV_TRY(net::EnsureTap(tap, nets[i].bridge));  // in-process: no `ip` run per tap
    taps.push_back(tap);
  }
  const nlohmann::json config = MakeVmConfig(w, LogPath(w.name), taps, ConsoleSocketPath(w.name));
  SV_TRY(WriteFileAtomic(dir + "/vm.json", config.dump(2)));
  std::vector<std::string> run = {opt_.tool,        "run",      "--config",
                                  dir + "/vm.json", "--detach", "--state-dir",
                                  dir + "/run",     "-o",       "json"};
  if (w.ksm) SV_TRY(EnsureKsmRunning(opt_.ksm_run_file));
  std::string snapshot;
  if (w.snapshot) {
    SV_ASSIGN_OR_RETURN(snapshot, EnsureSnapshot(w, config, dir + "/vm.json"));
    run.insert(run.begin() + 2, {"--from-snapshot", snapshot});
  }
  ToolFailure failure;
  auto j = RunToolJson(run, std::chrono::seconds(120), {"pid"}, ErrorCode::kFailedPrecondition,
                       &failure);
  if (!j && !snapshot.empty() && failure.exit_code == kVmStaleSnapshot) {
    // An input changed under the same key (content, not size/mtime): take it again once.
    (void)RemoveAll(snapshot);
    SV_ASSIGN_OR_RETURN(snapshot, EnsureSnapshot(w, config, dir + "/vm.json"));
    j = RunToolJson(run, std::chrono::seconds(120), {"pid"});
  }
  if (!j) return std::move(j).error();
  const int64_t pid = j->value("pid", int64_t{0});
  // Moving QEMU into its cgroup (v1: a synchronize_rcu per controller) and giving the guest
  // its address (a round trip through the agent) do not depend on each other: side by side.
  Result<std::string> cgroup = std::string();
  std::thread place(
      [&] { cgroup = PlaceQemuInWorkloadCgroup(w.name, w.cpuset, w.cpus, w.memory_bytes, pid); });
  Status addressed = ConfigureGuestNetwork(w.name, nets);
  place.join();
  if (!cgroup) {
    (void)Remove(w.name, "", 2000);
    return std::move(cgroup).error().Context("cgroup of " + w.name);
  }
  if (!addressed) {
    (void)Remove(w.name, "", 2000);
    return std::move(addressed).error();
  }
  InstanceInfo info;
  info.running = true;
  info.pid = pid;
  info.driver_state = nlohmann::json{
      {"pid", info.pid},
      {"start_ticks", ProcessStartTicks(info.pid)},
      {"accel", j->value("accel", "")},
      {"snapshot", snapshot},
      {"cgroup", *cgroup},
      {"ready_ms", j->value("ready_ms", nlohmann::json())},
      {"taps", taps}}.dump();
  return info;
}

Status MicroVmDriver::ConfigureGuestNetwork(const std::string& name,
                                            const std::vector<NetAttachment>& nets) {
  if (nets.empty()) return Ok();
  // Through the guest agent (busybox ip in our initrd), after every boot or restore: a
  // snapshot holds the guest from before it had an address, so one snapshot serves any.
  std::string script;
  for (size_t i = 0; i < nets.size(); ++i) {
    const std::string dev = "eth" + std::to_string(i);
    script += "ip link set " + dev + " up && ip addr replace ";
    script += nets[i].address + "/" + std::to_string(nets[i].prefix);
    script += " dev " + dev + " && ";
  }
  script += "ip route replace default via " + nets[0].gateway;
  SV_ASSIGN_OR_RETURN(ExecOutput out, Exec(name, "", {"/bin/sh", "-c", script}, 10000));
  if (out.exit_code != 0) {
    return Error(ErrorCode::kFailedPrecondition,
                 "configuring the guest's address (" + nets[0].address +
                     ") through its agent: " + script + ": status " +
                     std::to_string(out.exit_code) + ": " + out.err.substr(0, 300));
  }
  return Ok();
}

std::string MicroVmDriver::SnapshotKey(const Workload& w, const nlohmann::json& config) const {
  // Everything the guest sees (the config minus where its console goes), the inputs'
  // stamps and storevisor-vm's own (a new build may build another machine, which the old
  // snapshot could not restore into); storevisor-vm re-checks the inputs' content and its
  // machine layout on every restore.
  nlohmann::json c = config;
  c.erase("serial");
  c.erase("console_socket");
  c.erase("name");
  std::string key = c.dump() + FileStamp(w.kernel) + FileStamp(w.initrd) + FileStamp(opt_.tool);
  for (const auto& d : w.disks) key += FileStamp(d.path);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(Fnv64(key)));
  return buf;
}

Result<std::string> MicroVmDriver::EnsureSnapshot(const Workload& w, const nlohmann::json& config,
                                                  const std::string& config_file) {
  std::string dir = opt_.snapshot_dir + "/" + w.name + "-" + SnapshotKey(w, config);
  struct stat st {};
  if (::stat((dir + "/manifest.json").c_str(), &st) == 0) return dir;
  // One snapshot per workload: older keys of the same workload go (each holds guest RAM).
  std::lock_guard lock(snapshot_mu_);
  SV_TRY(MakeDirs(opt_.snapshot_dir, 0700));
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(opt_.snapshot_dir, ec)) {
    const std::string old = e.path().filename().string();
    if (old.rfind(w.name + "-", 0) == 0 && old.size() == w.name.size() + 17) {
      (void)RemoveAll(e.path().string());
    }
  }
  const std::string tmp = dir + ".tmp";
  (void)RemoveAll(tmp);
  auto made = RunTool({opt_.tool, "snapshot", "--config", config_file, "--out", tmp, "-o", "json"},
                      std::chrono::seconds(180), ErrorCode::kFailedPrecondition);
  if (!made) {
    (void)RemoveAll(tmp);
    return std::move(made).error().Context("taking the snapshot of " + w.name);
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    return Error(ErrorCode::kIo, "rename " + tmp + " -> " + dir + ": " + std::strerror(errno));
  }
  return dir;
}

Result<InstanceInfo> MicroVmDriver::Inspect(const std::string& name,
                                            const std::string& driver_state) {
  Maintain(name);
  return InstanceFromPidState(driver_state);
}

void MicroVmDriver::Maintain(const std::string& name) {
  // QEMU writes the console log and never rotates it: its cap is kept here. A failure leaves
  // the log growing until the next round; nothing else depends on it.
  (void)RotateCopyTruncate(LogPath(name), kConsoleLogMaxBytes);
}

Result<nlohmann::json> MicroVmDriver::EngineStatus(const std::string& name) {
  std::lock_guard lock(status_mu_);
  return RunToolJson({opt_.tool, "status", "--state-dir", Dir(name) + "/run", "-o", "json"},
                     std::chrono::seconds(3), {"status"});
}

Status MicroVmDriver::Remove(const std::string& name, const std::string& /*driver_state*/,
                             int timeout_ms) {
  const std::string dir = Dir(name);
  struct stat st {};
  // No pidfile: no QEMU of this workload runs (storevisor-vm removes it when QEMU ends), so
  // the stop call is saved on the start path.
  if (::stat((dir + "/run/qemu.pid").c_str(), &st) == 0) {
    (void)RunCommand({opt_.tool, "stop", "--state-dir", dir + "/run", "--timeout",
                      std::to_string(std::max(1, timeout_ms / 1000))},
                     std::chrono::milliseconds(timeout_ms * 3 + 5000));
  }
  RemoveCgroup(WorkloadCgroupPath(name));
  for (size_t i = 0; i < 4; ++i) {
    (void)net::DeleteLink(TapName(name, i));
  }
  return Ok();
}

Result<ExecOutput> MicroVmDriver::Exec(const std::string& name, const std::string& /*state*/,
                                       const std::vector<std::string>& argv, int timeout_ms) {
  return AgentExec(Dir(name) + "/run/agent.sock", argv, timeout_ms);
}

Result<ExecOutput> AgentExec(const std::string& socket, const std::vector<std::string>& argv,
                             int timeout_ms) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "guest exec: no command given");
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  SV_ASSIGN_OR_RETURN(vm::AgentClient agent,
                      vm::AgentClient::Connect(socket, vm::Millis(timeout_ms)));
  const auto left =
      std::max(vm::Millis(1), std::chrono::duration_cast<vm::Millis>(deadline - Clock::now()));
  // A fixed, short poll: the engine's default doubles its delay up to 200 ms, which on a
  // command of ~300 ms (the first ones after a restore, with TCG's code cache cold) cost up
  // to 200 ms of waiting for an answer that was already there.
  SV_ASSIGN_OR_RETURN(vm::ExecResult r, agent.Exec(argv, left, "", kAgentPoll));
  ExecOutput out;
  out.exit_code = r.signal != 0 ? 128 + r.signal : r.exit_code;
  out.out = std::move(r.out);
  out.err = std::move(r.err);
  return out;
}

}  // namespace storevisor::daemon
