#include "runtime/seccomp.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <openssl/evp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <memory>

#include "common/files.h"
#include "common/unique_fd.h"

namespace storevisor::runtime {
namespace {

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

Result<uint32_t> Action(const std::string& name, std::optional<uint32_t> errno_ret) {
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
  return Error(ErrorCode::kInvalidArgument, "seccomp: unsupported action '" + name + "'");
}

Result<scmp_compare> CompareOp(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return Error(ErrorCode::kInvalidArgument, "seccomp: unknown operator '" + op + "'");
}

Result<unsigned int> Flags(const std::vector<std::string>& names) {
  unsigned int f = 0;
  for (const auto& n : names) {
    if (n == "SECCOMP_FILTER_FLAG_TSYNC") {
      f |= SECCOMP_FILTER_FLAG_TSYNC;
    } else if (n == "SECCOMP_FILTER_FLAG_LOG") {
      f |= SECCOMP_FILTER_FLAG_LOG;
    } else if (n == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") {
      f |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    } else {
      return Error(ErrorCode::kInvalidArgument, "seccomp: unknown flag '" + n + "'");
    }
  }
  return f;
}

Status AddArchitectures(void* ctx, const std::vector<std::string>& arches) {
  for (const auto& a : arches) {
    std::string name = a.rfind("SCMP_ARCH_", 0) == 0 ? a.substr(10) : a;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    uint32_t token = seccomp_arch_resolve_name(name.c_str());
    if (token == 0) return Error(ErrorCode::kInvalidArgument, "seccomp: unknown architecture " + a);
    int rc = seccomp_arch_add(ctx, token);
    if (rc != 0 && rc != -EEXIST) return ErrnoError("seccomp: add architecture " + a, -rc);
  }
  return Ok();
}

Status AddRule(void* ctx, const SeccompRule& rule, uint32_t default_action) {
  SV_ASSIGN_OR_RETURN(uint32_t action, Action(rule.action, rule.errno_ret));
  if (action == default_action) return Ok();  // libseccomp refuses no-op rules
  std::vector<scmp_arg_cmp> cmps;
  for (const auto& a : rule.args) {
    SV_ASSIGN_OR_RETURN(scmp_compare op, CompareOp(a.op));
    cmps.push_back({a.index, op, a.value, a.value_two});
  }
  for (const auto& name : rule.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // unknown on this kernel/arch: skipped, as runc does
    int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                    cmps.empty() ? nullptr : cmps.data());
    if (rc != 0) return ErrnoError("seccomp: add rule for " + name, -rc);
  }
  return Ok();
}

Result<std::vector<sock_filter>> Export(void* ctx) {
  int mfd = ::memfd_create("seccomp-bpf", MFD_CLOEXEC);
  if (mfd < 0) return ErrnoError("seccomp: memfd_create");
  UniqueFd fd(mfd);
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc != 0) return ErrnoError("seccomp: export BPF", -rc);
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoError("seccomp: lseek");
  SV_ASSIGN_OR_RETURN(std::string bytes, ReadAll(fd.get(), 1u << 20));
  std::vector<sock_filter> prog(bytes.size() / sizeof(sock_filter));
  std::memcpy(prog.data(), bytes.data(), prog.size() * sizeof(sock_filter));
  return prog;
}

std::string ProfileKey(const Seccomp& p) {
  nlohmann::json j = {{"d", p.default_action},
                      {"e", p.default_errno_ret.value_or(0)},
                      {"a", p.architectures},
                      {"f", p.flags}};
  for (const auto& r : p.syscalls) {
    nlohmann::json args = nlohmann::json::array();
    for (const auto& a : r.args) args.push_back({a.index, a.value, a.value_two, a.op});
    j["s"].push_back({r.names, r.action, r.errno_ret.value_or(0), args});
  }
  return Sha256Hex(j.dump());
}

Result<std::vector<sock_filter>> Compile(const Seccomp& p) {
  SV_ASSIGN_OR_RETURN(uint32_t def, Action(p.default_action, p.default_errno_ret));
  Ctx ctx(seccomp_init(def));
  if (ctx == nullptr) return Error(ErrorCode::kInternal, "seccomp: seccomp_init failed");
  // The filter is installed with seccomp(2) by the child; NNP is the spec's decision.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  SV_TRY(AddArchitectures(ctx.get(), p.architectures));
  for (const auto& rule : p.syscalls) SV_TRY(AddRule(ctx.get(), rule, def));
  return Export(ctx.get());
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<SeccompProgram> CompileSeccomp(const Seccomp& profile, const std::string& cache_dir) {
  SeccompProgram prog;
  SV_ASSIGN_OR_RETURN(prog.flags, Flags(profile.flags));
  std::string cache_file;
  if (!cache_dir.empty()) {
    cache_file = cache_dir + "/" + ProfileKey(profile) + ".bpf";
    auto cached = ReadFile(cache_file, 1u << 20);
    if (cached && !cached->empty() && cached->size() % sizeof(sock_filter) == 0) {
      prog.filter.resize(cached->size() / sizeof(sock_filter));
      std::memcpy(prog.filter.data(), cached->data(), cached->size());
      return prog;
    }
  }
  SV_ASSIGN_OR_RETURN(prog.filter, Compile(profile));
  if (!cache_file.empty() && MakeDirs(cache_dir, 0700)) {
    // A failed cache write only costs the next start a compile.
    (void)WriteFileAtomic(cache_file,
                          std::string_view(reinterpret_cast<const char*>(prog.filter.data()),
                                           prog.filter.size() * sizeof(sock_filter)),
                          0600);
  }
  return prog;
}

Result<Seccomp> SeccompFromJson(const nlohmann::json& j) {
  nlohmann::json spec = {
      {"ociVersion", "1.0.2"}, {"root", {{"path", "rootfs"}}}, {"linux", {{"seccomp", j}}}};
  SV_ASSIGN_OR_RETURN(Spec s, ParseSpec(spec.dump(), "seccomp profile"));
  return *s.seccomp;
}

int LoadSeccomp(const SeccompProgram& program) {
  sock_fprog fprog{static_cast<unsigned short>(program.filter.size()),
                   const_cast<sock_filter*>(program.filter.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, program.flags, &fprog) != 0) return -errno;
  return 0;
}

}  // namespace storevisor::runtime
