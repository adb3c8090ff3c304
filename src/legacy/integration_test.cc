// Integration: boots the legacy test image (build/guest/legacy/legacy-pos.raw) under TCG
// with SeaBIOS and OVMF, reads the POS screen with tesseract, powers it down, kills a hung
// guest, refuses bad configs, and re-adopts a VM whose starter was killed. One QEMU at a
// time (RESOURCE_LOCK qemu); every test removes its QEMU, swtpm, sockets and files, even
// when it fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kImage = std::string(SV_BINARY_DIR) + "/guest/legacy/legacy-pos.raw";
const std::string kCli = std::string(SV_BINARY_DIR) + "/bin/storevisor-legacy";
constexpr const char* kTitle = "STOREVISOR POS";

bool Have(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

// A temporary state dir; on destruction any VM still running there is killed and
// everything it left is removed.
class Sandbox {
 public:
  Sandbox() {
    std::string tmpl = "/tmp/sv-legacy-it-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
  }
  ~Sandbox() {
    if (auto vm = LegacyVm::Attach(state())) (void)vm->Stop(milliseconds(0));
    (void)CleanupStateDir(state());
    (void)RemoveAll(dir_);
  }
  std::string state() const { return dir_ + "/state"; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

class LegacyVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool :
         {"/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", "/usr/bin/tesseract"}) {
      if (!Have(tool)) GTEST_SKIP() << "SKIPPED: " << tool << " not found (run scripts/setup.sh)";
    }
    if (!Have(kImage)) GTEST_SKIP() << "SKIPPED: " << kImage << " not built (run scripts/setup.sh)";
  }
  static LegacyVmConfig Config(Machine machine, Firmware firmware) {
    LegacyVmConfig c;
    c.name = "pos-it";
    c.machine = machine;
    c.firmware = firmware;
    c.memory_mib = 256;
    c.accel = AccelChoice::kAuto;
    DiskConfig disk;
    disk.path = kImage;
    disk.overlay = true;  // the shared base is never written
    disk.bus = machine == Machine::kPc ? DiskBus::kIde : DiskBus::kVirtio;
    c.disks.push_back(disk);
    c.vnc.listen = VncListen::kUnix;
    c.vnc.password = "pos";
    return c;
  }
  // Boots, waits for the POS title, saves a PNG screenshot; returns the running VM.
  static LegacyVm BootToPosScreen(const LegacyVmConfig& config, const Sandbox& box) {
    auto vm = LegacyVm::Start(config, box.state());
    EXPECT_TRUE(vm.has_value()) << vm.error().message();
    if (!vm) throw std::runtime_error("start failed");
    auto seen = vm->WaitForScreenText(kTitle, seconds(120));
    EXPECT_TRUE(seen.has_value()) << seen.error().message();
    if (seen) {
      EXPECT_FALSE(seen->blank);
      EXPECT_TRUE(TextContains(seen->text, "RECEIPT")) << seen->text;
    }
    return std::move(*vm);
  }
  static void ExpectPng(const std::string& path) {
    auto png = ReadFile(path);
    ASSERT_TRUE(png.has_value()) << png.error().message();
    ASSERT_GT(png->size(), 1000u);
    EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  }
  static void ExpectGone(LegacyVm& vm) {
    EXPECT_FALSE(vm.Alive());
    EXPECT_FALSE(Have(vm.paths().qmp_socket));
    EXPECT_FALSE(Have(vm.paths().vnc_socket));
    EXPECT_FALSE(Have(vm.paths().pidfile));
    EXPECT_EQ(LegacyVm::Attach(vm.paths().state_dir).error().code(), ErrorCode::kNotFound);
  }
};

TEST_F(LegacyVmTest, SeaBiosBootsToPosScreenAndPowersDownOnAcpi) {
  Sandbox box;
  auto config = Config(Machine::kPc, Firmware::kSeaBios);
  // Pass-through by vendor:product and by bus-port: QEMU accepts both without the device
  // (it attaches them when they appear); there is no USB hardware on these machines.
  config.usb.push_back(*ParseUsbId("0c2e:0b61"));
  config.usb.push_back(*ParseUsbId("1-2.3"));
  LegacyVm vm = BootToPosScreen(config, box);
  auto status = vm.QueryStatus();
  ASSERT_TRUE(status.has_value()) << status.error().message();
  EXPECT_EQ(*status, "running");
  EXPECT_EQ(vm.meta().vnc, "unix:" + box.state() + "/vnc.sock");
  EXPECT_TRUE(Have(box.state() + "/vnc.sock"));
  EXPECT_TRUE(Have(box.state() + "/disk0.qcow2"));
  ASSERT_TRUE(vm.Screenshot(box.dir() + "/screen.png").has_value());
  ExpectPng(box.dir() + "/screen.png");

  // USB hot-plug: by vendor:product QEMU accepts (and waits for the device); by current
  // bus:address it refuses a device that is not there, and we pass its words on.
  ASSERT_TRUE(vm.SubscribeEvents().has_value());
  ASSERT_TRUE(vm.UsbAttach("scanner", "0c2e:0b62").has_value());
  auto missing = vm.UsbAttach("drawer", "9:9");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message().find("failed to find host usb device 9:9"), std::string::npos)
      << missing.error().message();
  ASSERT_TRUE(vm.UsbDetach("scanner").has_value());
  auto event = vm.NextEvent(seconds(10));
  ASSERT_TRUE(event.has_value()) << event.error().message();
  ASSERT_TRUE(event->has_value());
  EXPECT_EQ((*event)->name, "DEVICE_DELETED");
  EXPECT_FALSE(vm.UsbDetach("scanner").has_value());  // already gone

  auto stop = vm.Stop(seconds(30));
  ASSERT_TRUE(stop.has_value()) << stop.error().message();
  EXPECT_TRUE(stop->was_running);
  EXPECT_TRUE(stop->clean) << "the guest did not power off on the ACPI power button";
  EXPECT_FALSE(stop->killed);
  ExpectGone(vm);
  auto serial = ReadFile(box.state() + "/serial.log");
  ASSERT_TRUE(serial.has_value());
  EXPECT_NE(serial->find("power button pressed"), std::string::npos) << *serial;
  EXPECT_NE(serial->find("tpm: NONE"), std::string::npos) << "no TPM configured: " << *serial;
}

TEST_F(LegacyVmTest, OvmfBootsToPosScreenWithItsOwnVarsAndTpm) {
  if (!Have("/usr/bin/swtpm")) GTEST_SKIP() << "SKIPPED: swtpm not found";
  Sandbox box;
  auto config = Config(Machine::kQ35, Firmware::kOvmf);
  config.tpm = true;
  LegacyVm vm = BootToPosScreen(config, box);
  EXPECT_TRUE(Have(box.state() + "/OVMF_VARS.fd"));
  EXPECT_TRUE(Have(box.state() + "/swtpm.sock"));
  // The guest's init reports /sys/class/tpm/tpm0 (and its major version) on the serial port.
  auto serial = ReadFile(box.state() + "/serial.log");
  ASSERT_TRUE(serial.has_value());
  EXPECT_NE(serial->find("tpm: TPM2 PRESENT"), std::string::npos) << *serial;
  ASSERT_TRUE(vm.Screenshot(box.dir() + "/uefi.png").has_value());
  ExpectPng(box.dir() + "/uefi.png");
  auto stop = vm.Stop(seconds(30));
  ASSERT_TRUE(stop.has_value()) << stop.error().message();
  EXPECT_TRUE(stop->clean);
  ExpectGone(vm);
  EXPECT_FALSE(Have(box.state() + "/swtpm.sock"));
  EXPECT_TRUE(Have(box.state() + "/OVMF_VARS.fd")) << "the VM's UEFI variables must persist";
}

TEST_F(LegacyVmTest, HungGuestIsKilledAfterTheTimeout) {
  Sandbox box;
  auto vm = LegacyVm::Start(Config(Machine::kPc, Firmware::kSeaBios), box.state());
  ASSERT_TRUE(vm.has_value()) << vm.error().message();
  // A paused guest cannot answer the power button: the same as a hung one.
  ASSERT_TRUE(vm->Pause().has_value());
  auto status = vm->QueryStatus();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, "paused");
  auto stop = vm->Stop(milliseconds(1500));
  ASSERT_TRUE(stop.has_value()) << stop.error().message();
  EXPECT_TRUE(stop->was_running);
  EXPECT_FALSE(stop->clean);
  EXPECT_TRUE(stop->killed);
  EXPECT_GE(stop->took.count(), 1500);
  ExpectGone(*vm);
}

TEST_F(LegacyVmTest, KillingTheStarterLeavesTheVmRunningAndItIsReadopted) {
  if (!Have(kCli)) GTEST_SKIP() << "SKIPPED: " << kCli << " not built";
  Sandbox box;
  std::string config_path = box.dir() + "/pos.json";
  ASSERT_TRUE(
      WriteFileAtomic(config_path, ConfigToJson(Config(Machine::kPc, Firmware::kSeaBios), true))
          .has_value());
  SpawnOptions so;
  so.argv = {kCli,        "run",         "--config", config_path, "--detach", "--state-dir",
             box.state(), "--wait-text", kTitle,     "--timeout", "120"};
  so.stdout_fd = -1;
  so.stderr_fd = -1;
  auto starter = ChildProcess::Spawn(so);
  ASSERT_TRUE(starter.has_value()) << starter.error().message();
  // Kill the starter while it waits for the screen: QEMU runs daemonized and survives.
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (!Have(box.state() + "/meta.json") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(Have(box.state() + "/meta.json"));
  ASSERT_TRUE(starter->Kill(SIGKILL).has_value());
  auto ended = starter->Wait(seconds(10));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->term_signal, SIGKILL);

  auto vm = LegacyVm::Attach(box.state());
  ASSERT_TRUE(vm.has_value()) << vm.error().message();
  EXPECT_TRUE(vm->Alive());
  auto seen = vm->WaitForScreenText(kTitle, seconds(120));
  ASSERT_TRUE(seen.has_value()) << seen.error().message();
  // The CLI adopts it as well, and stops it.
  auto status = RunCommand({kCli, "status", "--state-dir", box.state(), "-o", "json"});
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->out.find("\"status\":\"running\""), std::string::npos)
      << status->out << status->err;
  auto stop =
      RunCommand({kCli, "stop", "--state-dir", box.state(), "--timeout", "30", "-o", "json"});
  ASSERT_TRUE(stop.has_value());
  EXPECT_EQ(stop->status.exit_code, 0) << stop->err;
  EXPECT_NE(stop->out.find("\"clean\":true"), std::string::npos) << stop->out;
  ExpectGone(*vm);
}

TEST_F(LegacyVmTest, BadConfigsAreRefusedBeforeAnythingStarts) {
  if (!Have(kCli)) GTEST_SKIP() << "SKIPPED: " << kCli << " not built";
  Sandbox box;
  struct Case {
    std::string json;
    std::string expect;
  } cases[] = {
      {R"({"name":"p","vga":"matrox","disks":[{"path":")" + kImage + R"("}]})",
       "vga: unknown value \"matrox\"; accepted: std, cirrus, qxl, virtio, none"},
      {R"({"name":"p","firmware":"ovmf","firmware_code":"/nonexistent/OVMF_CODE_4M.fd","disks":[{"path":")" +
           kImage + R"("}]})",
       "firmware_code: /nonexistent/OVMF_CODE_4M.fd: No such file or directory; install Debian's "
       "ovmf package"},
      {R"({"name":"p","usb":[{"id":"0c2e:b61"}],"disks":[{"path":")" + kImage + R"("}]})",
       "usb[0].id: \"0c2e:b61\" is not vendor:product"},
      {R"({"name":"p","disks":[{"path":")" + kImage + R"(","format":"qcow2"}]})",
       "disks[0].format: " + kImage + " is not a qcow2 image"},
  };
  for (const auto& c : cases) {
    std::string path = box.dir() + "/bad.json";
    ASSERT_TRUE(WriteFileAtomic(path, c.json).has_value());
    auto run = RunCommand({kCli, "run", "--config", path, "--detach", "--state-dir", box.state()});
    ASSERT_TRUE(run.has_value());
    EXPECT_EQ(run->status.exit_code, 2) << c.json;  // invalid-argument
    EXPECT_NE(run->err.find(path + ": " + c.expect), std::string::npos) << run->err;
    EXPECT_FALSE(Have(box.state() + "/meta.json")) << "nothing may start";
  }
}

}  // namespace
}  // namespace storevisor::legacy
