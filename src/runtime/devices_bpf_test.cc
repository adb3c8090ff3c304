// The cgroup device program, run on a small interpreter of the instructions it uses, and the
// rule list it is made from.
#include "runtime/devices_bpf.h"

#include <gtest/gtest.h>

#include <array>

namespace storevisor::runtime {
namespace {

// Runs the program on one request; -1 when it uses anything this interpreter (and so the
// generator) should not, or jumps out of bounds.
int Eval(const std::vector<BpfInsn>& p, char type, int access, uint32_t major, uint32_t minor) {
  std::array<uint32_t, 3> ctx = {
      static_cast<uint32_t>(access << 16 |
                            (type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK)),
      major, minor};
  std::array<uint64_t, 11> r{};
  for (size_t pc = 0; pc < p.size(); ++pc) {
    const BpfInsn& i = p[pc];
    int dst = i.regs & 0xf, src = i.regs >> 4;
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        if (src != BPF_REG_1 || i.off % 4 != 0 || i.off < 0 || i.off > 8) return -1;
        r[dst] = ctx[static_cast<size_t>(i.off / 4)];
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        r[dst] = static_cast<uint32_t>(r[dst] & static_cast<uint32_t>(i.imm));
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        r[dst] = static_cast<uint32_t>(r[dst]) >> i.imm;
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        r[dst] = static_cast<uint32_t>(r[src]);
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        r[dst] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[dst] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_JNE | BPF_X:
        if (r[dst] != r[src]) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT:
        return static_cast<int>(r[0]);
      default:
        return -1;
    }
    if (pc >= p.size()) return -1;
  }
  return -1;  // fell off the end: the verifier refuses that
}

constexpr int kR = BPF_DEVCG_ACC_READ, kW = BPF_DEVCG_ACC_WRITE, kM = BPF_DEVCG_ACC_MKNOD;

TEST(DeviceFilterTest, DefaultSpecAllowsTheDefaultDevicesOnly) {
  auto p = CompileDeviceFilter(EffectiveDeviceRules({{false, 'a', -1, -1, "rwm"}}, {}));
  EXPECT_EQ(Eval(p, 'c', kR | kW, 1, 3), 1);    // /dev/null
  EXPECT_EQ(Eval(p, 'c', kR, 1, 9), 1);         // /dev/urandom
  EXPECT_EQ(Eval(p, 'c', kR | kW, 136, 7), 1);  // a pty slave (any minor)
  EXPECT_EQ(Eval(p, 'c', kR, 1, 1), 0);         // /dev/mem
  EXPECT_EQ(Eval(p, 'b', kR, 8, 0), 0);         // a disk
  EXPECT_EQ(Eval(p, 'b', kM, 1, 3), 0);         // block 1:3 is not char 1:3
  EXPECT_EQ(Eval(p, 'c', kR, 10, 229), 0);      // /dev/fuse
}

TEST(DeviceFilterTest, LastMatchingRuleDecidesAndAccessIsASubset) {
  std::vector<DeviceRule> rules = {{false, 'a', -1, -1, "rwm"},
                                   {true, 'c', 10, 229, "rw"},
                                   {true, 'b', 8, -1, "r"},
                                   {false, 'b', 8, 1, "rwm"}};
  auto p = CompileDeviceFilter(EffectiveDeviceRules(rules, {}));
  EXPECT_EQ(Eval(p, 'c', kR | kW, 10, 229), 1);
  EXPECT_EQ(Eval(p, 'c', kM, 10, 229), 0);  // mknod not granted
  EXPECT_EQ(Eval(p, 'b', kR, 8, 0), 1);
  EXPECT_EQ(Eval(p, 'b', kR | kW, 8, 0), 0);  // write not granted
  EXPECT_EQ(Eval(p, 'b', kR, 8, 1), 0);       // denied by the later rule
}

TEST(DeviceFilterTest, ExplicitDenyOfADefaultDeviceIsKept) {
  std::vector<DeviceRule> rules = {{false, 'a', -1, -1, "rwm"}, {false, 'c', 1, 3, "rwm"}};
  auto eff = EffectiveDeviceRules(rules, {});
  auto p = CompileDeviceFilter(eff);
  EXPECT_EQ(Eval(p, 'c', kR, 1, 3), 0);
  EXPECT_EQ(Eval(p, 'c', kR, 1, 5), 1);
  for (const auto& r : eff) EXPECT_FALSE(r.allow && r.type == 'c' && r.major == 1 && r.minor == 3);
}

TEST(DeviceFilterTest, SpecDevicesAreAllowedAndAllowAllStopsTheProgram) {
  Device kmsg{'c', "/dev/kmsg", 1, 11, 0644, 0, 0};
  auto p = CompileDeviceFilter(EffectiveDeviceRules({{false, 'a', -1, -1, "rwm"}}, {kmsg}));
  EXPECT_EQ(Eval(p, 'c', kR, 1, 11), 1);
  // "allow everything" last: one unconditional verdict, nothing unreachable after it.
  auto all = CompileDeviceFilter({{false, 'c', 1, 3, "rwm"}, {true, 'a', -1, -1, ""}});
  EXPECT_EQ(all.size(), 8u);
  EXPECT_EQ(Eval(all, 'c', kR, 1, 3), 1);
  EXPECT_EQ(Eval(all, 'b', kR | kW | kM, 259, 0), 1);
  // No rule at all: deny.
  EXPECT_EQ(Eval(CompileDeviceFilter({}), 'c', kR, 1, 3), 0);
}

}  // namespace
}  // namespace storevisor::runtime
