#include "runtime/devices_bpf.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace storevisor::runtime {
namespace {

// Devices every container gets, as runc adds them (null, zero, full, random, urandom,
// tty, console, ptmx, and the pty slaves).
std::vector<DeviceRule> DefaultDeviceRules() {
  return {{true, 'c', 1, 3, "rwm"},   {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},
          {true, 'c', 1, 8, "rwm"},   {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},
          {true, 'c', 5, 1, "rwm"},   {true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"},
          {true, 'c', 10, 200, "rwm"}};
}

bool ExplicitlyDenied(const std::vector<DeviceRule>& spec_rules, const DeviceRule& d) {
  for (const auto& r : spec_rules) {
    if (!r.allow && r.type == d.type && r.major == d.major && r.minor == d.minor) return true;
  }
  return false;
}

BpfInsn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return BpfInsn{code, static_cast<uint8_t>((dst & 0xf) | (src & 0xf) << 4), off, imm};
}

int32_t AccessMask(const std::string& access) {
  if (access.empty()) return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  int32_t m = 0;
  for (char c : access) {
    if (c == 'r') m |= BPF_DEVCG_ACC_READ;
    if (c == 'w') m |= BPF_DEVCG_ACC_WRITE;
    if (c == 'm') m |= BPF_DEVCG_ACC_MKNOD;
  }
  return m;
}

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

// Registers after the prologue: R2 device type, R3 requested access, R4 major, R5 minor.
// One rule: each check jumps to the end of the block (the next rule) when it fails.
// Returns false when the rule matches everything (nothing after it is reachable).
bool EmitRule(const DeviceRule& r, std::vector<BpfInsn>& out) {
  std::vector<BpfInsn> checks;
  if (r.type == 'c' || r.type == 'b') {
    checks.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0,
                          r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
  }
  int32_t mask = AccessMask(r.access);
  if (mask != kAllAccess) {
    // The request must be a subset of the rule's access: (R3 & mask) == R3.
    checks.push_back(Insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
    checks.push_back(Insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, mask));
    checks.push_back(Insn(BPF_JMP | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
  }
  if (r.major >= 0) {
    checks.push_back(
        Insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, static_cast<int32_t>(r.major)));
  }
  if (r.minor >= 0) {
    checks.push_back(
        Insn(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, static_cast<int32_t>(r.minor)));
  }
  // Jumps skip the rest of the checks and the two instructions of the verdict.
  for (size_t i = 0; i < checks.size(); ++i) {
    if ((checks[i].code & 0x07) == BPF_JMP)
      checks[i].off = static_cast<int16_t>(checks.size() - i + 1);
  }
  out.insert(out.end(), checks.begin(), checks.end());
  out.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r.allow ? 1 : 0));
  out.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return !checks.empty();
}

long Bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

}  // namespace

std::vector<DeviceRule> EffectiveDeviceRules(const std::vector<DeviceRule>& spec_rules,
                                             const std::vector<Device>& devices) {
  std::vector<DeviceRule> out = spec_rules;
  std::vector<DeviceRule> allow = DefaultDeviceRules();
  for (const auto& d : devices) {
    if (d.type == 'c' || d.type == 'b') allow.push_back({true, d.type, d.major, d.minor, "rwm"});
  }
  for (const auto& rule : allow) {
    if (!ExplicitlyDenied(spec_rules, rule)) out.push_back(rule);
  }
  return out;
}

std::vector<BpfInsn> CompileDeviceFilter(const std::vector<DeviceRule>& rules) {
  std::vector<BpfInsn> p;
  p.reserve(8 + rules.size() * 8);
  // R1 is the bpf_cgroup_dev_ctx: access_type = (access << 16) | type, major, minor.
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0));
  p.push_back(Insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff));
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0));
  p.push_back(Insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0));
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0));
  // The last matching rule decides: test them from the last one back.
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    if (!EmitRule(*it, p)) return p;  // matches everything: the rest is unreachable
  }
  p.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));  // no rule: deny
  p.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

Status AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<BpfInsn>& program) {
  static const char kLicense[] = "Apache-2.0";
  std::string log(1 << 16, '\0');
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  long prog = Bpf(BPF_PROG_LOAD, load);
  if (prog < 0 && errno == EINVAL) {
    // Load again with the verifier's log, to say why.
    load.log_buf = reinterpret_cast<uint64_t>(log.data());
    load.log_size = static_cast<uint32_t>(log.size());
    load.log_level = 1;
    prog = Bpf(BPF_PROG_LOAD, load);
    if (prog < 0) {
      return ErrnoError("load the cgroup device program (" + std::to_string(program.size()) +
                        " instructions; verifier: " + std::string(log.c_str()).substr(0, 512) +
                        ")");
    }
  }
  if (prog < 0) return ErrnoError("load the cgroup device program (needs CAP_SYS_ADMIN and bpf)");
  UniqueFd prog_fd(static_cast<int>(prog));
  UniqueFd dir(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError("open cgroup " + cgroup_dir);
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(dir.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, attach) != 0)
    return ErrnoError("attach the device program to " + cgroup_dir);
  // The attachment holds the program; it goes when the cgroup is removed.
  return Ok();
}

Result<uint32_t> CountDeviceFilters(const std::string& cgroup_dir) {
  UniqueFd dir(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError("open cgroup " + cgroup_dir);
  bpf_attr q{};
  q.query.target_fd = static_cast<uint32_t>(dir.get());
  q.query.attach_type = BPF_CGROUP_DEVICE;
  if (Bpf(BPF_PROG_QUERY, q) != 0) return ErrnoError("query device programs of " + cgroup_dir);
  return q.query.prog_cnt;
}

}  // namespace storevisor::runtime
