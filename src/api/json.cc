#include "api/json.h"

namespace storevisor::api {

namespace {

using nlohmann::json;

// Reads the fields of one JSON object, remembering the first field of a wrong type: the one
// schema-reading helper of the wire (checked accessors only).
class FieldReader {
 public:
  FieldReader(const json& j, std::string what) : j_(j), what_(std::move(what)) {
    if (!j_.is_object()) Fail("", "an object");
  }
  void Str(const char* key, std::string* out) {
    if (const json* v = Find(key)) {
      if (v->is_string()) {
        *out = v->get_ref<const std::string&>();
      } else if (!v->is_null()) {
        Fail(key, "a string");
      }
    }
  }
  template <typename Int>
  void Number(const char* key, Int* out) {
    if (const json* v = Find(key)) {
      if (v->is_number_integer()) {
        *out = static_cast<Int>(v->get<int64_t>());
      } else if (v->is_number_unsigned()) {
        *out = static_cast<Int>(v->get<uint64_t>());
      } else if (!v->is_null()) {
        Fail(key, "a whole number");
      }
    }
  }
  void Double(const char* key, double* out) {
    if (const json* v = Find(key)) {
      if (v->is_number()) {
        *out = v->get<double>();
      } else if (!v->is_null()) {
        Fail(key, "a number");
      }
    }
  }
  void Bool(const char* key, bool* out) {
    if (const json* v = Find(key)) {
      if (v->is_boolean()) {
        *out = v->get<bool>();
      } else if (!v->is_null()) {
        Fail(key, "true or false");
      }
    }
  }
  void StrList(const char* key, std::vector<std::string>* out) {
    const json* v = Find(key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_array()) return Fail(key, "a list of strings");
    out->clear();
    for (const auto& item : *v) {
      if (!item.is_string()) return Fail(key, "a list of strings");
      out->push_back(item.get_ref<const std::string&>());
    }
  }
  const json* Find(const char* key) const {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  void Fail(const std::string& key, const std::string& expected) {
    if (failed_) return;
    failed_ = true;
    error_ = what_ + (key.empty() ? "" : "." + key) + ": expected " + expected;
  }
  Status status() const {
    if (!failed_) return Ok();
    return Error(ErrorCode::kGuestFault, error_);
  }

 private:
  const json& j_;
  std::string what_;
  bool failed_ = false;
  std::string error_;
};

template <typename T, typename F>
Result<std::vector<T>> ListFromJson(const json& j, const char* what, F one) {
  if (!j.is_array()) return Error(ErrorCode::kGuestFault, std::string(what) + ": expected a list");
  std::vector<T> out;
  out.reserve(j.size());
  for (const auto& item : j) {
    SV_ASSIGN_OR_RETURN(T v, one(item));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

json ToJson(const WorkloadStatus& w) {
  return {{"name", w.name},
          {"kind", w.kind},
          {"role", w.role},
          {"state", w.state},
          {"health", w.health},
          {"pid", w.pid},
          {"uptimeMs", w.uptime_ms},
          {"startedAtMs", w.started_at_ms},
          {"restarts", w.restarts},
          {"exitCode", w.exit_code},
          {"cpuPercent", w.cpu_percent},
          {"memoryBytes", w.memory_bytes},
          {"usageSource", w.usage_source},
          {"address", w.address},
          {"lastError", w.last_error},
          {"desired", w.desired},
          {"ports", w.ports}};
}

Result<WorkloadStatus> WorkloadStatusFromJson(const json& j) {
  WorkloadStatus w;
  FieldReader r(j, "workload");
  r.Str("name", &w.name);
  r.Str("kind", &w.kind);
  r.Str("role", &w.role);
  r.Str("state", &w.state);
  r.Str("health", &w.health);
  r.Number("pid", &w.pid);
  r.Number("uptimeMs", &w.uptime_ms);
  r.Number("startedAtMs", &w.started_at_ms);
  r.Number("restarts", &w.restarts);
  r.Number("exitCode", &w.exit_code);
  r.Double("cpuPercent", &w.cpu_percent);
  r.Number("memoryBytes", &w.memory_bytes);
  r.Str("usageSource", &w.usage_source);
  r.Str("address", &w.address);
  r.Str("lastError", &w.last_error);
  r.Str("desired", &w.desired);
  r.StrList("ports", &w.ports);
  SV_TRY(r.status());
  return w;
}

Result<std::vector<WorkloadStatus>> WorkloadListFromJson(const json& j) {
  return ListFromJson<WorkloadStatus>(j, "workloads", WorkloadStatusFromJson);
}

json ToJson(const PlanStep& s) {
  return {{"action", s.action}, {"name", s.name}, {"reason", s.reason}};
}

json ToJson(const ApplyRequest& r) {
  return {{"profile", r.yaml}, {"file", r.file}, {"dryRun", r.dry_run}};
}

json ToJson(const ApplyResponse& a) {
  json steps = json::array();
  for (const auto& s : a.steps) steps.push_back(ToJson(s));
  return {{"steps", steps},
          {"held", a.held},
          {"profile", a.profile},
          {"dryRun", a.dry_run},
          {"generation", a.generation},
          {"digest", a.digest},
          {"duplicate", a.duplicate}};
}

Result<ApplyResponse> ApplyResponseFromJson(const json& j) {
  ApplyResponse a;
  FieldReader r(j, "apply");
  r.Str("profile", &a.profile);
  r.Number("generation", &a.generation);
  r.Str("digest", &a.digest);
  r.Bool("dryRun", &a.dry_run);
  r.Bool("duplicate", &a.duplicate);
  r.StrList("held", &a.held);
  SV_TRY(r.status());
  if (const json* steps = r.Find("steps"); steps != nullptr && !steps->is_null()) {
    SV_ASSIGN_OR_RETURN(a.steps, ListFromJson<PlanStep>(*steps, "apply.steps",
                                                        [](const json& s) -> Result<PlanStep> {
                                                          PlanStep p;
                                                          FieldReader sr(s, "apply.steps[]");
                                                          sr.Str("action", &p.action);
                                                          sr.Str("name", &p.name);
                                                          sr.Str("reason", &p.reason);
                                                          SV_TRY(sr.status());
                                                          return p;
                                                        }));
  }
  return a;
}

json ToJson(const GenerationInfo& g) {
  return {{"generation", g.generation},
          {"digest", g.digest},
          {"idempotencyKey", g.idempotency_key},
          {"profile", g.profile},
          {"appliedAtMs", g.applied_at_ms},
          {"identity", g.identity},
          {"outcome", g.outcome},
          {"reason", g.reason},
          {"decidedAtMs", g.decided_at_ms},
          {"restores", g.restores},
          {"current", g.current}};
}

json ToJson(const std::vector<GenerationInfo>& list) {
  json out = json::array();
  for (const auto& g : list) out.push_back(ToJson(g));
  return out;
}

json ToJson(const RollbackRequest& r) { return {{"generation", r.generation}}; }

Result<GenerationInfo> GenerationInfoFromJson(const json& j) {
  GenerationInfo g;
  FieldReader r(j, "generation");
  r.Number("generation", &g.generation);
  r.Str("digest", &g.digest);
  r.Str("idempotencyKey", &g.idempotency_key);
  r.Str("profile", &g.profile);
  r.Number("appliedAtMs", &g.applied_at_ms);
  r.Str("identity", &g.identity);
  r.Str("outcome", &g.outcome);
  r.Str("reason", &g.reason);
  r.Number("decidedAtMs", &g.decided_at_ms);
  r.Number("restores", &g.restores);
  r.Bool("current", &g.current);
  SV_TRY(r.status());
  return g;
}

Result<std::vector<GenerationInfo>> GenerationListFromJson(const json& j) {
  if (!j.is_array()) return Error(ErrorCode::kGuestFault, "generations: expected an array");
  std::vector<GenerationInfo> out;
  for (size_t i = 0; i < j.size(); ++i) {
    auto g = GenerationInfoFromJson(j[i]);
    if (!g) return std::move(g).error().Context("generations[" + std::to_string(i) + "]");
    out.push_back(std::move(*g));
  }
  return out;
}

json ToJson(const ImagesInUse& i) {
  json images = json::array();
  for (const auto& u : i.images) images.push_back({{"image", u.image}, {"workloads", u.workloads}});
  return {{"imageRoot", i.image_root}, {"imageDir", i.image_dir}, {"images", images}};
}

Result<ImagesInUse> ImagesInUseFromJson(const json& j) {
  ImagesInUse out;
  FieldReader r(j, "images in use");
  r.Str("imageRoot", &out.image_root);
  r.Str("imageDir", &out.image_dir);
  SV_TRY(r.status());
  if (const json* images = r.Find("images"); images != nullptr && !images->is_null()) {
    SV_ASSIGN_OR_RETURN(out.images, ListFromJson<ImageUse>(*images, "images in use.images",
                                                           [](const json& u) -> Result<ImageUse> {
                                                             ImageUse use;
                                                             FieldReader ur(u, "images[]");
                                                             ur.Str("image", &use.image);
                                                             ur.StrList("workloads",
                                                                        &use.workloads);
                                                             SV_TRY(ur.status());
                                                             return use;
                                                           }));
  }
  return out;
}

json ToJson(const ExecRequest& r) { return {{"cmd", r.argv}, {"timeoutMs", r.timeout_ms}}; }

json ToJson(const ExecResponse& r) {
  return {{"exitCode", r.exit_code}, {"stdout", r.out}, {"stderr", r.err}};
}

Result<ExecResponse> ExecResponseFromJson(const json& j) {
  ExecResponse e;
  FieldReader r(j, "exec");
  r.Number("exitCode", &e.exit_code);
  r.Str("stdout", &e.out);
  r.Str("stderr", &e.err);
  SV_TRY(r.status());
  return e;
}

json ToJson(const EventRecord& e) {
  json j = {{"id", e.id},
            {"time_ms", e.time_ms},
            {"workload", e.workload},
            {"type", e.type},
            {"message", e.message}};
  if (!e.source.empty()) {
    j["source"] = e.source;
    j["time"] = e.time;
    json data = json::parse(e.data, nullptr, false);
    j["data"] = data.is_object() ? data : json::object();
  }
  return j;
}

Result<EventRecord> EventRecordFromJson(const json& j) {
  EventRecord e;
  FieldReader r(j, "event");
  r.Number("id", &e.id);
  r.Number("time_ms", &e.time_ms);
  r.Str("workload", &e.workload);
  r.Str("type", &e.type);
  r.Str("message", &e.message);
  r.Str("source", &e.source);
  r.Str("time", &e.time);
  SV_TRY(r.status());
  if (const json* data = r.Find("data"); data != nullptr && !data->is_null()) {
    if (!data->is_object()) return Error(ErrorCode::kGuestFault, "event.data: expected an object");
    e.data = Dump(*data);
  }
  return e;
}

Result<std::vector<EventRecord>> EventListFromJson(const json& j) {
  return ListFromJson<EventRecord>(j, "events", EventRecordFromJson);
}

json ToJson(const VersionInfo& v) {
  return {{"version", v.version}, {"api", v.api}, {"profileApiVersion", v.profile_api_version}};
}

Result<VersionInfo> VersionInfoFromJson(const json& j) {
  VersionInfo v;
  FieldReader r(j, "version");
  r.Str("version", &v.version);
  r.Str("api", &v.api);
  r.Str("profileApiVersion", &v.profile_api_version);
  SV_TRY(r.status());
  return v;
}

json ToJson(const BoxInfo& b) {
  return {{"version", b.version},
          {"hostname", b.hostname},
          {"kernel", b.kernel},
          {"uptimeSeconds", b.uptime_s},
          {"cpus", b.cpus},
          {"load", {b.load[0], b.load[1], b.load[2]}},
          {"memoryTotalBytes", b.memory_total_bytes},
          {"memoryAvailableBytes", b.memory_available_bytes},
          {"diskTotalBytes", b.disk_total_bytes},
          {"diskFreeBytes", b.disk_free_bytes},
          {"accel", b.accel},
          {"accelReason", b.accel_reason},
          {"ksmSavedBytes", b.ksm_saved_bytes},
          {"profile", b.profile},
          {"generation", b.generation},
          {"workloads", b.workloads},
          {"lastEventId", b.last_event_id}};
}

json ToJson(const ErrorBody& e) { return {{"error", e.error}, {"code", e.code}}; }

Result<ErrorBody> ErrorBodyFromJson(const json& j) {
  ErrorBody e;
  FieldReader r(j, "error reply");
  r.Str("error", &e.error);
  r.Str("code", &e.code);
  SV_TRY(r.status());
  return e;
}

Result<json> ParseJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error(ErrorCode::kGuestFault, "not valid JSON");
  return j;
}

std::string Dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

ErrorCode ErrorCodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    if (ErrorCodeName(static_cast<ErrorCode>(c)) == name) return static_cast<ErrorCode>(c);
  }
  return ErrorCode::kInternal;
}

std::string ErrorJson(const Error& e) {
  return Dump(ToJson(ErrorBody{e.message(), std::string(ErrorCodeName(e.code()))}));
}

bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 128) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace storevisor::api
