#include <gtest/gtest.h>

#include "vm/vm.h"

namespace storevisor::vm {
namespace {

Result<VmConfig> Parse(const std::string& text) { return ParseVmConfig(text, "vm.json", "/base"); }

void ExpectError(const std::string& text, const std::string& needle) {
  auto r = Parse(text);
  ASSERT_FALSE(r.has_value()) << text;
  EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(VmConfig, ParsesFullConfigAndResolvesRelativePaths) {
  auto c = Parse(R"({"name":"pos-1","kernel":"k/vmlinux","initrd":"/abs/initrd",
    "cmdline":"foo=1","cpus":2,"memory_mib":512,
    "disks":[{"path":"root.img"},{"path":"/data.qcow2","readonly":true,"format":"qcow2"}],
    "root_disk":0,"nets":[{"tap":"tap0","mac":"52:54:00:12:34:56"}],
    "serial":"file:/tmp/c.log","accel":"tcg","mem_merge":false,"balloon":false,"rng":true,
    "ready_timeout_s":5,"stop_timeout_s":3,"tcg_tb_size_mib":32,"guest_tracing":true})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->kernel, "/base/k/vmlinux");
  EXPECT_EQ(c->initrd, "/abs/initrd");
  EXPECT_EQ(c->disks[0].path, "/base/root.img");
  EXPECT_TRUE(c->disks[1].readonly);
  EXPECT_EQ(c->disks[1].format, "qcow2");
  EXPECT_EQ(c->root_disk, 0);
  EXPECT_EQ(c->nets[0].tap, "tap0");
  EXPECT_EQ(c->serial.kind, SerialConfig::Kind::kFile);
  EXPECT_EQ(c->serial.path, "/tmp/c.log");
  EXPECT_EQ(c->accel, AccelMode::kTcg);
  EXPECT_FALSE(c->mem_merge);
  EXPECT_EQ(c->tcg_tb_size_mib, 32u);
  EXPECT_TRUE(c->guest_tracing);
  EXPECT_FALSE(Parse(R"({"kernel":"/k"})")->guest_tracing);
}

TEST(VmConfig, RoundTripsThroughJson) {
  auto c = Parse(R"({"kernel":"/k","disks":[{"path":"/d","readonly":true}],"nets":[{"tap":"t"}]})");
  ASSERT_TRUE(c.has_value());
  auto again = ParseVmConfig(c->ToJson().dump(), "again");
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ(again->ToJson(), c->ToJson());
}

TEST(VmConfig, DefaultTranslationCacheIsSmall) {
  // 16 MiB: under TCG the translation cache is most of QEMU's idle RSS (docs/vm.md, Benchmark).
  auto c = Parse(R"({"kernel":"/k"})");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->tcg_tb_size_mib, 16u);
}

TEST(VmConfig, ErrorsNameTheFieldPath) {
  ExpectError(R"({"kernel":"/k","disks":[{"path":"/a"},{"path":7}]})",
              "vm.json: disks[1].path: must be a string");
  ExpectError(R"({"kernel":"/k","disks":[{"path":"/a","readonly":"yes"}]})",
              "disks[0].readonly: must be true or false");
  ExpectError(R"({"kernel":"/k","disks":[{"path":"/a","fromat":"raw"}]})",
              "disks[0].fromat: unknown field");
  ExpectError(R"({"kernel":"/k","memory":256})", "memory: unknown field");
  ExpectError(R"({"kernel":"/k","memory_mib":64})", "memory_mib: must be between 128");
  ExpectError(R"({"kernel":"/k","cpus":0})", "cpus: must be between 1 and 64");
  ExpectError(R"({"kernel":"/k","serial":"tty"})", "serial: must be stdout, none or file:PATH");
  ExpectError(R"({"kernel":"/k","accel":"hvf"})", "accel: must be auto, kvm or tcg");
  ExpectError(R"({"kernel":"/k","nets":[{"tap":"a,b"}]})", "nets[0].tap");
  ExpectError(R"({"kernel":"/k","nets":[{"tap":"t","mac":"zz"}]})", "nets[0].mac");
  ExpectError(R"({"kernel":"/k","root_disk":0})", "root_disk: no such disk index");
  ExpectError(R"({"kernel":"/k","disks":[{"path":"/a,b"}]})",
              "disks[0].path: must not contain ','");
  ExpectError(R"({"initrd":"/i"})", "kernel: is required");
  ExpectError(R"({"kernel":"/k","name":"a b"})", "name:");
  ExpectError(R"([1])", "must be a JSON object");
  ExpectError(R"({"kernel":"/k","console_socket":"c.sock"})",
              "console_socket: must be an absolute path");
  ExpectError(R"({"kernel":"/k","console_socket":"/)" + std::string(120, 'a') + R"("})",
              "console_socket: longer than a unix socket path may be");
}

TEST(VmConfig, ConsoleSocketRoundTripsAndIsOptional) {
  auto c = Parse(R"({"kernel":"/k","serial":"file:/s/console.log","console_socket":"/s/c.sock"})");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->console_socket, "/s/c.sock");
  EXPECT_EQ(c->ToJson()["console_socket"], "/s/c.sock");
  auto plain = Parse(R"({"kernel":"/k"})");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->ToJson().contains("console_socket"));
}

TEST(VmConfig, SyntaxErrorsGiveTheLine) {
  ExpectError("{\n\"kernel\": \"/k\",\n\"cpus\": ,\n}", "vm.json:3: not valid JSON");
}

TEST(VmConfig, HostValidation) {
  char dir[] = "/tmp/vmcfgXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string d = dir;
  std::string garbage = d + "/garbage";
  FILE* f = fopen(garbage.c_str(), "w");
  fputs("this is not a kernel", f);
  fclose(f);
  auto c = Parse(R"({"kernel":")" + garbage + R"("})");
  ASSERT_TRUE(c.has_value());
  auto s = ValidateForHost(*c, 4096);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("neither a bzImage nor an ELF"), std::string::npos);
  c->kernel = d + "/missing";
  s = ValidateForHost(*c, 4096);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(s.error().message().find("kernel: '" + d + "/missing'"), std::string::npos);
  f = fopen(garbage.c_str(), "w");
  fputs(
      "\x7f"
      "ELF....",
      f);
  fclose(f);
  c->kernel = garbage;
  c->memory_mib = 8192;
  s = ValidateForHost(*c, 4096);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(ValidateForHost(*c, 16384).has_value());
  std::remove(garbage.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace storevisor::vm
