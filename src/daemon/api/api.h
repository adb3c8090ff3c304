// REST API: requests become typed commands (ParseApiRequest, pure and fuzzed), which the
// router executes against the Daemon's public methods only. Routes are listed in docs/openapi.yaml.
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
  kScreenshot,   // GET /v1/workloads/{name}/screenshot -> image/png (legacy-vm)
  kDisplay,      // GET /v1/workloads/{name}/display + X-Display-Token -> the raw VNC stream
  kPostEvent,    // POST /v1/events: an event from another service (the vision service)
  kConsole,      // POST /v1/workloads/{name}/console -> 101, then the serial console both ways
  kUsbAttach,    // POST /v1/workloads/{name}/usb {"device": "0c2e:0b61"} (legacy-vm hot-plug)
  kUsbDetach,    // DELETE /v1/workloads/{name}/usb?device=0c2e:0b61
  kGeneration,   // GET /v1/generations/{number, idempotency-key or profile digest}
  kGenerations,  // GET /v1/generations?limit=N (newest first)
  kRollback,     // POST /v1/rollback {"generation": N} (0 or absent: the last committed)
  // GET /v1/images/in-use: the images the workloads use (`storevisor image rm` asks)
  kImagesInUse,
  kBox,  // GET /v1/box: the machine (load, memory, disk, accelerator) and the profile
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
  // kPostEvent, validated: source and type [A-Za-z0-9._-]{1,64}, time RFC 3339, data a JSON
  // object (kept as compact JSON text).
  std::string event_source;
  std::string event_type;
  std::string event_time;
  std::string event_data;
  std::string token;  // display: the workload's display token
  // kUsbAttach/kUsbDetach: vendor:product, bus-port or bus:address, checked by the legacy
  // engine's ParseUsbHotplugId.
  std::string usb_device;
  // kApply: the Idempotency-Key header ([A-Za-z0-9._-]{1,128}); kGeneration: the key or
  // digest asked about.
  std::string idempotency_key;
  std::string generation;
  int64_t limit = 50;       // kGenerations
  int64_t rollback_to = 0;  // kRollback
};

// The largest POST /v1/events body, and the deepest nesting of its data.
constexpr size_t kMaxEventBody = 64 * 1024;
constexpr int kMaxEventDepth = 16;

// True for "2026-11-25T12:00:00Z", "2026-11-25T12:00:00.123+01:00" (RFC 3339 date-time).
bool IsRfc3339(std::string_view text);

// Validates method, path, query and JSON body; errors are kInvalidArgument (400),
// kNotFound (404: no such route) or kUnsupported (405: wrong method).
Result<ApiCommand> ParseApiRequest(const HttpRequest& request);

// display.cc: a PNG of the screen; the VNC stream relayed both ways until either side closes.
void ServeScreenshot(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn);
void ServeDisplay(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn);
// "usb-" + the USB id with every other character than a letter or digit as '-': the QEMU
// device id of a hot-plugged host device ("0c2e:0b61" -> "usb-0c2e-0b61").
std::string UsbDeviceId(const std::string& usb_id);
// display.cc: a microVM's serial console relayed both ways after a 101, one client at a time.
void ServeConsole(Daemon& daemon, const ApiCommand& cmd, HttpConnection& conn);

// Whether a TCP request's head presents the bearer token (constant time; false when no
// token is configured).
bool TokenMatches(const std::string& token, const HttpRequest& request);
// Requests that may last long (streams, console, display, exec): served on the long pool.
bool IsLongRequest(const HttpRequest& request);

// Serves one request whose token (TCP) the server has checked.
void ServeApi(Daemon& daemon, const HttpRequest& request, HttpConnection& conn, const Peer& peer);

}  // namespace storevisor::daemon
