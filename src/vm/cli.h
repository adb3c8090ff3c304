// Internal: storevisor-vm's subcommands (main.cc only parses and dispatches).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace storevisor::vm::cli {

struct Options {
  std::string config;
  std::string kernel, initrd, cmdline, serial, qmp, accel, state_dir, output, from_snapshot, out;
  std::optional<int> cpus;
  std::optional<uint64_t> memory;
  std::vector<std::string> disks, nets, exec_argv;
  bool detach = false, no_wait = false, mem_merge = false, guest_tracing = false;
  int timeout_s = 10;
};

void Define(CLI::App& app, Options* o);
// Runs the chosen subcommand; returns the process exit status.
int Run(const CLI::App& app, const Options& o);

}  // namespace storevisor::vm::cli
