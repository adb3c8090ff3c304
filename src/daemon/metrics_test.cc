// /metrics text: families grouped under HELP/TYPE, the state series, a VM's accelerator and
// QEMU's counters as `storevisor-vm status -o json` gives them under TCG and under KVM.
#include "daemon/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

namespace storevisor::daemon {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

WorkloadMetrics Container(const std::string& name, const std::string& state) {
  WorkloadMetrics w;
  w.name = name;
  w.kind = "container";
  w.state = state;
  w.health = state == "running" ? "healthy" : "none";
  return w;
}

WorkloadMetrics Vm(const std::string& accel, nlohmann::json counters) {
  WorkloadMetrics w;
  w.name = "pos";
  w.kind = "microvm";
  w.state = "running";
  w.health = "healthy";
  w.restarts = 2;
  w.cpu_percent = 12.5;
  w.memory_bytes = 17059840;
  w.vm = true;
  w.accel = accel;
  w.counters = std::move(counters);
  return w;
}

// The counters of a TCG guest, as storevisor-vm status printed them in daemon.e2e_vm.
const char* kTcgCounters = R"({
  "qemu_stats": [],
  "vcpus": [{"index": 0, "thread_id": 4242, "cpu_seconds": 0.35}],
  "balloon_actual_bytes": 268435456,
  "guest_memory_bytes": 268435456,
  "tcg": {"code_bytes": 5158291, "code_capacity_bytes": 16772096, "tb_count": 9321,
          "tb_flushes": 2, "tb_invalidations": 0},
  "rss_bytes": 95981568, "rss_anon_bytes": 50155520, "rss_file_bytes": 45826048})";

TEST(MetricsTest, EachFamilyIsOneGroupUnderItsHelpAndType) {
  const std::string text =
      FormatMetrics({Container("kv", "running"), Container("inventory", "running"),
                     Vm("tcg", nlohmann::json::parse(kTcgCounters))});
  std::map<std::string, int> groups;  // family -> groups of samples seen
  std::string last, typed;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("# TYPE ", 0) == 0) {
      typed = l.substr(7, l.find(' ', 7) - 7);
      continue;
    }
    if (l.rfind("# HELP ", 0) == 0) continue;
    const std::string family = l.substr(0, l.find_first_of("{ "));
    EXPECT_EQ(family, typed) << "sample before its TYPE: " << l;
    if (family != last) groups[family]++;
    last = family;
  }
  for (const auto& [family, n] : groups) EXPECT_EQ(n, 1) << family << " is split";
  EXPECT_EQ(groups.count("storevisor_workload_up"), 1u);
  EXPECT_EQ(groups.count("storevisor_vm_tcg_translation_blocks"), 1u);
}

TEST(MetricsTest, WorkloadStateHasOneSeriesPerState) {
  const std::string text =
      FormatMetrics({Container("kv", "stopped"), Container("odd", "paused-by-alien")});
  const std::string kv = "storevisor_workload_state{name=\"kv\",kind=\"container\",state=";
  EXPECT_TRUE(HasLine(text, kv + "\"stopped\"} 1")) << text;
  for (const char* other : {"pending", "creating", "running", "exited", "failed", "removed"}) {
    EXPECT_TRUE(HasLine(text, kv + "\"" + other + "\"} 0")) << other;
  }
  EXPECT_TRUE(HasLine(text, "storevisor_workload_up{name=\"kv\",kind=\"container\"} 0"));
  // A state this version does not know still shows, as the one at 1.
  EXPECT_TRUE(HasLine(
      text,
      "storevisor_workload_state{name=\"odd\",kind=\"container\",state=\"paused-by-alien\"} 1"));
  // Containers have no VM series.
  EXPECT_EQ(text.find("storevisor_vm_accelerator{"), std::string::npos);
}

TEST(MetricsTest, TcgVmHasAcceleratorAndQemuCounters) {
  const std::string text = FormatMetrics({Vm("tcg", nlohmann::json::parse(kTcgCounters))});
  for (const char* line : {
           "storevisor_workload_restarts_total{name=\"pos\",kind=\"microvm\"} 2",
           "storevisor_workload_cpu_percent{name=\"pos\",kind=\"microvm\"} 12.50",
           "storevisor_workload_memory_bytes{name=\"pos\",kind=\"microvm\"} 17059840",
           "storevisor_vm_accelerator{name=\"pos\",accel=\"tcg\"} 1",
           "storevisor_vm_vcpu_seconds_total{name=\"pos\",vcpu=\"0\"} 0.35",
           "storevisor_vm_guest_memory_bytes{name=\"pos\"} 268435456",
           "storevisor_vm_balloon_actual_bytes{name=\"pos\"} 268435456",
           "storevisor_vm_qemu_rss_bytes{name=\"pos\"} 95981568",
           "storevisor_vm_qemu_rss_anon_bytes{name=\"pos\"} 50155520",
           "storevisor_vm_qemu_rss_file_bytes{name=\"pos\"} 45826048",
           "storevisor_vm_tcg_code_bytes{name=\"pos\"} 5158291",
           "storevisor_vm_tcg_code_capacity_bytes{name=\"pos\"} 16772096",
           "storevisor_vm_tcg_translation_blocks{name=\"pos\"} 9321",
           "storevisor_vm_tcg_tb_flushes_total{name=\"pos\"} 2",
           "storevisor_vm_tcg_tb_invalidations_total{name=\"pos\"} 0",
       }) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n" << text;
  }
  EXPECT_EQ(text.find("storevisor_vm_qemu_stat{"), std::string::npos);
}

TEST(MetricsTest, KvmVmHasKvmStatsScalarsOnly) {
  // query-stats (target vm) under KVM: scalars and a histogram (an array), which is left out.
  auto counters = nlohmann::json::parse(R"({
    "qemu_stats": [{"provider": "kvm", "stats": [
        {"name": "remote_tlb_flush", "value": 12},
        {"name": "mmu_pte_write", "value": 0},
        {"name": "halt_poll_success_hist", "value": [1, 2, 3]}]}],
    "vcpus": [{"index": 0, "thread_id": 1, "cpu_seconds": 1.5},
              {"index": 1, "thread_id": 2, "cpu_seconds": 2}],
    "guest_memory_bytes": 536870912})");
  const std::string text = FormatMetrics({Vm("kvm", counters)});
  EXPECT_TRUE(HasLine(text, "storevisor_vm_accelerator{name=\"pos\",accel=\"kvm\"} 1"));
  EXPECT_TRUE(HasLine(
      text, "storevisor_vm_qemu_stat{name=\"pos\",provider=\"kvm\",stat=\"remote_tlb_flush\"} 12"));
  EXPECT_TRUE(HasLine(
      text, "storevisor_vm_qemu_stat{name=\"pos\",provider=\"kvm\",stat=\"mmu_pte_write\"} 0"));
  EXPECT_EQ(text.find("halt_poll_success_hist"), std::string::npos);
  EXPECT_TRUE(HasLine(text, "storevisor_vm_vcpu_seconds_total{name=\"pos\",vcpu=\"1\"} 2"));
  EXPECT_EQ(text.find("storevisor_vm_tcg_code_bytes{"), std::string::npos);
  EXPECT_EQ(text.find("storevisor_vm_balloon_actual_bytes{"), std::string::npos);  // absent
}

TEST(MetricsTest, VmWithoutCountersOrOddValues) {
  // No status (the engine did not answer): the accelerator from the record still shows.
  std::string text = FormatMetrics({Vm("tcg", nullptr)});
  EXPECT_TRUE(HasLine(text, "storevisor_vm_accelerator{name=\"pos\",accel=\"tcg\"} 1"));
  EXPECT_EQ(text.find("storevisor_vm_vcpu_seconds_total{"), std::string::npos);
  // Malformed counters are skipped, not thrown on; label values are escaped.
  text = FormatMetrics({Vm("t\"c\\g\n", nlohmann::json::parse(R"({
    "vcpus": [7, {"index": "zero"}, {"index": 0}], "tcg": [], "qemu_stats": [1, {"stats": 2}],
    "guest_memory_bytes": "lots"})"))});
  EXPECT_TRUE(HasLine(text, "storevisor_vm_accelerator{name=\"pos\",accel=\"t\\\"c\\\\g\\n\"} 1"))
      << text;
  EXPECT_EQ(text.find("storevisor_vm_vcpu_seconds_total{"), std::string::npos);
  EXPECT_EQ(text.find("storevisor_vm_guest_memory_bytes{"), std::string::npos);
}

}  // namespace
}  // namespace storevisor::daemon
