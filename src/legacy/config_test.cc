#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sv-legacy-test-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { (void)RemoveAll(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

HostLimits Host() { return HostLimits{.cpus = 4, .memory_mib = 8192}; }

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_.path() + "/base.raw";
    qcow_ = dir_.path() + "/disk.qcow2";
    ASSERT_TRUE(WriteFileAtomic(raw_, std::string(1024, '\0')).has_value());
    ASSERT_TRUE(
        WriteFileAtomic(qcow_, std::string("QFI\xfb", 4) + std::string(64, '\0')).has_value());
  }
  LegacyVmConfig Good() {
    LegacyVmConfig c;
    c.name = "pos-1";
    c.disks.push_back(DiskConfig{.path = raw_});
    return c;
  }
  // The message of Validate's error, or "" when it passed.
  std::string Refusal(const LegacyVmConfig& c) {
    auto s = Validate(c, Host());
    return s ? "" : s.error().message();
  }
  TempDir dir_;
  std::string raw_;
  std::string qcow_;
};

TEST_F(ConfigTest, ParsesEveryField) {
  auto c =
      ParseConfig(R"({"name":"pos-1","machine":"q35","firmware":"ovmf","cpus":2,"memory_mib":512,
    "accel":"tcg","disks":[{"path":"/x.qcow2","format":"qcow2","bus":"ide","overlay":true}],
    "nics":[{"model":"e1000","tap":"svtap0","bridge":"br0","mac":"52:54:00:12:34:56"}],
    "vga":"qxl","vnc":{"listen":"loopback","display":3,"password":"pw"},"tpm":true,
    "usb":[{"id":"0c2e:0B61"},{"id":"1-2.3"}]})",
                  "t.json");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->machine, Machine::kQ35);
  EXPECT_EQ(c->firmware, Firmware::kOvmf);
  EXPECT_EQ(c->cpus, 2);
  EXPECT_EQ(c->memory_mib, 512);
  EXPECT_EQ(c->accel, AccelChoice::kTcg);
  ASSERT_EQ(c->disks.size(), 1u);
  EXPECT_EQ(c->disks[0].format, DiskFormat::kQcow2);
  EXPECT_EQ(c->disks[0].bus, DiskBus::kIde);
  EXPECT_TRUE(c->disks[0].overlay);
  EXPECT_EQ(c->nics[0].model, NicModel::kE1000);
  EXPECT_EQ(c->nics[0].bridge, "br0");
  EXPECT_EQ(c->vga, VgaModel::kQxl);
  EXPECT_EQ(c->vnc.listen, VncListen::kLoopback);
  EXPECT_EQ(c->vnc.display, 3);
  EXPECT_TRUE(c->tpm);
  ASSERT_EQ(c->usb.size(), 2u);
  EXPECT_EQ(c->usb[0].ToString(), "0c2e:0b61");
  EXPECT_EQ(c->usb[1].ToString(), "1-2.3");
}

TEST_F(ConfigTest, UnknownVgaModelNamesFieldAndChoices) {
  auto c = ParseConfig(R"({"name":"pos-1","vga":"matrox"})", "pos.json");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.error().message(),
            "pos.json: vga: unknown value \"matrox\"; accepted: std, cirrus, qxl, virtio, none");
}

TEST_F(ConfigTest, MalformedUsbIdIsRefusedWithItsPath) {
  auto c =
      ParseConfig(R"({"name":"pos-1","usb":[{"id":"0c2e:0b61"},{"id":"0c2e-0b6"}]})", "pos.json");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message().find("pos.json: usb[1].id: "), std::string::npos)
      << c.error().message();
}

TEST_F(ConfigTest, UnknownFieldsAndWrongTypesAreRefused) {
  auto a = ParseConfig(R"({"name":"pos-1","disks":[{"path":"/x","formt":"raw"}]})", "p");
  ASSERT_FALSE(a.has_value());
  EXPECT_NE(a.error().message().find("disks[0].formt: unknown field"), std::string::npos)
      << a.error().message();
  auto b = ParseConfig(R"({"name":"pos-1","cpus":"two"})", "p");
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().message(), "p: cpus: must be an integer");
  auto c = ParseConfig(R"({"machine":"pc"})", "p");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message(), "p: name: missing (the VM's name)");
  auto d = ParseConfig("{\"name\": ", "p");
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("p: not valid JSON"), std::string::npos);
  auto e = ParseConfig("[]", "p");
  ASSERT_FALSE(e.has_value());
  auto f = ParseConfig(R"({"name":"pos-1","cpus":99999999999})", "p");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().message(), "p: cpus: out of range");
}

TEST(UsbIdTest, AcceptsBothForms) {
  auto a = ParseUsbId("046d:c52b");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a->vendor_id, 0x046d);
  EXPECT_EQ(*a->product_id, 0xc52b);
  auto b = ParseUsbId("3-1.4.2");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b->bus, 3);
  EXPECT_EQ(b->port, "1.4.2");
}

TEST(UsbIdTest, RefusesNastyIds) {
  for (const char* bad : {"",
                          ":",
                          "046d:",
                          ":c52b",
                          "46d:c52b",
                          "046d:c52bb",
                          "046g:c52b",
                          "0000:0001",
                          "1-",
                          "-1",
                          "0-1",
                          "256-1",
                          "1-0",
                          "1-32",
                          "1-1..2",
                          "1-1.2.",
                          "1-1.2.3.4.5.6.7.8",
                          "1-1,hostaddr=2",
                          "x-1",
                          "1-1a",
                          "12345-1"}) {
    EXPECT_FALSE(ParseUsbId(bad).has_value()) << bad;
  }
}

TEST(UsbIdTest, HotplugAcceptsCurrentAddressesToo) {
  auto a = ParseUsbHotplugId("3:12");
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(*a->bus, 3);
  EXPECT_EQ(*a->address, 12);
  EXPECT_EQ(a->ToString(), "3:12");
  auto b = ParseUsbHotplugId("046d:c52b");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b->vendor_id, 0x046d);
  EXPECT_FALSE(b->address.has_value());
  for (const char* bad : {"0:1", "1:0", "1:128", "256:1", "1:", ":1", "1:1:1", "a:1"}) {
    EXPECT_FALSE(ParseUsbHotplugId(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseUsbId("3:12").has_value()) << "configs take no addresses";
}

TEST_F(ConfigTest, GoodConfigPasses) { EXPECT_EQ(Refusal(Good()), ""); }

TEST_F(ConfigTest, MissingFirmwareIsRefused) {
  auto c = Good();
  c.firmware = Firmware::kOvmf;
  c.firmware_code = dir_.path() + "/OVMF_CODE_4M.fd";
  EXPECT_NE(Refusal(c).find("firmware_code: " + c.firmware_code + ": No such file"),
            std::string::npos)
      << Refusal(c);
  c.firmware = Firmware::kSeaBios;
  c.firmware_code = "/nonexistent/bios.bin";
  EXPECT_NE(Refusal(c).find("install Debian's seabios package"), std::string::npos) << Refusal(c);
}

TEST_F(ConfigTest, OvmfPairingAndSecureBootNeedQ35) {
  auto c = Good();
  c.firmware = Firmware::kOvmf;
  c.firmware_code = raw_;  // exists; name has neither _4M nor secboot
  c.firmware_vars = qcow_;
  EXPECT_EQ(Refusal(c), "");
  std::string code4m = dir_.path() + "/OVMF_CODE_4M.secboot.fd";
  ASSERT_TRUE(WriteFileAtomic(code4m, "x").has_value());
  c.firmware_code = code4m;
  EXPECT_NE(Refusal(c).find("needs SMM"), std::string::npos) << Refusal(c);
  c.machine = Machine::kQ35;
  EXPECT_NE(Refusal(c).find("2M and 4M builds mixed"), std::string::npos) << Refusal(c);
  c.firmware = Firmware::kSeaBios;
  c.firmware_code = raw_;
  EXPECT_NE(Refusal(c).find("SeaBIOS keeps no variable store"), std::string::npos);
}

TEST_F(ConfigTest, DiskFormatMustMatchTheFile) {
  auto c = Good();
  c.disks[0].path = qcow_;
  EXPECT_NE(
      Refusal(c).find("disks[0].format: " + qcow_ + " is a qcow2 image but format is \"raw\""),
      std::string::npos);
  c.disks[0].format = DiskFormat::kQcow2;
  EXPECT_EQ(Refusal(c), "");
  c.disks[0].path = raw_;
  EXPECT_NE(Refusal(c).find("is not a qcow2 image"), std::string::npos);
  c.disks[0].path = dir_.path() + "/missing.raw";
  EXPECT_NE(Refusal(c).find("disks[0].path: "), std::string::npos);
  c.disks.clear();
  EXPECT_NE(Refusal(c).find("disks: a legacy VM boots from a disk"), std::string::npos);
}

TEST_F(ConfigTest, IdeCapacityDependsOnMachine) {
  auto c = Good();
  c.disks.assign(5, DiskConfig{.path = raw_, .bus = DiskBus::kIde, .read_only = true});
  EXPECT_NE(Refusal(c).find("5 IDE disks but machine \"pc\" has room for 4"), std::string::npos)
      << Refusal(c);
  c.machine = Machine::kQ35;
  EXPECT_EQ(Refusal(c), "");
}

TEST_F(ConfigTest, LimitsAndNames) {
  auto c = Good();
  c.cpus = 5;
  EXPECT_NE(Refusal(c).find("cpus: 5 is outside 1..4"), std::string::npos);
  c.cpus = 1;
  c.memory_mib = 64;
  EXPECT_NE(Refusal(c).find("memory_mib: 64"), std::string::npos);
  c.memory_mib = 9000;
  EXPECT_NE(Refusal(c).find("memory_mib: 9000"), std::string::npos);
  c.memory_mib = 256;
  c.name = "POS 1";
  EXPECT_NE(Refusal(c).find("name: "), std::string::npos);
  c.name = std::string(64, 'a');
  EXPECT_NE(Refusal(c).find("name: "), std::string::npos);
}

TEST_F(ConfigTest, VncExposureRules) {
  auto c = Good();
  c.vnc.listen = VncListen::kLoopback;
  c.vnc.display = 1;
  EXPECT_NE(Refusal(c).find("vnc.password: a loopback VNC listener needs a password"),
            std::string::npos);
  c.vnc.password = "123456789";
  EXPECT_NE(Refusal(c).find("at most 8 characters"), std::string::npos);
  c.vnc.password = "s3cret";
  EXPECT_EQ(Refusal(c), "");
  c.vnc.display = 100;
  EXPECT_NE(Refusal(c).find("vnc.display"), std::string::npos);
  c.vnc = VncConfig{.listen = VncListen::kUnix};
  EXPECT_EQ(Refusal(c), "");
  c.vga = VgaModel::kNone;
  EXPECT_NE(Refusal(c).find("needs a graphics card"), std::string::npos);
}

TEST_F(ConfigTest, NicsNeedRealInterfaces) {
  auto c = Good();
  c.nics.push_back(NicConfig{.tap = "sv-no-such-tap"});
  EXPECT_NE(Refusal(c).find("nics[0].tap: no interface \"sv-no-such-tap\""), std::string::npos)
      << Refusal(c);
  c.nics[0].tap = "lo";
  EXPECT_EQ(Refusal(c), "");
  c.nics[0].mac = "53:54:00:12:34:56";
  EXPECT_NE(Refusal(c).find("nics[0].mac"), std::string::npos);
  c.nics[0].mac = "";
  c.nics[0].bridge = "sv-no-such-br";
  c.nics[0].tap = "svtap-x";
  EXPECT_NE(Refusal(c).find("nics[0].bridge: no bridge named"), std::string::npos);
  c.nics[0].tap = "a/b";
  EXPECT_NE(Refusal(c).find("nics[0].tap: \"a/b\" is not a valid interface name"),
            std::string::npos);
}

TEST_F(ConfigTest, DuplicateUsbDevicesAreRefused) {
  auto c = Good();
  c.usb.push_back(*ParseUsbId("0c2e:0b61"));
  c.usb.push_back(*ParseUsbId("0C2E:0B61"));
  EXPECT_NE(Refusal(c).find("usb[1].id: 0c2e:0b61 listed twice"), std::string::npos);
}

TEST_F(ConfigTest, JsonRoundTripRedactsThePassword) {
  auto c = Good();
  c.vnc = VncConfig{.listen = VncListen::kLoopback, .display = 2, .password = "hunter2"};
  c.usb.push_back(*ParseUsbId("1-2.3"));
  std::string redacted = ConfigToJson(c, false);
  EXPECT_EQ(redacted.find("hunter2"), std::string::npos);
  EXPECT_NE(redacted.find("<redacted>"), std::string::npos);
  auto back = ParseConfig(ConfigToJson(c, true), "roundtrip");
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->vnc.password, "hunter2");
  EXPECT_EQ(back->usb[0].ToString(), "1-2.3");
  EXPECT_EQ(ConfigToJson(*back, true), ConfigToJson(c, true));
}

}  // namespace
}  // namespace storevisor::legacy
