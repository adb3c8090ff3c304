#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/files.h"
#include "vm/vm.h"

namespace storevisor::vm {
namespace {

// A fake host: cpuinfo, /dev/kvm (a plain file stands in: only open() is probed) and
// /sys/module/kvm_pvm, each present or not.
class FakeHost {
 public:
  FakeHost(const std::string& flags, bool dev_kvm, bool pvm) {
    char t[] = "/tmp/accelXXXXXX";
    dir_ = mkdtemp(t);
    std::ofstream(dir_ + "/cpuinfo")
        << "processor\t: 0\ncpu MHz\t\t: 2300.000\nflags\t\t: fpu " << flags << " sse2\n";
    if (dev_kvm) std::ofstream(dir_ + "/kvm") << "";
    if (pvm) mkdir((dir_ + "/kvm_pvm").c_str(), 0755);
    paths_ = HostPaths{dir_ + "/cpuinfo", dir_ + "/kvm", dir_ + "/kvm_pvm"};
  }
  ~FakeHost() { (void)RemoveAll(dir_); }
  const HostPaths& paths() const { return paths_; }

 private:
  std::string dir_;
  HostPaths paths_;
};

TEST(Accel, KvmWhenVmxAndDevKvmAndNoPvm) {
  FakeHost h("vmx hypervisor", true, false);
  AccelChoice c = ChooseAccel(AccelMode::kAuto, h.paths());
  EXPECT_EQ(c.accel, Accel::kKvm);
  EXPECT_NE(c.reason.find("vmx"), std::string::npos);
  EXPECT_EQ(c.tsc_khz, 0u);
}

TEST(Accel, KvmWithSvm) {
  FakeHost h("svm", true, false);
  EXPECT_EQ(ChooseAccel(AccelMode::kAuto, h.paths()).accel, Accel::kKvm);
}

TEST(Accel, TcgWithoutCpuFlags) {
  FakeHost h("hypervisor", true, false);
  AccelChoice c = ChooseAccel(AccelMode::kAuto, h.paths());
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_NE(c.reason.find("no VT-x/AMD-V"), std::string::npos);
  EXPECT_EQ(c.tsc_khz, 2300000u);
}

TEST(Accel, TcgUnderKvmPvmEvenWithFlags) {
  FakeHost h("vmx", true, true);
  AccelChoice c = ChooseAccel(AccelMode::kAuto, h.paths());
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_NE(c.reason.find("kvm_pvm"), std::string::npos);
}

TEST(Accel, TcgWithoutDevKvm) {
  FakeHost h("vmx", false, false);
  AccelChoice c = ChooseAccel(AccelMode::kAuto, h.paths());
  EXPECT_EQ(c.accel, Accel::kTcg);
  EXPECT_NE(c.reason.find("does not open"), std::string::npos);
}

TEST(Accel, UserCanForceEither) {
  FakeHost h("vmx", true, true);
  AccelChoice k = ChooseAccel(AccelMode::kKvm, h.paths());
  EXPECT_EQ(k.accel, Accel::kKvm);
  EXPECT_NE(k.reason.find("forced"), std::string::npos);
  EXPECT_NE(k.reason.find("kvm_pvm"), std::string::npos);  // and says why it may not work
  FakeHost good("vmx", true, false);
  AccelChoice t = ChooseAccel(AccelMode::kTcg, good.paths());
  EXPECT_EQ(t.accel, Accel::kTcg);
  EXPECT_NE(t.reason.find("forced"), std::string::npos);
}

TEST(Accel, HostTscKhzMissingIsZero) { EXPECT_EQ(HostTscKhz("/nonexistent/cpuinfo"), 0u); }

}  // namespace
}  // namespace storevisor::vm
