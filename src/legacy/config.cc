// The legacy-VM config: JSON form, parsing with field paths, and validation against what
// QEMU (and the host) would refuse, so that a bad profile fails before anything starts.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/files.h"
#include "common/json_depth.h"
#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

using nlohmann::json;

Error Bad(std::string_view origin, const std::string& path, const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, std::string(origin) + ": " + path + ": " + what);
}

// Looks up a string-valued enum field; the error lists the accepted values.
template <typename E, size_t N>
Result<E> EnumField(const json& value, std::string_view origin, const std::string& path,
                    const std::array<std::pair<std::string_view, E>, N>& table) {
  std::string accepted;
  for (const auto& [name, e] : table)
    accepted += (accepted.empty() ? "" : ", ") + std::string(name);
  if (!value.is_string()) return Bad(origin, path, "must be a string, one of: " + accepted);
  const auto& text = value.get_ref<const std::string&>();
  for (const auto& [name, e] : table) {
    if (text == name) return e;
  }
  return Bad(origin, path, "unknown value \"" + text + "\"; accepted: " + accepted);
}

constexpr std::array<std::pair<std::string_view, Machine>, 2> kMachines{
    {{"pc", Machine::kPc}, {"q35", Machine::kQ35}}};
constexpr std::array<std::pair<std::string_view, Firmware>, 2> kFirmwares{
    {{"seabios", Firmware::kSeaBios}, {"ovmf", Firmware::kOvmf}}};
constexpr std::array<std::pair<std::string_view, DiskFormat>, 2> kFormats{
    {{"raw", DiskFormat::kRaw}, {"qcow2", DiskFormat::kQcow2}}};
constexpr std::array<std::pair<std::string_view, DiskBus>, 2> kBuses{
    {{"virtio", DiskBus::kVirtio}, {"ide", DiskBus::kIde}}};
constexpr std::array<std::pair<std::string_view, NicModel>, 3> kNics{
    {{"virtio", NicModel::kVirtio}, {"e1000", NicModel::kE1000}, {"rtl8139", NicModel::kRtl8139}}};
constexpr std::array<std::pair<std::string_view, VgaModel>, 5> kVgas{{{"std", VgaModel::kStd},
                                                                      {"cirrus", VgaModel::kCirrus},
                                                                      {"qxl", VgaModel::kQxl},
                                                                      {"virtio", VgaModel::kVirtio},
                                                                      {"none", VgaModel::kNone}}};
constexpr std::array<std::pair<std::string_view, VncListen>, 3> kListens{
    {{"none", VncListen::kNone}, {"unix", VncListen::kUnix}, {"loopback", VncListen::kLoopback}}};
constexpr std::array<std::pair<std::string_view, AccelChoice>, 3> kAccels{
    {{"auto", AccelChoice::kAuto}, {"kvm", AccelChoice::kKvm}, {"tcg", AccelChoice::kTcg}}};

template <typename E, size_t N>
std::string_view NameOf(E e, const std::array<std::pair<std::string_view, E>, N>& table) {
  for (const auto& [name, v] : table) {
    if (v == e) return name;
  }
  return "?";
}

Status CheckKeys(const json& object, std::string_view origin, const std::string& path,
                 std::initializer_list<std::string_view> known) {
  if (!object.is_object())
    return Bad(origin, path.empty() ? "(top level)" : path, "must be an object");
  auto items = object.items();
  auto unknown = std::find_if(items.begin(), items.end(), [&](const auto& item) {
    return std::find(known.begin(), known.end(), item.key()) == known.end();
  });
  if (unknown == items.end()) return Ok();
  std::string list;
  for (auto k : known) {
    if (!list.empty()) list += ", ";
    list += k;
  }
  std::string field = path.empty() ? unknown.key() : path + "." + unknown.key();
  return Bad(origin, field, "unknown field (known here: " + list + ")");
}

Result<std::string> StringField(const json& v, std::string_view origin, const std::string& path) {
  if (!v.is_string()) return Bad(origin, path, "must be a string");
  return v.get<std::string>();
}

Result<bool> BoolField(const json& v, std::string_view origin, const std::string& path) {
  if (!v.is_boolean()) return Bad(origin, path, "must be true or false");
  return v.get<bool>();
}

Result<int> IntField(const json& v, std::string_view origin, const std::string& path) {
  if (!v.is_number_integer()) return Bad(origin, path, "must be an integer");
  auto n = v.get<int64_t>();
  if (n < INT32_MIN || n > INT32_MAX) return Bad(origin, path, "out of range");
  return static_cast<int>(n);
}

Result<DiskConfig> ParseDisk(const json& j, std::string_view origin, const std::string& path) {
  SV_TRY(CheckKeys(j, origin, path, {"path", "format", "bus", "read_only", "overlay"}));
  DiskConfig d;
  if (!j.contains("path")) return Bad(origin, path + ".path", "missing (the disk image file)");
  SV_ASSIGN_OR_RETURN(d.path, StringField(j["path"], origin, path + ".path"));
  if (j.contains("format")) {
    SV_ASSIGN_OR_RETURN(d.format, EnumField(j["format"], origin, path + ".format", kFormats));
  }
  if (j.contains("bus")) {
    SV_ASSIGN_OR_RETURN(d.bus, EnumField(j["bus"], origin, path + ".bus", kBuses));
  }
  if (j.contains("read_only")) {
    SV_ASSIGN_OR_RETURN(d.read_only, BoolField(j["read_only"], origin, path + ".read_only"));
  }
  if (j.contains("overlay")) {
    SV_ASSIGN_OR_RETURN(d.overlay, BoolField(j["overlay"], origin, path + ".overlay"));
  }
  return d;
}

Result<NicConfig> ParseNic(const json& j, std::string_view origin, const std::string& path) {
  SV_TRY(CheckKeys(j, origin, path, {"model", "tap", "bridge", "mac"}));
  NicConfig n;
  if (j.contains("model")) {
    SV_ASSIGN_OR_RETURN(n.model, EnumField(j["model"], origin, path + ".model", kNics));
  }
  if (j.contains("tap")) {
    SV_ASSIGN_OR_RETURN(n.tap, StringField(j["tap"], origin, path + ".tap"));
  }
  if (j.contains("bridge")) {
    SV_ASSIGN_OR_RETURN(n.bridge, StringField(j["bridge"], origin, path + ".bridge"));
  }
  if (j.contains("mac")) {
    SV_ASSIGN_OR_RETURN(n.mac, StringField(j["mac"], origin, path + ".mac"));
  }
  return n;
}

Result<VncConfig> ParseVnc(const json& j, std::string_view origin, const std::string& path) {
  SV_TRY(CheckKeys(j, origin, path, {"listen", "display", "password"}));
  VncConfig v;
  if (j.contains("listen")) {
    SV_ASSIGN_OR_RETURN(v.listen, EnumField(j["listen"], origin, path + ".listen", kListens));
  }
  if (j.contains("display")) {
    SV_ASSIGN_OR_RETURN(v.display, IntField(j["display"], origin, path + ".display"));
  }
  if (j.contains("password")) {
    SV_ASSIGN_OR_RETURN(v.password, StringField(j["password"], origin, path + ".password"));
  }
  return v;
}

Status ParseTop(const json& j, std::string_view origin, LegacyVmConfig& c) {
  SV_TRY(CheckKeys(j, origin, "",
                   {"name", "machine", "firmware", "firmware_code", "firmware_vars", "cpus",
                    "memory_mib", "accel", "disks", "nics", "vga", "vnc", "tpm", "usb"}));
  if (!j.contains("name")) return Bad(origin, "name", "missing (the VM's name)");
  SV_ASSIGN_OR_RETURN(c.name, StringField(j["name"], origin, "name"));
  if (j.contains("machine")) {
    SV_ASSIGN_OR_RETURN(c.machine, EnumField(j["machine"], origin, "machine", kMachines));
  }
  if (j.contains("firmware")) {
    SV_ASSIGN_OR_RETURN(c.firmware, EnumField(j["firmware"], origin, "firmware", kFirmwares));
  }
  if (j.contains("firmware_code")) {
    SV_ASSIGN_OR_RETURN(c.firmware_code, StringField(j["firmware_code"], origin, "firmware_code"));
  }
  if (j.contains("firmware_vars")) {
    SV_ASSIGN_OR_RETURN(c.firmware_vars, StringField(j["firmware_vars"], origin, "firmware_vars"));
  }
  if (j.contains("cpus")) {
    SV_ASSIGN_OR_RETURN(c.cpus, IntField(j["cpus"], origin, "cpus"));
  }
  if (j.contains("memory_mib")) {
    SV_ASSIGN_OR_RETURN(c.memory_mib, IntField(j["memory_mib"], origin, "memory_mib"));
  }
  if (j.contains("accel")) {
    SV_ASSIGN_OR_RETURN(c.accel, EnumField(j["accel"], origin, "accel", kAccels));
  }
  if (j.contains("vga")) {
    SV_ASSIGN_OR_RETURN(c.vga, EnumField(j["vga"], origin, "vga", kVgas));
  }
  if (j.contains("tpm")) {
    SV_ASSIGN_OR_RETURN(c.tpm, BoolField(j["tpm"], origin, "tpm"));
  }
  if (j.contains("vnc")) {
    SV_ASSIGN_OR_RETURN(c.vnc, ParseVnc(j["vnc"], origin, "vnc"));
  }
  return Ok();
}

template <typename T, typename F>
Status ParseList(const json& j, const char* key, std::string_view origin, std::vector<T>& out,
                 F parse) {
  if (!j.contains(key)) return Ok();
  const json& list = j[key];
  if (!list.is_array()) return Bad(origin, key, "must be a list");
  if (list.size() > 64) return Bad(origin, key, "more than 64 entries");
  for (size_t i = 0; i < list.size(); ++i) {
    SV_ASSIGN_OR_RETURN(T item,
                        parse(list[i], origin, std::string(key) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(item));
  }
  return Ok();
}

Result<UsbHostConfig> ParseUsbEntry(const json& j, std::string_view origin,
                                    const std::string& path) {
  SV_TRY(CheckKeys(j, origin, path, {"id"}));
  if (!j.contains("id"))
    return Bad(origin, path + ".id",
               "missing (vendor:product like 0c2e:0b61, or bus-port like 1-2.3)");
  SV_ASSIGN_OR_RETURN(std::string text, StringField(j["id"], origin, path + ".id"));
  auto usb = ParseUsbId(text);
  if (!usb) return Bad(origin, path + ".id", usb.error().message());
  return *usb;
}

bool IsHex4(std::string_view s) {
  return s.size() == 4 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

std::optional<int> SmallNumber(std::string_view s, int max) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  int n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 1 || n > max) return std::nullopt;
  return n;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool ValidIfName(std::string_view name) {
  // IFNAMSIZ is 16 with the NUL; '/' and whitespace are refused by the kernel.
  if (name.empty() || name.size() > 15) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

bool ValidMac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2) {
      if (mac[i] != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(mac[i]))) {
      return false;
    }
  }
  // The low bit of the first octet marks multicast, which a NIC cannot own.
  int first = std::stoi(std::string(mac.substr(0, 2)), nullptr, 16);
  return (first & 1) == 0;
}

// The first bytes of a file: enough to tell qcow2 (magic "QFI\xfb") from raw.
Result<std::string> FileHead(const std::string& path, size_t n) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoError("open " + path);
  std::string buf(n, '\0');
  size_t got = std::fread(buf.data(), 1, n, f);
  std::fclose(f);
  buf.resize(got);
  return buf;
}

Status CheckRegularFile(const std::string& field, const std::string& path,
                        const std::string& hint) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error(ErrorCode::kInvalidArgument,
                 field + ": " + path + ": " + std::strerror(errno) + "; " + hint);
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Error(ErrorCode::kInvalidArgument,
                 field + ": " + path + " is not a file or block device");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return Error(ErrorCode::kInvalidArgument, field + ": " + path + " is not readable");
  }
  return Ok();
}

Status ValidateDisk(const DiskConfig& d, const std::string& field) {
  SV_TRY(CheckRegularFile(field + ".path", d.path, "create the image first (qemu-img create)"));
  SV_ASSIGN_OR_RETURN(std::string head, FileHead(d.path, 4));
  bool qcow2 = head == std::string("QFI\xfb", 4);
  if (d.format == DiskFormat::kRaw && qcow2) {
    return Error(ErrorCode::kInvalidArgument,
                 field + ".format: " + d.path +
                     " is a qcow2 image but format is \"raw\"; set \"format\": \"qcow2\"");
  }
  if (d.format == DiskFormat::kQcow2 && !qcow2) {
    return Error(ErrorCode::kInvalidArgument,
                 field + ".format: " + d.path +
                     " is not a qcow2 image (no QFI magic); set \"format\": \"raw\"");
  }
  if (d.overlay && d.read_only) {
    return Error(ErrorCode::kInvalidArgument, field +
                                                  ": overlay and read_only together make no sense; "
                                                  "the overlay is the VM's writable layer");
  }
  return Ok();
}

Status ValidateBusCapacity(const LegacyVmConfig& c) {
  size_t ide = std::count_if(c.disks.begin(), c.disks.end(),
                             [](const DiskConfig& d) { return d.bus == DiskBus::kIde; });
  // pc: PIIX has two channels with a master and a slave each; q35: ICH9 AHCI has six ports.
  size_t max_ide = c.machine == Machine::kPc ? 4 : 6;
  if (ide > max_ide) {
    return Error(ErrorCode::kInvalidArgument,
                 "disks: " + std::to_string(ide) + " IDE disks but machine \"" +
                     std::string(NameOf(c.machine, kMachines)) + "\" has room for " +
                     std::to_string(max_ide) + "; use \"bus\": \"virtio\" for the others");
  }
  return Ok();
}

Status ValidateFirmware(const LegacyVmConfig& c) {
  std::string code = c.firmware_code;
  if (code.empty())
    code = c.firmware == Firmware::kOvmf ? "/usr/share/OVMF/OVMF_CODE_4M.fd"
                                         : "/usr/share/seabios/bios-256k.bin";
  SV_TRY(CheckRegularFile("firmware_code", code,
                          c.firmware == Firmware::kOvmf ? "install Debian's ovmf package"
                                                        : "install Debian's seabios package"));
  if (c.firmware == Firmware::kSeaBios) {
    if (!c.firmware_vars.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "firmware_vars: SeaBIOS keeps no variable store; remove the field");
    }
    return Ok();
  }
  std::string vars = c.firmware_vars.empty() ? "/usr/share/OVMF/OVMF_VARS_4M.fd" : c.firmware_vars;
  SV_TRY(CheckRegularFile("firmware_vars", vars, "install Debian's ovmf package"));
  // pflash needs the code and vars of one build: a 2M code with a 4M vars file is refused
  // by OVMF at run time, and secure-boot builds need SMM, which only q35 offers here.
  if (code.find("secboot") != std::string::npos && c.machine != Machine::kQ35) {
    return Error(ErrorCode::kInvalidArgument,
                 "firmware_code: the secure-boot OVMF build needs SMM and \"machine\": \"q35\"");
  }
  bool code4m = code.find("_4M") != std::string::npos;
  bool vars4m = vars.find("_4M") != std::string::npos;
  if (code4m != vars4m) {
    return Error(ErrorCode::kInvalidArgument, "firmware_vars: " + vars +
                                                  " does not match firmware_code " + code +
                                                  " (2M and 4M builds mixed)");
  }
  return Ok();
}

Status ValidateNics(const LegacyVmConfig& c) {
  std::set<std::string> taps;
  for (size_t i = 0; i < c.nics.size(); ++i) {
    const auto& n = c.nics[i];
    std::string field = "nics[" + std::to_string(i) + "]";
    if (!ValidIfName(n.tap)) {
      return Error(
          ErrorCode::kInvalidArgument,
          field + ".tap: \"" + n.tap + "\" is not a valid interface name (1-15 of [A-Za-z0-9._-])");
    }
    if (!taps.insert(n.tap).second) {
      return Error(ErrorCode::kInvalidArgument, field + ".tap: \"" + n.tap + "\" is used twice");
    }
    if (!n.bridge.empty()) {
      if (!ValidIfName(n.bridge)) {
        return Error(ErrorCode::kInvalidArgument,
                     field + ".bridge: \"" + n.bridge + "\" is not a valid interface name");
      }
      if (::access(("/sys/class/net/" + n.bridge + "/bridge").c_str(), F_OK) != 0) {
        return Error(ErrorCode::kInvalidArgument,
                     field + ".bridge: no bridge named \"" + n.bridge + "\" on this host");
      }
    } else if (::access(("/sys/class/net/" + n.tap).c_str(), F_OK) != 0) {
      return Error(ErrorCode::kInvalidArgument,
                   field + ".tap: no interface \"" + n.tap +
                       "\" on this host; create it or give \"bridge\" to have one made");
    }
    if (!n.mac.empty() && !ValidMac(n.mac)) {
      return Error(ErrorCode::kInvalidArgument,
                   field + ".mac: \"" + n.mac + "\" is not a unicast MAC like 52:54:00:12:34:56");
    }
  }
  return Ok();
}

Status ValidateVnc(const LegacyVmConfig& c) {
  const auto& v = c.vnc;
  if (v.listen == VncListen::kNone) {
    if (!v.password.empty())
      return Error(ErrorCode::kInvalidArgument, "vnc.password: set but vnc.listen is \"none\"");
    return Ok();
  }
  if (c.vga == VgaModel::kNone) {
    return Error(ErrorCode::kInvalidArgument,
                 "vnc: a display needs a graphics card; \"vga\" is \"none\"");
  }
  if (v.password.size() > 8) {
    return Error(
        ErrorCode::kInvalidArgument,
        "vnc.password: VNC authentication uses at most 8 characters; QEMU would silently cut it");
  }
  if (v.listen == VncListen::kLoopback) {
    if (v.display < 0 || v.display > 99) {
      return Error(ErrorCode::kInvalidArgument, "vnc.display: must be 0..99 (port 5900 + display)");
    }
    if (v.password.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "vnc.password: a loopback VNC listener needs a password (any local user could "
                   "connect); use "
                   "\"listen\": \"unix\" for a socket only root can open");
    }
  } else if (v.display != 0) {
    return Error(ErrorCode::kInvalidArgument, "vnc.display: only for \"listen\": \"loopback\"");
  }
  return Ok();
}

}  // namespace

std::string UsbHostConfig::ToString() const {
  char buf[32];
  if (vendor_id && product_id) {
    std::snprintf(buf, sizeof buf, "%04x:%04x", *vendor_id, *product_id);
    return buf;
  }
  if (address) return std::to_string(bus.value_or(0)) + ":" + std::to_string(*address);
  return std::to_string(bus.value_or(0)) + "-" + port;
}

Result<UsbHostConfig> ParseUsbId(std::string_view text) {
  UsbHostConfig u;
  auto colon = text.find(':');
  if (colon != std::string_view::npos) {
    auto vendor = text.substr(0, colon);
    auto product = text.substr(colon + 1);
    if (!IsHex4(vendor) || !IsHex4(product)) {
      return Error(ErrorCode::kInvalidArgument,
                   "\"" + std::string(text) +
                       "\" is not vendor:product (two 4-digit hex numbers like 0c2e:0b61)");
    }
    u.vendor_id = static_cast<uint16_t>(std::stoi(std::string(vendor), nullptr, 16));
    u.product_id = static_cast<uint16_t>(std::stoi(std::string(product), nullptr, 16));
    if (*u.vendor_id == 0) {
      return Error(ErrorCode::kInvalidArgument,
                   "\"" + std::string(text) + "\": vendor id 0000 matches any device");
    }
    return u;
  }
  auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    return Error(
        ErrorCode::kInvalidArgument,
        "\"" + std::string(text) + "\" is neither vendor:product (0c2e:0b61) nor bus-port (1-2.3)");
  }
  auto bus = SmallNumber(text.substr(0, dash), 255);
  if (!bus)
    return Error(ErrorCode::kInvalidArgument, "\"" + std::string(text) + "\": bus must be 1..255");
  std::string_view port = text.substr(dash + 1);
  // USB allows at most 7 tiers: a root port and up to 6 hub ports, each 1..31.
  int depth = 0;
  size_t start = 0;
  while (true) {
    auto dot = port.find('.', start);
    auto part =
        port.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!SmallNumber(part, 31) || ++depth > 7) {
      return Error(ErrorCode::kInvalidArgument,
                   "\"" + std::string(text) +
                       "\": port path must be 1 to 7 numbers 1..31 joined by dots (like 2.3)");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  u.bus = *bus;
  u.port = std::string(port);
  return u;
}

Result<UsbHostConfig> ParseUsbHotplugId(std::string_view text) {
  auto colon = text.find(':');
  if (colon <= 3 && text.size() - colon - 1 <= 3) {  // npos is > 3
    auto bus = SmallNumber(text.substr(0, colon), 255);
    auto address = SmallNumber(text.substr(colon + 1), 127);
    if (bus && address) {
      UsbHostConfig u;
      u.bus = *bus;
      u.address = *address;
      return u;
    }
  }
  return ParseUsbId(text);
}

std::string_view VgaModelName(VgaModel model) { return NameOf(model, kVgas); }
std::string_view AccelName(Accel accel) { return accel == Accel::kKvm ? "kvm" : "tcg"; }

HostLimits HostLimitsNow() {
  HostLimits h;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  h.cpus = n > 0 ? static_cast<int>(n) : 1;
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) h.memory_mib = static_cast<int64_t>(pages) * page / (1 << 20);
  return h;
}

Result<LegacyVmConfig> ParseConfig(std::string_view json_text, std::string_view origin) {
  if (json_text.size() > (1u << 20)) return Bad(origin, "(file)", "larger than 1 MiB");
  if (JsonNestingDepth(json_text) > 16)
    return Bad(origin, "(file)", "nested deeper than 16 levels");
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for huge numbers
    return Error(ErrorCode::kInvalidArgument,
                 std::string(origin) + ": not valid JSON: " + e.what());
  }
  LegacyVmConfig c;
  SV_TRY(ParseTop(j, origin, c));
  SV_TRY(ParseList(j, "disks", origin, c.disks, ParseDisk));
  SV_TRY(ParseList(j, "nics", origin, c.nics, ParseNic));
  SV_TRY(ParseList(j, "usb", origin, c.usb, ParseUsbEntry));
  return c;
}

Status Validate(const LegacyVmConfig& c, const HostLimits& host) {
  if (!ValidName(c.name)) {
    return Error(ErrorCode::kInvalidArgument,
                 "name: \"" + c.name + "\" must be 1-63 of [a-z0-9_-], not starting with '-'");
  }
  if (c.cpus < 1 || c.cpus > host.cpus) {
    return Error(ErrorCode::kInvalidArgument, "cpus: " + std::to_string(c.cpus) +
                                                  " is outside 1.." + std::to_string(host.cpus) +
                                                  " (this host's CPUs)");
  }
  // Below 128 MiB Debian's kernel reset-loops; OVMF alone wants more than 64.
  if (c.memory_mib < 128 || (host.memory_mib > 0 && c.memory_mib > host.memory_mib)) {
    return Error(ErrorCode::kInvalidArgument,
                 "memory_mib: " + std::to_string(c.memory_mib) + " is outside 128.." +
                     std::to_string(host.memory_mib) + " (this host's memory)");
  }
  SV_TRY(ValidateFirmware(c));
  if (c.disks.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "disks: a legacy VM boots from a disk; give at least one");
  for (size_t i = 0; i < c.disks.size(); ++i)
    SV_TRY(ValidateDisk(c.disks[i], "disks[" + std::to_string(i) + "]"));
  SV_TRY(ValidateBusCapacity(c));
  SV_TRY(ValidateNics(c));
  SV_TRY(ValidateVnc(c));
  if (c.usb.size() > 8)
    return Error(ErrorCode::kInvalidArgument, "usb: at most 8 pass-through devices per VM");
  std::set<std::string> seen;
  for (size_t i = 0; i < c.usb.size(); ++i) {
    if (!seen.insert(c.usb[i].ToString()).second) {
      return Error(ErrorCode::kInvalidArgument,
                   "usb[" + std::to_string(i) + "].id: " + c.usb[i].ToString() + " listed twice");
    }
  }
  return Ok();
}

std::string ConfigToJson(const LegacyVmConfig& c, bool include_secrets) {
  json j;
  j["name"] = c.name;
  j["machine"] = NameOf(c.machine, kMachines);
  j["firmware"] = NameOf(c.firmware, kFirmwares);
  if (!c.firmware_code.empty()) j["firmware_code"] = c.firmware_code;
  if (!c.firmware_vars.empty()) j["firmware_vars"] = c.firmware_vars;
  j["cpus"] = c.cpus;
  j["memory_mib"] = c.memory_mib;
  j["accel"] = NameOf(c.accel, kAccels);
  j["disks"] = json::array();
  for (const auto& d : c.disks) {
    j["disks"].push_back({{"path", d.path},
                          {"format", NameOf(d.format, kFormats)},
                          {"bus", NameOf(d.bus, kBuses)},
                          {"read_only", d.read_only},
                          {"overlay", d.overlay}});
  }
  j["nics"] = json::array();
  for (const auto& n : c.nics) {
    json nj{{"model", NameOf(n.model, kNics)}, {"tap", n.tap}};
    if (!n.bridge.empty()) nj["bridge"] = n.bridge;
    if (!n.mac.empty()) nj["mac"] = n.mac;
    j["nics"].push_back(nj);
  }
  j["vga"] = NameOf(c.vga, kVgas);
  j["vnc"] = {{"listen", NameOf(c.vnc.listen, kListens)}};
  if (c.vnc.listen == VncListen::kLoopback) j["vnc"]["display"] = c.vnc.display;
  if (!c.vnc.password.empty())
    j["vnc"]["password"] = include_secrets ? c.vnc.password : "<redacted>";
  j["tpm"] = c.tpm;
  j["usb"] = json::array();
  for (const auto& u : c.usb) j["usb"].push_back({{"id", u.ToString()}});
  return j.dump(2);
}

}  // namespace storevisor::legacy
