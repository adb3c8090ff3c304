// Prometheus text exposition helpers shared by storevisord's and the vision service's
// /metrics.
#pragma once

#include <string>

namespace storevisor {

// A label value escaped as the text format wants: backslash, double quote and newline.
std::string PrometheusLabelValue(const std::string& v);

}  // namespace storevisor
