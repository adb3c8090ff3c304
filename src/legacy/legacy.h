// legacy-vm workloads: a full QEMU guest (pc/q35, SeaBIOS or OVMF, emulated VGA shown over
// VNC, USB host pass-through, optional swtpm) for the old POS application on its old OS.
//
// Layers, each usable on its own:
//   1. LegacyVmConfig + ParseConfig/Validate: the typed config, refused with field paths
//      ("disks[1].format: ...") before anything is started.
//   2. BuildCommandLine: a pure function from a validated config, the resolved accelerator
//      and the per-VM paths to QEMU's argv (golden-tested).
//   3. Screen: PPM screendumps, "is it blank", OCR preparation and tesseract.
//   4. LegacyVm: start detached, re-attach from the state directory, control over QMP.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::legacy {

enum class Machine { kPc, kQ35 };
enum class Firmware { kSeaBios, kOvmf };
enum class DiskFormat { kRaw, kQcow2 };
// kIde is the emulated controller an old OS has drivers for: PIIX IDE on pc, AHCI on q35.
enum class DiskBus { kVirtio, kIde };
enum class NicModel { kVirtio, kE1000, kRtl8139 };
enum class VgaModel { kStd, kCirrus, kQxl, kVirtio, kNone };
enum class VncListen { kNone, kUnix, kLoopback };
enum class AccelChoice { kAuto, kKvm, kTcg };
enum class Accel { kKvm, kTcg };

struct DiskConfig {
  std::string path;  // the image; with overlay, the shared base (never written)
  DiskFormat format = DiskFormat::kRaw;
  DiskBus bus = DiskBus::kVirtio;
  bool read_only = false;
  // A per-VM qcow2 copy-on-write overlay on `path`, created by qemu-img in the state dir.
  bool overlay = false;
};

struct NicConfig {
  NicModel model = NicModel::kVirtio;
  std::string tap;     // an existing tap device, or (with bridge) the one we create
  std::string bridge;  // non-empty: create `tap` at start, attach it here, delete it at stop
  std::string mac;     // empty: derived from the VM name
};

struct VncConfig {
  VncListen listen = VncListen::kNone;
  int display = 0;       // loopback only: port 5900 + display
  std::string password;  // VNC's DES scheme: at most 8 characters; never logged
};

// USB host pass-through: by vendor:product ("0c2e:0b61") or by bus and port path ("1-2.3").
struct UsbHostConfig {
  std::optional<uint16_t> vendor_id;
  std::optional<uint16_t> product_id;
  std::optional<int> bus;
  std::string port;  // "2.3"
  std::string ToString() const;
};

struct LegacyVmConfig {
  std::string name;
  Machine machine = Machine::kPc;
  Firmware firmware = Firmware::kSeaBios;
  // Firmware files; empty means Debian's defaults (seabios: bios-256k.bin; ovmf: the 4M
  // OVMF_CODE/OVMF_VARS pair). The vars file is a template copied once per VM.
  std::string firmware_code;
  std::string firmware_vars;
  int cpus = 1;
  int memory_mib = 256;
  AccelChoice accel = AccelChoice::kAuto;
  std::vector<DiskConfig> disks;
  std::vector<NicConfig> nics;
  VgaModel vga = VgaModel::kStd;
  VncConfig vnc;
  bool tpm = false;
  std::vector<UsbHostConfig> usb;
};

// Host facts validation compares against; HostLimitsNow() reads them.
struct HostLimits {
  int cpus = 1;
  int64_t memory_mib = 0;
};
HostLimits HostLimitsNow();

// Parses the JSON form (docs/legacy-vm.md). Unknown fields are refused. `origin` names the
// source in errors ("pos.json"). Fills defaults; does not touch the file system.
Result<LegacyVmConfig> ParseConfig(std::string_view json_text, std::string_view origin);
// Everything QEMU would refuse, checked first: files exist and have the declared format,
// firmware present, limits, bus capacity, USB ids, VNC exposure. Errors start with the
// field path.
Status Validate(const LegacyVmConfig& config, const HostLimits& host);
// The config as JSON with the VNC password replaced by "<redacted>" unless asked.
std::string ConfigToJson(const LegacyVmConfig& config, bool include_secrets);

Result<UsbHostConfig> ParseUsbId(std::string_view text);
std::string_view VgaModelName(VgaModel model);
std::string_view AccelName(Accel accel);

// Files a running VM keeps in its state directory.
struct VmPaths {
  std::string state_dir;
  std::string qmp_socket;
  std::string vnc_socket;
  std::string pidfile;
  std::string serial_log;
  std::string qemu_log;
  std::string ovmf_vars;
  std::string swtpm_dir;
  std::string swtpm_socket;
  std::string swtpm_pidfile;
  std::string config_file;
  std::string meta_file;
  std::vector<std::string> disk_overlays;  // one per disk; empty when not an overlay
};
VmPaths PathsFor(const std::string& state_dir, const LegacyVmConfig& config);

// qemu-system-x86_64's argv for a validated config. Pure: no file system, no clock.
std::vector<std::string> BuildCommandLine(const LegacyVmConfig& config, const VmPaths& paths,
                                          Accel accel);
// The disk path QEMU opens for disk i (the overlay when there is one).
std::string DiskPathForQemu(const LegacyVmConfig& config, const VmPaths& paths, size_t i);
// MAC for NIC i when the config gives none: locally administered, stable per VM name.
std::string DefaultMac(std::string_view vm_name, size_t nic_index);

// ---- Screen ----
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
};
// Binary PPM (P6, maxval 255), as QMP screendump writes it. Untrusted size fields.
Result<Image> ParsePpm(std::string_view data);
std::string EncodePgm(int width, int height, const std::vector<uint8_t>& gray);
// A screen is blank when (nearly) all its pixels share one colour.
bool IsBlank(const Image& image);
// For OCR: distance of each pixel from its row's dominant luminance (text becomes dark on
// white whatever its colours), scaled up `scale` times. Returns a PGM.
std::string PrepareForOcr(const Image& image, int scale);
// Runs tesseract on an image file; returns the recognised text.
Result<std::string> RecognizeText(const std::string& image_path);
// Case-insensitive, whitespace-insensitive containment (OCR splits and merges spaces).
bool TextContains(std::string_view haystack, std::string_view needle);

// ---- Running VMs ----
enum class VmState { kRunning, kPaused, kShutdown, kStopped, kUnknown };
std::string_view VmStateName(VmState state);

struct VmStatus {
  std::string name;
  pid_t pid = 0;
  bool alive = false;
  std::string qmp_status;  // QEMU's run state ("running", "paused"...), empty if unreachable
  Accel accel = Accel::kTcg;
  std::string accel_reason;
  std::string vnc;  // "unix:/path" or "127.0.0.1:5901"
};

struct StopResult {
  bool clean = false;   // the guest powered off after the ACPI request
  bool killed = false;  // it did not in time and QEMU was killed
  std::chrono::milliseconds took{0};
};

}  // namespace storevisor::legacy
