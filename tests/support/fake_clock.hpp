// A fake clock for loop-level timer tests: time moves only when the test says so.
#pragma once

#include <chrono>
#include <cstdint>

#include <gtest/gtest.h>

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

// A fixture: an open loop on a fake clock, driven one non-blocking iteration at a time.
class FakeClockLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(loop.open());
    ASSERT_FALSE(loop.set_clock(&clock.source));
  }
  // Moves the fake clock, then runs one non-blocking iteration.
  void step(std::chrono::nanoseconds by) {
    clock.advance(by);
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  }
  WallClock::time_point wall() const { return WallClock::time_point(WallClock::duration(clock.realtime)); }

  FakeClock clock;
  Loop loop;
};

}  // namespace evflow::testing
