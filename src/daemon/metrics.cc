#include "daemon/metrics.h"

#include <cstdio>

#include "common/prometheus.h"

namespace storevisor::daemon {

namespace {

// One metric family: the text format wants all lines of a family in one group under its
// HELP and TYPE, so samples are collected per family and printed family by family.
struct Family {
  Family(const char* n, const char* t, const char* h) : name(n), type(t), help(h) {}
  const char* name;
  const char* type;
  const char* help;
  std::string samples;
  // labels: `name="x",...` (no braces); value: the number as text.
  void Add(const std::string& labels, const std::string& value) {
    samples.append(name);
    if (!labels.empty()) samples.append("{").append(labels).append("}");
    samples.append(" ").append(value).append("\n");
  }
  void AddJson(const std::string& labels, const nlohmann::json& value) {
    if (value.is_number()) Add(labels, value.dump());
  }
};

// o[key] for reading: null when o is no object or lacks key (operator[] on a const json
// must not be given a missing key).
const nlohmann::json& Get(const nlohmann::json& o, const char* key) {
  static const nlohmann::json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::string Fixed2(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// The states `ps` shows (WorkloadJson's "state"); storevisor_workload_state has one series
// per state, 1 for the workload's own.
constexpr const char* kStates[] = {"pending", "creating", "running", "exited",
                                   "failed",  "stopped",  "removed"};

}  // namespace

std::string FormatMetrics(const std::vector<WorkloadMetrics>& workloads,
                          const StoreMetrics& store) {
  Family up{"storevisor_workload_up", "gauge", "1 when the workload's instance runs."};
  Family healthy{"storevisor_workload_healthy", "gauge", "1 when its last health checks passed."};
  Family state{"storevisor_workload_state", "gauge",
               "1 for the workload's state now (as in ps: pending, creating, running, exited, "
               "failed, stopped, removed), 0 for the others."};
  Family restarts{"storevisor_workload_restarts_total", "counter",
                  "Restarts by the supervisor or operator."};
  Family cpu{"storevisor_workload_cpu_percent", "gauge",
             "CPU use of the workload's cgroup (all its processes; the main process where it "
             "has none), percent of one CPU over about a second."};
  Family memory{"storevisor_workload_memory_bytes", "gauge",
                "Memory charged to the workload's cgroup (v1 memory.usage_in_bytes, v2 "
                "memory.current; else the main process's RSS)."};
  // Virtual machines: the accelerator, and QEMU's counters from `storevisor-vm status -o
  // json` (docs/vm.md "status -o json counters"), each only where the engine has it.
  Family accel{"storevisor_vm_accelerator", "gauge",
               "1 with the accelerator the VM's QEMU runs on (accel: kvm or tcg)."};
  Family vcpu{"storevisor_vm_vcpu_seconds_total", "counter",
              "CPU time (user+system) of each vCPU thread of QEMU."};
  Family guest_mem{"storevisor_vm_guest_memory_bytes", "gauge",
                   "The guest's base memory (QMP query-memory-size-summary)."};
  Family balloon{"storevisor_vm_balloon_actual_bytes", "gauge",
                 "Guest memory minus the balloon (QMP query-balloon)."};
  Family rss{"storevisor_vm_qemu_rss_bytes", "gauge", "QEMU's resident memory (VmRSS)."};
  Family rss_anon{"storevisor_vm_qemu_rss_anon_bytes", "gauge",
                  "QEMU's resident anonymous memory (RssAnon)."};
  Family rss_file{"storevisor_vm_qemu_rss_file_bytes", "gauge",
                  "QEMU's resident file-backed memory (RssFile)."};
  Family tcg_code{"storevisor_vm_tcg_code_bytes", "gauge",
                  "TCG: size of the generated code (QMP x-query-jit)."};
  Family tcg_capacity{"storevisor_vm_tcg_code_capacity_bytes", "gauge",
                      "TCG: capacity of the code buffer (tb-size)."};
  Family tcg_tbs{"storevisor_vm_tcg_translation_blocks", "gauge",
                 "TCG: translation blocks in the code buffer."};
  Family tcg_flushes{"storevisor_vm_tcg_tb_flushes_total", "counter",
                     "TCG: flushes of the whole code buffer."};
  Family tcg_invalidations{"storevisor_vm_tcg_tb_invalidations_total", "counter",
                           "TCG: translation blocks invalidated."};
  Family qemu_stat{"storevisor_vm_qemu_stat", "untyped",
                   "KVM's own per-VM statistics (QMP query-stats, target vm; none under TCG), "
                   "scalar values only."};

  for (const auto& w : workloads) {
    const std::string name = PrometheusLabelValue(w.name);
    const std::string labels =
        "name=\"" + name + "\",kind=\"" + PrometheusLabelValue(w.kind) + "\"";
    up.Add(labels, w.state == "running" ? "1" : "0");
    healthy.Add(labels, w.health == "healthy" ? "1" : "0");
    bool known = false;
    for (const char* st : kStates) {
      known = known || w.state == st;
      state.Add(labels + ",state=\"" + st + "\"", w.state == st ? "1" : "0");
    }
    if (!known) state.Add(labels + ",state=\"" + PrometheusLabelValue(w.state) + "\"", "1");
    restarts.Add(labels, std::to_string(w.restarts));
    cpu.Add(labels, Fixed2(w.cpu_percent));
    memory.Add(labels, std::to_string(w.memory_bytes));
    if (!w.vm) continue;
    const std::string vm = "name=\"" + name + "\"";
    if (!w.accel.empty()) accel.Add(vm + ",accel=\"" + PrometheusLabelValue(w.accel) + "\"", "1");
    const nlohmann::json& counters = w.counters;
    const auto& vcpus = Get(counters, "vcpus");
    if (vcpus.is_array()) {
      for (const auto& v : vcpus) {
        const auto& index = Get(v, "index");
        if (!index.is_number_integer()) continue;
        vcpu.AddJson(vm + ",vcpu=\"" + index.dump() + "\"", Get(v, "cpu_seconds"));
      }
    }
    guest_mem.AddJson(vm, Get(counters, "guest_memory_bytes"));
    balloon.AddJson(vm, Get(counters, "balloon_actual_bytes"));
    rss.AddJson(vm, Get(counters, "rss_bytes"));
    rss_anon.AddJson(vm, Get(counters, "rss_anon_bytes"));
    rss_file.AddJson(vm, Get(counters, "rss_file_bytes"));
    const auto& t = Get(counters, "tcg");
    tcg_code.AddJson(vm, Get(t, "code_bytes"));
    tcg_capacity.AddJson(vm, Get(t, "code_capacity_bytes"));
    tcg_tbs.AddJson(vm, Get(t, "tb_count"));
    tcg_flushes.AddJson(vm, Get(t, "tb_flushes"));
    tcg_invalidations.AddJson(vm, Get(t, "tb_invalidations"));
    // query-stats: [{"provider": "kvm", "stats": [{"name": N, "value": V}, ...]}, ...];
    // histograms (array values) are left out.
    const auto& stats = Get(counters, "qemu_stats");
    if (stats.is_array()) {
      for (const auto& provider : stats) {
        const auto& p = Get(provider, "provider");
        const auto& list = Get(provider, "stats");
        if (!p.is_string() || !list.is_array()) continue;
        for (const auto& st : list) {
          const auto& stat = Get(st, "name");
          if (!stat.is_string()) continue;
          qemu_stat.AddJson(vm + ",provider=\"" + PrometheusLabelValue(p.get<std::string>()) +
                                "\",stat=\"" + PrometheusLabelValue(stat.get<std::string>()) + "\"",
                            Get(st, "value"));
        }
      }
    }
  }
  Family store_failing{"storevisor_state_store_failing", "gauge",
                       "1 while the state store refuses writes (records wait in memory)."};
  store_failing.Add("", store.failing ? "1" : "0");
  Family store_failures{"storevisor_state_store_write_failures_total", "counter",
                        "Writes the state store refused (each retried later)."};
  store_failures.Add("", std::to_string(store.write_failures));
  std::string out;
  for (const Family* f : {&store_failing, &store_failures, &up,          &healthy,
                          &state,         &restarts,       &cpu,         &memory,
                          &accel,         &vcpu,           &guest_mem,   &balloon,
                          &rss,           &rss_anon,       &rss_file,    &tcg_code,
                          &tcg_capacity,  &tcg_tbs,        &tcg_flushes, &tcg_invalidations,
                          &qemu_stat}) {
    out.append("# HELP ").append(f->name).append(" ").append(f->help).append("\n");
    out.append("# TYPE ").append(f->name).append(" ").append(f->type).append("\n");
    out += f->samples;
  }
  return out;
}

}  // namespace storevisor::daemon
