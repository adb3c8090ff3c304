// Golden command lines: every argument QEMU gets for a given config is pinned here.
#include <gtest/gtest.h>

#include "vm/vm.h"

namespace storevisor::vm {
namespace {

using Argv = std::vector<std::string>;

const RuntimePaths kPaths{"/s/qmp.sock", "/s/agent.sock", "/s/qemu.pid", "/s/console.log", false};
const AccelChoice kTcg{Accel::kTcg, "test", 2300000};
const AccelChoice kKvm{Accel::kKvm, "test", 0};

VmConfig Minimal() {
  VmConfig c;
  c.name = "pos-1";
  c.kernel = "/g/vmlinux";
  c.initrd = "/g/initrd.img";
  return c;
}

const Argv kTail = {"-chardev", "file,id=serial0,path=/s/console.log",
                    "-serial",  "chardev:serial0",
                    "-chardev", "socket,id=qmp0,path=/s/qmp.sock,server=on,wait=off",
                    "-mon",     "chardev=qmp0,mode=control",
                    "-chardev", "socket,id=agent0,path=/s/agent.sock,server=on,wait=off",
                    "-device",  "virtio-serial-pci,disable-legacy=on,max_ports=2",
                    "-device",  "virtserialport,chardev=agent0,name=org.qemu.guest_agent.0"};

Argv Concat(Argv a, const Argv& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(QemuCmdline, MinimalTcg) {
  Argv want = {
      "qemu-system-x86_64",
      "-name",
      "pos-1,debug-threads=on",
      "-M",
      "microvm,x-option-roms=off,isa-serial=on,rtc=on,pcie=on,pit=on,pic=on,mem-merge=off",
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-action",
      "panic=shutdown",
      "-accel",
      "tcg,thread=multi,tb-size=16",
      "-smp",
      "1",
      "-m",
      "256M",
      "-kernel",
      "/g/vmlinux",
      "-initrd",
      "/g/initrd.img",
      "-append",
      std::string("console=ttyS0 panic=-1 reboot=t cryptomgr.notests 8250.nr_uarts=1 audit=0 "
                  "percpu_alloc=page "
                  "initcall_blacklist=crypto_kdf108_init,blake2s_mod_init,tracer_init_tracefs ") +
          "noreplace-smp tsc_early_khz=2300000 tsc=reliable"};
  want = Concat(want, kTail);
  want = Concat(want, {"-device", "virtio-rng-device", "-device",
                       "virtio-balloon-device,free-page-reporting=on", "-device", "pvpanic",
                       "-pidfile", "/s/qemu.pid"});
  EXPECT_EQ(BuildQemuArgv(Minimal(), kTcg, kPaths), want);
}

TEST(QemuCmdline, KvmDisksNetsRootAndNoExtras) {
  VmConfig c = Minimal();
  c.cpus = 2;
  c.memory_mib = 512;
  c.mem_merge = false;
  c.rng = false;
  c.balloon = false;
  c.cmdline = "sv.debug=1";
  c.disks = {{"/d/root,1.ext4", false, "raw"}, {"/d/data.qcow2", true, "qcow2"}};
  c.root_disk = 1;
  c.nets = {{"tap0", "52:54:00:00:00:01"}};
  Argv want = {
      "qemu-system-x86_64",
      "-name",
      "pos-1,debug-threads=on",
      "-M",
      "microvm,x-option-roms=off,isa-serial=on,rtc=on,pcie=on,mem-merge=off",
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-action",
      "panic=shutdown",
      "-accel",
      "kvm",
      "-cpu",
      "host",
      "-smp",
      "2",
      "-m",
      "512M",
      "-kernel",
      "/g/vmlinux",
      "-initrd",
      "/g/initrd.img",
      "-append",
      std::string("console=ttyS0 panic=-1 reboot=t cryptomgr.notests 8250.nr_uarts=1 audit=0 "
                  "percpu_alloc=page "
                  "initcall_blacklist=crypto_kdf108_init,blake2s_mod_init,tracer_init_tracefs ") +
          "sv.root=/dev/vdb sv.rootmode=ro sv.debug=1"};
  want = Concat(want, kTail);
  want = Concat(
      want, {"-drive", "id=disk0,if=none,file=/d/root,,1.ext4,format=raw,cache=none,aio=threads",
             "-device", "virtio-blk-device,drive=disk0", "-drive",
             "id=disk1,if=none,file=/d/data.qcow2,format=qcow2,readonly=on,cache=none,aio=threads",
             "-device", "virtio-blk-device,drive=disk1", "-netdev",
             "tap,id=net0,ifname=tap0,script=no,downscript=no", "-device",
             "virtio-net-device,netdev=net0,mac=52:54:00:00:00:01", "-device", "pvpanic",
             "-pidfile", "/s/qemu.pid"});
  EXPECT_EQ(BuildQemuArgv(c, kKvm, kPaths), want);
}

TEST(QemuCmdline, GuestTracingKeepsTracefsButNotTheSelfTests) {
  VmConfig c = Minimal();
  EXPECT_NE(KernelCmdline(c, kTcg).find(",tracer_init_tracefs"), std::string::npos);
  c.guest_tracing = true;
  std::string k = KernelCmdline(c, kTcg);
  EXPECT_EQ(k.find("tracer_init_tracefs"), std::string::npos);
  EXPECT_NE(k.find(" initcall_blacklist=crypto_kdf108_init,blake2s_mod_init "), std::string::npos);
}

TEST(QemuCmdline, SnapshotRamFileSharedOnSaveAndPrivateOnRestore) {
  VmConfig c = Minimal();
  c.ram_file = "/snap/ram";
  c.rng = false;
  c.balloon = false;
  Argv save = BuildQemuArgv(c, kTcg, kPaths);
  auto has = [](const Argv& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  EXPECT_TRUE(
      has(save,
          "microvm,x-option-roms=off,isa-serial=on,rtc=on,pcie=on,pit=on,pic=on,mem-merge=off,"
          "memory-backend=ram0"));
  EXPECT_TRUE(
      has(save, "memory-backend-file,id=ram0,size=256M,mem-path=/snap/ram,share=on,merge=off"));
  EXPECT_FALSE(has(save, "-incoming"));
  // QEMU 7.2 would punch reported pages out of DIR/ram even for a restore's private
  // mapping: the guest is told to switch free page reporting off.
  EXPECT_NE(KernelCmdline(c, kTcg).find(" sv.reporting=off"), std::string::npos);
  EXPECT_EQ(KernelCmdline(Minimal(), kTcg).find("sv.reporting"), std::string::npos);
  RuntimePaths restore = kPaths;
  restore.incoming = true;
  Argv r = BuildQemuArgv(c, kTcg, restore);
  EXPECT_TRUE(
      has(r, "memory-backend-file,id=ram0,size=256M,mem-path=/snap/ram,share=off,merge=off"));
  ASSERT_GE(r.size(), 2u);
  EXPECT_EQ(r[r.size() - 2], "-incoming");
  EXPECT_EQ(r.back(), "defer");
}

TEST(QemuCmdline, SerialNoneAndUserQmp) {
  VmConfig c = Minimal();
  c.serial.kind = SerialConfig::Kind::kNone;
  c.qmp_path = "/u/qmp.sock";
  Argv v = BuildQemuArgv(c, kTcg, kPaths);
  auto at = std::find(v.begin(), v.end(), "-serial");
  ASSERT_NE(at, v.end());
  EXPECT_EQ(*(at + 1), "null");
  EXPECT_NE(std::find(v.begin(), v.end(), "socket,id=qmp1,path=/u/qmp.sock,server=on,wait=off"),
            v.end());
}

TEST(QemuCmdline, ConsoleSocketKeepsLoggingToTheConsoleFile) {
  VmConfig c = Minimal();
  c.serial.kind = SerialConfig::Kind::kFile;
  c.console_socket = "/s/console.sock";
  Argv v = BuildQemuArgv(c, kTcg, kPaths);
  auto at = std::find(v.begin(), v.end(), "-serial");
  ASSERT_NE(at, v.end());
  EXPECT_EQ(*(at + 1), "chardev:serial0");
  EXPECT_EQ(*(at - 1),
            "socket,id=serial0,path=/s/console.sock,server=on,wait=off,logfile=/s/console.log,"
            "logappend=on");
  c.serial.kind = SerialConfig::Kind::kNone;  // no serial at all wins over the socket
  v = BuildQemuArgv(c, kTcg, kPaths);
  at = std::find(v.begin(), v.end(), "-serial");
  ASSERT_NE(at, v.end());
  EXPECT_EQ(*(at + 1), "null");
}

TEST(QemuCmdline, OneVcpuKeepsItsSmpLockPrefixes) {
  VmConfig c = Minimal();
  EXPECT_NE(KernelCmdline(c, kTcg).find(" noreplace-smp"), std::string::npos);
  c.cpus = 2;  // nothing is rewritten with two CPUs, nothing to say
  EXPECT_EQ(KernelCmdline(c, kTcg).find("noreplace-smp"), std::string::npos);
}

TEST(QemuCmdline, NoLegacyDevicesOrRoms) {
  Argv v = BuildQemuArgv(Minimal(), kTcg, kPaths);
  for (const auto& a : v) {
    // The one PCI device is the agent's (modern-only) virtio-serial.
    if (a.find("pci") != std::string::npos) {
      EXPECT_TRUE(a == "virtio-serial-pci,disable-legacy=on,max_ports=2" ||
                  a.find("pcie=on") != std::string::npos)
          << a;
    }
    EXPECT_EQ(a.find("vga"), std::string::npos) << a;
    EXPECT_EQ(a.find("e1000"), std::string::npos) << a;
  }
  EXPECT_NE(std::find(v.begin(), v.end(), "-nodefaults"), v.end());
}

}  // namespace
}  // namespace storevisor::vm
