// GET /v1/box: what the dashboard's box panel shows, read from /proc and /sys at each call
// (cheap: a few small files) and from the owner's snapshot.
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <sstream>

#include "common/files.h"
#include "daemon/daemon.h"
#include "vm/vm.h"

namespace storevisor::daemon {

namespace {

// A "Name:   123 kB" line of /proc/meminfo, in bytes (0 when absent).
uint64_t MeminfoBytes(const std::string& meminfo, const std::string& name) {
  std::istringstream in(meminfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    return std::strtoull(line.c_str() + name.size() + 1, nullptr, 10) * 1024;
  }
  return 0;
}

uint64_t ReadNumber(const std::string& path) {
  auto text = ReadFile(path, 64);
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

}  // namespace

int64_t Daemon::LastEventId() {
  // Ids grow by one from 1 (SQLite's rowid): the first id with no event after it, found by
  // doubling then halving with the store's indexed query, ~2 log2(N) look-ups.
  auto any_after = [this](int64_t id) {
    auto next = EventsSince(id, 1);
    return next && !next->empty();
  };
  int64_t hi = 1;
  while (any_after(hi) && hi < (INT64_C(1) << 52)) hi *= 2;
  int64_t lo = 0;  // invariant: events after lo, none after hi
  if (!any_after(lo)) return 0;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (any_after(mid) ? lo : hi) = mid;
  }
  return hi;
}

Result<api::BoxInfo> Daemon::Box() {
  api::BoxInfo b;
  b.version = opt_.version;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) b.hostname = host;
  utsname u{};
  if (::uname(&u) == 0) b.kernel = std::string(u.sysname) + " " + u.release;
  struct sysinfo si {};
  if (::sysinfo(&si) == 0) {
    b.uptime_s = si.uptime;
    for (int i = 0; i < 3; ++i) b.load[i] = static_cast<double>(si.loads[i]) / (1 << SI_LOAD_SHIFT);
  }
  b.cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  const std::string meminfo = ReadFile("/proc/meminfo", 1 << 16).value_or("");
  b.memory_total_bytes = MeminfoBytes(meminfo, "MemTotal");
  b.memory_available_bytes = MeminfoBytes(meminfo, "MemAvailable");
  struct statvfs fs {};
  if (::statvfs(opt_.state_dir.c_str(), &fs) == 0) {
    b.disk_total_bytes = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
    b.disk_free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  const vm::AccelChoice accel = vm::ChooseAccel(vm::AccelMode::kAuto);
  b.accel = std::string(vm::AccelName(accel.accel));
  b.accel_reason = accel.reason;
  b.ksm_saved_bytes = ReadNumber("/sys/kernel/mm/ksm/pages_sharing") *
                      static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  auto snap = owner_->snapshot();
  b.profile = snap->profile_name;
  b.generation = snap->generation;
  b.workloads = static_cast<int64_t>(snap->workloads.size());
  b.last_event_id = LastEventId();
  return b;
}

Result<Daemon::VncAccess> Daemon::DashboardDisplay(const std::string& name) {
  auto snap = owner_->snapshot();
  const Workload* w = snap->profile ? snap->profile->Find(name) : nullptr;
  if (w == nullptr) return Error(ErrorCode::kNotFound, "no workload named '" + name + "'");
  if (w->kind != WorkloadKind::kLegacyVm) {
    return Error(ErrorCode::kUnsupported, name + " has no screen (only legacy-vm workloads do)");
  }
  SV_ASSIGN_OR_RETURN(Running running, RunningWorkload(name));
  SV_ASSIGN_OR_RETURN(std::string socket, running.driver->DisplaySocket(name));
  return VncAccess{socket, w->legacy.vnc_password};
}

}  // namespace storevisor::daemon
