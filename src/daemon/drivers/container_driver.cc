#include "daemon/drivers/container_driver.h"

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/files.h"
#include "daemon/drivers/tool_call.h"
#include "image/image.h"
#include "net/net.h"

namespace storevisor::daemon {

namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Reads the shim's "started PID" line: the pid; -1 when the shim closed its end without
// it (the container did not start); 0 when nothing came within timeout.
int64_t ReadAnnouncedPid(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  char buf[64];
  while (line.find('\n') == std::string::npos && line.size() < 256) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return 0;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return ready == 0 ? 0 : -1;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    line.append(buf, static_cast<size_t>(n));
  }
  if (line.rfind("started ", 0) != 0) return -1;
  const int64_t pid = std::strtoll(line.c_str() + 8, nullptr, 10);
  return pid > 0 ? pid : -1;
}

// Waits until `name` appears in dir (written by rename, as WriteFileReplace does) or
// timeout passes: inotify, not a sleep loop.
bool WaitForFile(const std::string& dir, const std::string& name,
                 std::chrono::milliseconds timeout) {
  UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (in.valid()) (void)::inotify_add_watch(in.get(), dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string path = dir + "/" + name;
  while (!Exists(path)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !in.valid()) return false;
    pollfd p{in.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char events[4096];
      while (::read(in.get(), events, sizeof events) > 0) {
      }
    }
  }
  return true;
}

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

Result<ImageLocation> LocateImage(const std::string& image_root, const std::string& image_dir,
                                  const std::string& ref) {
  if (!image_root.empty()) {
    auto found = image::Store(image_root).Find(ref);
    if (found) return ImageLocation{true, ""};
    if (found.error().code() != ErrorCode::kNotFound) {
      return std::move(found).error().Context("image store " + image_root);
    }
  }
  std::string flat = ref;
  for (char& c : flat) {
    if (c == '/' || c == ':') c = '_';
  }
  std::string dir = image_dir + "/" + flat + "/rootfs";
  if (!image_dir.empty() && Exists(dir)) return ImageLocation{false, dir};
  std::string where = "the image store " + image_root;
  if (!image_dir.empty()) where += " nor " + dir;
  return Error(ErrorCode::kNotFound, "image " + ref + " is not in " + where +
                                         "; import it (`storevisor image import FILE " + ref +
                                         "` or `storevisor image build-from-dir DIR " + ref +
                                         "`, see `storevisor image ls`); the demo images come from "
                                         "scripts/setup.d/50-demo.sh");
}

Result<std::string> ContainerDriver::ResolveRootfs(const Workload& w, Workload* resolved) {
  *resolved = w;
  if (!w.rootfs.empty()) {
    if (!Exists(w.rootfs)) {
      return Error(ErrorCode::kNotFound, "rootfs " + w.rootfs + " does not exist");
    }
    return w.rootfs;
  }
  SV_ASSIGN_OR_RETURN(ImageLocation where, LocateImage(opt_.image_root, opt_.image_dir, w.image));
  if (!where.in_store) return where.rootfs_dir;
  const std::string bundle = Dir(w.name) + "/image";
  SV_TRY_CTX(image::Store(opt_.image_root).MakeBundle(w.image, bundle), "image " + w.image);
  ApplyImageDefaults(bundle + "/config.json", resolved);
  return bundle + "/rootfs";
}

Status ContainerDriver::SetUpNetwork(const Workload& w, const std::vector<NetAttachment>& nets) {
  if (nets.empty()) return Ok();
  // In-process over netlink (src/net): the namespace, one veth pair per network with its
  // inside end moved there, addresses, loopback and the default route via the first
  // network's gateway. Any earlier namespace of the name goes first.
  std::vector<net::NamespaceLink> links;
  for (size_t i = 0; i < nets.size(); ++i) {
    const NetAttachment& n = nets[i];
    links.push_back(
        {VethName(w.name, i), "eth" + std::to_string(i), n.bridge, n.address, n.prefix, n.gateway});
  }
  return net::SetUpNamespace(NetnsName(w.name), links);
}

void ContainerDriver::TearDownNetwork(const std::string& name) {
  // Deleting the namespace deletes the veth pairs in it (and so their host ends).
  (void)net::DeleteNetns(NetnsName(name));
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
  const std::string netns = nets.empty() ? "" : net::NetnsPath(NetnsName(w.name));
  SV_TRY(WriteFileReplace(dir + "/bundle/config.json",
                          MakeOciSpec(resolved, rootfs, netns, w.name).dump(2)));
  (void)RemoveAll(dir + "/exit.json");
  (void)RemoveAll(dir + "/pid");
  // The shim tells on its stdout when `runtime start` succeeded ("started PID"); its end
  // without that line means the container did not start, and its exit file says why.
  SV_ASSIGN_OR_RETURN(Pipe announce, MakePipe());
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
                "--announce",
                "1",
                "--log-max",
                std::to_string(opt_.log_max_bytes)};
  spawn.new_session = true;  // the shim must outlive the daemon
  spawn.stdout_fd = announce.write.get();
  spawn.stderr_fd = -1;
  SV_ASSIGN_OR_RETURN(ChildProcess shim, ChildProcess::Spawn(spawn));
  announce.write.reset();
  const int64_t shim_pid = shim.pid();
  const uint64_t shim_ticks = ProcessStartTicks(shim_pid);
  {
    std::lock_guard lock(mu_);
    shims_.push_back(std::move(shim));
  }
  const int64_t pid = ReadAnnouncedPid(announce.read.get(), std::chrono::seconds(30));
  if (pid > 0) {
    InstanceInfo info;
    info.running = true;
    info.pid = pid;
    info.driver_state = nlohmann::json{
        {"shim_pid", shim_pid},
        {"shim_start_ticks", shim_ticks},
        {"pid", pid},
        {"start_ticks", ProcessStartTicks(pid)},
        {"netns", netns}}.dump();
    return info;
  }
  if (pid == 0)
    return Error(ErrorCode::kTimeout, "container " + w.name + " did not start within 30 s");
  auto text = ReadFile(dir + "/exit.json");
  auto j = nlohmann::json::parse(text.value_or("{}"), nullptr, false);
  const nlohmann::json* why = j.is_object() && j.contains("error") ? &j["error"] : nullptr;
  const nlohmann::json* code = j.is_object() && j.contains("exit_code") ? &j["exit_code"] : nullptr;
  if (why != nullptr && why->is_string() && !why->get_ref<const std::string&>().empty()) {
    return Error(ErrorCode::kFailedPrecondition, why->get<std::string>());
  }
  return Error(
      ErrorCode::kFailedPrecondition,
      "the container exited at once (status " +
          std::to_string(code != nullptr && code->is_number_integer() ? code->get<int64_t>() : -1) +
          ")");
}

std::vector<WatchedPid> ContainerDriver::WatchPids(const std::string& driver_state) const {
  return WatchPidsFromState(driver_state, "shim_pid");
}

Result<InstanceInfo> ContainerDriver::Inspect(const std::string& name,
                                              const std::string& driver_state) {
  ReapShims();
  InstanceInfo info;
  info.driver_state = driver_state;
  const std::string dir = Dir(name);
  const auto pids = WatchPids(driver_state);
  for (const auto& p : pids) {
    if (p.what == "process") info.pid = p.pid;
  }
  bool init_alive = false;
  bool shim_alive = false;
  for (const auto& p : pids) {
    const bool alive = ProcessAlive(p.pid, p.start_ticks);
    (p.what == "shim" ? shim_alive : init_alive) = alive;
  }
  if (init_alive && !shim_alive && !Exists(dir + "/exit.json")) {
    // Nothing collects its output or its exit any more: it is stopped and handled as an exit.
    info.problem =
        "its shim died; the container is stopped (its output could no longer be "
        "kept) and handled as an exit";
    return info;
  }
  if (init_alive) {
    info.running = true;
    return info;
  }
  // The shim writes the exit status the moment it reaps the container: wait for that.
  if (!Exists(dir + "/exit.json") && shim_alive) {
    (void)WaitForFile(dir, "exit.json", std::chrono::seconds(2));
  }
  auto text = ReadFile(dir + "/exit.json", 65536);
  auto e = nlohmann::json::parse(text.value_or("{}"), nullptr, false);
  auto code = e.is_object() ? e.find("exit_code") : e.end();
  info.exit_code =
      e.is_object() && code != e.end() && code->is_number_integer() ? code->get<int64_t>() : -1;
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
