// Health probes: TCP connect (optionally send/expect) and HTTP GET from inside a workload's network
// namespace.
#pragma once

#include <string>

#include "common/error.h"

namespace storevisor::daemon {

// Connects to host:port from the network namespace at netns_path ("" = the daemon's own).
// A socket keeps the namespace it was made in, so only its creation happens on a thread
// that joined the namespace; the daemon's other threads never change namespace.
// With `send`, writes it once connected; with `expect`, the answer must start with it (a
// native `redis-cli ping`: send "PING\r\n", expect "+PONG"). timeout_ms bounds the whole probe.
Status ProbeTcp(const std::string& netns_path, const std::string& host, int port, int timeout_ms,
                const std::string& send = "", const std::string& expect = "");
// GET path; healthy on a 2xx or 3xx status.
Status ProbeHttp(const std::string& netns_path, const std::string& host, int port,
                 const std::string& path, int timeout_ms);

}  // namespace storevisor::daemon
