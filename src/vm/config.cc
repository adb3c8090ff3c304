// VmConfig from JSON: strict (unknown fields are errors, so typos do not pass
// silently) and every error names the field path: "vm.json: disks[1].path: ...".
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>

#include "vm/vm.h"

namespace storevisor::vm {

using nlohmann::json;

namespace {

class Reader {
 public:
  Reader(const json& obj, std::string path, const std::string& source)
      : obj_(obj), path_(std::move(path)), source_(source) {}

  Error Fail(std::string_view field, std::string_view what) const {
    return Error(ErrorCode::kInvalidArgument,
                 source_ + ": " + Field(field) + ": " + std::string(what));
  }
  std::string Field(std::string_view f) const {
    return path_.empty() ? std::string(f) : path_ + "." + std::string(f);
  }
  // Rejects fields not in `known`.
  Status OnlyKnown(const std::set<std::string>& known) const {
    for (const auto& [k, v] : obj_.items()) {
      if (!known.count(k)) {
        std::string list;
        for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
        return Fail(k, "unknown field (known: " + list + ")");
      }
    }
    return Ok();
  }
  Status String(const char* key, std::string* out) const {
    if (!obj_.contains(key)) return Ok();
    if (!obj_[key].is_string()) return Fail(key, "must be a string");
    *out = obj_[key].get<std::string>();
    return Ok();
  }
  Status Bool(const char* key, bool* out) const {
    if (!obj_.contains(key)) return Ok();
    if (!obj_[key].is_boolean()) return Fail(key, "must be true or false");
    *out = obj_[key].get<bool>();
    return Ok();
  }
  template <typename T>
  Status Int(const char* key, T* out, int64_t lo, int64_t hi) const {
    if (!obj_.contains(key)) return Ok();
    if (!obj_[key].is_number_integer()) return Fail(key, "must be an integer");
    int64_t v = obj_[key].get<int64_t>();
    if (v < lo || v > hi) {
      return Fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    *out = static_cast<T>(v);
    return Ok();
  }
  const json& obj() const { return obj_; }

 private:
  const json& obj_;
  std::string path_;
  const std::string& source_;
};

std::string Resolve(const std::string& base, const std::string& p) {
  if (p.empty() || p[0] == '/' || base.empty()) return p;
  return base + "/" + p;
}

// Line of byte offset `pos` in text (1-based), for parse errors.
size_t LineOf(std::string_view text, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

Result<SerialConfig> ParseSerial(const std::string& s) {
  SerialConfig c;
  if (s == "stdout") return c;
  if (s == "none") {
    c.kind = SerialConfig::Kind::kNone;
    return c;
  }
  if (s.rfind("file:", 0) == 0 && s.size() > 5) {
    c.kind = SerialConfig::Kind::kFile;
    c.path = s.substr(5);
    return c;
  }
  return Error(ErrorCode::kInvalidArgument, "must be stdout, none or file:PATH");
}

Result<AccelMode> ParseAccelMode(const std::string& s) {
  if (s == "auto") return AccelMode::kAuto;
  if (s == "kvm") return AccelMode::kKvm;
  if (s == "tcg") return AccelMode::kTcg;
  return Error(ErrorCode::kInvalidArgument, "must be auto, kvm or tcg");
}

bool ValidMac(const std::string& mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2 ? mac[i] != ':' : !isxdigit(static_cast<unsigned char>(mac[i]))) return false;
  }
  return true;
}

Status ParseDisks(const Reader& r, const std::string& src, const std::string& base, VmConfig* c) {
  if (!r.obj().contains("disks")) return Ok();
  const json& arr = r.obj()["disks"];
  if (!arr.is_array()) return r.Fail("disks", "must be an array");
  if (arr.size() > 16) return r.Fail("disks", "at most 16 disks");
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string path = "disks[" + std::to_string(i) + "]";
    if (!arr[i].is_object())
      return Error(ErrorCode::kInvalidArgument, src + ": " + path.append(": must be an object"));
    Reader d(arr[i], path, src);
    DiskConfig disk;
    SV_TRY(d.OnlyKnown({"path", "readonly", "format"}));
    SV_TRY(d.String("path", &disk.path));
    SV_TRY(d.Bool("readonly", &disk.readonly));
    SV_TRY(d.String("format", &disk.format));
    if (disk.path.empty()) return d.Fail("path", "is required");
    if (disk.path.find(',') != std::string::npos) return d.Fail("path", "must not contain ','");
    if (disk.format != "raw" && disk.format != "qcow2")
      return d.Fail("format", "must be raw or qcow2");
    disk.path = Resolve(base, disk.path);
    c->disks.push_back(disk);
  }
  return Ok();
}

Status ParseNets(const Reader& r, const std::string& src, VmConfig* c) {
  if (!r.obj().contains("nets")) return Ok();
  const json& arr = r.obj()["nets"];
  if (!arr.is_array()) return r.Fail("nets", "must be an array");
  if (arr.size() > 8) return r.Fail("nets", "at most 8 network interfaces");
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string path = "nets[" + std::to_string(i) + "]";
    if (!arr[i].is_object())
      return Error(ErrorCode::kInvalidArgument, src + ": " + path.append(": must be an object"));
    Reader n(arr[i], path, src);
    NetConfig net;
    SV_TRY(n.OnlyKnown({"tap", "mac"}));
    SV_TRY(n.String("tap", &net.tap));
    SV_TRY(n.String("mac", &net.mac));
    if (net.tap.empty() || net.tap.size() > 15 ||
        net.tap.find_first_of(",/ =") != std::string::npos) {
      return n.Fail("tap", "must be a tap device name (1-15 characters, no ',', '/', ' ', '=')");
    }
    if (!net.mac.empty() && !ValidMac(net.mac))
      return n.Fail("mac", "must look like 52:54:00:12:34:56");
    c->nets.push_back(net);
  }
  return Ok();
}

Status ParseTop(const Reader& r, const std::string& src, const std::string& base, VmConfig* c) {
  SV_TRY(r.OnlyKnown({"name",
                      "kernel",
                      "initrd",
                      "cmdline",
                      "cpus",
                      "memory_mib",
                      "disks",
                      "root_disk",
                      "nets",
                      "serial",
                      "qmp",
                      "accel",
                      "tcg_tb_size_mib",
                      "mem_merge",
                      "balloon",
                      "rng",
                      "ready_timeout_s",
                      "stop_timeout_s",
                      "qemu",
                      "ram_file",
                      "console_socket",
                      "guest_tracing"}));
  SV_TRY(r.String("name", &c->name));
  SV_TRY(r.String("kernel", &c->kernel));
  SV_TRY(r.String("initrd", &c->initrd));
  SV_TRY(r.String("cmdline", &c->cmdline));
  SV_TRY(r.Int("cpus", &c->cpus, 1, 64));
  SV_TRY(r.Int("memory_mib", &c->memory_mib, 128, 1 << 20));
  SV_TRY(ParseDisks(r, src, base, c));
  int root = -1;
  SV_TRY(r.Int("root_disk", &root, 0, 15));
  if (r.obj().contains("root_disk")) {
    if (root >= static_cast<int>(c->disks.size())) return r.Fail("root_disk", "no such disk index");
    c->root_disk = root;
  }
  SV_TRY(ParseNets(r, src, c));
  std::string serial = "stdout";
  SV_TRY(r.String("serial", &serial));
  auto s = ParseSerial(serial);
  if (!s) return r.Fail("serial", s.error().message());
  c->serial = *s;
  SV_TRY(r.String("qmp", &c->qmp_path));
  SV_TRY(r.String("console_socket", &c->console_socket));
  if (!c->console_socket.empty() && c->console_socket[0] != '/') {
    return r.Fail("console_socket", "must be an absolute path");
  }
  if (c->console_socket.size() > 107) {
    return r.Fail("console_socket", "longer than a unix socket path may be (107 bytes)");
  }
  std::string accel = "auto";
  SV_TRY(r.String("accel", &accel));
  auto a = ParseAccelMode(accel);
  if (!a) return r.Fail("accel", a.error().message());
  c->accel = *a;
  SV_TRY(r.Int("tcg_tb_size_mib", &c->tcg_tb_size_mib, 8, 2048));
  SV_TRY(r.Bool("mem_merge", &c->mem_merge));
  SV_TRY(r.Bool("balloon", &c->balloon));
  SV_TRY(r.Bool("rng", &c->rng));
  SV_TRY(r.Bool("guest_tracing", &c->guest_tracing));
  SV_TRY(r.Int("ready_timeout_s", &c->ready_timeout_s, 1, 3600));
  SV_TRY(r.Int("stop_timeout_s", &c->stop_timeout_s, 1, 600));
  SV_TRY(r.String("qemu", &c->qemu));
  SV_TRY(r.String("ram_file", &c->ram_file));
  if (c->kernel.empty()) return r.Fail("kernel", "is required");
  if (c->name.empty() || c->name.size() > 64 ||
      c->name.find_first_of(",= /") != std::string::npos) {
    return r.Fail("name", "must be 1-64 characters without ',', '=', ' ' or '/'");
  }
  if (c->cmdline.find('\n') != std::string::npos) return r.Fail("cmdline", "must be one line");
  c->kernel = Resolve(base, c->kernel);
  c->initrd = Resolve(base, c->initrd);
  return Ok();
}

}  // namespace

Result<VmConfig> ParseVmConfig(std::string_view text, const std::string& source,
                               const std::string& base_dir) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return Error(ErrorCode::kInvalidArgument, source + ":" + std::to_string(LineOf(text, e.byte)) +
                                                  ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Error(ErrorCode::kInvalidArgument, source + ": must be a JSON object");
  VmConfig c;
  SV_TRY(ParseTop(Reader(j, "", source), source, base_dir, &c));
  return c;
}

json VmConfig::ToJson() const {
  json disks_j = json::array();
  for (const auto& d : disks) {
    disks_j.push_back({{"path", d.path}, {"readonly", d.readonly}, {"format", d.format}});
  }
  json nets_j = json::array();
  for (const auto& n : nets) {
    json o{{"tap", n.tap}};
    if (!n.mac.empty()) o["mac"] = n.mac;
    nets_j.push_back(o);
  }
  std::string serial_s = serial.kind == SerialConfig::Kind::kStdout ? "stdout"
                         : serial.kind == SerialConfig::Kind::kNone ? "none"
                                                                    : "file:" + serial.path;
  json j{{"name", name},
         {"kernel", kernel},
         {"initrd", initrd},
         {"cmdline", cmdline},
         {"cpus", cpus},
         {"memory_mib", memory_mib},
         {"disks", disks_j},
         {"nets", nets_j},
         {"serial", serial_s},
         {"accel", accel == AccelMode::kAuto  ? "auto"
                   : accel == AccelMode::kKvm ? "kvm"
                                              : "tcg"},
         {"tcg_tb_size_mib", tcg_tb_size_mib},
         {"mem_merge", mem_merge},
         {"balloon", balloon},
         {"rng", rng},
         {"guest_tracing", guest_tracing},
         {"ready_timeout_s", ready_timeout_s},
         {"stop_timeout_s", stop_timeout_s},
         {"qemu", qemu}};
  if (root_disk) j["root_disk"] = *root_disk;
  if (!qmp_path.empty()) j["qmp"] = qmp_path;
  if (!ram_file.empty()) j["ram_file"] = ram_file;
  if (!console_socket.empty()) j["console_socket"] = console_socket;
  return j;
}

Result<uint64_t> HostMemoryMib(const std::string& meminfo) {
  std::ifstream f(meminfo);
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib / 1024;
  }
  return Error(ErrorCode::kIo, meminfo + ": no MemTotal line");
}

namespace {
Status NeedFile(const std::string& path, const std::string& field) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(field + ": '" + path + "'").Context("vm config");
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Error(ErrorCode::kInvalidArgument,
                 "vm config: " + field + ": '" + path + "' is not a regular file");
  }
  return Ok();
}

// A kernel QEMU can boot: a bzImage ("HdrS" at 0x202) or an ELF (PVH vmlinux).
Status CheckKernelImage(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string head(0x206, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  size_t got = static_cast<size_t>(f.gcount());
  bool elf = got >= 4 && head.compare(0, 4,
                                      "\x7f"
                                      "ELF") == 0;
  bool bzimage = got >= 0x206 && head.compare(0x202, 4, "HdrS") == 0;
  if (elf || bzimage) return Ok();
  return Error(ErrorCode::kInvalidArgument,
               "vm config: kernel: '" + path +
                   "' is neither a bzImage nor an ELF vmlinux (corrupt or wrong file?); "
                   "run scripts/setup.sh to rebuild build/guest/");
}
}  // namespace

Status ValidateForHost(const VmConfig& c, uint64_t host_mem_mib) {
  SV_TRY(NeedFile(c.kernel, "kernel"));
  SV_TRY(CheckKernelImage(c.kernel));
  if (!c.initrd.empty()) SV_TRY(NeedFile(c.initrd, "initrd"));
  for (size_t i = 0; i < c.disks.size(); ++i) {
    SV_TRY(NeedFile(c.disks[i].path, "disks[" + std::to_string(i) + "].path"));
  }
  if (c.memory_mib > host_mem_mib) {
    return Error(ErrorCode::kResourceExhausted,
                 "vm config: memory_mib: " + std::to_string(c.memory_mib) +
                     " MiB is more than the host has (" + std::to_string(host_mem_mib) +
                     " MiB); lower it");
  }
  return Ok();
}

}  // namespace storevisor::vm
