// REST API: requests become typed commands (ParseApiRequest, pure and fuzzed), which the
// router executes against the Daemon. Routes are listed in docs/openapi.yaml.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "daemon/api/http.h"

namespace storevisor::daemon {

class Daemon;

enum class ApiOp {
  kVersion,
  kApply,
  kList,
  kGet,
  kStart,
  kStop,
  kRestart,
  kRemove,
  kExec,
  kLogs,
  kEvents,
  kMetrics,
  kScreenshot,  // GET /v1/workloads/{name}/screenshot -> image/png (legacy-vm)
  kDisplay,     // GET /v1/workloads/{name}/display + X-Display-Token -> the raw VNC stream
};

struct ApiCommand {
  ApiOp op = ApiOp::kVersion;
  std::string name;  // workload
  std::string profile_yaml;
  std::string profile_file;
  bool dry_run = false;
  std::vector<std::string> argv;
  int timeout_ms = 30000;
  bool follow = false;
  int64_t tail = -1;  // logs: last N lines (-1: everything kept)
  int64_t since = 0;  // events: after this id
  std::string token;  // display: the workload's display token
};

// Validates method, path, query and JSON body; errors are kInvalidArgument (400),
// kNotFound (404: no such route) or kUnsupported (405: wrong method).
Result<ApiCommand> ParseApiRequest(const HttpRequest& request);

// display.cc: a PNG of the screen; the VNC stream relayed both ways until either side closes.
void ServeScreenshot(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn);
void ServeDisplay(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn);

// Serves one request (checks the bearer token for TCP clients).
void ServeApi(Daemon& daemon, const std::string& token, const HttpRequest& request,
              HttpConnection& conn, bool from_tcp);

}  // namespace storevisor::daemon
