#include "cli/console_top.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace storevisor::cli {

namespace {

using nlohmann::json;

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

// The daemon's error text for a non-2xx reply.
std::string ErrorText(const Reply& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("error", r.body) : r.body;
}

void PrintTop(const json& list, bool tty) {
  std::vector<json> rows(list.begin(), list.end());
  // Busiest first, as top does.
  std::stable_sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return a.value("cpuPercent", 0.0) > b.value("cpuPercent", 0.0);
  });
  double cpu_sum = 0;
  uint64_t mem_sum = 0;
  for (const auto& w : rows) {
    cpu_sum += w.value("cpuPercent", 0.0);
    mem_sum += w.value("memoryBytes", uint64_t{0});
  }
  if (tty) std::printf("\033[H\033[2J");
  std::printf("storevisor top: %zu workloads, CPU %.1f%%, memory %s MiB\n", rows.size(), cpu_sum,
              Mib(mem_sum).c_str());
  std::printf("%-20s %-10s %-9s %-10s %8s %7s %11s %9s\n", "NAME", "KIND", "STATE", "HEALTH", "PID",
              "CPU%", "MEMORY MiB", "RESTARTS");
  for (const auto& w : rows) {
    const bool running = w.value("state", "") == "running";
    std::printf("%-20s %-10s %-9s %-10s %8lld %7.1f %11s %9lld\n", w.value("name", "").c_str(),
                w.value("kind", "").c_str(), w.value("state", "").c_str(),
                w.value("health", "").c_str(),
                static_cast<long long>(running ? w.value("pid", int64_t{0}) : 0),
                running ? w.value("cpuPercent", 0.0) : 0.0,
                Mib(w.value("memoryBytes", uint64_t{0})).c_str(),
                static_cast<long long>(w.value("restarts", int64_t{0})));
  }
  std::fflush(stdout);
}

}  // namespace

int Console(Client& client, const std::string& name, int tail_lines) {
  auto r = client.Call("GET", "/v1/workloads/" + name);
  if (!r) {
    std::fprintf(stderr, "storevisor: %s\n", r.error().message().c_str());
    return ExitCodeFor(r.error().code());
  }
  if (r->status != 200) {
    std::fprintf(stderr, "storevisor: %s\n", ErrorText(*r).c_str());
    return ExitCodeFor(r->status == 404 ? ErrorCode::kNotFound : ErrorCode::kInternal);
  }
  const std::string kind = json::parse(r->body, nullptr, false).value("kind", "");
  if (kind != "microvm" && kind != "legacy-vm") {
    std::fprintf(stderr,
                 "storevisor: %s is a %s; console attaches to VMs (use `storevisor logs -f %s`)\n",
                 name.c_str(), kind.c_str(), name.c_str());
    return ExitCodeFor(ErrorCode::kInvalidArgument);
  }
  if (::isatty(2)) {
    std::fprintf(stderr,
                 "-- serial console of %s (output only; Ctrl-C detaches, the VM keeps running)\n",
                 name.c_str());
  }
  auto st =
      client.Stream("/v1/workloads/" + name + "/logs?follow=1&tail=" + std::to_string(tail_lines),
                    [](std::string_view d) {
                      std::fwrite(d.data(), 1, d.size(), stdout);
                      std::fflush(stdout);
                      return true;
                    });
  if (!st) {
    std::fprintf(stderr, "storevisor: %s\n", st.error().message().c_str());
    return ExitCodeFor(st.error().code());
  }
  return *st == 200 ? 0 : ExitCodeFor(ErrorCode::kInternal);
}

int Top(Client& client, int interval_ms, int iterations) {
  const bool tty = ::isatty(1) != 0;
  for (int i = 0; iterations == 0 || i < iterations; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    auto r = client.Call("GET", "/v1/workloads");
    if (!r) {
      std::fprintf(stderr, "storevisor: %s\n", r.error().message().c_str());
      return ExitCodeFor(r.error().code());
    }
    if (r->status != 200) {
      std::fprintf(stderr, "storevisor: %s\n", ErrorText(*r).c_str());
      return ExitCodeFor(ErrorCode::kInternal);
    }
    auto list = json::parse(r->body, nullptr, false);
    if (!list.is_array()) {
      std::fprintf(stderr, "storevisor: the daemon sent no workload list\n");
      return ExitCodeFor(ErrorCode::kGuestFault);
    }
    PrintTop(list, tty);
    if (!tty && (iterations == 0 || i + 1 < iterations)) std::printf("\n");
  }
  return 0;
}

}  // namespace storevisor::cli
