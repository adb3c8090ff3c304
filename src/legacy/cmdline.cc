// QEMU's command line for a legacy VM. Pure: the same config, paths and accelerator always
// give the same argv, which the golden tests pin down.
#include <cstdio>
#include <string>
#include <vector>

#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

std::string FirmwareCode(const LegacyVmConfig& c) {
  if (!c.firmware_code.empty()) return c.firmware_code;
  return c.firmware == Firmware::kOvmf ? "/usr/share/OVMF/OVMF_CODE_4M.fd"
                                       : "/usr/share/seabios/bios-256k.bin";
}

// QEMU's option parser splits on ',' and accepts ",," as a literal comma.
std::string Escape(const std::string& value) {
  std::string out;
  for (char ch : value) {
    out += ch;
    if (ch == ',') out += ',';
  }
  return out;
}

void AddMachine(const LegacyVmConfig& c, Accel accel, std::vector<std::string>& argv) {
  std::string machine = c.machine == Machine::kQ35 ? "q35" : "pc";
  // vmport emulates VMware's backdoor port, which nothing here uses.
  argv.insert(argv.end(), {"-machine", machine + ",vmport=off"});
  if (accel == Accel::kKvm) {
    argv.insert(argv.end(), {"-accel", "kvm", "-cpu", "host"});
  } else {
    // Multi-threaded TCG; 64 MiB of translation cache is plenty for an idle POS screen and
    // bounds RSS (QEMU's default grows to 1 GiB on big hosts).
    argv.insert(argv.end(), {"-accel", "tcg,thread=multi,tb-size=64"});
  }
  argv.insert(argv.end(), {"-smp", std::to_string(c.cpus), "-m", std::to_string(c.memory_mib)});
}

void AddFirmware(const LegacyVmConfig& c, const VmPaths& p, std::vector<std::string>& argv) {
  if (c.firmware == Firmware::kSeaBios) {
    argv.insert(argv.end(), {"-bios", FirmwareCode(c)});
    return;
  }
  argv.insert(argv.end(),
              {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + Escape(FirmwareCode(c)),
               "-drive", "if=pflash,format=raw,unit=1,file=" + Escape(p.ovmf_vars)});
}

// One disk: its -drive backend and the -device front end on the requested bus.
void AddDisk(const LegacyVmConfig& c, const VmPaths& p, size_t i, int& ide_slot,
             std::vector<std::string>& argv) {
  const auto& d = c.disks[i];
  std::string id = "disk" + std::to_string(i);
  std::string format = d.overlay || d.format == DiskFormat::kQcow2 ? "qcow2" : "raw";
  std::string drive = "file=" + Escape(DiskPathForQemu(c, p, i)) + ",if=none,id=" + id +
                      ",format=" + format + ",cache=writeback,discard=unmap";
  if (d.read_only) drive += ",readonly=on";
  argv.insert(argv.end(), {"-drive", drive});
  std::string boot = ",bootindex=" + std::to_string(i);
  if (d.bus == DiskBus::kVirtio) {
    argv.insert(argv.end(),
                {"-device", "virtio-blk-pci,drive=" + id + ",id=" + id + "-dev" + boot});
    return;
  }
  // pc: PIIX IDE, two buses with two units each; q35: ICH9 AHCI, one unit per port.
  std::string bus = c.machine == Machine::kPc ? "ide." + std::to_string(ide_slot / 2) +
                                                    ",unit=" + std::to_string(ide_slot % 2)
                                              : "ide." + std::to_string(ide_slot);
  ++ide_slot;
  argv.insert(argv.end(),
              {"-device", "ide-hd,drive=" + id + ",bus=" + bus + ",id=" + id + "-dev" + boot});
}

void AddDisks(const LegacyVmConfig& c, const VmPaths& p, std::vector<std::string>& argv) {
  int ide_slot = 0;
  for (size_t i = 0; i < c.disks.size(); ++i) AddDisk(c, p, i, ide_slot, argv);
}

void AddNic(const LegacyVmConfig& c, size_t i, std::vector<std::string>& argv) {
  const auto& n = c.nics[i];
  std::string id = "net" + std::to_string(i);
  std::string mac = n.mac.empty() ? DefaultMac(c.name, i) : n.mac;
  const char* model = n.model == NicModel::kVirtio  ? "virtio-net-pci"
                      : n.model == NicModel::kE1000 ? "e1000"
                                                    : "rtl8139";
  argv.insert(
      argv.end(),
      {"-netdev", "tap,id=" + id + ",ifname=" + n.tap + ",script=no,downscript=no", "-device",
       std::string(model) + ",netdev=" + id + ",mac=" + mac + ",id=" + id + "-dev"});
}

void AddNics(const LegacyVmConfig& c, std::vector<std::string>& argv) {
  for (size_t i = 0; i < c.nics.size(); ++i) AddNic(c, i, argv);
}

void AddDisplay(const LegacyVmConfig& c, const VmPaths& p, std::vector<std::string>& argv) {
  switch (c.vga) {
    case VgaModel::kStd:
      argv.insert(argv.end(), {"-device", "VGA,id=video0"});
      break;
    case VgaModel::kCirrus:
      argv.insert(argv.end(), {"-device", "cirrus-vga,id=video0"});
      break;
    case VgaModel::kQxl:
      argv.insert(argv.end(), {"-device", "qxl-vga,id=video0"});
      break;
    case VgaModel::kVirtio:
      argv.insert(argv.end(), {"-device", "virtio-vga,id=video0"});
      break;
    case VgaModel::kNone:
      break;
  }
  argv.insert(argv.end(), {"-display", "none"});
  std::string pw = c.vnc.password.empty() ? "" : ",password=on";
  if (c.vnc.listen == VncListen::kUnix) {
    argv.insert(argv.end(), {"-vnc", "unix:" + Escape(p.vnc_socket) + pw});
  } else if (c.vnc.listen == VncListen::kLoopback) {
    argv.insert(argv.end(), {"-vnc", "127.0.0.1:" + std::to_string(c.vnc.display) + pw});
  }
}

void AddUsb(const LegacyVmConfig& c, std::vector<std::string>& argv) {
  bool tablet = c.vnc.listen != VncListen::kNone;
  if (c.usb.empty() && !tablet) return;
  // xHCI handles USB 1/2/3 devices on one controller; old guests without xHCI drivers see
  // no pass-through device (docs/legacy-vm.md).
  argv.insert(argv.end(), {"-device", "qemu-xhci,id=usb"});
  // An absolute pointer, so the VNC cursor and the guest's agree.
  if (tablet) argv.insert(argv.end(), {"-device", "usb-tablet,bus=usb.0,id=tablet"});
  for (size_t i = 0; i < c.usb.size(); ++i) {
    const auto& u = c.usb[i];
    std::string dev = "usb-host,bus=usb.0,id=usbhost" + std::to_string(i);
    if (u.vendor_id && u.product_id) {
      char ids[64];
      std::snprintf(ids, sizeof ids, ",vendorid=0x%04x,productid=0x%04x", *u.vendor_id,
                    *u.product_id);
      dev += ids;
    } else {
      dev += ",hostbus=" + std::to_string(u.bus.value_or(0)) + ",hostport=" + u.port;
    }
    argv.insert(argv.end(), {"-device", dev});
  }
}

void AddTpm(const LegacyVmConfig& c, const VmPaths& p, std::vector<std::string>& argv) {
  if (!c.tpm) return;
  argv.insert(argv.end(),
              {"-chardev", "socket,id=chrtpm,path=" + Escape(p.swtpm_socket), "-tpmdev",
               "emulator,id=tpm0,chardev=chrtpm", "-device",
               std::string(c.machine == Machine::kQ35 ? "tpm-crb" : "tpm-tis") + ",tpmdev=tpm0"});
}

}  // namespace

VmPaths PathsFor(const std::string& state_dir, const LegacyVmConfig& config) {
  VmPaths p;
  p.state_dir = state_dir;
  p.qmp_socket = state_dir + "/qmp.sock";
  p.qmp_events_socket = state_dir + "/qmp-events.sock";
  p.vnc_socket = state_dir + "/vnc.sock";
  p.pidfile = state_dir + "/qemu.pid";
  p.serial_log = state_dir + "/serial.log";
  p.qemu_log = state_dir + "/qemu.log";
  p.ovmf_vars = state_dir + "/OVMF_VARS.fd";
  p.swtpm_dir = state_dir + "/tpm";
  p.swtpm_socket = state_dir + "/swtpm.sock";
  p.swtpm_pidfile = state_dir + "/swtpm.pid";
  p.config_file = state_dir + "/config.json";
  p.meta_file = state_dir + "/meta.json";
  for (size_t i = 0; i < config.disks.size(); ++i) {
    p.disk_overlays.push_back(
        config.disks[i].overlay ? state_dir + "/disk" + std::to_string(i) + ".qcow2" : "");
  }
  return p;
}

std::string DiskPathForQemu(const LegacyVmConfig& config, const VmPaths& paths, size_t i) {
  if (i < paths.disk_overlays.size() && !paths.disk_overlays[i].empty())
    return paths.disk_overlays[i];
  return config.disks[i].path;
}

std::string DefaultMac(std::string_view vm_name, size_t nic_index) {
  // FNV-1a of name and index: stable across restarts, so the guest's DHCP lease stays.
  uint32_t h = 2166136261u;
  auto mix = [&h](unsigned char b) { h = (h ^ b) * 16777619u; };
  for (char ch : vm_name) mix(static_cast<unsigned char>(ch));
  mix(static_cast<unsigned char>(nic_index));
  char buf[18];
  // 52:54:00 is QEMU's locally administered prefix; it is what libvirt uses too.
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff,
                h & 0xff);
  return buf;
}

std::vector<std::string> BuildCommandLine(const LegacyVmConfig& config, const VmPaths& paths,
                                          Accel accel) {
  std::vector<std::string> argv = {"qemu-system-x86_64", "-name",
                                   "guest=" + Escape(config.name) + ",debug-threads=on",
                                   "-nodefaults", "-no-user-config"};
  AddMachine(config, accel, argv);
  AddFirmware(config, paths, argv);
  AddDisks(config, paths, argv);
  AddNics(config, argv);
  AddDisplay(config, paths, argv);
  AddUsb(config, argv);
  AddTpm(config, paths, argv);
  argv.insert(
      argv.end(),
      {"-chardev", "socket,id=qmp,path=" + Escape(paths.qmp_socket) + ",server=on,wait=off", "-mon",
       "chardev=qmp,mode=control", "-chardev",
       "socket,id=qmp-events,path=" + Escape(paths.qmp_events_socket) + ",server=on,wait=off",
       "-mon", "chardev=qmp-events,mode=control",
       // append=on: storevisord caps the log by copy-and-truncate, which needs O_APPEND (a
       // plain file: chardev would go on writing at its old offset, leaving a sparse file).
       "-chardev", "file,id=serial0,path=" + Escape(paths.serial_log) + ",append=on", "-serial",
       "chardev:serial0", "-pidfile", paths.pidfile, "-daemonize"});
  return argv;
}

}  // namespace storevisor::legacy
