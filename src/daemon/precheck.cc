// The rules of precheck.h (pure: the host comes in as a PrecheckHost).
#include "daemon/precheck.h"

#include <cstdio>
#include <map>
#include <set>

#include "image/image.h"

namespace storevisor::daemon {

namespace {

// Collects "file:line: spec.workloads[i].field: what" lines.
class Failures {
 public:
  explicit Failures(const Profile& p) : p_(p) {}
  void Add(size_t i, const std::string& field, const std::string& what) {
    if (!text_.empty()) text_ += '\n';
    text_ += p_.file + ":" + std::to_string(p_.workloads[i].line) + ": spec.workloads[" +
             std::to_string(i) + "]." + field + ": " + what;
  }
  void Check(size_t i, const std::string& field, const Status& st) {
    if (!st) Add(i, field, st.error().message());
  }
  Status Result() const {
    return text_.empty() ? Ok() : Status(Error(ErrorCode::kInvalidArgument, text_));
  }

 private:
  const Profile& p_;
  std::string text_;
};

void CheckVmFiles(const Workload& w, size_t i, const PrecheckHost& host, Failures* out) {
  if (!w.kernel.empty()) out->Check(i, "kernel", host.Readable(w.kernel));
  if (!w.initrd.empty()) out->Check(i, "initrd", host.Readable(w.initrd));
  for (size_t d = 0; d < w.disks.size(); ++d) {
    out->Check(i, "disks[" + std::to_string(d) + "].path", host.Readable(w.disks[d].path));
  }
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace

Status CheckProfileNeeds(const Profile& next, const PrecheckHost& host) {
  Failures out(next);
  for (size_t i = 0; i < next.workloads.size(); ++i) {
    const Workload& w = next.workloads[i];
    if (w.kind == WorkloadKind::kContainer) {
      if (!w.image.empty()) out.Check(i, "image", host.ImagePresent(w.image));
    } else {
      CheckVmFiles(w, i, host, &out);
    }
  }
  return out.Result();
}

Status CheckMemoryForApply(const Profile& next, const std::vector<RunningInstance>& running,
                           const PrecheckHost& host) {
  const std::optional<uint64_t> available = host.AvailableMemory();
  if (!available) return Ok();
  std::map<std::string, const RunningInstance*> now;
  for (const auto& r : running) now[r.name] = &r;
  uint64_t starts = 0;
  uint64_t frees = 0;
  for (const Workload& w : next.workloads) {
    auto it = now.find(w.name);
    if (it == now.end()) {
      starts += w.memory_bytes;
      continue;
    }
    const RunningInstance& r = *it->second;
    now.erase(it);
    if (r.runtime_hash == RuntimeHash(w) || w.update == UpdateStrategy::kManual) continue;
    starts += w.memory_bytes;  // replaced: the new instance runs after the old one stopped
    frees += r.memory_bytes;
  }
  for (const auto& [name, r] : now) frees += r->memory_bytes;  // leaves the profile
  const double ratio = next.memory_overcommit < 1.0 ? 1.0 : next.memory_overcommit;
  const double allowed = static_cast<double>(*available + frees) * ratio;
  if (static_cast<double>(starts) <= allowed) return Ok();
  char msg[320];
  std::snprintf(msg, sizeof msg,
                ": the instances this apply starts ask for %.0f MiB of memory, more than the "
                "%.0f MiB there is (%.0f MiB available now + %.0f MiB the instances it stops "
                "free, x spec.limits.memoryOvercommit %.2f)",
                Mib(starts), allowed / (1024.0 * 1024.0), Mib(*available), Mib(frees), ratio);
  return Error(ErrorCode::kResourceExhausted, next.file + msg);
}

std::vector<ImageUse> ImagesInUse(const std::vector<const Profile*>& profiles,
                                  const std::vector<const Workload*>& instances) {
  std::map<std::string, std::set<std::string>> users;
  auto add = [&users](const Workload& w) {
    if (w.kind != WorkloadKind::kContainer || w.image.empty()) return;
    auto ref = image::NormalizeRef(w.image);
    users[ref ? *ref : w.image].insert(w.name);
  };
  for (const Profile* p : profiles) {
    if (p == nullptr) continue;
    for (const Workload& w : p->workloads) add(w);
  }
  for (const Workload* w : instances) {
    if (w != nullptr) add(*w);
  }
  std::vector<ImageUse> out;
  out.reserve(users.size());
  for (auto& [image, names] : users) out.push_back({image, {names.begin(), names.end()}});
  return out;
}

}  // namespace storevisor::daemon
