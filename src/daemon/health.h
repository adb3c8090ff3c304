// Health probes: TCP connect and HTTP GET from inside a workload's network namespace.
#pragma once

#include <string>

#include "common/error.h"

namespace storevisor::daemon {

// Connects to host:port from the network namespace at netns_path ("" = the daemon's own).
// A socket keeps the namespace it was made in, so only its creation happens on a thread
// that joined the namespace; the daemon's other threads never change namespace.
Status ProbeTcp(const std::string& netns_path, const std::string& host, int port, int timeout_ms);
// GET path; healthy on a 2xx or 3xx status.
Status ProbeHttp(const std::string& netns_path, const std::string& host, int port,
                 const std::string& path, int timeout_ms);

}  // namespace storevisor::daemon
