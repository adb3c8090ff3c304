// JSON conversions of the API's types (src/api/types.h): the one place where the wire's
// field names and defaults are written. Parsing never throws: a field of the wrong type is an
// error naming it (kGuestFault: what a peer sent is malformed), a missing field keeps the
// struct's default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "common/error.h"

namespace storevisor::api {

nlohmann::json ToJson(const WorkloadStatus& w);
nlohmann::json ToJson(const PlanStep& s);
nlohmann::json ToJson(const ApplyRequest& r);  // the body; the key travels as a header
nlohmann::json ToJson(const ApplyResponse& r);
nlohmann::json ToJson(const GenerationInfo& g);
nlohmann::json ToJson(const std::vector<GenerationInfo>& list);
nlohmann::json ToJson(const RollbackRequest& r);
nlohmann::json ToJson(const ImagesInUse& i);
nlohmann::json ToJson(const ExecRequest& r);
nlohmann::json ToJson(const ExecResponse& r);
nlohmann::json ToJson(const EventRecord& e);
nlohmann::json ToJson(const VersionInfo& v);
nlohmann::json ToJson(const ErrorBody& e);
nlohmann::json ToJson(const BoxInfo& b);

Result<WorkloadStatus> WorkloadStatusFromJson(const nlohmann::json& j);
Result<std::vector<WorkloadStatus>> WorkloadListFromJson(const nlohmann::json& j);
Result<ApplyResponse> ApplyResponseFromJson(const nlohmann::json& j);
Result<GenerationInfo> GenerationInfoFromJson(const nlohmann::json& j);
Result<std::vector<GenerationInfo>> GenerationListFromJson(const nlohmann::json& j);
Result<ImagesInUse> ImagesInUseFromJson(const nlohmann::json& j);
Result<ExecResponse> ExecResponseFromJson(const nlohmann::json& j);
Result<EventRecord> EventRecordFromJson(const nlohmann::json& j);
Result<std::vector<EventRecord>> EventListFromJson(const nlohmann::json& j);
Result<VersionInfo> VersionInfoFromJson(const nlohmann::json& j);
Result<ErrorBody> ErrorBodyFromJson(const nlohmann::json& j);

// Text -> JSON without exceptions (kGuestFault for anything but valid JSON).
Result<nlohmann::json> ParseJson(std::string_view text);
// JSON -> text; invalid UTF-8 in strings is replaced rather than thrown on.
std::string Dump(const nlohmann::json& j, int indent = -1);

// The ErrorCode named by ErrorCodeName (kInternal for an unknown name).
ErrorCode ErrorCodeFromName(std::string_view name);
// An error reply's body: {"error": message, "code": name}.
std::string ErrorJson(const Error& e);

// Idempotency keys: [A-Za-z0-9._-]{1,128}.
bool ValidIdempotencyKey(std::string_view key);

}  // namespace storevisor::api
