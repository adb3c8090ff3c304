// `storevisor screenshot` and `storevisor display`: the screens of legacy-vm workloads
// through storevisord (docs/legacy-vm.md, "Display").
#pragma once

#include <string>

#include "cli/client.h"

namespace storevisor::cli {

// Saves the PNG of GET /v1/workloads/NAME/screenshot to file; returns the exit status.
int RunScreenshot(Client& client, const std::string& name, const std::string& file);

struct DisplayOptions {
  std::string endpoint;       // the daemon's socket or tcp:HOST:PORT
  std::string bearer;         // for a TCP endpoint
  std::string name;           // the workload
  std::string display_token;  // the workload's vnc.token
  int port = 5900;            // local VNC viewers connect to 127.0.0.1:port
  bool once = false;          // end after the first viewer leaves
};
// Listens on 127.0.0.1:port and relays each VNC viewer to the workload's display through
// GET /v1/workloads/NAME/display; returns the exit status.
int RunDisplay(const DisplayOptions& options);

}  // namespace storevisor::cli
