// `storevisor console NAME` and `storevisor top`: the two commands that watch a workload
// live, kept out of main.cc so its dispatch stays short.
#pragma once

#include <string>

#include "cli/client.h"

namespace storevisor::cli {

// Attaches to a VM's serial console: prints its last lines, then streams new output until
// the daemon closes or the user interrupts. Output only: storevisor-vm writes the serial
// to a file chardev, which takes no input (docs/daemon.md). Returns the exit status.
int Console(Client& client, const std::string& name, int tail_lines);

// A table of CPU and memory per workload, refreshed every interval_ms, `iterations` times
// (0: until interrupted). On a terminal the screen is redrawn in place.
int Top(Client& client, int interval_ms, int iterations);

}  // namespace storevisor::cli
