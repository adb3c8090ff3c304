#include "daemon/drivers/tool_call.h"

namespace storevisor::daemon {

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

namespace {

Result<CommandOutput> RunChecked(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, ErrorCode code,
                                 ToolFailure* failure) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "RunTool: empty command");
  auto out = RunCommand(argv, timeout, 4u << 20);
  if (!out) {
    if (failure != nullptr) failure->exit_code = -1;
    return std::move(out).error().Context(JoinArgv(argv));
  }
  if (failure != nullptr) failure->exit_code = out->status.exited ? out->status.exit_code : -1;
  if (!out->status.success()) {
    std::string err = out->err.substr(0, 800);
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Error(code,
                 JoinArgv(argv) + ": " + out->status.ToString() + (err.empty() ? "" : ": ") + err);
  }
  return out;
}

}  // namespace

Status RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
               ErrorCode code, ToolFailure* failure) {
  SV_ASSIGN_OR_RETURN(CommandOutput out, RunChecked(argv, timeout, code, failure));
  (void)out;
  return Ok();
}

Result<nlohmann::json> RunToolJson(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout,
                                   const std::vector<std::string>& required, ErrorCode code,
                                   ToolFailure* failure) {
  SV_ASSIGN_OR_RETURN(CommandOutput out, RunChecked(argv, timeout, code, failure));
  // Tools print one JSON object, possibly after human lines: take the last line that is one.
  size_t end = out.out.size();
  while (end > 0) {
    size_t start = out.out.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    auto j = nlohmann::json::parse(out.out.substr(start, end - start), nullptr, false);
    if (j.is_object()) {
      for (const auto& field : required) {
        if (!j.contains(field)) {
          return Error(ErrorCode::kGuestFault,
                       argv[0] + " printed no '" + field + "': " + out.out.substr(0, 200));
        }
      }
      return j;
    }
    if (start == 0) break;
    end = start - 1;
  }
  return Error(ErrorCode::kGuestFault,
               argv[0] + " printed no JSON object: '" + out.out.substr(0, 200) + "'");
}

Result<ExecOutput> RunToolExec(const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "RunToolExec: empty command");
  SV_ASSIGN_OR_RETURN(CommandOutput out, RunCommand(argv, timeout, 1u << 20));
  ExecOutput r;
  r.exit_code = out.status.exited ? out.status.exit_code : 128 + out.status.term_signal;
  r.out = std::move(out.out);
  r.err = std::move(out.err);
  return r;
}

}  // namespace storevisor::daemon
