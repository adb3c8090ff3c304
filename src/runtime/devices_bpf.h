// cgroup v2 device rules: linux.resources.devices compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
// program (raw instructions, as crun and runc generate them: no compiler at build or run
// time) and attached to the container's v2 cgroup.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "runtime/runtime.h"

namespace storevisor::runtime {

// One instruction, laid out as the kernel's struct bpf_insn (whose register bitfields make
// GCC 12 warn falsely when stored in a vector): registers are dst | src << 4 (x86-64).
struct BpfInsn {
  uint8_t code;
  uint8_t regs;
  int16_t off;
  int32_t imm;
};
static_assert(sizeof(BpfInsn) == sizeof(bpf_insn));

// The rules a container gets, in order (the last matching rule decides, as with v1's
// devices.allow/deny): the spec's rules, then the devices every container gets (null, zero,
// full, random, urandom, tty, console, ptmx, pts) and the spec's linux.devices, as runc
// adds them; except that a default device the spec denies by its exact type, major and
// minor stays denied.
std::vector<DeviceRule> EffectiveDeviceRules(const std::vector<DeviceRule>& spec_rules,
                                             const std::vector<Device>& devices);

// The program: returns 1 (allow) or 0 (deny) for a (type, major, minor, access) request.
std::vector<BpfInsn> CompileDeviceFilter(const std::vector<DeviceRule>& rules);

// Loads the program (the verifier's log is in the error) and attaches it to the cgroup2
// directory `cgroup_dir` (BPF_F_ALLOW_MULTI, like runc).
Status AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<BpfInsn>& program);

// How many device programs are attached to a cgroup2 directory (for tests and checks).
Result<uint32_t> CountDeviceFilters(const std::string& cgroup_dir);

}  // namespace storevisor::runtime
