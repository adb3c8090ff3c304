// Checks across a profile: names are unique, references resolve, after: has no cycle,
// published ports do not clash; and, against a host, that nothing over-commits.
#include <cstdio>
#include <map>
#include <set>

#include "daemon/profile/profile.h"
#include "daemon/profile/yaml_reader.h"

namespace storevisor::daemon {

namespace {

std::string WorkloadPath(size_t i) { return "spec.workloads[" + std::to_string(i) + "]"; }

// Depth-first search; on a cycle fills `cycle` with "a -> b -> a".
bool FindCycle(const Profile& p, const std::string& name, std::map<std::string, int>* color,
               std::vector<std::string>* stack, std::string* cycle) {
  (*color)[name] = 1;
  stack->push_back(name);
  const Workload* w = p.Find(name);
  for (const auto& dep : w->after) {
    if ((*color)[dep] == 1) {
      bool on = false;
      for (const auto& s : *stack) {
        on = on || s == dep;
        if (on) *cycle += s + " -> ";
      }
      *cycle += dep;
      return true;
    }
    if ((*color)[dep] == 0 && FindCycle(p, dep, color, stack, cycle)) return true;
  }
  stack->pop_back();
  (*color)[name] = 2;
  return false;
}

Status CheckWorkloadRefs(const YamlContext& ctx, const Profile& p, size_t i,
                         std::map<int, std::string>* host_ports) {
  const Workload& w = p.workloads[i];
  for (const auto& dep : w.after) {
    if (dep == w.name)
      return ctx.FailAtLine(w.line, WorkloadPath(i) + ".after",
                            "a workload cannot wait for itself");
    if (p.Find(dep) == nullptr) {
      return ctx.FailAtLine(w.line, WorkloadPath(i) + ".after",
                            "no workload named '" + dep + "' in this profile");
    }
  }
  for (const auto& net : w.networks) {
    bool found = false;
    for (const auto& n : p.networks) found = found || n.name == net;
    if (!found) {
      return ctx.FailAtLine(w.line, WorkloadPath(i) + ".networks",
                            "no network named '" + net + "' in spec.networks");
    }
  }
  for (const auto& port : w.ports) {
    auto [it, fresh] = host_ports->emplace(port.host, w.name);
    if (!fresh) {
      return ctx.FailAtLine(w.line, WorkloadPath(i) + ".ports",
                            "host port " + std::to_string(port.host) +
                                " is already published by '" + it->second + "'");
    }
  }
  if (!w.ports.empty() && w.networks.empty()) {
    return ctx.FailAtLine(w.line, WorkloadPath(i) + ".ports",
                          "publishing a port needs the workload on a network (networks:)");
  }
  return Ok();
}

}  // namespace

Status CheckReferences(const YamlContext& ctx, const Profile& p) {
  std::set<std::string> names;
  for (size_t i = 0; i < p.networks.size(); ++i) {
    if (!names.insert(p.networks[i].name).second) {
      return ctx.FailAtLine(p.networks[i].line, "spec.networks[" + std::to_string(i) + "].name",
                            "network '" + p.networks[i].name + "' is declared twice");
    }
  }
  for (size_t i = 0; i < p.networks.size(); ++i) {
    for (const auto& other : p.networks[i].allow) {
      if (names.count(other) == 0) {
        return ctx.FailAtLine(p.networks[i].line, "spec.networks[" + std::to_string(i) + "].allow",
                              "no network named '" + other + "'");
      }
    }
  }
  names.clear();
  for (size_t i = 0; i < p.workloads.size(); ++i) {
    if (!names.insert(p.workloads[i].name).second) {
      return ctx.FailAtLine(p.workloads[i].line, WorkloadPath(i) + ".name",
                            "workload '" + p.workloads[i].name + "' is declared twice");
    }
  }
  std::map<int, std::string> host_ports;
  for (size_t i = 0; i < p.workloads.size(); ++i) {
    SV_TRY(CheckWorkloadRefs(ctx, p, i, &host_ports));
  }
  std::map<std::string, int> color;
  for (size_t i = 0; i < p.workloads.size(); ++i) {
    std::vector<std::string> stack;
    std::string cycle;
    if (color[p.workloads[i].name] == 0 &&
        FindCycle(p, p.workloads[i].name, &color, &stack, &cycle)) {
      return ctx.FailAtLine(p.workloads[i].line, WorkloadPath(i) + ".after",
                            "start order has a cycle: " + cycle);
    }
  }
  return Ok();
}

Status CheckOvercommit(const Profile& profile, const HostResources& host) {
  // Pinned demand per CPU: a workload asking for `cpus` on a cpuset of n CPUs puts cpus/n on
  // each. Unpinned workloads share whatever is left and are not counted.
  std::map<int, double> demand;
  for (const auto& w : profile.workloads) {
    if (w.cpuset.empty()) continue;
    auto cpus = ParseCpuset(w.cpuset);
    if (!cpus) return cpus.error();
    for (int cpu : *cpus) {
      if (cpu >= host.cpus) {
        return Error(ErrorCode::kResourceExhausted,
                     profile.file + ": workload '" + w.name + "': cpuset " + w.cpuset +
                         " names CPU " + std::to_string(cpu) + " but this host has CPUs 0-" +
                         std::to_string(host.cpus - 1));
      }
      demand[cpu] += w.cpus / static_cast<double>(cpus->size());
    }
  }
  for (const auto& [cpu, want] : demand) {
    if (want > profile.cpu_overcommit + 1e-9) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    ": pinned CPU %d is asked for %.2f CPUs, %.2f more than the allowed %.2f "
                    "(spec.limits.cpuOvercommit); lower cpus or spread the cpusets",
                    cpu, want, want - profile.cpu_overcommit, profile.cpu_overcommit);
      return Error(ErrorCode::kResourceExhausted, profile.file + msg);
    }
  }
  uint64_t memory = 0;
  for (const auto& w : profile.workloads) memory += w.memory_bytes;
  const double allowed = static_cast<double>(host.memory_bytes) * profile.memory_overcommit;
  if (static_cast<double>(memory) > allowed) {
    constexpr double kMiB = 1024.0 * 1024.0;
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  ": workloads ask for %.0f MiB of memory, %.0f MiB more than the allowed %.0f MiB "
                  "(host %.0f MiB x spec.limits.memoryOvercommit %.2f)",
                  static_cast<double>(memory) / kMiB,
                  (static_cast<double>(memory) - allowed) / kMiB, allowed / kMiB,
                  static_cast<double>(host.memory_bytes) / kMiB, profile.memory_overcommit);
    return Error(ErrorCode::kResourceExhausted, profile.file + msg);
  }
  return Ok();
}

}  // namespace storevisor::daemon
