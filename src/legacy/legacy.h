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
#include "vm/vm.h"

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
  std::string port;            // "2.3"
  std::optional<int> address;  // hot-plug only: the device's current address on `bus`
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
// For hot-plug: what ParseUsbId accepts, plus "BUS:ADDR" in decimal (1..255:1..127), the
// device's current address, which QEMU checks at once. Not for configs: addresses change
// every time a device is re-plugged.
Result<UsbHostConfig> ParseUsbHotplugId(std::string_view text);
std::string_view VgaModelName(VgaModel model);
std::string_view AccelName(Accel accel);

// Files a running VM keeps in its state directory.
struct VmPaths {
  std::string state_dir;
  std::string qmp_socket;         // commands: one short connection per operation
  std::string qmp_events_socket;  // a second monitor for a long-lived event listener
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
// A QEMU process of a legacy VM. It runs daemonized (its own session, reparented to init),
// so whoever started it may exit or be killed; Attach re-adopts it from its state directory
// (meta.json, config.json, qemu.pid, qmp.sock). Controls go over QMP with the VM engine's
// client (src/vm).
struct VmMeta {
  pid_t pid = 0;
  Accel accel = Accel::kTcg;
  std::string accel_reason;
  std::vector<std::string> created_taps;  // deleted again at stop
  int64_t started_unix_ms = 0;
  std::string vnc;  // "unix:/path" or "127.0.0.1:5901"; empty without VNC
};

struct StopResult {
  bool was_running = false;
  bool clean = false;   // QEMU exited after the ACPI power-down request
  bool killed = false;  // it did not in time and was killed
  std::chrono::milliseconds took{0};
};

struct ScreenCheck {
  bool blank = false;
  std::string text;  // what OCR read (empty when not asked)
  bool matched = false;
};

struct LegacyEvent {
  std::string name;
  std::string data_json;
};

class LegacyVm {
 public:
  // Validates, prepares the state dir (OVMF vars copy, disk overlays, taps, swtpm) and
  // starts QEMU detached. On failure nothing is left running and QEMU's message is in the
  // error.
  static Result<LegacyVm> Start(const LegacyVmConfig& config, const std::string& state_dir);
  // Re-adopts a running VM. kNotFound when none runs there.
  static Result<LegacyVm> Attach(const std::string& state_dir);

  LegacyVm(LegacyVm&&) noexcept = default;
  LegacyVm& operator=(LegacyVm&&) noexcept = default;
  ~LegacyVm() = default;  // never stops QEMU: it outlives this object by design

  pid_t pid() const { return meta_.pid; }
  const VmMeta& meta() const { return meta_; }
  const VmPaths& paths() const { return paths_; }
  const LegacyVmConfig& config() const { return config_; }
  bool Alive() const;

  // QEMU's run state ("running", "paused", "shutdown"...).
  Result<std::string> QueryStatus();
  // ACPI power button, then SIGKILL after `timeout`; cleans sockets, taps and swtpm.
  Result<StopResult> Stop(std::chrono::milliseconds timeout);
  Status Reset();
  Status Pause();
  Status Resume();
  // Writes what the screen shows to a PNG file (QMP screendump, format png).
  Status Screenshot(const std::string& png_path);
  // The screen as pixels (QMP screendump to a PPM in the state dir).
  Result<Image> Screen();
  // The `screen` health check: not blank, and when expect_text is given, OCR finds it.
  Result<ScreenCheck> CheckScreen(const std::string& expect_text);
  // Polls CheckScreen until it matches or timeout (kTimeout with what OCR read last).
  Result<ScreenCheck> WaitForScreenText(const std::string& text, std::chrono::milliseconds timeout);
  // USB hot-plug: device_add usb-host (by vendor:product, bus-port, or "B:A" = bus:address,
  // which QEMU refuses when no such device is plugged in) and device_del.
  Status UsbAttach(const std::string& device_id, const std::string& usb_id);
  Status UsbDetach(const std::string& device_id);
  // Connects the event listener (its own QMP monitor); events from then on are kept.
  Status SubscribeEvents();
  // The next QMP event, or nullopt after timeout. Subscribes first if needed.
  Result<std::optional<LegacyEvent>> NextEvent(std::chrono::milliseconds timeout);

 private:
  LegacyVm() = default;
  // A QMP monitor serves one client at a time, so commands connect, run and disconnect:
  // a daemon watching events never locks out `storevisor-legacy screenshot`.
  Result<nlohmann::json> Qmp(const std::string& command,
                             const nlohmann::json& arguments = nlohmann::json::object(),
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  LegacyVmConfig config_;
  VmPaths paths_;
  VmMeta meta_;
  std::optional<vm::QmpClient> events_;
};

// Removes what a VM left in its state dir after QEMU ended (sockets, pidfile, taps,
// swtpm). Safe to call when it is already clean.
Status CleanupStateDir(const std::string& state_dir);

}  // namespace storevisor::legacy
