#include "reactor/periodic.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <utility>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using PeriodicTest = testing::FakeClockLoopTest;

TEST_F(PeriodicTest, FiresOnTheGridOfOffsetAndInterval) {
  std::vector<int64_t> fired;
  Periodic every_second(loop);
  const auto offset = wall() - 250ms;  // the grid: offset + k s
  ASSERT_FALSE(every_second.start(offset, 1s, [&] { fired.push_back(clock.realtime); }));
  EXPECT_EQ(every_second.at(), offset + 1s) << "the first grid point not before now";
  step(750ms - 1ns);
  EXPECT_TRUE(fired.empty());
  step(1ns);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], (offset + 1s).time_since_epoch().count());
  step(1s);
  EXPECT_EQ(fired.size(), 2u);
  EXPECT_EQ(every_second.at(), offset + 3s);
}

TEST_F(PeriodicTest, MissedInstantsAreCoalescedAndThePhaseKept) {
  int calls = 0;
  Periodic p(loop);
  const auto offset = wall();
  ASSERT_FALSE(p.start(offset, 10ms, [&] { ++calls; }));
  EXPECT_EQ(p.at(), offset) << "an offset equal to now is not in the past";
  step(45ms);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(p.at(), offset + 50ms);
}

TEST_F(PeriodicTest, ZeroIntervalFiresOnceAtTheOffset) {
  int calls = 0;
  Periodic p(loop);
  ASSERT_FALSE(p.start(wall() + 2s, 0s, [&] { ++calls; }));
  step(2s);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(p.active());
  step(10s);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(PeriodicTest, RescheduleFunctionChoosesEachInstant) {
  std::vector<int64_t> gaps;
  int64_t last = clock.realtime;
  Periodic p(loop);
  int remaining = 3;
  auto next = [&remaining](Periodic&, WallClock::time_point now) {
    return remaining-- > 0 ? now + 7s : now;  // not after now: stop
  };
  ASSERT_FALSE(p.start_with(next, [&] {
    gaps.push_back(clock.realtime - last);
    last = clock.realtime;
  }));
  for (int i = 0; i < 5; ++i)
    step(7s);
  // Asked at start and after each callback: yes, yes, yes, then "now" (stop).
  EXPECT_EQ(gaps, (std::vector<int64_t>{7'000'000'000, 7'000'000'000, 7'000'000'000}));
  EXPECT_FALSE(p.active());
}

// The documented way for a rule to end: time_point::max() (no instant ever comes). At
// start() the watcher is then left inactive (start() succeeds: the rule has no instant),
// after a callback it stops.
TEST_F(PeriodicTest, ARescheduleAnsweringTimePointMaxEndsTheRule) {
  int calls = 0;
  Periodic never(loop), once(loop);
  ASSERT_FALSE(never.start_with([](Periodic&, WallClock::time_point) { return WallClock::time_point::max(); },
                                [&] { ++calls; }));
  EXPECT_FALSE(never.active());
  bool first = true;
  ASSERT_FALSE(once.start_with(
      [&first](Periodic&, WallClock::time_point now) {
        const bool was_first = std::exchange(first, false);
        return was_first ? now + 1s : WallClock::time_point::max();
      },
      [&] { ++calls; }));
  EXPECT_TRUE(once.active());
  step(1s);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(once.active());
  step(1h);
  EXPECT_EQ(calls, 1);
}

TEST_F(PeriodicTest, AWallClockSetBackwardsReschedulesOnTheNewClock) {
  int calls = 0;
  Periodic hourly(loop);
  const int64_t hour = 3'600'000'000'000;
  const int64_t epoch_hours = clock.realtime / hour;
  const auto on_the_hour = WallClock::time_point(WallClock::duration(epoch_hours * hour));
  ASSERT_FALSE(hourly.start(on_the_hour, 1h, [&] { ++calls; }));
  EXPECT_EQ(hourly.at(), on_the_hour + 1h);
  clock.realtime -= 24 * hour;  // set back one day
  loop.wall_clock_changed();
  EXPECT_EQ(hourly.at(), on_the_hour + 1h - 24h) << "the next hour of the new clock";
  step(1h);
  EXPECT_EQ(calls, 1);
}

TEST_F(PeriodicTest, AWallClockSetForwardFiresOnceAndKeepsTheGrid) {
  int calls = 0;
  Periodic p(loop);
  const auto offset = wall();
  ASSERT_FALSE(p.start(offset, 1s, [&] { ++calls; }));
  clock.realtime += 3'600'000'000'000;  // an hour ahead, monotonic unchanged
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(p.at(), offset + 3601s);
}

TEST_F(PeriodicTest, AnOffsetInTheFutureOnlySetsThePhase) {
  Periodic p(loop);
  const auto offset = wall() + 10s + 300ms;
  ASSERT_FALSE(p.start(offset, 1s, [] {}));
  EXPECT_EQ(p.at(), wall() + 300ms) << "the grid extends backwards from the offset";
}

TEST_F(PeriodicTest, BadInputIsRefused) {
  Periodic p(loop);
  EXPECT_EQ(p.start(wall(), -1s, [] {}).code(), EINVAL);
  EXPECT_EQ(p.again().code(), EINVAL) << "no callback yet";
  EXPECT_FALSE(p.active());
}

TEST_F(PeriodicTest, StopAndDestroyInsideTheCallback) {
  int calls = 0;
  auto p = std::make_unique<Periodic>(loop);
  ASSERT_FALSE(p->start(wall(), 1s, [&] {
    ++calls;
    p.reset();
  }));
  step(0s);
  step(5s);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST(PeriodicRealClock, TheInternalClockWatchDoesNotKeepTheLoopRunning) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  int calls = 0;
  Periodic p(loop);
  ASSERT_FALSE(p.start(loop.wall_now() + 2ms, 0s, [&] { ++calls; }));
  EXPECT_EQ(loop.active_watchers(), 1);
  ASSERT_FALSE(loop.run());  // returns once the one-shot periodic fired
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.active_watchers(), 0);
}

}  // namespace
}  // namespace evflow

namespace evflow {
namespace {

using namespace std::chrono_literals;
using PeriodicRegression = testing::FakeClockLoopTest;

TEST_F(PeriodicRegression, AgainOnAPeriodicNeverStartedIsRefusedInsteadOfFiringAtTheEpoch) {
  // It used to take the rule "offset 0, interval 0": active, due at the epoch, fired at once.
  int calls = 0;
  Periodic p(loop);
  p.set_callback([&] { ++calls; });
  EXPECT_EQ(p.again().code(), EINVAL);
  EXPECT_FALSE(p.active());
  step(0s);
  EXPECT_EQ(calls, 0);

  ASSERT_FALSE(p.start(wall() + 500ms, 1s));
  p.stop();
  ASSERT_FALSE(p.again()) << "a stopped Periodic that was started keeps its rule";
  EXPECT_EQ(p.at(), wall() + 500ms);
  step(500ms);
  EXPECT_EQ(calls, 1);
}

// Regression: rescheduling on a wall-clock change moved every periodic to the first grid
// point after the new time, so a forward jump skipped the instant it made due.
TEST_F(PeriodicRegression, AForwardClockJumpNoticedBeforeExpiryStillFiresTheMissedInstantOnce) {
  int calls = 0;
  Periodic p(loop);
  const auto offset = wall();
  ASSERT_FALSE(p.start(offset, 1s, [&] { ++calls; }));
  step(500ms);
  EXPECT_EQ(calls, 1) << "the offset itself";
  clock.realtime += 3'600'000'000'000;  // an hour ahead
  loop.wall_clock_changed();            // noticed first, as the clock watch does on Linux
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(p.at(), offset + 3601s) << "and the grid is kept";
}

// Regression: the grid arithmetic gave up (stopping the watcher) where an intermediate
// product overflowed, though the next grid point was representable.
TEST_F(PeriodicRegression, GridPointsAreExactForExtremeOffsetsAndIntervals) {
  Periodic p(loop);
  ASSERT_FALSE(p.start(WallClock::time_point(WallClock::duration(std::numeric_limits<int64_t>::min())), 1h, [] {}));
  EXPECT_TRUE(p.active());
  EXPECT_GE(p.at(), wall());
  EXPECT_LT(p.at(), wall() + 1h);
  ASSERT_FALSE(p.start(WallClock::time_point(WallClock::duration(-4'200'000'000'000'000'000)),
                       std::chrono::nanoseconds(4'700'000'000'000'000'000), [] {}));
  EXPECT_TRUE(p.active());
  // The grid -4.2e18 + k * 4.7e18: the point after now (1.7e18) is 5.2e18.
  EXPECT_EQ(p.at().time_since_epoch().count(), 5'200'000'000'000'000'000);
}

// Regression: converting a periodic's wall-clock instant to a monotonic timeout
// overflowed (undefined behaviour) for a far instant seen from a negative wall time.
TEST_F(PeriodicRegression, AFarInstantSeenFromANegativeWallTimeDoesNotOverflowTheTimeout) {
  clock.realtime = -5'000'000'000'000'000'000;
  loop.wall_clock_changed();
  int calls = 0;
  Periodic p(loop);
  ASSERT_FALSE(p.start(WallClock::time_point(WallClock::duration(5'000'000'000'000'000'000)), 0s, [&] { ++calls; }));
  step(1h);
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(p.active());
}

}  // namespace
}  // namespace evflow
