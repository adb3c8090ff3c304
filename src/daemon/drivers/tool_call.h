// Running an engine's command line (storevisor-runtime, storevisor-vm, storevisor-legacy)
// and reading its answer: every driver does these steps, so they live here once. Failures
// name the command, how it ended and the start of its stderr.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/error.h"
#include "daemon/drivers/driver.h"

namespace storevisor::daemon {

// What a failed tool call reports: the exit status it ended with (-1 when killed or never
// run), so a caller can tell one refusal from another (e.g. storevisor-vm's 8: stale snapshot).
struct ToolFailure {
  int exit_code = -1;
};

// Runs argv; an error unless it exits 0. The error's code is `code` and its message
// "ARGV: exited with status N: STDERR" (stderr cut at 800 bytes); *failure (optional) gets
// the exit status.
Status RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
               ErrorCode code = ErrorCode::kIo, ToolFailure* failure = nullptr);

// As RunTool, and parses stdout as one JSON object (a tool run with `-o json`); an object
// that lacks any of `required` is kGuestFault naming the field.
Result<nlohmann::json> RunToolJson(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout,
                                   const std::vector<std::string>& required = {},
                                   ErrorCode code = ErrorCode::kFailedPrecondition,
                                   ToolFailure* failure = nullptr);

// Runs a command inside a workload through its engine (`runtime exec`, `storevisor-vm exec`):
// the command's own status is the result (128+signal when killed), not an error.
Result<ExecOutput> RunToolExec(const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout);

// "a b c" for messages.
std::string JoinArgv(const std::vector<std::string>& argv);

}  // namespace storevisor::daemon
