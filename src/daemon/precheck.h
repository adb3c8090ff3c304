// What an apply checks before it touches anything (docs/daemon.md, "Checks before an
// apply"): everything the new profile needs from the host (container images, VM kernels,
// initrds and disks) and memory enough for the instances it starts, counting what the
// instances it stops free; and which images the workloads use (`storevisor image rm` refuses
// those). The rules are pure: the host is asked through PrecheckHost, faked in the tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "daemon/profile/profile.h"

namespace storevisor::daemon {

// What the checks ask of the host.
class PrecheckHost {
 public:
  virtual ~PrecheckHost() = default;
  // Ok when a container's `image:` resolves where the container driver looks at create
  // (LocateImage: the image store, then the image directory); its error otherwise.
  virtual Status ImagePresent(const std::string& ref) const = 0;
  // Ok when path is a file (or block device) this daemon can open for reading; otherwise
  // the error, "PATH: No such file or directory".
  virtual Status Readable(const std::string& path) const = 0;
  // The memory the host can give now without swapping (MemAvailable), in bytes; nullopt
  // when unknown (the memory rule is then skipped).
  virtual std::optional<uint64_t> AvailableMemory() const = 0;
};

// The real host: the image store and directory the daemon's container driver uses, the
// file system, /proc/meminfo.
class SystemPrecheckHost : public PrecheckHost {
 public:
  SystemPrecheckHost(std::string image_root, std::string image_dir)
      : image_root_(std::move(image_root)), image_dir_(std::move(image_dir)) {}
  Status ImagePresent(const std::string& ref) const override;
  Status Readable(const std::string& path) const override;
  std::optional<uint64_t> AvailableMemory() const override;

 private:
  std::string image_root_;
  std::string image_dir_;
};

// Every file and image the profile's workloads need, all failures at once, one per line:
// "file:line: spec.workloads[i].field: what" (kInvalidArgument, exit status 2). Containers:
// `image:` (a `rootfs:` directory may appear later: the driver retries its create). VMs:
// kernel, initrd and every disk. Legacy VMs' firmware and disk formats are checked after
// this by CheckLegacyWorkloads.
Status CheckProfileNeeds(const Profile& next, const PrecheckHost& host);

// An instance that exists now (the owner's snapshot): what it was made from.
struct RunningInstance {
  std::string name;
  std::string runtime_hash;  // RuntimeHash of the spec it was made from
  uint64_t memory_bytes = 0;
};

// The apply starts an instance for every workload of `next` that has none, or whose instance
// was made from another runtime spec (an `update: manual` one keeps its instance); it stops
// the instances it replaces and those of workloads that leave. Refuses (kResourceExhausted,
// exit status 7) when the memory the started instances ask for is more than the host's
// available memory plus what the stopped instances free, times spec.limits.memoryOvercommit.
Status CheckMemoryForApply(const Profile& next, const std::vector<RunningInstance>& running,
                           const PrecheckHost& host);

// One image and the workloads that use it.
struct ImageUse {
  std::string image;                   // NAME:TAG, normalized (busybox -> busybox:latest)
  std::vector<std::string> workloads;  // sorted, each once
};
// The container images the given profiles use (the applied generation's; a trial's too) and
// those existing instances were made from (an `update: manual` workload runs on the image of
// an earlier profile), each with the workloads using it; sorted by image.
std::vector<ImageUse> ImagesInUse(const std::vector<const Profile*>& profiles,
                                  const std::vector<const Workload*>& instances);

}  // namespace storevisor::daemon
