#include "daemon/drivers/container_driver.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/files.h"
#include "daemon/drivers/tool_call.h"
#include "image/image.h"

namespace storevisor::daemon {

namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Status Run(const std::vector<std::string>& argv) { return RunTool(argv, std::chrono::seconds(30)); }

// The image config's process (from its bundle's config.json) supplies what the profile
// leaves out, as `docker run IMAGE` does: command, the image's env under the profile's,
// working directory.
void ApplyImageDefaults(const std::string& config_path, Workload* w) {
  auto text = ReadFile(config_path, 1u << 20);
  if (!text) return;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("process") || !j["process"].is_object()) return;
  const auto& p = j["process"];
  if (w->command.empty() && p.contains("args") && p["args"].is_array()) {
    for (const auto& a : p["args"]) {
      if (a.is_string()) w->command.push_back(a.get<std::string>());
    }
  }
  if (p.contains("env") && p["env"].is_array()) {
    for (const auto& e : p["env"]) {
      if (!e.is_string()) continue;
      const std::string kv = e.get<std::string>();
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      w->env.emplace(kv.substr(0, eq), kv.substr(eq + 1));  // the profile's value wins
    }
  }
  if (w->workdir.empty() && p.contains("cwd") && p["cwd"].is_string()) {
    w->workdir = p["cwd"].get<std::string>();
  }
}

// A shim still alive at removal belongs to an instance being replaced, possibly one whose
// creation a daemon crash interrupted while `runtime create` ran: its whole process group
// (it is a session leader) goes, so nothing of it can write files or make the container
// again after this point.
void StopShim(const std::string& shim_pid_file) {
  auto text = ReadFile(shim_pid_file, 128);
  if (!text) return;
  const int64_t pid = std::strtoll(text->c_str(), nullptr, 10);
  const size_t sp = text->find(' ');
  const uint64_t ticks =
      sp == std::string::npos ? 0 : std::strtoull(text->c_str() + sp, nullptr, 10);
  if (pid <= 1 || ticks == 0 || !ProcessAlive(pid, ticks)) return;
  (void)::kill(static_cast<pid_t>(-pid), SIGKILL);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (ProcessAlive(pid, ticks) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string NetnsName(const std::string& name) { return "sv-" + name; }

// Host-side veth names must fit IFNAMSIZ (15): "svh" + 8 hex digits + index.
std::string VethName(const std::string& name, size_t index) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "svh%08x%u", h, static_cast<unsigned>(index % 10));
  return buf;
}

}  // namespace

std::string ContainerDriver::LogPath(const std::string& name) const {
  return opt_.log_dir + "/" + name + ".log";
}

std::string ContainerDriver::NetnsPath(const std::string& /*name*/, int64_t pid) const {
  return pid > 0 ? "/proc/" + std::to_string(pid) + "/ns/net" : "";
}

Result<std::string> ContainerDriver::ResolveRootfs(const Workload& w, Workload* resolved) {
  *resolved = w;
  if (!w.rootfs.empty()) {
    if (!Exists(w.rootfs)) {
      return Error(ErrorCode::kNotFound, "rootfs " + w.rootfs + " does not exist");
    }
    return w.rootfs;
  }
  if (!opt_.image_root.empty()) {
    image::Store store(opt_.image_root);
    auto found = store.Find(w.image);
    if (found) {
      const std::string bundle = Dir(w.name) + "/image";
      SV_TRY_CTX(store.MakeBundle(w.image, bundle), "image " + w.image);
      ApplyImageDefaults(bundle + "/config.json", resolved);
      return bundle + "/rootfs";
    }
    if (found.error().code() != ErrorCode::kNotFound) {
      return std::move(found).error().Context("image store " + opt_.image_root);
    }
  }
  std::string flat = w.image;
  for (char& c : flat) {
    if (c == '/' || c == ':') c = '_';
  }
  std::string dir = opt_.image_dir + "/" + flat + "/rootfs";
  if (!opt_.image_dir.empty() && Exists(dir)) return dir;
  std::string where = "the image store " + opt_.image_root;
  if (!opt_.image_dir.empty()) where += " nor " + dir;
  return Error(ErrorCode::kNotFound, "image " + w.image + " is not in " + where +
                                         "; import it (`storevisor image import FILE " + w.image +
                                         "` or `storevisor image build-from-dir DIR " + w.image +
                                         "`, see `storevisor image ls`); the demo images come from "
                                         "scripts/setup.d/50-demo.sh");
}

Status ContainerDriver::SetUpNetwork(const Workload& w, const std::vector<NetAttachment>& nets) {
  if (nets.empty()) return Ok();
  const std::string ns = NetnsName(w.name);
  TearDownNetwork(w.name);
  // Two `ip -batch` runs (host side, then inside the namespace) instead of one `ip` per
  // command: each process start costs milliseconds on the container's start path.
  std::string host_side = "netns add " + ns + "\n";
  std::string inside = "link set lo up\n";
  for (size_t i = 0; i < nets.size(); ++i) {
    const NetAttachment& n = nets[i];
    const std::string veth = VethName(w.name, i);
    const std::string dev = "eth" + std::to_string(i);
    // A host end left from an earlier instance (a namespace's veths go away lazily).
    if (Exists("/sys/class/net/" + veth)) (void)Run({"ip", "link", "delete", veth});
    host_side.append("link add ").append(veth).append(" type veth peer name ").append(dev);
    host_side.append(" netns ").append(ns).append("\n");
    host_side += "link set " + veth + " master " + n.bridge + " up\n";
    inside += "addr add " + n.address + "/" + std::to_string(n.prefix) + " dev " + dev + "\n";
    inside += "link set " + dev + " up\n";
    if (i == 0) inside += "route add default via " + n.gateway + "\n";
  }
  const std::string dir = Dir(w.name);
  SV_TRY(WriteFileAtomic(dir + "/net-host.batch", host_side));
  SV_TRY(WriteFileAtomic(dir + "/net-inside.batch", inside));
  SV_TRY(Run({"ip", "-batch", dir + "/net-host.batch"}));
  return Run({"ip", "-n", ns, "-batch", dir + "/net-inside.batch"});
}

void ContainerDriver::TearDownNetwork(const std::string& name) {
  // Deleting the namespace deletes the veth pairs in it (and so their host ends).
  if (Exists("/run/netns/" + NetnsName(name)))
    (void)Run({"ip", "netns", "delete", NetnsName(name)});
}

void ContainerDriver::ReapShims() {
  std::lock_guard lock(mu_);
  for (auto it = shims_.begin(); it != shims_.end();) {
    auto st = it->Wait(std::chrono::milliseconds(0));
    it = st ? shims_.erase(it) : it + 1;
  }
}

Result<InstanceInfo> ContainerDriver::Create(const Workload& w,
                                             const std::vector<NetAttachment>& nets) {
  const std::string dir = Dir(w.name);
  SV_TRY(Remove(w.name, "", 2000));
  SV_TRY(MakeDirs(dir + "/bundle"));
  Workload resolved;
  SV_ASSIGN_OR_RETURN(std::string rootfs, ResolveRootfs(w, &resolved));
  SV_TRY(MakeDirs(opt_.log_dir));
  SV_TRY(SetUpNetwork(w, nets));
  const std::string netns = nets.empty() ? "" : "/run/netns/" + NetnsName(w.name);
  SV_TRY(WriteFileAtomic(dir + "/bundle/config.json",
                         MakeOciSpec(resolved, rootfs, netns, w.name).dump(2)));
  (void)RemoveAll(dir + "/exit.json");
  (void)RemoveAll(dir + "/pid");
  (void)RemoveAll(dir + "/started");
  SpawnOptions spawn;
  spawn.argv = {opt_.self_exe,
                "shim",
                "--runtime",
                opt_.runtime,
                "--root",
                opt_.root,
                "--id",
                ContainerId(w.name),
                "--bundle",
                dir + "/bundle",
                "--log",
                LogPath(w.name),
                "--exit-file",
                dir + "/exit.json",
                "--pid-file",
                dir + "/pid",
                "--shim-pid-file",
                dir + "/shim.pid",
                "--started-file",
                dir + "/started",
                "--log-max",
                std::to_string(opt_.log_max_bytes)};
  spawn.new_session = true;  // the shim must outlive the daemon
  spawn.stdout_fd = -1;
  spawn.stderr_fd = -1;
  SV_ASSIGN_OR_RETURN(ChildProcess shim, ChildProcess::Spawn(spawn));
  const int64_t shim_pid = shim.pid();
  {
    std::lock_guard lock(mu_);
    shims_.push_back(std::move(shim));
  }
  // The container runs once the shim saw `runtime start` succeed (its started file, which
  // holds the container's pid): a stat per poll, no `runtime state` process.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exists(dir + "/exit.json")) {
      auto text = ReadFile(dir + "/exit.json");
      auto j = nlohmann::json::parse(text.value_or("{}"), nullptr, false);
      std::string why = j.is_object() ? j.value("error", "") : "";
      if (why.empty())
        why = "the container exited at once (status " +
              std::to_string(j.is_object() ? j.value("exit_code", -1) : -1) + ")";
      return Error(ErrorCode::kFailedPrecondition, why);
    }
    auto pid_text = ReadFile(dir + "/started", 64);
    const int64_t pid = pid_text ? std::strtoll(pid_text->c_str(), nullptr, 10) : 0;
    if (pid > 0) {
      InstanceInfo info;
      info.running = true;
      info.pid = pid;
      info.driver_state = nlohmann::json{
          {"shim_pid", shim_pid},
          {"pid", pid},
          {"start_ticks", ProcessStartTicks(pid)},
          {"netns", netns}}.dump();
      return info;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Error(ErrorCode::kTimeout, "container " + w.name + " did not start within 30 s");
}

Result<InstanceInfo> ContainerDriver::Inspect(const std::string& name,
                                              const std::string& driver_state) {
  ReapShims();
  InstanceInfo info;
  info.driver_state = driver_state;
  auto j = nlohmann::json::parse(driver_state.empty() ? "{}" : driver_state, nullptr, false);
  if (!j.is_object()) j = nlohmann::json::object();
  const std::string dir = Dir(name);
  if (Exists(dir + "/exit.json")) {
    auto text = ReadFile(dir + "/exit.json");
    auto e = nlohmann::json::parse(text.value_or("{}"), nullptr, false);
    info.exit_code = e.is_object() ? e.value("exit_code", -1) : -1;
    return info;
  }
  info.pid = j.value("pid", int64_t{0});
  info.running = ProcessAlive(info.pid, j.value("start_ticks", uint64_t{0}));
  return info;
}

Status ContainerDriver::Remove(const std::string& name, const std::string& /*driver_state*/,
                               int timeout_ms) {
  const std::string id = ContainerId(name);
  const std::string dir = Dir(name);
  auto pid_text = ReadFile(dir + "/pid", 64);
  int64_t pid = pid_text ? std::strtoll(pid_text->c_str(), nullptr, 10) : 0;
  if (pid > 0 && ProcessAlive(pid) && !Exists(dir + "/exit.json")) {
    (void)RunCommand({opt_.runtime, "--root", opt_.root, "kill", id, "TERM"},
                     std::chrono::seconds(5));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (ProcessAlive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (ProcessAlive(pid)) {
      (void)RunCommand({opt_.runtime, "--root", opt_.root, "kill", id, "KILL"},
                       std::chrono::seconds(5));
    }
    // The shim reaps the container's init: let it before the shim is stopped, or the zombie
    // goes to PID 1 (which reaps late here) and keeps the cgroup busy, so the next
    // instance's create is refused ("cgroup ... already holds 1 process", seen under load).
    const std::string proc = "/proc/" + std::to_string(pid);
    auto reaped_by = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (Exists(proc) && std::chrono::steady_clock::now() < reaped_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  StopShim(dir + "/shim.pid");
  // The runtime keeps a folder per container in its root (runc and storevisor-runtime
  // alike): without one there is nothing to delete, and the call is saved.
  if (Exists(opt_.root + "/" + id)) {
    (void)RunCommand({opt_.runtime, "--root", opt_.root, "delete", "--force", id},
                     std::chrono::seconds(10));
  }
  TearDownNetwork(name);
  if (Exists(dir + "/image")) {
    // The image bundle's overlay: unmounted and removed with the container.
    SV_TRY_CTX(image::Store(opt_.image_root).RemoveBundle(dir + "/image"),
               "image bundle of " + name);
  }
  ReapShims();
  return Ok();
}

Result<ExecOutput> ContainerDriver::Exec(const std::string& name, const std::string& /*state*/,
                                         const std::vector<std::string>& argv, int timeout_ms) {
  std::vector<std::string> cmd = {opt_.runtime, "--root", opt_.root, "exec", ContainerId(name)};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return RunToolExec(cmd, std::chrono::milliseconds(timeout_ms));
}

}  // namespace storevisor::daemon
