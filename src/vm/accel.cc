// Accelerator choice. kvm_pvm serves /dev/kvm on machines without VT-x/AMD-V but runs
// only PVM-built guest kernels (Debian's kernel aborts or hangs under it), so opening
// /dev/kvm proves nothing: we require the CPU flags and the absence of kvm_pvm too.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "vm/vm.h"

namespace storevisor::vm {

std::string_view AccelName(Accel a) { return a == Accel::kKvm ? "kvm" : "tcg"; }

namespace {

// "vmx", "svm" or "" from the first flags line of cpuinfo.
std::string VirtFlag(const std::string& cpuinfo) {
  std::ifstream f(cpuinfo);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string w;
    while (words >> w) {
      if (w == "vmx" || w == "svm") return w;
    }
    return "";
  }
  return "";
}

// Why KVM cannot be used, or "" when it can.
std::string KvmProblem(const HostPaths& p) {
  std::string flag = VirtFlag(p.cpuinfo);
  if (flag.empty()) return "the CPU has no VT-x/AMD-V (no vmx/svm flag in " + p.cpuinfo + ")";
  struct stat st {};
  if (::stat(p.kvm_pvm_module.c_str(), &st) == 0) {
    return p.dev_kvm + " is served by kvm_pvm, which cannot run a stock kernel";
  }
  int fd = ::open(p.dev_kvm.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return p.dev_kvm + " does not open read-write";
  ::close(fd);
  return "";
}

}  // namespace

uint64_t HostTscKhz(const std::string& cpuinfo) {
  std::ifstream f(cpuinfo);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) return 0;
    double mhz = std::strtod(line.c_str() + colon + 1, nullptr);
    return mhz > 0 && mhz < 100000 ? static_cast<uint64_t>(std::llround(mhz * 1000)) : 0;
  }
  return 0;
}

AccelChoice ChooseAccel(AccelMode mode, const HostPaths& paths) {
  if (mode == AccelMode::kTcg)
    return {Accel::kTcg, "tcg forced by the user", HostTscKhz(paths.cpuinfo)};
  std::string problem = KvmProblem(paths);
  if (mode == AccelMode::kKvm) {
    if (problem.empty()) return {Accel::kKvm, "kvm forced by the user"};
    return {Accel::kKvm, "kvm forced by the user although " + problem};
  }
  if (problem.empty()) {
    return {Accel::kKvm,
            "kvm: the CPU has " + VirtFlag(paths.cpuinfo) + " and " + paths.dev_kvm + " is usable"};
  }
  return {Accel::kTcg, "tcg (multi-threaded): " + problem, HostTscKhz(paths.cpuinfo)};
}

}  // namespace storevisor::vm
