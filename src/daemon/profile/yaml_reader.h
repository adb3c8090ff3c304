// Typed access to a yaml-cpp tree that never throws and names file:line: path in every
// error. Used by the profile parser; yaml-cpp's own exceptions stop at this boundary.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::daemon {

class YamlContext {
 public:
  explicit YamlContext(std::string file) : file_(std::move(file)) {}
  // "file:line: path: what"
  Error Fail(const YAML::Node& at, std::string_view path, std::string_view what) const;
  Error FailAtLine(int line, std::string_view path, std::string_view what) const;
  static int Line(const YAML::Node& node);
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// A mapping whose keys were checked against the allowed set (unknown and duplicate keys
// are errors that list what is allowed).
class YamlMap {
 public:
  static Result<YamlMap> Open(const YamlContext& ctx, const YAML::Node& node, std::string path,
                              std::initializer_list<std::string_view> allowed);

  std::optional<YAML::Node> Get(std::string_view key) const;
  bool Has(std::string_view key) const { return entries_.count(std::string(key)) != 0; }
  std::string Path(std::string_view key) const;
  const YAML::Node& node() const { return node_; }

  Result<std::string> String(std::string_view key, bool required, std::string fallback = "") const;
  Result<int64_t> Int(std::string_view key, int64_t min, int64_t max, int64_t fallback) const;
  Result<double> Double(std::string_view key, double min, double max, double fallback) const;
  Result<bool> Bool(std::string_view key, bool fallback) const;
  Result<std::vector<std::string>> StringList(std::string_view key) const;
  Result<uint64_t> Size(std::string_view key, uint64_t fallback) const;
  Result<int64_t> Duration(std::string_view key, int64_t fallback_ms) const;

 private:
  YamlMap(const YamlContext& ctx, const YAML::Node& node, std::string path)
      : ctx_(&ctx), node_(node), path_(std::move(path)) {}
  const YamlContext* ctx_;
  YAML::Node node_;
  std::string path_;
  std::map<std::string, YAML::Node> entries_;
};

// A scalar as text, or an error if the node is a list or a mapping.
Result<std::string> ScalarText(const YamlContext& ctx, const YAML::Node& node,
                               std::string_view path);
// A sequence's items, or an error if the node is not a sequence.
Result<std::vector<YAML::Node>> SequenceItems(const YamlContext& ctx, const YAML::Node& node,
                                              std::string_view path);

}  // namespace storevisor::daemon
