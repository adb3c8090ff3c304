// The QEMU command line for one microvm guest, built from a validated VmConfig. Pure:
// it touches no file, so golden tests pin every argument.
//
// Choices (see docs/vm.md): -nodefaults and x-option-roms=off so no legacy device or
// option ROM is created; qboot (microvm's default firmware) and direct kernel boot;
// virtio-mmio devices described to the guest by ACPI (Debian's kernel has no
// virtio-mmio command-line devices), except the agent's virtio-serial, which is on
// microvm's PCIe bus to keep its receive buffers small; under TCG the PIT and PIC are switched on
// (the kernel calibrates its TSC with the PIT and hangs without it).
#include <string>

#include "vm/vm.h"

namespace storevisor::vm {

std::string KernelCmdline(const VmConfig& c, const AccelChoice& a) {
  // panic=-1 + reboot=t: a panicking guest resets at once and, with -no-reboot, QEMU
  // exits instead of hanging. No `quiet`: on microvm it hung ~1 boot in 10 here.
  // cryptomgr.notests skips the crypto self-tests and 8250.nr_uarts=1 the probing of
  // three absent UARTs; audit=0: no audit daemon consumes records in our guests. Each
  // costs tenths of a second under TCG and protects nothing (measured: docs/vm.md).
  //
  // initcall_blacklist skips init functions by name, in the unmodified kernel:
  // crypto_kdf108_init and blake2s_mod_init only run self-tests (those cryptomgr.notests
  // does not reach); tracer_init_tracefs builds tracefs, ~10000 inodes and dentries for
  // the trace events: ~0.2 s of the boot and ~9 MiB of slab under TCG (VmConfig::
  // guest_tracing keeps it). Measured with initcall_debug and QEMU's CPU time: docs/vm.md.
  //
  // percpu_alloc=page: the default "embed" first chunk rounds a 1-vCPU guest's per-CPU unit
  // up to 2 MiB, and each dynamic chunk then carries a memcg map of 8 bytes per 4-byte
  // slot: 4 MiB of guest memory for ~0.3 MiB of per-CPU data. Page-sized units keep the
  // map small; the price is 4 KiB mappings for per-CPU data, immaterial here.
  //
  // No pci=off: the agent's virtio-serial sits on microvm's PCIe bus (BuildQemuArgv).
  std::string s =
      "console=ttyS0 panic=-1 reboot=t cryptomgr.notests 8250.nr_uarts=1 audit=0 "
      "percpu_alloc=page initcall_blacklist=crypto_kdf108_init,blake2s_mod_init";
  if (!c.guest_tracing) s += ",tracer_init_tracefs";
  if (c.cpus == 1) {
    // A kernel that boots with one CPU rewrites every `lock` prefix of its text to a no-op
    // prefix, one text_poke each, and each poke switches page tables: under TCG a full
    // TLB flush every time, ~0.25 s of a 1.8 s boot (measured: docs/vm.md). The locked
    // instructions stay correct on one CPU; their cost is noise next to that.
    s += " noreplace-smp";
  }
  if (a.accel == Accel::kTcg && a.tsc_khz > 0) {
    // The TSC rate is known: no PIT calibration, and no clocksource watchdog judging
    // the TSC against jiffies that a busy host delays (it then marks the TSC unstable).
    s += " tsc_early_khz=" + std::to_string(a.tsc_khz) + " tsc=reliable";
  }
  if (!c.ram_file.empty()) {
    // Snapshot RAM is restored as a private mapping of DIR/ram, and QEMU 7.2's free page
    // reporting discards by punching holes in the backing *file* even then: a restored
    // guest freeing memory would zero live pages of the snapshot for every later
    // restore. sv-init switches reporting off before the agent starts, so the snapshot
    // (taken at ready) and every restore of it never report.
    s += " sv.reporting=off";
  }
  if (c.root_disk) {
    s += " sv.root=/dev/vd" + std::string(1, static_cast<char>('a' + *c.root_disk));
    if (c.disks[*c.root_disk].readonly) s += " sv.rootmode=ro";
  }
  if (!c.cmdline.empty()) s += " " + c.cmdline;
  return s;
}

namespace {

// QEMU option values separate with ',': a literal comma in a path is written ",,".
std::string Esc(const std::string& v) {
  std::string out;
  for (char c : v) {
    out.push_back(c);
    if (c == ',') out.push_back(',');
  }
  return out;
}

std::string MachineArg(const VmConfig& c, const AccelChoice& a) {
  // pcie=on: a PCIe host bridge, for the agent's virtio-serial only (BuildQemuArgv).
  std::string m = "microvm,x-option-roms=off,isa-serial=on,rtc=on,pcie=on";
  if (a.accel == Accel::kTcg) m += ",pit=on,pic=on";
  m += c.mem_merge ? ",mem-merge=on" : ",mem-merge=off";
  if (!c.ram_file.empty()) m += ",memory-backend=ram0";
  return m;
}

void AddDevices(const VmConfig& c, std::vector<std::string>* v) {
  auto add = [v](std::initializer_list<std::string> args) { v->insert(v->end(), args); };
  for (size_t i = 0; i < c.disks.size(); ++i) {
    const DiskConfig& d = c.disks[i];
    std::string id = "disk" + std::to_string(i);
    add({"-drive",
         "id=" + id + ",if=none,file=" + Esc(d.path) + ",format=" + d.format +
             (d.readonly ? ",readonly=on" : "") + ",cache=none,aio=threads",
         "-device", "virtio-blk-device,drive=" + id});
  }
  for (size_t i = 0; i < c.nets.size(); ++i) {
    const NetConfig& n = c.nets[i];
    std::string id = "net" + std::to_string(i);
    add({"-netdev", "tap,id=" + id + ",ifname=" + n.tap + ",script=no,downscript=no", "-device",
         "virtio-net-device,netdev=" + id + (n.mac.empty() ? "" : ",mac=" + n.mac)});
  }
  if (c.rng) add({"-device", "virtio-rng-device"});
  if (c.balloon) add({"-device", "virtio-balloon-device,free-page-reporting=on"});
  // pvpanic (ISA port 0x505, described by microvm's ACPI as QEMU0001; the guest's
  // pvpanic-mmio driver binds to it): a kernel panic reaches QEMU as GUEST_PANICKED
  // before the guest resets, so the fate is "panicked", not "reset".
  add({"-device", "pvpanic"});
}

}  // namespace

std::vector<std::string> BuildQemuArgv(const VmConfig& c, const AccelChoice& a,
                                       const RuntimePaths& p) {
  std::vector<std::string> v = {c.qemu,
                                "-name",
                                c.name + ",debug-threads=on",
                                "-M",
                                MachineArg(c, a),
                                "-nodefaults",
                                "-no-user-config",
                                "-display",
                                "none",
                                "-no-reboot",
                                "-action",
                                "panic=shutdown"};
  auto add = [&v](std::initializer_list<std::string> args) { v.insert(v.end(), args); };
  if (a.accel == Accel::kKvm) {
    add({"-accel", "kvm", "-cpu", "host"});
  } else {
    add({"-accel", "tcg,thread=multi,tb-size=" + std::to_string(c.tcg_tb_size_mib)});
  }
  add({"-smp", std::to_string(c.cpus), "-m", std::to_string(c.memory_mib) + "M"});
  if (!c.ram_file.empty()) {
    // Shared file-backed RAM: with x-ignore-shared a snapshot leaves RAM in this file
    // instead of the migration stream, and a restore maps it (share=off: copy-on-write,
    // so the snapshot stays pristine).
    add({"-object", "memory-backend-file,id=ram0,size=" + std::to_string(c.memory_mib) +
                        "M,mem-path=" + Esc(c.ram_file) + ",share=" + (p.incoming ? "off" : "on") +
                        (c.mem_merge ? ",merge=on" : ",merge=off")});
  }
  add({"-kernel", c.kernel});
  if (!c.initrd.empty()) add({"-initrd", c.initrd});
  add({"-append", KernelCmdline(c, a)});
  if (p.console_log.empty() || c.serial.kind == SerialConfig::Kind::kNone) {
    add({"-serial", "null"});
  } else if (!c.console_socket.empty()) {
    // A client may attach for input; QEMU's logfile keeps every byte the guest writes (also
    // while nobody is attached: a disconnected socket chardev drops nothing from the log).
    // logappend: the file is rotated by copy-and-truncate, which needs O_APPEND.
    add({"-chardev",
         "socket,id=serial0,path=" + Esc(c.console_socket) +
             ",server=on,wait=off,logfile=" + Esc(p.console_log) + ",logappend=on",
         "-serial", "chardev:serial0"});
  } else {
    add({"-chardev", "file,id=serial0,path=" + Esc(p.console_log), "-serial", "chardev:serial0"});
  }
  add({"-chardev", "socket,id=qmp0,path=" + Esc(p.qmp_socket) + ",server=on,wait=off", "-mon",
       "chardev=qmp0,mode=control"});
  // The agent's channel is a named port, not a console port (virtconsole at port 0 would
  // spare the guest the control queue's 4 MiB of receive buffers, but QEMU drops what a
  // console port writes while the host socket is full: a large reply would lose bytes).
  //
  // On PCI, not virtio-mmio: QEMU 7.2's virtio-mmio offers every queue at 1024 entries and
  // the guest's virtio_console puts a 4 KiB receive buffer in each entry of the port's and
  // the control queue's: 8 MiB of guest memory, resident for ever. virtio-pci offers the
  // device's own sizes (128 and 32): 0.6 MiB. Measured: idle RSS -7 MiB for ~0.2 s of boot
  // under TCG (the host bridge and 3 more modules), which noreplace-smp more than pays.
  // Modern only (disable-legacy): microvm's bus has no I/O window for a legacy BAR.
  add({"-chardev", "socket,id=agent0,path=" + Esc(p.agent_socket) + ",server=on,wait=off",
       "-device", "virtio-serial-pci,disable-legacy=on,max_ports=2", "-device",
       "virtserialport,chardev=agent0,name=org.qemu.guest_agent.0"});
  if (!c.qmp_path.empty()) {  // a second monitor for the user (--qmp PATH)
    add({"-chardev", "socket,id=qmp1,path=" + Esc(c.qmp_path) + ",server=on,wait=off", "-mon",
         "chardev=qmp1,mode=control"});
  }
  AddDevices(c, &v);
  if (!p.pidfile.empty()) add({"-pidfile", p.pidfile});
  if (p.incoming) add({"-incoming", "defer"});
  return v;
}

}  // namespace storevisor::vm
