#include "runtime/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include "common/unique_fd.h"
#include "runtime/devices_bpf.h"

namespace storevisor::runtime {
namespace {

bool Exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

std::string JoinPath(std::string a, std::string_view b) {
  a += '/';
  a += b;
  return a;
}

Result<std::string> ReadSmall(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cgroup: open " + file);
  UniqueFd owned(fd);
  auto text = ReadAll(fd, 1u << 20);
  if (!text) return std::move(text).error().Context("cgroup: read " + file);
  return text;
}

uint64_t ReadU64(const std::string& file) {
  auto text = ReadSmall(file);
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

// "key N" lines (memory.events, memory.oom_control, cpu.stat).
uint64_t ReadKeyed(const std::string& file, std::string_view key) {
  auto text = ReadSmall(file);
  if (!text) return 0;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string_view line(text->data() + pos, nl - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return std::strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
    }
    pos = nl + 1;
  }
  return 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// v1 hierarchies: each real directory under the mount root except the cgroup2 one.
Result<std::vector<std::string>> V1Hierarchies(const std::string& root) {
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) return ErrnoError("cgroup: open " + root);
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (e->d_type != DT_DIR || name == "." || name == ".." || name == "unified") continue;
    out.push_back(name);
  }
  ::closedir(d);
  return out;
}

// In v1 a new cpuset is empty and refuses tasks: a level we made gets cpus and mems
// copied from its parent (read once, then written down the chain of new levels).
struct CpusetValues {
  std::string cpus, mems;
};

Result<CpusetValues> ReadCpuset(const std::string& dir) {
  SV_ASSIGN_OR_RETURN(std::string cpus, ReadSmall(dir + "/cpuset.cpus"));
  SV_ASSIGN_OR_RETURN(std::string mems, ReadSmall(dir + "/cpuset.mems"));
  return CpusetValues{Trim(cpus), Trim(mems)};
}

Status WriteCpuset(const std::string& dir, const CpusetValues& v) {
  SV_TRY(WriteCgroupFile(dir + "/cpuset.cpus", v.cpus));
  return WriteCgroupFile(dir + "/cpuset.mems", v.mems);
}

// `inherited` carries the values down the levels so the parent is read at most once.
Status InitCpuset(const std::string& parent, const std::string& dir, bool made,
                  std::optional<CpusetValues>& inherited) {
  if (!made) {
    // An existing level may still be empty (made by someone else, never filled).
    SV_ASSIGN_OR_RETURN(CpusetValues mine, ReadCpuset(dir));
    if (!mine.cpus.empty() && !mine.mems.empty()) {
      inherited = mine;
      return Ok();
    }
  }
  if (!inherited) {
    SV_ASSIGN_OR_RETURN(CpusetValues from_parent, ReadCpuset(parent));
    inherited = from_parent;
  }
  return WriteCpuset(dir, *inherited);
}

// mkdir -p below base, one level at a time (new cpuset levels get initialised).
Status MakeLevels(const std::string& base, const std::string& rel, bool cpuset) {
  std::string cur = base;
  std::optional<CpusetValues> inherited;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t next = rel.find('/', pos);
    if (next == std::string::npos) next = rel.size();
    if (next > pos) {
      std::string parent = cur;
      cur += "/" + rel.substr(pos, next - pos);
      bool made = ::mkdir(cur.c_str(), 0755) == 0;
      if (!made && errno != EEXIST) return ErrnoError("cgroup: mkdir " + cur);
      if (cpuset) SV_TRY(InitCpuset(parent, cur, made, inherited));
    }
    pos = next + 1;
  }
  return Ok();
}

// Enables, at the root and every level down to the leaf's parent, the controllers a
// container uses that the level has available, so that the leaf shows their files
// (cpu.max, memory.max...). Runs once the levels exist: a level's cgroup.controllers
// appears with it. A refused write is left alone (a level holding processes refuses
// under the no-internal-processes rule); the leaf's files then fail by name at Apply.
Status EnableV2Controllers(const std::string& root, const std::string& rel) {
  std::vector<std::string> parts;
  for (size_t pos = 0; pos < rel.size();) {
    size_t next = rel.find('/', pos);
    if (next == std::string::npos) next = rel.size();
    if (next > pos) parts.push_back(rel.substr(pos, next - pos));
    pos = next + 1;
  }
  std::string cur = root;
  for (const auto& part : parts) {
    SV_ASSIGN_OR_RETURN(std::string avail, ReadSmall(cur + "/cgroup.controllers"));
    std::string have = " " + Trim(avail) + " ";
    std::string enable;
    for (const char* c : {"cpu", "cpuset", "io", "memory", "pids", "hugetlb"}) {
      if (have.find(std::string(" ") + c + " ") != std::string::npos) {
        enable += std::string(enable.empty() ? "" : " ") + "+" + c;
      }
    }
    if (!enable.empty()) (void)WriteCgroupFile(cur + "/cgroup.subtree_control", enable);
    cur += "/" + part;
  }
  return Ok();
}

std::string DeviceRuleLine(const DeviceRule& r) {
  auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
  return std::string(1, r.type) + " " + num(r.major) + ":" + num(r.minor) + " " + r.access;
}

Status RemoveTree(const std::string& dir) {
  // Usually the cgroup has no children: one rmdir, no directory listing.
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Ok();
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> children;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..")
        children.push_back(JoinPath(dir, name));
    }
    ::closedir(d);
    for (const auto& c : children) SV_TRY(RemoveTree(c));
  }
  for (int attempt = 0;; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Ok();
    // EBUSY while the last tasks finish exiting: poll finely, it is usually sub-millisecond.
    if (errno != EBUSY || attempt >= 4000) return ErrnoError("cgroup: rmdir " + dir);
    std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
}

}  // namespace

Status WriteCgroupFile(const std::string& file, std::string_view value) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cgroup: open " + file);
  UniqueFd owned(fd);
  if (::write(fd, value.data(), value.size()) < 0) {
    return ErrnoError("cgroup: write '" + std::string(value) + "' to " + file);
  }
  return Ok();
}

Result<CgroupMode> DetectCgroupMode(const std::string& mount_root) {
  struct statfs fs {};
  if (::statfs(mount_root.c_str(), &fs) != 0) return ErrnoError("cgroup: statfs " + mount_root);
  if (fs.f_type == CGROUP2_SUPER_MAGIC) return CgroupMode::kUnified;
  if (fs.f_type != TMPFS_MAGIC) {
    return Error(ErrorCode::kFailedPrecondition,
                 "cgroup: " + mount_root + " is neither cgroup2 nor a tmpfs of v1 hierarchies");
  }
  std::string unified = mount_root + "/unified";
  if (::statfs(unified.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
    return CgroupMode::kHybrid;
  }
  return CgroupMode::kLegacy;
}

Result<Cgroup> Cgroup::Plan(CgroupMode mode, const std::string& path,
                            const std::string& mount_root) {
  std::string rel = path;
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (rel.empty() || rel.find("..") != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "cgroup: bad cgroups path '" + path + "'");
  }
  std::vector<std::string> dirs;
  if (mode == CgroupMode::kUnified) {
    dirs.push_back(mount_root + "/" + rel);
  } else {
    SV_ASSIGN_OR_RETURN(auto hierarchies, V1Hierarchies(mount_root));
    for (const auto& h : hierarchies) dirs.push_back(JoinPath(JoinPath(mount_root, h), rel));
    // Hybrid: also a cgroup in the cgroup2 mount, for the device program (eBPF).
    if (mode == CgroupMode::kHybrid) dirs.push_back(JoinPath(mount_root + "/unified", rel));
  }
  return Cgroup(mode, std::move(dirs), rel);
}

Status Cgroup::Make() const {
  for (const auto& d : dirs_) {
    std::string base = d.substr(0, d.size() - rel_.size() - 1);
    std::string h = base.substr(base.find_last_of('/') + 1);
    bool cpuset = mode_ != CgroupMode::kUnified && (h + ",").find("cpuset,") != std::string::npos;
    SV_TRY(MakeLevels(base, rel_, cpuset));
    // After the levels exist (reading a new level's cgroup.controllers before its mkdir
    // failed any nested cgroupsPath not made yet, such as storevisord's on a v2 host).
    if (mode_ == CgroupMode::kUnified) SV_TRY(EnableV2Controllers(base, rel_));
  }
  return Ok();
}

Result<Cgroup> Cgroup::Create(CgroupMode mode, const std::string& path,
                              const std::string& mount_root) {
  SV_ASSIGN_OR_RETURN(Cgroup cg, Plan(mode, path, mount_root));
  SV_TRY(cg.Make());
  return cg;
}

Cgroup Cgroup::FromDirs(CgroupMode mode, std::vector<std::string> dirs, std::string rel) {
  return Cgroup(mode, std::move(dirs), std::move(rel));
}

std::string Cgroup::DirFor(std::string_view controller) const {
  if (mode_ == CgroupMode::kUnified) return dirs_.empty() ? "" : dirs_[0];
  for (const auto& d : dirs_) {
    // <root>/<hierarchy>/<rel>: match the hierarchy's comma-separated controller names.
    if (d.size() <= rel_.size() + 1) continue;
    std::string root = d.substr(0, d.size() - rel_.size() - 1);
    std::string h = root.substr(root.find_last_of('/') + 1);
    if (("," + h + ",").find("," + std::string(controller) + ",") != std::string::npos) return d;
  }
  return "";
}

Status Cgroup::Apply(const Resources& r, const std::vector<Device>& devices,
                     std::vector<std::string>* warnings) const {
  return mode_ == CgroupMode::kUnified ? ApplyV2(r, devices) : ApplyV1(r, devices, warnings);
}

std::string Cgroup::UnifiedDir() const {
  if (mode_ == CgroupMode::kUnified) return dirs_.empty() ? "" : dirs_[0];
  if (mode_ != CgroupMode::kHybrid) return "";
  for (const auto& d : dirs_) {
    if (d.size() > rel_.size() + 8 && d.compare(d.size() - rel_.size() - 9, 9, "/unified/") == 0) {
      return d;
    }
  }
  return "";
}

namespace {

// A v1 memory limit that the kernel may accept and then ignore (memory.kmem.limit_in_bytes
// on Linux 6.x takes any write and keeps "unlimited"): read it back, and refuse rather than
// pretend. The kernel rounds limits down to a page.
Status WriteEnforcedLimit(const std::string& file, int64_t value, const std::string& field) {
  if (!Exists(file)) {
    return Error(ErrorCode::kUnsupported, field + ": this kernel has no " + file);
  }
  SV_TRY(WriteCgroupFile(file, std::to_string(value)));
  if (value < 0) return Ok();
  uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t want = static_cast<uint64_t>(value) / page * page;
  if (ReadU64(file) != want) {
    return Error(ErrorCode::kUnsupported,
                 field + ": this kernel accepts " + file + " but does not enforce it");
  }
  return Ok();
}

}  // namespace

Status Cgroup::ApplyV1(const Resources& r, const std::vector<Device>& devices,
                       std::vector<std::string>* warnings) const {
  if (!r.unified.empty()) {
    return Error(ErrorCode::kUnsupported,
                 "linux.resources.unified needs cgroup v2; this host runs cgroup v1/hybrid");
  }
  std::string cpu = DirFor("cpu"), cpuset = DirFor("cpuset"), mem = DirFor("memory"),
              pids = DirFor("pids"), blkio = DirFor("blkio"), dev = DirFor("devices");
  if (r.cpu_shares) SV_TRY(WriteCgroupFile(cpu + "/cpu.shares", std::to_string(*r.cpu_shares)));
  if (r.cpu_period)
    SV_TRY(WriteCgroupFile(cpu + "/cpu.cfs_period_us", std::to_string(*r.cpu_period)));
  if (r.cpu_quota) SV_TRY(WriteCgroupFile(cpu + "/cpu.cfs_quota_us", std::to_string(*r.cpu_quota)));
  if (!r.cpuset_cpus.empty()) SV_TRY(WriteCgroupFile(cpuset + "/cpuset.cpus", r.cpuset_cpus));
  if (!r.cpuset_mems.empty()) SV_TRY(WriteCgroupFile(cpuset + "/cpuset.mems", r.cpuset_mems));
  if (r.memory_limit && *r.memory_limit != 0) {
    SV_TRY(WriteCgroupFile(mem + "/memory.limit_in_bytes", std::to_string(*r.memory_limit)));
  }
  if (r.memory_swap && *r.memory_swap != 0 && Exists(mem + "/memory.memsw.limit_in_bytes")) {
    SV_TRY(WriteCgroupFile(mem + "/memory.memsw.limit_in_bytes", std::to_string(*r.memory_swap)));
  }
  if (r.memory_reservation && *r.memory_reservation != 0) {
    SV_TRY(WriteCgroupFile(mem + "/memory.soft_limit_in_bytes",
                           std::to_string(*r.memory_reservation)));
  }
  if (r.memory_swappiness && Exists(mem + "/memory.swappiness")) {
    SV_TRY(WriteCgroupFile(mem + "/memory.swappiness", std::to_string(*r.memory_swappiness)));
  }
  if (r.disable_oom_killer) SV_TRY(WriteCgroupFile(mem + "/memory.oom_control", "1"));
  if (r.memory_kernel) {
    // Linux 6.x keeps memory.kmem.limit_in_bytes but ignores writes (kernel memory is
    // charged to memory.limit_in_bytes): a warning, as runc gives, not a refusal, so that
    // such configs still get their other limits.
    Status s = WriteEnforcedLimit(mem + "/memory.kmem.limit_in_bytes", *r.memory_kernel,
                                  "linux.resources.memory.kernel");
    if (!s && s.error().code() == ErrorCode::kUnsupported && warnings != nullptr) {
      warnings->push_back(s.error().message() + " (ignored)");
    } else {
      SV_TRY(s);
    }
  }
  if (r.memory_kernel_tcp) {
    SV_TRY(WriteEnforcedLimit(mem + "/memory.kmem.tcp.limit_in_bytes", *r.memory_kernel_tcp,
                              "linux.resources.memory.kernelTCP"));
  }
  if (r.pids_limit && *r.pids_limit != 0) {
    SV_TRY(WriteCgroupFile(pids + "/pids.max",
                           *r.pids_limit < 0 ? "max" : std::to_string(*r.pids_limit)));
  }
  if (r.blkio_weight) {
    std::string f = Exists(blkio + "/blkio.weight") ? "/blkio.weight" : "/blkio.bfq.weight";
    if (!Exists(blkio + f)) {
      return Error(ErrorCode::kUnsupported,
                   "linux.resources.blockIO.weight: no blkio.weight here (needs CFQ or BFQ)");
    }
    SV_TRY(WriteCgroupFile(blkio + f, std::to_string(*r.blkio_weight)));
  }
  if (!dev.empty() && !r.devices.empty()) {
    for (const auto& rule : EffectiveDeviceRules(r.devices, devices)) {
      SV_TRY(WriteCgroupFile(dev + (rule.allow ? "/devices.allow" : "/devices.deny"),
                             DeviceRuleLine(rule)));
    }
  }
  // Hybrid: the container is also in a cgroup of the cgroup2 mount, and a device program
  // attaches to any v2 cgroup whatever controllers that hierarchy has. It is needed only
  // where v1 has no devices controller to enforce the rules (as runc does on hybrid): the
  // program's load and verification cost ~7% of a start's CPU here.
  std::string v2 = UnifiedDir();
  if (!v2.empty() && dev.empty() && !r.devices.empty()) {
    SV_TRY(AttachDeviceFilter(v2, CompileDeviceFilter(EffectiveDeviceRules(r.devices, devices))));
  }
  return Ok();
}

Status Cgroup::ApplyV2(const Resources& r, const std::vector<Device>& devices) const {
  const std::string& d = dirs_.at(0);
  if (r.memory_kernel || r.memory_kernel_tcp) {
    return Error(ErrorCode::kUnsupported,
                 "linux.resources.memory.kernel/kernelTCP: cgroup v2 has no kernel memory "
                 "limit (it is accounted in memory.max)");
  }
  if (!r.devices.empty()) {
    SV_TRY(AttachDeviceFilter(d, CompileDeviceFilter(EffectiveDeviceRules(r.devices, devices))));
  }
  if (r.cpu_shares) {
    SV_TRY(WriteCgroupFile(d + "/cpu.weight", std::to_string(CpuSharesToWeight(*r.cpu_shares))));
  }
  if (r.cpu_quota || r.cpu_period) {
    std::string quota = (!r.cpu_quota || *r.cpu_quota < 0) ? "max" : std::to_string(*r.cpu_quota);
    SV_TRY(WriteCgroupFile(d + "/cpu.max",
                           quota + " " + std::to_string(r.cpu_period.value_or(100000))));
  }
  if (!r.cpuset_cpus.empty()) SV_TRY(WriteCgroupFile(d + "/cpuset.cpus", r.cpuset_cpus));
  if (!r.cpuset_mems.empty()) SV_TRY(WriteCgroupFile(d + "/cpuset.mems", r.cpuset_mems));
  if (r.memory_limit && *r.memory_limit != 0) {
    SV_TRY(WriteCgroupFile(d + "/memory.max",
                           *r.memory_limit < 0 ? "max" : std::to_string(*r.memory_limit)));
    if (r.memory_swap && *r.memory_swap > 0 && *r.memory_limit > 0) {
      SV_TRY(WriteCgroupFile(d + "/memory.swap.max",
                             std::to_string(*r.memory_swap - *r.memory_limit)));
    }
  }
  if (r.memory_reservation && *r.memory_reservation > 0) {
    SV_TRY(WriteCgroupFile(d + "/memory.low", std::to_string(*r.memory_reservation)));
  }
  if (r.pids_limit && *r.pids_limit != 0) {
    SV_TRY(WriteCgroupFile(d + "/pids.max",
                           *r.pids_limit < 0 ? "max" : std::to_string(*r.pids_limit)));
  }
  if (r.blkio_weight) {
    SV_TRY(WriteCgroupFile(d + "/io.weight",
                           "default " + std::to_string(BlkioWeightToIoWeight(*r.blkio_weight))));
  }
  for (const auto& [file, value] : r.unified) SV_TRY(WriteCgroupFile(JoinPath(d, file), value));
  return Ok();
}

Status Cgroup::AddProcess(pid_t pid, bool skip_unified) const {
  std::string p = std::to_string(pid);
  std::string v2 = skip_unified ? UnifiedDir() : "";
  for (const auto& d : dirs_) {
    if (d != v2) SV_TRY(WriteCgroupFile(d + "/cgroup.procs", p));
  }
  return Ok();
}

Result<CgroupStats> Cgroup::Stats() const {
  CgroupStats s;
  if (mode_ == CgroupMode::kUnified) {
    const std::string& d = dirs_.at(0);
    s.memory_usage = ReadU64(d + "/memory.current");
    s.memory_max_usage = ReadU64(d + "/memory.peak");
    s.memory_limit = ReadU64(d + "/memory.max");
    s.oom_kills = ReadKeyed(d + "/memory.events", "oom_kill");
    s.cpu_usage_ns = ReadKeyed(d + "/cpu.stat", "usage_usec") * 1000;
    s.pids_current = ReadU64(d + "/pids.current");
    return s;
  }
  std::string mem = DirFor("memory");
  s.memory_usage = ReadU64(mem + "/memory.usage_in_bytes");
  s.memory_max_usage = ReadU64(mem + "/memory.max_usage_in_bytes");
  s.memory_limit = ReadU64(mem + "/memory.limit_in_bytes");
  s.oom_kills = ReadKeyed(mem + "/memory.oom_control", "oom_kill");
  s.cpu_usage_ns = ReadU64(DirFor("cpuacct") + "/cpuacct.usage");
  s.pids_current = ReadU64(DirFor("pids") + "/pids.current");
  return s;
}

uint64_t Cgroup::OomKills() const {
  if (mode_ == CgroupMode::kUnified) return ReadKeyed(dirs_.at(0) + "/memory.events", "oom_kill");
  std::string mem = DirFor("memory");
  return mem.empty() ? 0 : ReadKeyed(mem + "/memory.oom_control", "oom_kill");
}

Result<std::vector<pid_t>> Cgroup::Pids() const {
  std::vector<pid_t> out;
  std::string d = mode_ == CgroupMode::kUnified ? dirs_.at(0) : DirFor("pids");
  if (d.empty() && !dirs_.empty()) d = dirs_[0];
  auto text = ReadSmall(d + "/cgroup.procs");
  if (!text) {
    if (text.error().sys_errno() == ENOENT) return out;
    return std::move(text).error();
  }
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    if (nl > pos) out.push_back(static_cast<pid_t>(std::strtol(text->c_str() + pos, nullptr, 10)));
    pos = nl + 1;
  }
  return out;
}

namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Status Cgroup::Freeze(bool frozen) const {
  std::string v1 = mode_ == CgroupMode::kUnified ? "" : DirFor("freezer");
  std::string v2 = UnifiedDir();
  if (v1.empty() && v2.empty())
    return Error(ErrorCode::kUnsupported, "this host has no freezer (v1) nor cgroup2 cgroup");
  // The kernel freezes asynchronously (v1 shows FREEZING, v2 sets "frozen 1" in
  // cgroup.events when done): wait for it, up to 10 s, as runc does.
  for (int i = 0; i < 1000; ++i) {
    if (!v1.empty()) {
      const char* want = frozen ? "FROZEN" : "THAWED";
      // Re-writing FROZEN retries tasks that were busy in the kernel on the first pass.
      if (i % 10 == 0) SV_TRY(WriteCgroupFile(v1 + "/freezer.state", want));
      auto now = ReadSmall(v1 + "/freezer.state");
      if (!now) return std::move(now).error();
      if (Trimmed(*now) == want) return Ok();
    } else {
      if (i == 0) SV_TRY(WriteCgroupFile(v2 + "/cgroup.freeze", frozen ? "1" : "0"));
      if ((ReadKeyed(v2 + "/cgroup.events", "frozen") == 1) == frozen) return Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (frozen) (void)Freeze(false);
  return Error(ErrorCode::kTimeout,
               std::string("the cgroup did not ") + (frozen ? "freeze" : "thaw") + " in 10 s");
}

bool Cgroup::Frozen() const {
  std::string v1 = mode_ == CgroupMode::kUnified ? "" : DirFor("freezer");
  if (!v1.empty()) {
    auto now = ReadSmall(v1 + "/freezer.state");
    return now && Trimmed(*now) != "THAWED";
  }
  std::string v2 = UnifiedDir();
  return !v2.empty() && ReadKeyed(v2 + "/cgroup.events", "frozen") == 1;
}

Status Cgroup::Signal(int sig) const {
  for (int round = 0; round < 100; ++round) {
    SV_ASSIGN_OR_RETURN(auto pids, Pids());
    if (pids.empty()) return Ok();
    for (pid_t p : pids) ::kill(p, sig);
    // A frozen (paused) process does not die until it is thawed.
    if (sig == SIGKILL && round == 0 && Frozen()) (void)Freeze(false);
    if (sig != SIGKILL) return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Ok();
}

Status Cgroup::Destroy() const {
  for (const auto& d : dirs_) {
    SV_TRY(RemoveTree(d));
    // Parents made for this container (/storevisor, podman's parent...) go when empty.
    std::string rel = rel_;
    std::string parent = d;
    while (rel.find('/') != std::string::npos) {
      size_t cut = rel.find_last_of('/');
      parent.resize(parent.size() - (rel.size() - cut));
      rel.resize(cut);
      if (::rmdir(parent.c_str()) != 0) break;
    }
  }
  return Ok();
}

}  // namespace storevisor::runtime
