// Snapshots for instant start. The guest's RAM lives in DIR/ram (a shared file
// mapping while the snapshot is taken); migration runs with x-ignore-shared, so the
// state file holds only device state and CPU registers, and a restore maps DIR/ram
// privately (copy-on-write) instead of copying the guest's memory through a stream.
//
// The manifest records what the snapshot was made from. Checking it must stay cheap
// (it is on the instant-start path), so each input is compared by size and mtime
// first and only re-hashed (sha256) when those differ: a touched but identical file
// still passes, a changed one is refused.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "common/files.h"
#include "vm/vm.h"

namespace storevisor::vm {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

Result<std::string> FileSha256(const std::string& path) {
  SV_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Error(ErrorCode::kInternal, "sha256: OpenSSL init failed");
  }
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read " + path);
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

namespace {

std::string Sha256Of(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

// The part of a config that shapes the guest's state (not where its console goes,
// its timeouts or its name).
json GuestVisible(const VmConfig& c) {
  json j = c.ToJson();
  for (const char* k : {"name", "serial", "console_socket", "qmp", "ready_timeout_s",
                        "stop_timeout_s", "ram_file"}) {
    j.erase(k);
  }
  return j;
}

int64_t Nanos(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

Result<json> Fingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat " + path);
  SV_ASSIGN_OR_RETURN(std::string sha, FileSha256(path));
  return json{{"path", path},
              {"size", st.st_size},
              {"mtime_ns", Nanos(st.st_mtim)},
              {"ctime_ns", Nanos(st.st_ctim)},
              {"sha256", sha}};
}

// Empty when path still matches fp; else what differs.
Result<std::string> Differs(const json& fp, const std::string& path) {
  if (fp.value("path", "") != path) return "path was " + fp.value("path", "?") + ", now " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "it is gone (" + std::string(strerror(errno)) + ")";
  // Unchanged size, mtime and ctime: the content is taken as unchanged without hashing it.
  // ctime because nobody can set it: an edit whose mtime was put back (touch -d) changes
  // it and is hashed. A record without ctime (older snapshots) is always hashed.
  if (fp.value("size", int64_t{-1}) == st.st_size &&
      fp.value("mtime_ns", int64_t{-1}) == Nanos(st.st_mtim) &&
      fp.value("ctime_ns", int64_t{-1}) == Nanos(st.st_ctim)) {
    return std::string();
  }
  SV_ASSIGN_OR_RETURN(std::string sha, FileSha256(path));
  if (sha == fp.value("sha256", "")) return std::string();
  return "its content changed (sha256 " + sha.substr(0, 12) + " vs " +
         fp.value("sha256", "?").substr(0, 12) + " at snapshot time)";
}

Result<json> InputsOf(const VmConfig& c) {
  json in{{"config_sha256", Sha256Of(GuestVisible(c).dump())}};
  SV_ASSIGN_OR_RETURN(in["kernel"], Fingerprint(c.kernel));
  if (!c.initrd.empty()) {
    SV_ASSIGN_OR_RETURN(in["initrd"], Fingerprint(c.initrd));
  }
  in["disks"] = json::array();
  for (const auto& d : c.disks) {
    SV_ASSIGN_OR_RETURN(json fp, Fingerprint(d.path));
    in["disks"].push_back(fp);
  }
  return in;
}

Status WaitMigration(QmpClient& qmp) {
  auto deadline = Clock::now() + Millis(120000);
  for (;;) {
    SV_ASSIGN_OR_RETURN(json st, qmp.Execute("query-migrate"));
    std::string status = st.value("status", "");
    if (status == "completed") return Ok();
    if (status == "failed" || status == "cancelled") {
      return Error(ErrorCode::kFailedPrecondition,
                   "migration to the snapshot " + status + ": " + st.value("error-desc", "?"));
    }
    if (Clock::now() > deadline)
      return Error(ErrorCode::kTimeout, "saving the snapshot took over 120 s");
    std::this_thread::sleep_for(Millis(5));
  }
}

}  // namespace

Result<SnapshotInfo> CreateSnapshot(const VmConfig& config, const std::string& dir,
                                    const StateDir& scratch) {
  if (!config.ram_file.empty()) {
    return Error(ErrorCode::kInvalidArgument, "ram_file is set by snapshots themselves; remove it");
  }
  // A snapshot holds the guest's page cache and file-system state as of now; a
  // writable disk would move on under the next restore (and every restore would write
  // to the same disk), so the restored guest would see a disk that no longer matches
  // its memory: silent corruption. Refuse before booting anything.
  for (size_t i = 0; i < config.disks.size(); ++i) {
    if (!config.disks[i].readonly) {
      return Error(ErrorCode::kInvalidArgument,
                   "snapshot: disks[" + std::to_string(i) + "] (" + config.disks[i].path +
                       ") is writable: a restored guest would find it changed under its page "
                       "cache; snapshot read-only disks only (\"readonly\": true or --disk " +
                       config.disks[i].path + ",ro) and keep writable data off snapshotted VMs");
    }
  }
  SV_TRY(MakeDirs(dir, 0700));
  for (const char* f : {"/manifest.json", "/state", "/ram"}) ::unlink((dir + f).c_str());
  SV_ASSIGN_OR_RETURN(json inputs, InputsOf(config));
  VmConfig c = config;
  c.ram_file = dir + "/ram";
  c.serial.kind = SerialConfig::Kind::kFile;
  c.serial.path = scratch.console();
  c.console_socket.clear();  // nobody attaches to the scratch boot
  SV_ASSIGN_OR_RETURN(Machine m, Machine::Start(c, StartOptions{scratch, false, "", {}}));
  SV_ASSIGN_OR_RETURN(int64_t ready_ms, m.WaitReady(Millis(config.ready_timeout_s * 1000)));
  // Who the guest is at this instant: a restore continues this very boot (same boot_id,
  // uptime going on from here), which tests and operators can check.
  json guest = json::object();
  SV_ASSIGN_OR_RETURN(AgentClient * agent, m.agent(Millis(2000)));
  auto who =
      agent->Exec({"/bin/cat", "/proc/sys/kernel/random/boot_id", "/proc/uptime"}, Millis(10000));
  if (who && who->exit_code == 0) {
    auto nl = who->out.find('\n');
    if (nl != std::string::npos) {
      guest["boot_id"] = who->out.substr(0, nl);
      guest["uptime_s"] = std::strtod(who->out.c_str() + nl + 1, nullptr);
    }
  }
  QmpClient& qmp = *m.qmp();
  SV_TRY(qmp.Execute("stop"));
  SV_TRY(qmp.Execute("migrate-set-capabilities",
                     {{"capabilities", {{{"capability", "x-ignore-shared"}, {"state", true}}}}}));
  {
    SV_ASSIGN_OR_RETURN(UniqueFd out, OpenFile(dir + "/state", O_WRONLY | O_CREAT | O_TRUNC, 0600));
    SV_TRY(qmp.ExecuteWithFd("getfd", {{"fdname", "snapshot"}}, out.get(), Millis(5000)));
  }
  SV_TRY(qmp.Execute("migrate", {{"uri", "fd:snapshot"}}));
  SV_TRY(WaitMigration(qmp));
  (void)qmp.Execute("quit", json::object(), Millis(2000));
  (void)m.WaitExit(Millis(5000));
  ::sync();  // the RAM file and the state must be on disk before the manifest says so
  json manifest{{"version", 1},
                {"machine", kSnapshotMachine},
                {"created_unix", static_cast<int64_t>(::time(nullptr))},
                {"inputs", inputs},
                {"accel", AccelName(m.accel().accel)},
                {"memory_mib", config.memory_mib},
                {"boot_ready_ms", ready_ms},
                {"guest", guest},
                {"qemu", qmp.greeting()["QMP"].value("version", json::object())}};
  SV_TRY(WriteFileAtomic(dir + "/manifest.json", manifest.dump(2) + "\n"));
  return SnapshotInfo{dir, manifest};
}

Status CheckSnapshot(const VmConfig& config, const std::string& dir) {
  auto text = ReadFile(dir + "/manifest.json", 1u << 20);
  if (!text) {
    return Error(ErrorCode::kNotFound, "snapshot " + dir + ": no manifest.json (" +
                                           text.error().message() +
                                           "); take one with `storevisor-vm snapshot`");
  }
  json m = json::parse(*text, nullptr, false);
  if (!m.is_object() || !m.contains("inputs") || !m["inputs"].is_object()) {
    return Error(ErrorCode::kGuestFault, "snapshot " + dir + ": manifest.json is malformed");
  }
  const json& in = m["inputs"];
  auto stale = [&](const std::string& what) {
    return Error(ErrorCode::kFailedPrecondition,
                 "snapshot " + dir + " is stale: " + what + "; take a new snapshot");
  };
  // Manifests from before layouts were recorded have none: layout 1. Read without value(),
  // which throws on a manifest whose "machine" is not a number.
  const json machine = m.contains("machine") ? m["machine"] : json(1);
  if (!machine.is_number_integer() || machine.get<int64_t>() != kSnapshotMachine) {
    return stale("it restores into machine layout " + machine.dump() +
                 ", this storevisor-vm builds layout " + std::to_string(kSnapshotMachine));
  }
  if (in.value("config_sha256", "") != Sha256Of(GuestVisible(config).dump())) {
    return stale("the VM config differs from the one it was made with");
  }
  AccelChoice accel = ChooseAccel(config.accel);
  if (m.value("accel", "") != AccelName(accel.accel)) {
    return stale("it was made under " + m.value("accel", "?") + ", this host runs " +
                 std::string(AccelName(accel.accel)));
  }
  auto check = [&](const char* key, const std::string& path) -> Status {
    if (!in.contains(key) || !in[key].is_object())
      return stale(std::string(key) + " is not recorded");
    SV_ASSIGN_OR_RETURN(std::string why, Differs(in[key], path));
    if (!why.empty()) return stale(std::string(key) + " " + path + ": " + why);
    return Ok();
  };
  SV_TRY(check("kernel", config.kernel));
  if (!config.initrd.empty()) SV_TRY(check("initrd", config.initrd));
  const json& disks = in.value("disks", json::array());
  if (!disks.is_array() || disks.size() != config.disks.size()) return stale("the disks differ");
  for (size_t i = 0; i < config.disks.size(); ++i) {
    SV_ASSIGN_OR_RETURN(std::string why, Differs(disks[i], config.disks[i].path));
    if (!why.empty())
      return stale("disks[" + std::to_string(i) + "] " + config.disks[i].path + ": " + why);
  }
  struct stat st {};
  if (::stat((dir + "/state").c_str(), &st) != 0 || ::stat((dir + "/ram").c_str(), &st) != 0) {
    return Error(ErrorCode::kNotFound, "snapshot " + dir + ": state or ram file missing");
  }
  return Ok();
}

Result<VmConfig> SnapshotConfig(const VmConfig& config, const std::string& dir) {
  VmConfig c = config;
  c.ram_file = dir + "/ram";
  return c;
}

}  // namespace storevisor::vm
