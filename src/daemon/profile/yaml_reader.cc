#include "daemon/profile/yaml_reader.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "daemon/profile/profile.h"

namespace storevisor::daemon {

namespace {

std::string Quote(std::string_view text) {
  std::string shown(text.substr(0, 60));
  if (text.size() > 60) shown += "...";
  return "'" + shown + "'";
}

std::string JoinKeys(std::initializer_list<std::string_view> keys) {
  std::string out;
  for (auto key : keys) {
    if (!out.empty()) out += ", ";
    out += key;
  }
  return out;
}

}  // namespace

int YamlContext::Line(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

Error YamlContext::FailAtLine(int line, std::string_view path, std::string_view what) const {
  std::string msg = file_;
  if (line > 0) msg += ":" + std::to_string(line);
  msg += ": ";
  if (!path.empty()) msg += std::string(path) + ": ";
  msg += what;
  return Error(ErrorCode::kInvalidArgument, msg);
}

Error YamlContext::Fail(const YAML::Node& at, std::string_view path, std::string_view what) const {
  return FailAtLine(Line(at), path, what);
}

Result<std::string> ScalarText(const YamlContext& ctx, const YAML::Node& node,
                               std::string_view path) {
  if (!node.IsScalar()) {
    return ctx.Fail(node, path,
                    node.IsNull() ? "expected a value, got nothing"
                                  : "expected a single value, got a list or mapping");
  }
  return node.Scalar();
}

Result<std::vector<YAML::Node>> SequenceItems(const YamlContext& ctx, const YAML::Node& node,
                                              std::string_view path) {
  if (!node.IsSequence()) return ctx.Fail(node, path, "expected a list");
  std::vector<YAML::Node> items;
  items.reserve(node.size());
  for (const auto& item : node) items.push_back(item);
  return items;
}

Result<YamlMap> YamlMap::Open(const YamlContext& ctx, const YAML::Node& node, std::string path,
                              std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) {
    return ctx.Fail(node, path.empty() ? "(document)" : path, "expected a mapping (key: value)");
  }
  YamlMap map(ctx, node, std::move(path));
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) return ctx.Fail(it->first, map.path_, "keys must be plain words");
    const std::string& key = it->first.Scalar();
    bool known = false;
    for (auto name : allowed) known = known || name == key;
    if (!known) {
      return ctx.Fail(it->first, map.Path(key),
                      "unknown field; expected one of: " + JoinKeys(allowed));
    }
    if (!map.entries_.emplace(key, it->second).second) {
      return ctx.Fail(it->first, map.Path(key), "field given twice");
    }
  }
  return map;
}

std::optional<YAML::Node> YamlMap::Get(std::string_view key) const {
  auto it = entries_.find(std::string(key));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::string YamlMap::Path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Result<std::string> YamlMap::String(std::string_view key, bool required,
                                    std::string fallback) const {
  auto node = Get(key);
  if (!node) {
    if (required) return ctx_->Fail(node_, Path(key), "required field is missing");
    return fallback;
  }
  return ScalarText(*ctx_, *node, Path(key));
}

Result<int64_t> YamlMap::Int(std::string_view key, int64_t min, int64_t max,
                             int64_t fallback) const {
  auto node = Get(key);
  if (!node) return fallback;
  SV_ASSIGN_OR_RETURN(std::string text, ScalarText(*ctx_, *node, Path(key)));
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < min || value > max) {
    return ctx_->Fail(*node, Path(key),
                      "expected a whole number from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", got " + Quote(text));
  }
  return static_cast<int64_t>(value);
}

Result<double> YamlMap::Double(std::string_view key, double min, double max,
                               double fallback) const {
  auto node = Get(key);
  if (!node) return fallback;
  SV_ASSIGN_OR_RETURN(std::string text, ScalarText(*ctx_, *node, Path(key)));
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(value) || value < min ||
      value > max) {
    char range[96];
    std::snprintf(range, sizeof range, "expected a number from %g to %g, got ", min, max);
    return ctx_->Fail(*node, Path(key), range + Quote(text));
  }
  return value;
}

Result<bool> YamlMap::Bool(std::string_view key, bool fallback) const {
  auto node = Get(key);
  if (!node) return fallback;
  SV_ASSIGN_OR_RETURN(std::string text, ScalarText(*ctx_, *node, Path(key)));
  if (text == "true") return true;
  if (text == "false") return false;
  return ctx_->Fail(*node, Path(key), "expected true or false, got " + Quote(text));
}

Result<std::vector<std::string>> YamlMap::StringList(std::string_view key) const {
  std::vector<std::string> out;
  auto node = Get(key);
  if (!node) return out;
  SV_ASSIGN_OR_RETURN(auto items, SequenceItems(*ctx_, *node, Path(key)));
  for (size_t i = 0; i < items.size(); ++i) {
    SV_ASSIGN_OR_RETURN(std::string text,
                        ScalarText(*ctx_, items[i], Path(key) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(text));
  }
  return out;
}

Result<uint64_t> YamlMap::Size(std::string_view key, uint64_t fallback) const {
  auto node = Get(key);
  if (!node) return fallback;
  SV_ASSIGN_OR_RETURN(std::string text, ScalarText(*ctx_, *node, Path(key)));
  auto size = ParseSize(text);
  if (!size) return ctx_->Fail(*node, Path(key), size.error().message());
  return *size;
}

Result<int64_t> YamlMap::Duration(std::string_view key, int64_t fallback_ms) const {
  auto node = Get(key);
  if (!node) return fallback_ms;
  SV_ASSIGN_OR_RETURN(std::string text, ScalarText(*ctx_, *node, Path(key)));
  auto ms = ParseDuration(text);
  if (!ms) return ctx_->Fail(*node, Path(key), ms.error().message());
  return *ms;
}

}  // namespace storevisor::daemon
