// The legacy-vm fields of a workload (machine, firmware, devices, vga, vnc, tpm, usb, disk
// formats and overlays) and the `screen` health check. Only what needs no host is checked
// here, with the field's own line; files, firmware builds and host limits are checked at
// apply time by the legacy driver (CheckLegacyWorkloads), before anything starts.
#include <algorithm>
#include <array>

#include "daemon/profile/profile.h"
#include "daemon/profile/yaml_reader.h"
#include "legacy/legacy.h"

namespace storevisor::daemon {

namespace {

constexpr std::array<const char*, 9> kLegacyOnly = {
    "machine", "firmware", "firmwareCode", "firmwareVars", "devices", "vga", "vnc", "tpm", "usb"};

std::string Join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (auto s : items) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

// A string field that must be one of `allowed`.
Status OneOf(const YamlContext& ctx, const YamlMap& map, std::string_view key,
             std::initializer_list<std::string_view> allowed, std::string* out) {
  SV_ASSIGN_OR_RETURN(*out, map.String(key, false, *out));
  if (std::find(allowed.begin(), allowed.end(), *out) != allowed.end()) return Ok();
  return ctx.Fail(*map.Get(key), map.Path(key),
                  "expected one of " + Join(allowed) + ", got '" + *out + "'");
}

bool TokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

Status ParseVnc(const YamlContext& ctx, const YamlMap& map, LegacySpec* spec) {
  auto node = map.Get("vnc");
  if (!node) return Ok();
  SV_ASSIGN_OR_RETURN(auto vnc, YamlMap::Open(ctx, *node, map.Path("vnc"),
                                              {"listen", "display", "password", "token"}));
  SV_TRY(OneOf(ctx, vnc, "listen", {"none", "unix", "loopback"}, &spec->vnc_listen));
  SV_ASSIGN_OR_RETURN(int64_t display, vnc.Int("display", 0, 99, 0));
  spec->vnc_display = static_cast<int>(display);
  SV_ASSIGN_OR_RETURN(spec->vnc_password, vnc.String("password", false));
  if (spec->vnc_password.size() > 8) {
    return ctx.Fail(*vnc.Get("password"), vnc.Path("password"),
                    "VNC passwords have at most 8 characters (QEMU would silently cut it)");
  }
  if (spec->vnc_listen == "loopback" && spec->vnc_password.empty()) {
    return ctx.Fail(*node, vnc.Path("password"),
                    "a VNC server on 127.0.0.1 needs a password (or use listen: unix)");
  }
  SV_ASSIGN_OR_RETURN(spec->display_token, vnc.String("token", false));
  if (vnc.Has("token")) {
    const std::string& t = spec->display_token;
    if (t.size() < 16 || t.size() > 128 || !std::all_of(t.begin(), t.end(), TokenChar)) {
      return ctx.Fail(*vnc.Get("token"), vnc.Path("token"),
                      "expected 16 to 128 characters of A-Z a-z 0-9 - _ . ~");
    }
    if (spec->vnc_listen == "none") {
      return ctx.Fail(*vnc.Get("token"), vnc.Path("token"), "a token needs a VNC server (listen)");
    }
  }
  return Ok();
}

Status ParseUsb(const YamlContext& ctx, const YamlMap& map, LegacySpec* spec) {
  auto node = map.Get("usb");
  if (!node) return Ok();
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(ctx, *node, map.Path("usb")));
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string path = map.Path("usb") + "[" + std::to_string(i) + "]";
    SV_ASSIGN_OR_RETURN(std::string id, ScalarText(ctx, items[i], path));
    auto parsed = legacy::ParseUsbId(id);
    if (!parsed) return ctx.Fail(items[i], path, parsed.error().message());
    if (std::find(spec->usb.begin(), spec->usb.end(), id) != spec->usb.end()) {
      return ctx.Fail(items[i], path, "USB device " + id + " is listed twice");
    }
    spec->usb.push_back(id);
  }
  return Ok();
}

}  // namespace

Status ParseLegacyDisk(const YamlContext& ctx, const YamlMap& disk, WorkloadKind kind,
                       DiskSpec* out) {
  for (const char* key : {"format", "overlay"}) {
    if (kind != WorkloadKind::kLegacyVm && disk.Has(key)) {
      return ctx.Fail(*disk.Get(key), disk.Path(key), "only legacy-vm disks have this field");
    }
  }
  SV_TRY(OneOf(ctx, disk, "format", {"raw", "qcow2"}, &out->format));
  SV_ASSIGN_OR_RETURN(out->overlay, disk.Bool("overlay", false));
  if (out->overlay && out->read_only) {
    return ctx.Fail(*disk.Get("overlay"), disk.Path("overlay"),
                    "an overlay is written by the VM: drop readOnly, or drop overlay");
  }
  return Ok();
}

Status ParseScreenHealth(const YamlContext& ctx, const YamlMap& health, HealthCheck* h) {
  SV_ASSIGN_OR_RETURN(auto screen, YamlMap::Open(ctx, *health.Get("screen"), health.Path("screen"),
                                                 {"notBlank", "contains"}));
  h->type = HealthType::kScreen;
  SV_ASSIGN_OR_RETURN(bool not_blank, screen.Bool("notBlank", true));
  if (!not_blank) {
    return ctx.Fail(*screen.Get("notBlank"), screen.Path("notBlank"),
                    "a screen check always wants a screen that is not blank (true)");
  }
  SV_ASSIGN_OR_RETURN(h->screen_text, screen.String("contains", false));
  if (h->screen_text.size() > 200) {
    return ctx.Fail(*screen.Get("contains"), screen.Path("contains"),
                    "expected at most 200 characters of text to find on the screen");
  }
  return Ok();
}

Status ParseLegacyFields(const YamlContext& ctx, const YamlMap& map, Workload* w) {
  const bool legacy = w->kind == WorkloadKind::kLegacyVm;
  for (const char* key : kLegacyOnly) {
    if (!legacy && map.Has(key)) {
      return ctx.Fail(*map.Get(key), map.Path(key), "only legacy-vm has this field");
    }
  }
  if (!legacy && w->health.type == HealthType::kScreen) {
    return ctx.Fail(*map.Get("health"), map.Path("health") + ".screen",
                    "only a legacy-vm has a screen to check");
  }
  if (!legacy) return Ok();
  LegacySpec& spec = w->legacy;
  SV_TRY(OneOf(ctx, map, "machine", {"pc", "q35"}, &spec.machine));
  SV_TRY(OneOf(ctx, map, "firmware", {"seabios", "ovmf"}, &spec.firmware));
  SV_ASSIGN_OR_RETURN(spec.firmware_code, map.String("firmwareCode", false));
  SV_ASSIGN_OR_RETURN(spec.firmware_vars, map.String("firmwareVars", false));
  if (map.Has("firmwareVars") && spec.firmware != "ovmf") {
    return ctx.Fail(*map.Get("firmwareVars"), map.Path("firmwareVars"),
                    "only OVMF (firmware: ovmf) has a vars file");
  }
  SV_TRY(OneOf(ctx, map, "devices", {"virtio", "emulated"}, &spec.devices));
  SV_TRY(OneOf(ctx, map, "vga", {"std", "cirrus", "qxl", "virtio", "none"}, &spec.vga));
  SV_TRY(ParseVnc(ctx, map, &spec));
  if (spec.vga == "none" && spec.vnc_listen != "none") {
    return ctx.Fail(*map.Get("vga"), map.Path("vga"),
                    "VNC shows the graphics card: with vga: none set vnc: {listen: none}");
  }
  if (spec.vnc_listen == "none" && w->health.type == HealthType::kScreen) {
    return ctx.Fail(*map.Get("health"), map.Path("health") + ".screen",
                    "a screen check needs a display (vnc.listen unix or loopback)");
  }
  SV_ASSIGN_OR_RETURN(spec.tpm, map.Bool("tpm", false));
  SV_TRY(ParseUsb(ctx, map, &spec));
  if (!w->kernel.empty() || !w->initrd.empty() || !w->cmdline.empty()) {
    return ctx.Fail(map.node(), map.Path("kernel"),
                    "a legacy-vm boots from its disks through its firmware: drop kernel, initrd "
                    "and cmdline");
  }
  if (w->disks.empty()) {
    return ctx.Fail(map.node(), map.Path("disks"), "a legacy-vm needs at least one disk");
  }
  return Ok();
}

nlohmann::json LegacyToJson(const Workload& w) {
  const LegacySpec& s = w.legacy;
  nlohmann::json disks = nlohmann::json::array();
  for (const auto& d : w.disks) disks.push_back({{"format", d.format}, {"overlay", d.overlay}});
  // Secrets appear as a fingerprint: a changed password or token still changes the hash
  // (and replaces the VM) without the secret being shown by the API.
  auto fingerprint = [](const std::string& secret) -> std::string {
    if (secret.empty()) return "";
    uint64_t h = 1469598103934665603ULL;
    for (char c : secret) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return "set:" + std::to_string(h % 1000000);
  };
  return {{"machine", s.machine},
          {"firmware", s.firmware},
          {"firmwareCode", s.firmware_code},
          {"firmwareVars", s.firmware_vars},
          {"devices", s.devices},
          {"vga", s.vga},
          {"vnc",
           {{"listen", s.vnc_listen},
            {"display", s.vnc_display},
            {"password", fingerprint(s.vnc_password)},
            {"token", fingerprint(s.display_token)}}},
          {"tpm", s.tpm},
          {"usb", s.usb},
          {"diskOptions", disks}};
}

}  // namespace storevisor::daemon
