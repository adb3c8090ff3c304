// GET /metrics: Prometheus text (exposition format 0.0.4) from what the daemon knows of
// each workload; pure, so the format is unit-tested without a daemon or a VM.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace storevisor::daemon {

struct WorkloadMetrics {
  std::string name;
  std::string kind;
  std::string state;   // as `ps` shows it: pending, creating, running, exited, failed, stopped,
                       // removed
  std::string health;  // none, starting, healthy, unhealthy
  int64_t restarts = 0;
  double cpu_percent = 0;
  uint64_t memory_bytes = 0;
  // Running VMs only: the accelerator QEMU runs on and the engine's counters (the
  // `counters` object of `storevisor-vm status -o json`, docs/vm.md; null when unknown).
  bool vm = false;
  std::string accel;
  nlohmann::json counters;
};

// The state store as the core sees it: writes refused (a full disk) wait in memory.
struct StoreMetrics {
  bool failing = false;
  uint64_t write_failures = 0;
};

// Every metric family once, under its HELP and TYPE, with its samples in one group.
std::string FormatMetrics(const std::vector<WorkloadMetrics>& workloads,
                          const StoreMetrics& store = {});

}  // namespace storevisor::daemon
