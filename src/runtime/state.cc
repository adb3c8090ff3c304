#include "runtime/state.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <ctime>

#include "common/files.h"
#include "common/unique_fd.h"

namespace storevisor::runtime {

using json = nlohmann::json;

std::string ContainerDir(const std::string& root, const std::string& id) { return root + "/" + id; }

Status ValidateId(const std::string& id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == ".." ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") !=
          std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 "invalid container id '" + id + "': use letters, digits, '_', '+', '-', '.'");
  }
  return Ok();
}

Status WriteFast(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("write " + tmp);
  UniqueFd owned(fd);
  SV_TRY_CTX(WriteAll(fd, data), tmp);
  // Replacing an existing file with rename() makes ext4 (auto_da_alloc) start writeback of
  // the new one, and unlinking it at delete then waits for that I/O: ~4 ms per container
  // here. Exchanging the two names is just as atomic for readers and starts no I/O.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
    if (::unlink(tmp.c_str()) != 0) return ErrnoError("remove " + tmp);
    return Ok();
  }
  if (errno != ENOENT && errno != EINVAL && errno != ENOSYS) return ErrnoError("rename " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename " + tmp);
  return Ok();
}

std::string Rfc3339Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09ldZ", ts.tv_nsec);
  return std::string(buf) + frac;
}

Status WriteState(const std::string& root, const StateRecord& r) {
  json j = {{"id", r.id},
            {"bundle", r.bundle},
            {"created", r.created},
            {"pid", r.pid},
            {"pidStart", r.pid_start},
            {"creator", r.creator},
            {"creating", r.creating},
            {"monitor", r.monitor},
            {"cgroupMode", CgroupModeName(r.cgroup_mode)},
            {"cgroupRel", r.cgroup_rel},
            {"cgroupDirs", r.cgroup_dirs},
            {"annotations", r.annotations},
            {"poststart", r.poststart},
            {"poststop", r.poststop}};
  return WriteFast(ContainerDir(root, r.id) + "/state.json", j.dump());
}

Result<StateRecord> ReadState(const std::string& root, const std::string& id) {
  SV_TRY(ValidateId(id));
  auto text = ReadFile(ContainerDir(root, id) + "/state.json", 16u << 20);
  if (!text) {
    if (text.error().sys_errno() == ENOENT) {
      return Error(ErrorCode::kNotFound, "container \"" + id + "\" does not exist");
    }
    return std::move(text).error();
  }
  try {
    json j = json::parse(*text);
    StateRecord r;
    r.id = j.at("id").get<std::string>();
    r.bundle = j.at("bundle").get<std::string>();
    r.created = j.at("created").get<std::string>();
    r.pid = j.at("pid").get<pid_t>();
    r.pid_start = j.at("pidStart").get<uint64_t>();
    r.creator = j.at("creator").get<pid_t>();
    r.creating = j.at("creating").get<bool>();
    r.monitor = j.at("monitor").get<bool>();
    std::string mode = j.at("cgroupMode").get<std::string>();
    r.cgroup_mode = mode == "unified"  ? CgroupMode::kUnified
                    : mode == "hybrid" ? CgroupMode::kHybrid
                                       : CgroupMode::kLegacy;
    r.cgroup_rel = j.at("cgroupRel").get<std::string>();
    r.cgroup_dirs = j.at("cgroupDirs").get<std::vector<std::string>>();
    r.annotations = j.at("annotations").get<std::map<std::string, std::string>>();
    r.poststart = j.at("poststart");
    r.poststop = j.at("poststop");
    return r;
  } catch (const json::exception& e) {
    return Error(ErrorCode::kIo, "state of container " + id + " is corrupt: " + e.what() +
                                     " (delete --force removes it)");
  }
}

uint64_t ProcessStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] == 0) return 0;
  p += 2;
  char state = *p;
  if (state == 'Z' || state == 'X') return 0;
  for (int field = 3; field < 22 && p != nullptr; ++field) {
    p = std::strchr(p, ' ');
    if (p != nullptr) ++p;
  }
  return p == nullptr ? 0 : std::strtoull(p, nullptr, 10);
}

ContainerStatus ComputeStatus(const std::string& root, const StateRecord& r) {
  if (r.creating) {
    return ProcessStartTime(r.creator) != 0 ? ContainerStatus::kCreating
                                            : ContainerStatus::kStopped;
  }
  if (r.pid <= 0 || ProcessStartTime(r.pid) != r.pid_start) return ContainerStatus::kStopped;
  std::string fifo = ContainerDir(root, r.id) + "/exec.fifo";
  return ::access(fifo.c_str(), F_OK) == 0 ? ContainerStatus::kCreated : ContainerStatus::kRunning;
}

ExitInfo ReadExit(const std::string& root, const std::string& id) {
  ExitInfo e;
  auto text = ReadFile(ContainerDir(root, id) + "/exit.json", 4096);
  if (!text) return e;
  try {
    json j = json::parse(*text);
    e.exit_code = j.at("exitCode").get<int>();
    e.signal = j.at("signal").get<int>();
    e.oom_killed = j.at("oomKilled").get<bool>();
    e.known = true;
  } catch (const json::exception&) {
    e.known = false;
  }
  return e;
}

Status WriteExit(const std::string& root, const std::string& id, const ExitInfo& e) {
  json j = {{"exitCode", e.exit_code},
            {"signal", e.signal},
            {"oomKilled", e.oom_killed},
            {"finished", Rfc3339Now()}};
  return WriteFast(ContainerDir(root, id) + "/exit.json", j.dump());
}

}  // namespace storevisor::runtime
