#include "platform/checked_math.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace evflow::detail {
namespace {

// The oracle: the same in 128 bits (gcc and clang have them; the library does not use them).
__int128 exact_next_grid_point(int64_t phase, int64_t interval, int64_t from, bool strictly_after) {
  const __int128 diff = static_cast<__int128>(from) - phase;
  __int128 periods = diff / interval;  // towards zero
  const __int128 rest = diff % interval;
  if (rest > 0 || (rest == 0 && strictly_after)) ++periods;
  return static_cast<__int128>(phase) + periods * interval;
}

std::vector<int64_t> edge_values() {
  return {kInt64Min, kInt64Min + 1, kInt64Min / 2, -1'000'000'007, -2,       -1, 0, 1,
          2,         999'999'937,   kInt64Max / 2, kInt64Max - 1,  kInt64Max};
}

TEST(CheckedMath, AddAndSubtractReportExactlyTheResultsThatDoNotFit) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> values = edge_values();
  for (int i = 0; i < 200; ++i)
    values.push_back(static_cast<int64_t>(rng()));
  for (int64_t a : values) {
    for (int64_t b : values) {
      const __int128 sum = static_cast<__int128>(a) + b;
      const __int128 difference = static_cast<__int128>(a) - b;
      int64_t out = 42;
      const bool sum_fits = sum >= kInt64Min && sum <= kInt64Max;
      ASSERT_EQ(add_overflows(a, b, out), !sum_fits) << a << " + " << b;
      ASSERT_EQ(out, sum_fits ? static_cast<int64_t>(sum) : 42);
      out = 42;
      const bool difference_fits = difference >= kInt64Min && difference <= kInt64Max;
      ASSERT_EQ(sub_overflows(a, b, out), !difference_fits) << a << " - " << b;
      ASSERT_EQ(out, difference_fits ? static_cast<int64_t>(difference) : 42);
    }
  }
}

TEST(CheckedMath, NextGridPointMatchesTheExactAnswerOrSaturates) {
  std::mt19937_64 rng(11);
  std::vector<int64_t> values = edge_values();
  for (int i = 0; i < 60; ++i)
    values.push_back(static_cast<int64_t>(rng()));
  std::vector<int64_t> intervals = {1, 2, 3, 1'000, 1'000'000'007, kInt64Max / 3, kInt64Max - 1, kInt64Max};
  for (int i = 0; i < 20; ++i)
    intervals.push_back(static_cast<int64_t>(rng() >> 1) + 1);
  for (int64_t phase : values) {
    for (int64_t from : values) {
      for (int64_t interval : intervals) {
        for (bool strictly_after : {false, true}) {
          const __int128 exact = exact_next_grid_point(phase, interval, from, strictly_after);
          const int64_t expected = exact >= kInt64Max ? kInt64Max : static_cast<int64_t>(exact);
          ASSERT_EQ(next_grid_point(phase, interval, from, strictly_after), expected)
              << "phase " << phase << " interval " << interval << " from " << from << " strictly " << strictly_after;
        }
      }
    }
  }
}

TEST(CheckedMath, DistanceIsExactAcrossTheWholeRange) {
  EXPECT_EQ(distance(kInt64Min, kInt64Max), ~uint64_t{0});
  EXPECT_EQ(distance(-5, 5), 10u);
  EXPECT_EQ(distance(7, 7), 0u);
}

}  // namespace
}  // namespace evflow::detail
