// Service configuration (the store profile embeds the same object): listen address,
// detectors, the cloud endpoint and one pipeline per stream. JSON or YAML; every error says
// file, field path and (YAML) line.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/files.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using nlohmann::json;

// YAML -> JSON, remembering each node's line by field path for error messages. Aliases are
// expanded, so a few lines of anchors can stand for billions of nodes: *budget counts them.
Result<json> YamlToJson(const YAML::Node& n, const std::string& path,
                        std::map<std::string, int>* lines, int depth, size_t* budget) {
  if (depth > 32) return Error(ErrorCode::kInvalidArgument, path + ": nested too deeply");
  if (*budget == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": more than " + std::to_string(kMaxConfigNodes) +
                     " values (aliases expanded): not a service config");
  }
  --*budget;
  (*lines)[path] = n.Mark().line + 1;
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) {
        const std::string key = kv.first.as<std::string>();
        std::string child = path;
        child += ".";
        child += key;
        SV_ASSIGN_OR_RETURN(o[key], YamlToJson(kv.second, child, lines, depth + 1, budget));
      }
      return o;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (size_t i = 0; i < n.size(); ++i) {
        SV_ASSIGN_OR_RETURN(json v, YamlToJson(n[i], path + "[" + std::to_string(i) + "]", lines,
                                               depth + 1, budget));
        a.push_back(std::move(v));
      }
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return json(s);  // quoted: always a string
      if (s == "true" || s == "false") return json(s == "true");
      json num = json::parse(s, nullptr, false);
      if (!num.is_discarded() && num.is_number()) return num;
      return json(s);
    }
    default:
      return json(nullptr);
  }
}

class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  const json& value() const { return j_; }
  bool Has(const char* key) const { return j_.is_object() && j_.contains(key); }
  Reader At(const char* key) const { return {j_.at(key), path_ + "." + key}; }

  Error Bad(const std::string& what) const {
    return {ErrorCode::kInvalidArgument, path_ + ": " + what};
  }
  template <typename T>
  Status Get(const char* key, T* out) const {
    if (!Has(key)) return Ok();
    const json& v = j_.at(key);
    if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return At(key).Bad("must be a string");
      const auto& str = v.get_ref<const std::string&>();
      if (std::any_of(str.begin(), str.end(), [](char c) { return c == '\0'; })) {
        return At(key).Bad("must not contain a NUL character");
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return At(key).Bad("must be true or false");
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) return At(key).Bad("must be an integer");
      // get<int>() of 4294967376 would wrap to 80: refuse what the type cannot hold.
      const bool fits =
          v.is_number_unsigned()
              ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
              : v.get<int64_t>() >= std::numeric_limits<T>::min() &&
                    v.get<int64_t>() <= std::numeric_limits<T>::max();
      if (!fits) return At(key).Bad("out of range");
    } else {
      if (!v.is_number()) return At(key).Bad("must be a number");
      if (!std::isfinite(v.get<double>())) return At(key).Bad("must be a finite number");
    }
    *out = v.get<T>();
    return Ok();
  }

 private:
  const json& j_;
  std::string path_;
};

Status ParsePlacement(const Reader& r, Placement* out) {
  std::string p = std::string(PlacementName(*out));
  SV_TRY(r.Get("placement", &p));
  if (p == "edge") {
    *out = Placement::kEdge;
  } else if (p == "cloud") {
    *out = Placement::kCloud;
  } else if (p == "auto") {
    *out = Placement::kAuto;
  } else {
    return r.At("placement").Bad("'" + p + "' unknown: use edge, cloud or auto");
  }
  return Ok();
}

Status ParseSource(const Reader& r, SourceConfig* s) {
  if (!r.value().is_object()) return r.Bad("must be an object {type, path}");
  SV_TRY(r.Get("type", &s->type));
  SV_TRY(r.Get("path", &s->path));
  SV_TRY(r.Get("loop", &s->loop));
  if (s->type != "images" && s->type != "video" && s->type != "rtsp" && s->type != "v4l2") {
    return r.Bad("type '" + s->type + "' unknown: use images, video, rtsp or v4l2");
  }
  if (s->path.empty()) return r.Bad("path: required");
  return Ok();
}

Result<PipelineConfig> ParsePipeline(const Reader& r) {
  if (!r.value().is_object()) return r.Bad("must be an object");
  PipelineConfig p;
  SV_TRY(r.Get("name", &p.name));
  if (p.name.empty() || p.name.find_first_of("/\"\\ \n") != std::string::npos) {
    return r.Bad("name: required, without '/', quotes, spaces or backslashes");
  }
  if (!r.Has("source")) return r.Bad("source: required");
  SV_TRY(ParseSource(r.At("source"), &p.source));
  if (r.Has("detectors")) {
    const Reader d = r.At("detectors");
    if (!d.value().is_array() || d.value().empty()) return d.Bad("must be a non-empty list");
    if (d.value().size() > 16) return d.Bad("at most 16 detectors");
    p.detectors.clear();
    for (const auto& v : d.value()) {
      if (!v.is_string()) return d.Bad("entries must be strings");
      p.detectors.push_back(v.get<std::string>());
    }
  }
  SV_TRY(r.Get("fps", &p.fps));
  if (!(p.fps > 0 && p.fps <= 240)) return r.At("fps").Bad("must be in (0, 240]");
  SV_TRY(r.Get("latency_target_ms", &p.latency_target_ms));
  if (!(p.latency_target_ms > 0 && p.latency_target_ms <= 3.6e6)) {
    return r.At("latency_target_ms").Bad("must be in (0, 3600000] (ms)");
  }
  SV_TRY(ParsePlacement(r, &p.placement));
  if (r.Has("roi")) {
    const Reader roi = r.At("roi");
    const json& a = roi.value();
    if (!a.is_array() || a.size() != 4 || !std::all_of(a.begin(), a.end(), [](const json& v) {
          return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < 65536;
        })) {
      return roi.Bad("must be [x, y, width, height] in pixels (0..65535)");
    }
    if (a[2].get<int>() < 1 || a[3].get<int>() < 1) return roi.Bad("width and height must be > 0");
    p.roi = cv::Rect(a[0].get<int>(), a[1].get<int>(), a[2].get<int>(), a[3].get<int>());
  }
  return p;
}

Status ParseCloud(const Reader& r, CloudConfig* c) {
  if (!r.value().is_object()) return r.Bad("must be an object {url, ...}");
  SV_TRY(r.Get("url", &c->url));
  if (!c->url.empty() && c->url.rfind("http://", 0) != 0) {
    return r.At("url").Bad("must start with http:// (host:port of a KServe v2 server)");
  }
  SV_TRY(r.Get("timeout_ms", &c->timeout_ms));
  SV_TRY(r.Get("failures_to_open", &c->failures_to_open));
  SV_TRY(r.Get("open_ms", &c->open_ms));
  // Both become integer microseconds: bounded to an hour.
  if (!(c->timeout_ms > 0 && c->timeout_ms <= 3.6e6) || c->failures_to_open < 1 ||
      !(c->open_ms >= 0 && c->open_ms <= 3.6e6)) {
    return r.Bad(
        "timeout_ms in (0, 3600000], failures_to_open >= 1 and open_ms in [0, 3600000] are "
        "required");
  }
  SV_TRY(r.Get("frame_format", &c->frame_format));
  if (c->frame_format != "jpeg" && c->frame_format != "png") {
    return r.At("frame_format").Bad("must be jpeg (small, lossy) or png (lossless)");
  }
  if (r.Has("models")) {
    const Reader m = r.At("models");
    if (!m.value().is_object()) return m.Bad("must map detector names to remote model names");
    for (const auto& [k, v] : m.value().items()) {
      if (!v.is_string()) return m.Bad(k + ": must be a string");
      c->models[k] = v.get<std::string>();
    }
  }
  return Ok();
}

}  // namespace

std::string_view PlacementName(Placement p) {
  switch (p) {
    case Placement::kEdge:
      return "edge";
    case Placement::kCloud:
      return "cloud";
    case Placement::kAuto:
      return "auto";
  }
  return "?";
}

Result<ServiceConfig> ParseServiceConfig(const json& j, const std::string& where) {
  const Reader r(j, where);
  if (!j.is_object()) return r.Bad("must be an object");
  ServiceConfig c;
  SV_TRY(r.Get("models_dir", &c.detectors.models_dir));
  SV_TRY(r.Get("catalog", &c.detectors.catalog_path));
  SV_TRY(r.Get("edge_workers", &c.edge_workers));
  if (c.edge_workers < 1 || c.edge_workers > 64) return r.At("edge_workers").Bad("must be 1..64");
  if (r.Has("listen")) {
    const Reader l = r.At("listen");
    SV_TRY(l.Get("host", &c.server.host));
    SV_TRY(l.Get("port", &c.server.port));
    SV_TRY(l.Get("threads", &c.server.threads));
    if (c.server.port < 0 || c.server.port > 65535) return l.At("port").Bad("must be 0..65535");
  }
  if (r.Has("cloud")) SV_TRY(ParseCloud(r.At("cloud"), &c.cloud));
  SV_TRY(r.Get("events_url", &c.events_url));
  if (!c.events_url.empty()) {
    auto ep = ParseEventsUrl(c.events_url);
    if (!ep) return r.At("events_url").Bad(ep.error().message());
  }
  if (r.Has("pipelines")) {
    const Reader ps = r.At("pipelines");
    if (!ps.value().is_array()) return ps.Bad("must be a list");
    if (ps.value().size() > kMaxPipelines) {
      return ps.Bad("more than " + std::to_string(kMaxPipelines) +
                    " pipelines (each is a thread): split the store over several services");
    }
    for (size_t i = 0; i < ps.value().size(); ++i) {
      SV_ASSIGN_OR_RETURN(
          PipelineConfig p,
          ParsePipeline(Reader(ps.value()[i], ps.path() + "[" + std::to_string(i) + "]")));
      for (const auto& other : c.pipelines) {
        if (other.name == p.name) return ps.Bad("two pipelines named '" + p.name + "'");
      }
      if (p.placement != Placement::kEdge && c.cloud.url.empty()) {
        return ps.Bad("[" + std::to_string(i) + "].placement " +
                      std::string(PlacementName(p.placement)) + " needs cloud.url");
      }
      c.pipelines.push_back(std::move(p));
    }
  }
  return c;
}

Result<ServiceConfig> LoadServiceConfig(const std::string& path) {
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1u << 20));
  return ParseServiceConfigText(text, path.ends_with(".yaml") || path.ends_with(".yml"), path);
}

Result<ServiceConfig> ParseServiceConfigText(std::string_view text, bool yaml,
                                             const std::string& path) {
  if (text.size() > (1u << 20)) {
    return Error(ErrorCode::kInvalidArgument, path + ": larger than 1 MiB");
  }
  json j;
  std::map<std::string, int> lines;
  if (yaml) {
    try {
      size_t budget = kMaxConfigNodes;
      auto converted = YamlToJson(YAML::Load(std::string(text)), "", &lines, 0, &budget);
      if (!converted) {
        return Error(ErrorCode::kInvalidArgument, path + ": " + converted.error().message());
      }
      j = std::move(*converted);
    } catch (const YAML::Exception& e) {
      return Error(ErrorCode::kInvalidArgument,
                   path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
    }
  } else {
    j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Error(ErrorCode::kInvalidArgument, path + ": not valid JSON");
  }
  auto c = ParseServiceConfig(j, "");
  if (c) return c;
  // Put file and line in front of the field path ("store.yaml:14: .pipelines[0].fps: ...").
  std::string msg = c.error().message();
  const std::string field = msg.substr(0, msg.find(':'));
  std::string prefix = path;
  for (std::string f = field; !f.empty(); f = f.substr(0, f.find_last_of(".["))) {
    if (auto it = lines.find(f); it != lines.end()) {
      prefix += ":" + std::to_string(it->second);
      break;
    }
    if (f.find_last_of(".[") == std::string::npos) break;
  }
  return Error(ErrorCode::kInvalidArgument, prefix + ": " + msg);
}

}  // namespace storevisor::vision
