// Fuzz target over the service config parser (a file from outside: the store profile or
// --config): YAML (yaml-cpp, aliases expanded under a node budget) and JSON. Byte 0 selects
// the syntax ('y' YAML, anything else JSON); the rest is the file. Whatever parses must hold
// the invariants the service relies on (finite, bounded numbers; unique, clean names).
#include <cmath>
#include <cstdint>
#include <set>
#include <string_view>

#include "vision/vision.h"

namespace vis = storevisor::vision;

namespace {

bool Holds(const vis::ServiceConfig& c) {
  if (c.edge_workers < 1 || c.edge_workers > 64) return false;
  if (c.server.port < 0 || c.server.port > 65535) return false;
  if (!c.cloud.url.empty() && c.cloud.url.rfind("http://", 0) != 0) return false;
  if (!(c.cloud.timeout_ms > 0 && c.cloud.timeout_ms <= 3.6e6)) return false;
  if (!(c.cloud.open_ms >= 0 && c.cloud.open_ms <= 3.6e6)) return false;
  if (c.cloud.failures_to_open < 1) return false;
  if (c.pipelines.size() > vis::kMaxPipelines) return false;
  std::set<std::string> names;
  for (const auto& p : c.pipelines) {
    if (p.name.empty() || p.name.find_first_of("/\"\\ \n") != std::string::npos) return false;
    if (!names.insert(p.name).second) return false;
    if (!(p.fps > 0 && p.fps <= 240)) return false;
    if (!(std::isfinite(p.latency_target_ms) && p.latency_target_ms > 0)) return false;
    if (p.detectors.empty() || p.source.path.empty()) return false;
    if (p.roi && (p.roi->width < 1 || p.roi->height < 1 || p.roi->x < 0 || p.roi->y < 0)) {
      return false;
    }
    if (p.placement != vis::Placement::kEdge && c.cloud.url.empty()) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool yaml = data[0] == 'y';
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto c = vis::ParseServiceConfigText(text, yaml, "fuzz.yaml");
  if (c && !Holds(*c)) __builtin_trap();
  if (!c && c.error().message().rfind("fuzz.yaml", 0) != 0) __builtin_trap();  // names the file
  return 0;
}
