// legacy-vm in the daemon: profile fields and their refusals, the engine config the driver
// writes, apply-time checks against the host, and the screen routes of the API.
#include "daemon/drivers/legacy_driver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "daemon/api/api.h"
#include "legacy/legacy.h"

namespace storevisor::daemon {
namespace {

constexpr char kHead[] =
    "apiVersion: storevisor.io/v1\n"
    "kind: StoreProfile\n"
    "metadata: {name: t}\n"
    "spec:\n"
    "  networks: [{name: lane, subnet: 10.88.10.0/24}]\n"
    "  workloads:\n";

constexpr char kPos[] =
    "    - name: pos\n"
    "      kind: legacy-vm\n"
    "      machine: q35\n"
    "      firmware: ovmf\n"
    "      devices: emulated\n"
    "      vga: cirrus\n"
    "      vnc: {listen: unix, password: s3cret, token: abcdefghijklmnop0123}\n"
    "      tpm: true\n"
    "      usb: ['0c2e:0b61', '1-2.3']\n"
    "      cpus: 1.5\n"
    "      memory: 384Mi\n"
    "      networks: [lane]\n"
    "      disks: [{path: pos.raw, overlay: true}, {path: /srv/data.qcow2, format: qcow2}]\n"
    "      health: {screen: {contains: STOREVISOR POS}, interval: 5s, timeout: 5s}\n";

Result<Profile> Parse(const std::string& workloads) {
  return ParseProfile(std::string(kHead) + workloads, "/srv/p/t.yaml");
}

std::string Refusal(const std::string& workloads) {
  auto p = Parse(workloads);
  EXPECT_FALSE(p.has_value()) << workloads;
  return p ? std::string() : p.error().message();
}

// kPos with one line replaced (the line starting with `prefix`).
std::string PosWith(const std::string& prefix, const std::string& line) {
  std::string out;
  std::string text = kPos;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string l = text.substr(pos, nl - pos);
    out += (l.rfind(prefix, 0) == 0 ? line : l) + "\n";
    pos = nl + 1;
  }
  return out;
}

TEST(LegacyProfileTest, ReadsEveryLegacyField) {
  auto p = Parse(kPos);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  const Workload& w = p->workloads[0];
  EXPECT_EQ(w.kind, WorkloadKind::kLegacyVm);
  EXPECT_EQ(w.legacy.machine, "q35");
  EXPECT_EQ(w.legacy.firmware, "ovmf");
  EXPECT_EQ(w.legacy.devices, "emulated");
  EXPECT_EQ(w.legacy.vga, "cirrus");
  EXPECT_EQ(w.legacy.vnc_listen, "unix");
  EXPECT_EQ(w.legacy.vnc_password, "s3cret");
  EXPECT_EQ(w.legacy.display_token, "abcdefghijklmnop0123");
  EXPECT_TRUE(w.legacy.tpm);
  ASSERT_EQ(w.legacy.usb.size(), 2u);
  EXPECT_EQ(w.disks[0].path, "/srv/p/pos.raw");  // relative to the profile's folder
  EXPECT_TRUE(w.disks[0].overlay);
  EXPECT_EQ(w.disks[1].format, "qcow2");
  EXPECT_EQ(w.health.type, HealthType::kScreen);
  EXPECT_EQ(w.health.screen_text, "STOREVISOR POS");
}

TEST(LegacyProfileTest, SecretsAreFingerprintsInTheApiJsonButChangeTheHash) {
  auto a = Parse(kPos);
  auto b = Parse(PosWith("      vnc:", "      vnc: {listen: unix, password: other}"));
  ASSERT_TRUE(a.has_value() && b.has_value());
  const std::string json = WorkloadToJson(a->workloads[0]).dump();
  EXPECT_EQ(json.find("s3cret"), std::string::npos);
  EXPECT_EQ(json.find("abcdefghijklmnop0123"), std::string::npos);
  EXPECT_NE(RuntimeHash(a->workloads[0]), RuntimeHash(b->workloads[0]));
  EXPECT_EQ(WorkloadToJson(a->workloads[0])["health"]["screenText"], "STOREVISOR POS");
}

TEST(LegacyProfileTest, RefusesBadOptionsWithLineAndField) {
  EXPECT_EQ(Refusal(PosWith("      vga:", "      vga: matrox")),
            "/srv/p/t.yaml:12: spec.workloads[0].vga: expected one of std, cirrus, qxl, virtio, "
            "none, got 'matrox'");
  EXPECT_NE(Refusal(PosWith("      usb:", "      usb: ['0c2e:zz61']"))
                .find("t.yaml:15: spec.workloads[0].usb[0]: \"0c2e:zz61\" is not vendor:product"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      usb:", "      usb: ['1-2', '1-2']")).find("listed twice"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      machine:", "      machine: isapc")).find("machine: expected"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      firmware:", "      firmware: coreboot")).find("firmware:"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      devices:", "      devices: paravirt")).find("devices:"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      vnc:", "      vnc: {listen: unix, password: toolongpass}"))
                .find("at most 8 characters"),
            std::string::npos);
  EXPECT_NE(
      Refusal(PosWith("      vnc:", "      vnc: {listen: loopback}")).find("needs a password"),
      std::string::npos);
  EXPECT_NE(Refusal(PosWith("      vnc:", "      vnc: {listen: unix, token: short}"))
                .find("vnc.token: expected 16 to 128"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      vnc:", "      vnc: {listen: none}")).find("needs a display"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      disks:", "      disks: [{path: a.raw, format: vmdk}]"))
                .find("disks[0].format: expected one of raw, qcow2"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      disks:", "      disks: []")).find("needs a disk"),
            std::string::npos);
  EXPECT_NE(Refusal(PosWith("      health:", "      health: {screen: {notBlank: false}}"))
                .find("notBlank"),
            std::string::npos);
}

TEST(LegacyProfileTest, LegacyFieldsBelongToLegacyVmsOnly) {
  EXPECT_NE(Refusal("    - {name: kv, kind: container, image: kv, vga: std}\n")
                .find("spec.workloads[0].vga: only legacy-vm has this field"),
            std::string::npos);
  EXPECT_NE(Refusal("    - {name: vm, kind: microvm, kernel: /k, disks: [{path: /d, overlay: "
                    "true}]}\n")
                .find("only legacy-vm disks"),
            std::string::npos);
  EXPECT_NE(Refusal("    - {name: kv, kind: container, image: kv, health: {screen: {}}}\n")
                .find("only a legacy-vm has a screen"),
            std::string::npos);
}

TEST(LegacyDriverTest, ConfigFollowsTheLegacyEngineSchema) {
  auto p = Parse(kPos);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  NetAttachment lane{"lane", "sv-lane", "10.88.10.2", 24, "10.88.10.1"};
  const std::string tap = LegacyTapName("pos", 0);
  EXPECT_LE(tap.size(), 15u);
  EXPECT_NE(tap, LegacyTapName("pos2", 0));
  auto j = MakeLegacyConfig(p->workloads[0], {lane}, {tap});
  EXPECT_EQ(j["cpus"], 2);
  EXPECT_EQ(j["memory_mib"], 384);
  EXPECT_EQ(j["disks"][0]["bus"], "ide");  // devices: emulated
  EXPECT_TRUE(j["disks"][0]["overlay"].get<bool>());
  EXPECT_EQ(j["disks"][1]["format"], "qcow2");
  EXPECT_EQ(j["nics"][0]["model"], "e1000");
  EXPECT_EQ(j["nics"][0]["bridge"], "sv-lane");
  EXPECT_EQ(j["nics"][0]["tap"], tap);
  EXPECT_EQ(j["vnc"]["password"], "s3cret");
  EXPECT_EQ(j["usb"][1]["id"], "1-2.3");
  // The engine's own parser accepts what the driver writes.
  auto parsed = legacy::ParseConfig(j.dump(), "vm.json");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->machine, legacy::Machine::kQ35);
  EXPECT_TRUE(parsed->tpm);
  EXPECT_EQ(parsed->vga, legacy::VgaModel::kCirrus);
}

TEST(LegacyDriverTest, ApplyTimeCheckNamesTheProfileField) {
  const std::string dir = ::testing::TempDir() + "/legacy-check";
  ASSERT_TRUE(MakeDirs(dir).has_value());
  const std::string disk = dir + "/pos.raw";
  ASSERT_TRUE(WriteFileAtomic(disk, std::string(1 << 20, '\0')).has_value());
  const std::string base = "    - name: pos\n      kind: legacy-vm\n      disks: [{path: " + disk;
  auto ok = ParseProfile(std::string(kHead) + base + "}]\n", "/srv/t.yaml");
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_TRUE(CheckLegacyWorkloads(*ok).has_value());

  auto missing_fw = ParseProfile(
      std::string(kHead) + base + "}]\n      firmwareCode: /nonexistent/bios.bin\n", "/srv/t.yaml");
  ASSERT_TRUE(missing_fw.has_value());
  auto st = CheckLegacyWorkloads(*missing_fw);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message().rfind("/srv/t.yaml:7: spec.workloads[0].firmwareCode: ", 0), 0u)
      << st.error().message();

  auto wrong_format =
      ParseProfile(std::string(kHead) + base + ", format: qcow2}]\n", "/srv/t.yaml");
  ASSERT_TRUE(wrong_format.has_value());
  st = CheckLegacyWorkloads(*wrong_format);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message().find("spec.workloads[0].disks[0]"), std::string::npos)
      << st.error().message();

  auto huge = ParseProfile(std::string(kHead) + base + "}]\n      cpus: 255\n", "/srv/t.yaml");
  ASSERT_TRUE(huge.has_value());
  st = CheckLegacyWorkloads(*huge);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message().find("spec.workloads[0].cpus: "), std::string::npos)
      << st.error().message();
  (void)RemoveAll(dir);
}

TEST(LegacyDriverTest, ExampleProfileParses) {
  const std::string path = std::string(SV_SOURCE_DIR) + "/examples/legacy-pos-lane.yaml";
  auto text = ReadFile(path);
  ASSERT_TRUE(text.has_value()) << path;
  auto p = ParseProfile(*text, path);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  const Workload* w = p->Find("pos-legacy");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->kind, WorkloadKind::kLegacyVm);
  EXPECT_EQ(w->health.type, HealthType::kScreen);
  EXPECT_EQ(w->disks[0].path,
            std::string(SV_SOURCE_DIR) + "/examples/../build/guest/legacy/legacy-pos.raw");
  // With the image built (scripts/setup.sh), the host checks pass too; the e2e test
  // (src/legacy/daemon_e2e_test.sh) applies this very file through the daemon.
  if (::access(w->disks[0].path.c_str(), R_OK) == 0) {
    Status st = CheckLegacyWorkloads(*p);
    EXPECT_TRUE(st.has_value()) << st.error().message();
  }
}

HttpRequest Get(const std::string& path, const std::string& token = "") {
  HttpRequest r;
  r.method = "GET";
  r.path = path;
  if (!token.empty()) r.headers["x-display-token"] = token;
  return r;
}

TEST(LegacyApiTest, ScreenRoutes) {
  auto shot = ParseApiRequest(Get("/v1/workloads/pos/screenshot"));
  ASSERT_TRUE(shot.has_value());
  EXPECT_EQ(shot->op, ApiOp::kScreenshot);
  EXPECT_EQ(shot->name, "pos");
  auto display = ParseApiRequest(Get("/v1/workloads/pos/display", "abcdefghijklmnop"));
  ASSERT_TRUE(display.has_value());
  EXPECT_EQ(display->op, ApiOp::kDisplay);
  EXPECT_EQ(display->token, "abcdefghijklmnop");
  HttpRequest post = Get("/v1/workloads/pos/screenshot");
  post.method = "POST";
  auto refused = ParseApiRequest(post);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnsupported);
  EXPECT_FALSE(ParseApiRequest(Get("/v1/workloads/pos/display", std::string(300, 'a'))));
}

}  // namespace
}  // namespace storevisor::daemon
