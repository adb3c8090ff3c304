// What the CLI prints: errors with their exit status, the workload table, plans, events.
#pragma once

#include <vector>

#include "api/types.h"
#include "common/error.h"

namespace storevisor::cli {

// Prints "storevisor: message" and returns the error's exit status (docs/exit-codes.md).
int Fail(const Error& e);
// `ps`: NAME KIND STATE HEALTH UPTIME RESTARTS CPU MEMORY ADDRESS (wide: PID DESIRED ERROR).
void PrintTable(const std::vector<api::WorkloadStatus>& list, bool wide);
void PrintPlan(const api::ApplyResponse& plan);
// One event per line: id, type, who, text (services' events: their time and data).
void PrintEvent(const api::EventRecord& e);

}  // namespace storevisor::cli
