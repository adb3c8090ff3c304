#include "cli/output.h"

#include <cstdio>
#include <string>

namespace storevisor::cli {

namespace {

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ULL << 30))
    std::snprintf(buf, sizeof buf, "%.1fGi", static_cast<double>(bytes) / 1073741824.0);
  else if (bytes >= (1ULL << 20))
    std::snprintf(buf, sizeof buf, "%.1fMi", static_cast<double>(bytes) / 1048576.0);
  else if (bytes > 0)
    std::snprintf(buf, sizeof buf, "%.0fKi", static_cast<double>(bytes) / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "-");
  return buf;
}

std::string Duration(int64_t ms) {
  if (ms <= 0) return "-";
  int64_t s = ms / 1000;
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60));
  return buf;
}

void PrintRows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor: %s\n", e.message().c_str());
  return ExitCodeFor(e.code());
}

void PrintTable(const std::vector<api::WorkloadStatus>& list, bool wide) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "KIND", "STATE", "HEALTH", "UPTIME", "RESTARTS", "CPU", "MEMORY", "ADDRESS"}};
  if (wide) rows[0].insert(rows[0].end(), {"PID", "DESIRED", "LAST ERROR"});
  for (const auto& w : list) {
    char cpu[16];
    std::snprintf(cpu, sizeof cpu, "%.1f%%", w.cpu_percent);
    // A container with a role shows the role (`vision`), as the profile names its kind.
    rows.push_back({w.name, w.role.empty() ? w.kind : w.role, w.state, w.health,
                    Duration(w.uptime_ms), std::to_string(w.restarts),
                    w.state == "running" ? cpu : "-", Human(w.memory_bytes),
                    w.address.empty() ? "-" : w.address});
    if (wide) {
      rows.back().insert(rows.back().end(), {w.pid > 0 ? std::to_string(w.pid) : "-",
                                             w.desired.empty() ? "-" : w.desired,
                                             w.last_error.empty() ? "-" : w.last_error});
    }
  }
  PrintRows(rows);
}

void PrintPlan(const api::ApplyResponse& plan) {
  if (plan.steps.empty()) std::printf("no changes: the box matches the profile\n");
  for (const auto& s : plan.steps) {
    const std::string& a = s.action;
    const char* mark = a == "create" ? "+" : a == "delete" ? "-" : a == "replace" ? "-/+" : "~";
    std::printf("%-3s %-8s %s (%s)\n", mark, a.c_str(), s.name.c_str(), s.reason.c_str());
  }
  for (const auto& h : plan.held) std::printf("    held     %s\n", h.c_str());
}

void PrintEvent(const api::EventRecord& e) {
  // Events from other services (POST /v1/events) show who sent them and their data.
  const std::string who = e.source.empty() ? e.workload : e.source;
  const std::string text = e.source.empty() ? e.message : e.time + " " + e.data;
  std::printf("%-6lld %-10s %-12s %s\n", static_cast<long long>(e.id), e.type.c_str(), who.c_str(),
              text.c_str());
}

}  // namespace storevisor::cli
