#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/prometheus.h"
#include "vision/vision.h"

namespace storevisor::vision {

void Metrics::Observe(const std::string& subject, const std::string& name, double seconds,
                      bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_[{subject, name}];
  (ok ? s.ok : s.errors)++;
  s.sum += seconds;
  if (s.window.size() < kWindow) {
    s.window.push_back(seconds);
  } else {
    s.window[s.next] = seconds;
    s.next = (s.next + 1) % kWindow;
  }
}

void Metrics::Drop(const std::string& pipeline, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  drops_[pipeline] += n;
}

void Metrics::SetPlacement(const std::string& pipeline, const std::string& placement,
                           const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  PlacementInfo& p = placements_[pipeline];
  if (p.placement != placement) p.changes++;
  p.placement = placement;
  p.reason = reason;
}

double Metrics::QuantileOf(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<size_t>(std::min<double>(
      static_cast<double>(v.size() - 1), std::floor(q * static_cast<double>(v.size()))));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

double Metrics::Quantile(const std::string& subject, const std::string& name, double q) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find({subject, name});
  return it == series_.end() ? 0 : QuantileOf(it->second.window, q);
}

uint64_t Metrics::Frames(const std::string& subject, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find({subject, name});
  return it == series_.end() ? 0 : it->second.ok + it->second.errors;
}

void Metrics::SetValue(const std::string& metric, const std::string& type, const std::string& help,
                       double value) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[metric] = Value{type, help, value};
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  o << "# HELP storevisor_vision_frames_total Frames processed (ok and failed).\n"
       "# TYPE storevisor_vision_frames_total counter\n";
  for (const auto& [key, s] : series_) {
    o << "storevisor_vision_frames_total{" << key.first << "=\"" << PrometheusLabelValue(key.second)
      << "\"} " << s.ok + s.errors << "\n";
  }
  o << "# HELP storevisor_vision_errors_total Frames that failed.\n"
       "# TYPE storevisor_vision_errors_total counter\n";
  for (const auto& [key, s] : series_) {
    o << "storevisor_vision_errors_total{" << key.first << "=\"" << PrometheusLabelValue(key.second)
      << "\"} " << s.errors << "\n";
  }
  o << "# HELP storevisor_vision_latency_seconds Latency per frame (quantiles over the last "
    << kWindow << " frames).\n# TYPE storevisor_vision_latency_seconds summary\n";
  for (const auto& [key, s] : series_) {
    const std::string labels = key.first + "=\"" + PrometheusLabelValue(key.second) + "\"";
    for (double q : {0.5, 0.9, 0.99}) {
      o << "storevisor_vision_latency_seconds{" << labels << ",quantile=\"" << q << "\"} "
        << QuantileOf(s.window, q) << "\n";
    }
    o << "storevisor_vision_latency_seconds_sum{" << labels << "} " << s.sum << "\n";
    o << "storevisor_vision_latency_seconds_count{" << labels << "} " << s.ok + s.errors << "\n";
  }
  o << "# HELP storevisor_vision_dropped_frames_total Frames skipped because the pipeline was "
       "busy.\n# TYPE storevisor_vision_dropped_frames_total counter\n";
  for (const auto& [name, n] : drops_) {
    o << "storevisor_vision_dropped_frames_total{pipeline=\"" << PrometheusLabelValue(name)
      << "\"} " << n << "\n";
  }
  o << "# HELP storevisor_vision_placement Where a pipeline runs now (1) and why.\n"
       "# TYPE storevisor_vision_placement gauge\n";
  for (const auto& [name, p] : placements_) {
    o << "storevisor_vision_placement{pipeline=\"" << PrometheusLabelValue(name)
      << "\",placement=\"" << PrometheusLabelValue(p.placement) << "\",reason=\""
      << PrometheusLabelValue(p.reason) << "\"} 1\n";
  }
  o << "# HELP storevisor_vision_placement_changes_total Placement switches per pipeline.\n"
       "# TYPE storevisor_vision_placement_changes_total counter\n";
  for (const auto& [name, p] : placements_) {
    o << "storevisor_vision_placement_changes_total{pipeline=\"" << PrometheusLabelValue(name)
      << "\"} " << p.changes << "\n";
  }
  for (const auto& [metric, v] : values_) {
    o << "# HELP " << metric << " " << v.help << "\n# TYPE " << metric << " " << v.type << "\n"
      << metric << " " << v.value << "\n";
  }
  return o.str();
}

}  // namespace storevisor::vision
