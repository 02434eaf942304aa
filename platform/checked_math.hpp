// evflow — integer arithmetic on nanosecond times that never overflows silently.
//
// Plain C++20, no compiler builtins and no 128-bit integers: every compiler builds it, and
// each function says what it does at the edges of int64_t. The timer wheel, the Timer's
// repeat and the Periodic's grid use these (tests/platform/checked_math_test.cpp compares
// them with 128-bit arithmetic over the edges and random values).
#pragma once

#include <cstdint>
#include <limits>

namespace evflow::detail {

inline constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// a + b into `out`; true (and `out` untouched) when it does not fit.
constexpr bool add_overflows(int64_t a, int64_t b, int64_t& out) noexcept {
  if (b > 0 ? a > kInt64Max - b : a < kInt64Min - b) return true;
  out = a + b;
  return false;
}

// a - b into `out`; true (and `out` untouched) when it does not fit.
constexpr bool sub_overflows(int64_t a, int64_t b, int64_t& out) noexcept {
  if (b > 0 ? a < kInt64Min + b : a > kInt64Max + b) return true;
  out = a - b;
  return false;
}

// b - a for a <= b, which always fits in 64 unsigned bits.
constexpr uint64_t distance(int64_t a, int64_t b) noexcept {
  return static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
}

// The first point of the grid `phase + k * interval` (k any whole number) at or after
// `from` (strictly after it when `strictly_after`), or INT64_MAX when that point is beyond
// int64_t. Precondition: interval > 0.
constexpr int64_t next_grid_point(int64_t phase, int64_t interval, int64_t from, bool strictly_after) noexcept {
  const auto step = static_cast<uint64_t>(interval);
  // How far past `from` the next point lies: (phase - from) mod interval, in [0, interval).
  uint64_t ahead = 0;
  if (phase >= from) {
    ahead = distance(from, phase) % step;
  } else {
    const uint64_t behind = distance(phase, from) % step;
    ahead = behind == 0 ? 0 : step - behind;
  }
  if (ahead == 0 && strictly_after) ahead = step;
  int64_t next = 0;
  return add_overflows(from, static_cast<int64_t>(ahead), next) ? kInt64Max : next;
}

}  // namespace evflow::detail
