// `storevisor console NAME` and `storevisor top`: the two commands that watch a workload
// live, kept out of main.cc so its dispatch stays short.
#pragma once

#include <string>

#include "api/client.h"

namespace storevisor::cli {

// Attaches to a VM's serial console: prints its last lines, then relays the console both
// ways (microvm: POST /v1/workloads/NAME/console, upgraded to a raw stream; on a terminal in
// raw mode, Ctrl-] detaches; without one, stdin is sent and output shown until it is quiet
// for linger_ms after stdin ends). legacy-vm: output only. Returns the exit status.
int Console(api::Client& client, const std::string& name, int tail_lines, int linger_ms);

// A table of CPU and memory per workload, refreshed every interval_ms, `iterations` times
// (0: until interrupted). On a terminal the screen is redrawn in place.
int Top(api::Client& client, int interval_ms, int iterations);

}  // namespace storevisor::cli
