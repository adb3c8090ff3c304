// `storevisor screenshot` and `storevisor display`: the screens of legacy-vm workloads
// through storevisord (docs/legacy-vm.md, "Display").
#pragma once

#include <string>

#include "api/client.h"

namespace storevisor::cli {

// Saves the PNG of GET /v1/workloads/NAME/screenshot to file; returns the exit status.
int RunScreenshot(api::Client& client, const std::string& name, const std::string& file);

struct DisplayOptions {
  std::string name;           // the workload
  std::string display_token;  // the workload's vnc.token
  int port = 5900;            // local VNC viewers connect to 127.0.0.1:port
  bool once = false;          // end after the first viewer leaves
};
// Listens on 127.0.0.1:port and relays each VNC viewer to the workload's display through
// GET /v1/workloads/NAME/display; returns the exit status.
int RunDisplay(api::Client& client, const DisplayOptions& options);

}  // namespace storevisor::cli
