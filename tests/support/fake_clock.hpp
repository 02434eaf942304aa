// A fake clock for loop-level timer tests: time moves only when the test says so.
#pragma once

#include <chrono>
#include <cstdint>

#include "reactor/loop.hpp"

namespace evflow::testing {

struct FakeClock {
  int64_t monotonic = 1'000'000'000;             // 1 s after "boot"
  int64_t realtime = 1'700'000'000'000'000'000;  // Nov 2023, in ns since the epoch
  ClockSource source{[](void* self) { return static_cast<FakeClock*>(self)->monotonic; },
                     [](void* self) { return static_cast<FakeClock*>(self)->realtime; }, this};

  FakeClock() = default;
  FakeClock(const FakeClock&) = delete;

  // Both clocks move forward together, as they do when nobody sets the wall clock.
  void advance(std::chrono::nanoseconds by) {
    monotonic += by.count();
    realtime += by.count();
  }
};

}  // namespace evflow::testing
