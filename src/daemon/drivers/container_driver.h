// Containers through an OCI runtime's command line (storevisor-runtime, or runc until it is
// built). Each container has a shim (`storevisord shim`, see shim.h), a detached process
// that is the container's subreaper: it collects the exit status, copies stdout/stderr into
// size-capped rotating log files and survives daemon restarts.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

struct ContainerDriverOptions {
  std::string runtime;    // path or name of the OCI runtime binary
  std::string root;       // the runtime's --root
  std::string state_dir;  // bundles, exit files
  std::string log_dir;
  std::string image_root;  // the image store (src/image): `image:` refs resolve here first
  std::string image_dir;   // directory images: <image_dir>/<name>_<tag>/rootfs ("" for none)
  std::string self_exe;    // storevisord, for `storevisord shim`
  uint64_t log_max_bytes = 1 << 20;
};

class ContainerDriver : public Driver {
 public:
  explicit ContainerDriver(ContainerDriverOptions options) : opt_(std::move(options)) {}
  Result<InstanceInfo> Create(const Workload& workload,
                              const std::vector<NetAttachment>& nets) override;
  Result<InstanceInfo> Inspect(const std::string& name, const std::string& driver_state) override;
  Status Remove(const std::string& name, const std::string& driver_state, int timeout_ms) override;
  Result<ExecOutput> Exec(const std::string& name, const std::string& driver_state,
                          const std::vector<std::string>& argv, int timeout_ms) override;
  std::string LogPath(const std::string& name) const override;
  std::string NetnsPath(const std::string& name, int64_t pid) const override;
  // The container's init and its shim: either ending ends the instance.
  std::vector<WatchedPid> WatchPids(const std::string& driver_state) const override;

  static std::string ContainerId(const std::string& name) { return "sv-" + name; }

 private:
  // The rootfs for a workload: its `rootfs:`, else its image from the image store (an
  // overlay bundle in <dir>/image, whose config fills in command/env/workdir the profile
  // leaves out), else a directory image. *resolved gets those defaults.
  Result<std::string> ResolveRootfs(const Workload& workload, Workload* resolved);
  Status SetUpNetwork(const Workload& workload, const std::vector<NetAttachment>& nets);
  void TearDownNetwork(const std::string& name);
  std::string Dir(const std::string& name) const { return opt_.state_dir + "/" + name; }
  void ReapShims();

  ContainerDriverOptions opt_;
  std::mutex mu_;
  std::vector<ChildProcess> shims_;  // shims this daemon started, reaped when they end
};

// Where a container's `image:` resolves: the image store first, then a directory image
// (<image_dir>/<name>_<tag>/rootfs). kNotFound, saying where it looked and how to import the
// image, when neither has it. The one lookup: Create uses it, and so does the apply-time
// check (precheck.h) that refuses a profile whose image is missing.
struct ImageLocation {
  bool in_store = false;   // in the image store (Create makes an overlay bundle of it)
  std::string rootfs_dir;  // else the directory image's rootfs
};
Result<ImageLocation> LocateImage(const std::string& image_root, const std::string& image_dir,
                                  const std::string& ref);

// The OCI runtime spec (config.json) for a workload: pure, unit-tested.
nlohmann::json MakeOciSpec(const Workload& workload, const std::string& rootfs,
                           const std::string& netns_path, const std::string& hostname);

}  // namespace storevisor::daemon
