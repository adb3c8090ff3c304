// Overflow-checked arithmetic for sizes and offsets that come from untrusted input.
#pragma once

#include <optional>
#include <type_traits>

namespace storevisor {

template <typename T>
requires std::is_integral_v<T> std::optional<T> CheckedAdd(T a, T b) {
  T out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

template <typename T>
requires std::is_integral_v<T> std::optional<T> CheckedMul(T a, T b) {
  T out;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// True when [offset, offset+len) lies inside [0, size).
template <typename T>
requires std::is_unsigned_v<T>
bool RangeWithin(T offset, T len, T size) { return offset <= size && len <= size - offset; }

}  // namespace storevisor
