// Golden command lines: testdata/golden/<name>.args holds one argument per line. After an
// intended change, regenerate with SV_UPDATE_GOLDEN=1 and review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/files.h"
#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

std::string GoldenPath(const std::string& name) {
  return std::string(SV_SOURCE_DIR) + "/src/legacy/testdata/golden/" + name + ".args";
}

void ExpectGolden(const std::string& name, const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& a : argv) text += a + "\n";
  if (std::getenv("SV_UPDATE_GOLDEN") != nullptr) {
    ASSERT_TRUE(WriteFileAtomic(GoldenPath(name), text).has_value());
  }
  auto golden = ReadFile(GoldenPath(name));
  ASSERT_TRUE(golden.has_value()) << golden.error().message();
  EXPECT_EQ(text, *golden) << "command line for " << name << " changed";
}

TEST(CommandLineTest, SeaBiosPcMinimal) {
  LegacyVmConfig c;
  c.name = "pos-1";
  c.disks.push_back(DiskConfig{.path = "/images/pos.raw"});
  auto paths = PathsFor("/run/sv/pos-1", c);
  ExpectGolden("seabios_pc_minimal", BuildCommandLine(c, paths, Accel::kTcg));
}

TEST(CommandLineTest, OvmfQ35EverythingOnKvm) {
  LegacyVmConfig c;
  c.name = "kiosk,2";  // a comma must not open a new QEMU option
  c.machine = Machine::kQ35;
  c.firmware = Firmware::kOvmf;
  c.cpus = 2;
  c.memory_mib = 1024;
  c.disks.push_back(DiskConfig{.path = "/images/base.raw", .bus = DiskBus::kIde, .overlay = true});
  c.disks.push_back(
      DiskConfig{.path = "/images/data.qcow2", .format = DiskFormat::kQcow2, .read_only = true});
  c.nics.push_back(NicConfig{.model = NicModel::kE1000, .tap = "svtap0", .bridge = "br-store"});
  c.vga = VgaModel::kCirrus;
  c.vnc = VncConfig{.listen = VncListen::kUnix, .password = "pw"};
  c.tpm = true;
  c.usb.push_back(*ParseUsbId("0c2e:0b61"));
  c.usb.push_back(*ParseUsbId("1-2.3"));
  auto paths = PathsFor("/run/sv/kiosk", c);
  auto argv = BuildCommandLine(c, paths, Accel::kKvm);
  ExpectGolden("ovmf_q35_full_kvm", argv);
  // The password never reaches the command line (it is set over QMP).
  for (const auto& a : argv) EXPECT_EQ(a.find("pw,"), std::string::npos) << a;
}

TEST(CommandLineTest, PcIdeSlotsLoopbackVnc) {
  LegacyVmConfig c;
  c.name = "pos-ide";
  for (int i = 0; i < 3; ++i)
    c.disks.push_back(DiskConfig{.path = "/images/d" + std::to_string(i), .bus = DiskBus::kIde});
  c.nics.push_back(
      NicConfig{.model = NicModel::kRtl8139, .tap = "tap9", .mac = "52:54:00:aa:bb:cc"});
  c.vga = VgaModel::kQxl;
  c.vnc = VncConfig{.listen = VncListen::kLoopback, .display = 7, .password = "x"};
  auto paths = PathsFor("/s", c);
  ExpectGolden("pc_ide_loopback_vnc", BuildCommandLine(c, paths, Accel::kTcg));
}

TEST(CommandLineTest, OverlayPathsLiveInTheStateDir) {
  LegacyVmConfig c;
  c.name = "a";
  c.disks.push_back(DiskConfig{.path = "/b.raw", .overlay = true});
  c.disks.push_back(DiskConfig{.path = "/c.raw"});
  auto p = PathsFor("/st", c);
  EXPECT_EQ(DiskPathForQemu(c, p, 0), "/st/disk0.qcow2");
  EXPECT_EQ(DiskPathForQemu(c, p, 1), "/c.raw");
}

TEST(CommandLineTest, DefaultMacIsStableUnicastAndPerNic) {
  EXPECT_EQ(DefaultMac("pos-1", 0), DefaultMac("pos-1", 0));
  EXPECT_NE(DefaultMac("pos-1", 0), DefaultMac("pos-1", 1));
  EXPECT_NE(DefaultMac("pos-1", 0), DefaultMac("pos-2", 0));
  EXPECT_EQ(DefaultMac("pos-1", 0).substr(0, 9), "52:54:00:");
  EXPECT_EQ(DefaultMac("pos-1", 0).size(), 17u);
}

}  // namespace
}  // namespace storevisor::legacy
