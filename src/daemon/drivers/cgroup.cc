#include "daemon/drivers/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/files.h"
#include "common/unique_fd.h"

namespace storevisor::daemon {

namespace {

bool IsFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// "/a/b/c" -> {"/a", "/a/b", "/a/b/c"}.
std::vector<std::string> Prefixes(const std::string& path) {
  std::vector<std::string> out;
  for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    out.push_back(path.substr(0, pos));
    if (pos == std::string::npos) break;
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status WriteControl(const std::string& file, const std::string& value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return Error(ErrorCode::kIo, "open " + file + ": " + std::strerror(errno));
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return Error(ErrorCode::kIo, "write '" + value + "' to " + file + ": " + std::strerror(errno));
  }
  return Ok();
}

}  // namespace

std::string_view CgroupLayoutName(CgroupLayout layout) {
  switch (layout) {
    case CgroupLayout::kNone:
      return "none";
    case CgroupLayout::kV1:
      return "v1";
    case CgroupLayout::kV2:
      return "v2";
    case CgroupLayout::kHybrid:
      return "hybrid";
  }
  return "none";
}

CgroupLayout DetectCgroupLayout(const std::string& root) {
  if (IsFile(root + "/cgroup.controllers")) return CgroupLayout::kV2;
  const bool v1 = IsDir(root + "/memory") || IsDir(root + "/cpuset") || IsDir(root + "/cpu");
  if (!v1) return CgroupLayout::kNone;
  return IsFile(root + "/unified/cgroup.controllers") ? CgroupLayout::kHybrid : CgroupLayout::kV1;
}

std::vector<CgroupWrite> PlanCgroup(CgroupLayout layout, const std::string& root,
                                    const std::string& path, const CgroupLimits& limits,
                                    const std::string& parent_cpus,
                                    const std::string& parent_mems) {
  std::vector<CgroupWrite> w;
  constexpr int64_t kPeriod = 100000;
  const std::string quota =
      limits.cpus > 0 ? std::to_string(static_cast<int64_t>(std::llround(limits.cpus * kPeriod)))
                      : "";
  if (layout == CgroupLayout::kV2) {
    const auto parts = Prefixes(path);
    for (size_t i = 0; i < parts.size(); ++i) {
      w.push_back({root + parts[i], "", ""});
      // Controllers must be enabled in every parent for the leaf to have their files.
      if (i + 1 < parts.size()) {
        for (const char* c : {"+cpuset", "+cpu", "+memory"}) {
          w.push_back({root + parts[i], "cgroup.subtree_control", c});
        }
      }
    }
    const std::string dir = root + path;
    if (!limits.cpuset.empty()) w.push_back({dir, "cpuset.cpus", limits.cpuset});
    if (!quota.empty()) w.push_back({dir, "cpu.max", quota + " " + std::to_string(kPeriod)});
    if (limits.memory_bytes > 0) {
      w.push_back({dir, "memory.max", std::to_string(limits.memory_bytes)});
    }
    return w;
  }
  if (layout != CgroupLayout::kV1 && layout != CgroupLayout::kHybrid) return w;
  // v1 (and hybrid, whose v2 part holds no controller we use): one folder per controller.
  const std::string cpuset_root = root + "/cpuset";
  for (const auto& p : Prefixes(path)) {
    w.push_back({cpuset_root + p, "", ""});
    // A new v1 cpuset is empty and takes no task until given CPUs and memory nodes.
    w.push_back({cpuset_root + p, "cpuset.mems", parent_mems});
    const bool leaf = p == path;
    w.push_back({cpuset_root + p, "cpuset.cpus",
                 leaf && !limits.cpuset.empty() ? limits.cpuset : parent_cpus});
  }
  const std::string memory_root = root + "/memory";
  const std::string mem = memory_root + path;
  for (const auto& p : Prefixes(path)) w.push_back({memory_root + p, "", ""});
  // Pages QEMU touched before the move are charged to the new group too.
  w.push_back({mem, "memory.move_charge_at_immigrate", "3"});
  if (limits.memory_bytes > 0) {
    w.push_back({mem, "memory.limit_in_bytes", std::to_string(limits.memory_bytes)});
  }
  const std::string cpu_root = root + "/cpu";
  const std::string cpu = cpu_root + path;
  for (const auto& p : Prefixes(path)) w.push_back({cpu_root + p, "", ""});
  // cpuacct: the CPU time `ps`, `top` and /metrics read (a link to cpu/ when comounted).
  const std::string cpuacct_root = root + "/cpuacct";
  for (const auto& p : Prefixes(path)) w.push_back({cpuacct_root + p, "", ""});
  if (!quota.empty()) {
    w.push_back({cpu, "cpu.cfs_period_us", std::to_string(kPeriod)});
    w.push_back({cpu, "cpu.cfs_quota_us", quota});
  }
  return w;
}

std::vector<std::string> CgroupDirs(const std::string& path, const std::string& root) {
  switch (DetectCgroupLayout(root)) {
    case CgroupLayout::kV2:
      return {root + path};
    case CgroupLayout::kV1:
    case CgroupLayout::kHybrid:
      return {root + "/cpuset" + path, root + "/memory" + path, root + "/cpu" + path,
              root + "/cpuacct" + path};
    case CgroupLayout::kNone:
      break;
  }
  return {};
}

Status PlaceInCgroup(const std::string& path, const CgroupLimits& limits, int64_t pid,
                     const std::string& root) {
  const CgroupLayout layout = DetectCgroupLayout(root);
  if (layout == CgroupLayout::kNone) {
    return Error(ErrorCode::kUnsupported, "no cgroup hierarchy under " + root);
  }
  std::string cpus = "0";
  std::string mems = "0";
  if (layout != CgroupLayout::kV2) {
    cpus = Trim(ReadFile(root + "/cpuset/cpuset.cpus", 4096).value_or("0"));
    mems = Trim(ReadFile(root + "/cpuset/cpuset.mems", 4096).value_or("0"));
  }
  const std::string leaf_cpuset = root + "/cpuset" + path;
  // Accounting only: a v1 host without a cpuacct mount still gets its limits.
  const std::string cpuacct = root + "/cpuacct";
  const bool has_cpuacct = layout == CgroupLayout::kV2 || IsDir(cpuacct);
  auto skipped = [&](const std::string& dir) {
    return !has_cpuacct && dir.compare(0, cpuacct.size() + 1, cpuacct + "/") == 0;
  };
  for (const auto& step : PlanCgroup(layout, root, path, limits, cpus, mems)) {
    if (skipped(step.dir)) continue;
    if (step.file.empty()) {
      if (::mkdir(step.dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return Error(ErrorCode::kIo, "mkdir " + step.dir + ": " + std::strerror(errno));
      }
      continue;
    }
    // A parent's cpuset that is already set (by an earlier workload) is left alone.
    const bool parent_cpuset =
        (step.file == "cpuset.cpus" || step.file == "cpuset.mems") && step.dir != leaf_cpuset;
    if (parent_cpuset && !Trim(ReadFile(step.dir + "/" + step.file, 4096).value_or("")).empty()) {
      continue;
    }
    // A controller the parent lacks cannot be enabled (its limit write then says so); newer
    // kernels refuse moving charges (deprecated): then only pages touched later are charged.
    if (step.file == "cgroup.subtree_control" || step.file == "memory.move_charge_at_immigrate") {
      (void)WriteControl(step.dir + "/" + step.file, step.value);
      continue;
    }
    SV_TRY(WriteControl(step.dir + "/" + step.file, step.value));
  }
  for (const auto& dir : CgroupDirs(path, root)) {
    if (!skipped(dir)) SV_TRY(WriteControl(dir + "/cgroup.procs", std::to_string(pid)));
  }
  return Ok();
}

std::vector<std::string> CgroupHierarchies(const std::string& root) {
  switch (DetectCgroupLayout(root)) {
    case CgroupLayout::kV2:
      return {root};
    case CgroupLayout::kV1:
    case CgroupLayout::kHybrid:
      break;
    case CgroupLayout::kNone:
      return {};
  }
  // Every mounted hierarchy (the OCI runtime makes a container's cgroup in all of them, not
  // only in the three the daemon writes limits to); comounts' symlinks would repeat one.
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<ResourceUsage> ReadCgroupUsage(const std::string& path, const std::string& root) {
  const CgroupLayout layout = DetectCgroupLayout(root);
  ResourceUsage u;
  auto number = [](const std::string& file) -> std::optional<uint64_t> {
    auto text = ReadFile(file, 4096);
    if (!text || text->empty() || (*text)[0] < '0' || (*text)[0] > '9') return std::nullopt;
    return std::strtoull(text->c_str(), nullptr, 10);
  };
  if (layout == CgroupLayout::kV2) {
    auto stat = ReadFile(root + path + "/cpu.stat", 4096);
    auto mem = number(root + path + "/memory.current");
    const size_t at = stat ? stat->find("usage_usec ") : std::string::npos;
    if (at == std::string::npos || !mem) {
      return Error(ErrorCode::kNotFound, "no cgroup v2 accounting in " + root + path);
    }
    u.cpu_ns = std::strtoull(stat->c_str() + at + 11, nullptr, 10) * 1000;
    u.memory_bytes = *mem;
    return u;
  }
  if (layout == CgroupLayout::kNone) return Error(ErrorCode::kNotFound, "no cgroups");
  // cpuacct alone, or comounted with cpu (then cpu/ and cpuacct/ are links to cpu,cpuacct/).
  std::optional<uint64_t> cpu;
  for (const char* h : {"/cpuacct", "/cpu,cpuacct", "/cpu"}) {
    std::string file = root + h;
    file += path;
    file += "/cpuacct.usage";
    cpu = number(file);
    if (cpu) break;
  }
  auto mem = number(root + "/memory" + path + "/memory.usage_in_bytes");
  if (!cpu || !mem) return Error(ErrorCode::kNotFound, "no cgroup v1 accounting for " + path);
  u.cpu_ns = *cpu;
  u.memory_bytes = *mem;
  return u;
}

void RemoveCgroup(const std::string& path, const std::string& root) {
  for (const auto& dir : CgroupDirs(path, root)) (void)::rmdir(dir.c_str());
}

void PruneEmptyCgroups(const std::string& path, const std::string& root) {
  // Deepest first, in every hierarchy. rmdir only: the kernel refuses a cgroup that still
  // has a child cgroup (a workload, an older runtime's /storevisor/runtime/<id>) or a process, so
  // this never takes away what another user of /storevisor still needs.
  const auto parts = Prefixes(path);
  for (const auto& hierarchy : CgroupHierarchies(root)) {
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (::rmdir((hierarchy + *it).c_str()) != 0 && errno != ENOENT) break;
    }
  }
}

Result<std::string> PlaceQemuInWorkloadCgroup(const std::string& name, const std::string& cpuset,
                                              double cpus, uint64_t guest_memory_bytes,
                                              int64_t pid) {
  constexpr uint64_t kQemuOverheadBytes = 256ULL << 20;
  if (DetectCgroupLayout() == CgroupLayout::kNone) return std::string();
  CgroupLimits limits;
  limits.cpuset = cpuset;
  limits.cpus = cpus;
  limits.memory_bytes = std::max<uint64_t>(128ULL << 20, guest_memory_bytes) + kQemuOverheadBytes;
  std::string path = WorkloadCgroupPath(name);
  SV_TRY(PlaceInCgroup(path, limits, pid));
  return path;
}

}  // namespace storevisor::daemon
