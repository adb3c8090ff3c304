// JsonNestingDepth: how deeply [ and { nest in JSON text, counted outside strings, before a
// parser sees it. nlohmann's parser recurses once per level, so every parser of outside JSON
// (OCI configs, image manifests, API requests, VM configs) checks this first and refuses
// deep input up front: a hostile "[[[[..." must not exhaust the stack.
#pragma once

#include <cstddef>
#include <string_view>

namespace storevisor {

// The deepest nesting of [ and { in text (0 for a scalar). Brackets inside strings, escaped
// quotes included, do not count; unbalanced closers never make it negative. Linear time;
// the text need not be valid JSON.
size_t JsonNestingDepth(std::string_view text);

}  // namespace storevisor
