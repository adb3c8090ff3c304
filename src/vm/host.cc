// What the engine does to and reads from the host around a QEMU process: switching on
// KSM for mergeable guests, reclaiming QEMU's boot-only file copies once the guest is
// ready, and the counters `storevisor-vm status` reports for metrics.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <sstream>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"
#include "vm/vm.h"

namespace storevisor::vm {

using nlohmann::json;

Result<KsmChange> EnsureHostKsm(const std::string& run_file) {
  SV_ASSIGN_OR_RETURN(std::string now, ReadFile(run_file, 64));
  while (!now.empty() && (now.back() == '\n' || now.back() == ' ')) now.pop_back();
  KsmChange c{now, false};
  if (now != "0") return c;  // on already, or unmerging (2): an operator's choice
  // Not WriteFileAtomic: a sysfs attribute is written in place, never renamed over.
  UniqueFd fd(::open(run_file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), "1", 1) != 1) {
    return ErrnoError(run_file + ": cannot switch KSM on (needs root)");
  }
  c.switched_on = true;
  return c;
}

namespace {

struct FileId {
  dev_t dev;
  ino_t ino;
};

// "maj:min" in hex as /proc/PID/maps prints it.
bool SameDevice(const std::string& majmin, dev_t dev) {
  auto colon = majmin.find(':');
  if (colon == std::string::npos) return false;
  unsigned long maj = std::strtoul(majmin.substr(0, colon).c_str(), nullptr, 16);
  unsigned long min = std::strtoul(majmin.substr(colon + 1).c_str(), nullptr, 16);
  return maj == major(dev) && min == minor(dev);
}

}  // namespace

Result<uint64_t> TrimBootCopies(pid_t pid, const std::vector<std::string>& files) {
  std::vector<FileId> ids;
  for (const auto& f : files) {
    struct stat st {};
    if (!f.empty() && ::stat(f.c_str(), &st) == 0) ids.push_back({st.st_dev, st.st_ino});
  }
  SV_ASSIGN_OR_RETURN(std::string maps, ReadFile("/proc/" + std::to_string(pid) + "/maps"));
  std::vector<iovec> ranges;
  std::istringstream in(maps);
  std::string line;
  while (std::getline(in, line) && ranges.size() < 512) {
    std::istringstream l(line);
    std::string range, perms, offset, dev;
    unsigned long long inode = 0;
    if (!(l >> range >> perms >> offset >> dev >> inode) || inode == 0) continue;
    bool ours = false;
    for (const auto& id : ids) ours = ours || (id.ino == inode && SameDevice(dev, id.dev));
    // Only private mappings: shared ones would be another process's data too.
    if (!ours || perms.size() < 4 || perms[3] != 'p') continue;
    auto dash = range.find('-');
    uintptr_t lo = std::strtoull(range.substr(0, dash).c_str(), nullptr, 16);
    uintptr_t hi = std::strtoull(range.substr(dash + 1).c_str(), nullptr, 16);
    if (hi > lo) ranges.push_back({reinterpret_cast<void*>(lo), hi - lo});
  }
  if (ranges.empty()) return uint64_t{0};
  SV_ASSIGN_OR_RETURN(UniqueFd pidfd, OpenPidFd(pid));
  long n =
      ::syscall(SYS_process_madvise, pidfd.get(), ranges.data(), ranges.size(), MADV_PAGEOUT, 0U);
  if (n < 0) return ErrnoError("process_madvise(MADV_PAGEOUT) on QEMU pid " + std::to_string(pid));
  return static_cast<uint64_t>(n);
}

namespace {

// A number after `key` in x-query-jit's text ("TB count            16209").
std::optional<uint64_t> JitField(const std::string& text, const std::string& key) {
  auto pos = text.find("\n" + key);
  if (pos == std::string::npos) return std::nullopt;
  pos += key.size() + 1;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') return std::nullopt;
  return std::strtoull(text.c_str() + pos, nullptr, 10);
}

json TcgCounters(const std::string& text) {
  json t = json::object();
  auto code = JitField(text, "gen code size");
  if (code) {
    t["code_bytes"] = *code;
    auto slash = text.find('/', text.find("gen code size"));
    if (slash != std::string::npos)
      t["code_capacity_bytes"] = std::strtoull(text.c_str() + slash + 1, nullptr, 10);
  }
  for (auto [key, name] : {std::pair{"TB count", "tb_count"},
                           {"TB flush count", "tb_flushes"},
                           {"TB invalidate count", "tb_invalidations"}}) {
    auto v = JitField(text, key);
    if (v) t[name] = *v;
  }
  return t;
}

// utime+stime of one thread, in seconds.
std::optional<double> ThreadCpuSeconds(pid_t pid, int64_t tid) {
  auto stat =
      ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat", 4096);
  if (!stat) return std::nullopt;
  auto paren = stat->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream in(stat->substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {  // fields 14 and 15 of stat(5)
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

Result<json> QemuCounters(QmpClient& qmp, pid_t pid) {
  json c = json::object();
  auto vm_stats = qmp.Execute("query-stats", {{"target", "vm"}});
  if (vm_stats) c["qemu_stats"] = *vm_stats;  // QEMU >= 7.1; KVM's counters, [] under TCG
  auto cpus = qmp.Execute("query-cpus-fast");
  if (cpus && cpus->is_array()) {
    json v = json::array();
    for (const auto& cpu : *cpus) {
      if (!cpu.is_object() || !cpu.contains("thread-id") || !cpu["thread-id"].is_number_integer())
        continue;
      int64_t tid = cpu["thread-id"];
      json e{{"index", cpu.value("cpu-index", -1)}, {"thread_id", tid}};
      auto s = ThreadCpuSeconds(pid, tid);
      if (s) e["cpu_seconds"] = *s;
      v.push_back(e);
    }
    c["vcpus"] = v;
  }
  auto balloon = qmp.Execute("query-balloon");
  if (balloon && balloon->contains("actual")) c["balloon_actual_bytes"] = (*balloon)["actual"];
  auto mem = qmp.Execute("query-memory-size-summary");
  if (mem && mem->contains("base-memory")) c["guest_memory_bytes"] = (*mem)["base-memory"];
  auto jit = qmp.Execute("x-query-jit");  // unstable (x-) and TCG only: omitted if absent
  if (jit && jit->contains("human-readable-text") && (*jit)["human-readable-text"].is_string())
    c["tcg"] = TcgCounters((*jit)["human-readable-text"].get<std::string>());
  auto status = ReadFile("/proc/" + std::to_string(pid) + "/status", 1u << 16);
  if (status) {
    for (auto [key, name] : {std::pair{"VmRSS:", "rss_bytes"},
                             {"RssAnon:", "rss_anon_bytes"},
                             {"RssFile:", "rss_file_bytes"}}) {
      auto pos = status->find(std::string("\n") + key);
      if (pos != std::string::npos)
        c[name] = std::strtoull(status->c_str() + pos + std::strlen(key) + 1, nullptr, 10) * 1024;
    }
  }
  return c;
}

}  // namespace storevisor::vm
