// Callback ergonomics: prefix-argument callbacks, set_callback() without starting,
// WithCapacity, Timer::start_at and again(timeout), run_until and run_for.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>

#include <evflow/evflow.hpp>
#include "tests/support/descriptors.hpp"
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;
using testing::FakeClockLoopTest;

TEST(InlineCallbackPrefix, TakesTheLongestPrefixOfTheArgumentsTheCallableAccepts) {
  detail::InlineCallback<void(int, int, int)> cb;
  int seen = 0;
  cb.emplace([&seen](int a) { seen = a; });
  cb(7, 8, 9);
  EXPECT_EQ(seen, 7);
  cb.emplace([&seen](int a, int b) { seen = a * 10 + b; });
  cb(7, 8, 9);
  EXPECT_EQ(seen, 78);
  // Overloaded: the longest form it accepts wins.
  struct Both {
    int* out;
    void operator()(int a) const { *out = a; }
    void operator()(int a, int b, int c) const { *out = a + b + c; }
  };
  cb.emplace(Both{&seen});
  cb(1, 2, 3);
  EXPECT_EQ(seen, 6);
}

class Ergonomics : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  Loop loop;
};

TEST_F(Ergonomics, AnIoCallbackMayTakeTheWatcherAlone) {
  auto pipe = testing::make_pipe();
  Io io(loop);
  Io* seen = nullptr;
  ASSERT_FALSE(io.start(pipe.read_end.get(), Readable, [&seen](Io& self) {
    seen = &self;
    self.stop();
  }));
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(seen, &io);
}

TEST_F(Ergonomics, SetCallbackThenStartWithoutOneForEveryKind) {
  auto pipe = testing::make_pipe();
  int io_calls = 0, timer_calls = 0, async_calls = 0, check_calls = 0, periodic_calls = 0;
  Io io(loop);
  Timer timer(loop);
  Async async(loop);
  Check check(loop);
  Periodic periodic(loop);
  io.set_callback([&](Io& self) {
    ++io_calls;
    self.stop();
  });
  timer.set_callback([&] { ++timer_calls; });
  async.set_callback([&] { ++async_calls; });
  check.set_callback([&](Check& self) {
    ++check_calls;
    self.stop();
  });
  periodic.set_callback([&](Periodic& self) {
    ++periodic_calls;
    self.stop();
  });
  EXPECT_FALSE(io.active()) << "set_callback() starts nothing";
  EXPECT_FALSE(timer.active());
  ASSERT_FALSE(io.start(pipe.read_end.get(), Readable));
  ASSERT_FALSE(timer.start(0ns));
  ASSERT_FALSE(async.start());
  ASSERT_FALSE(check.start());
  ASSERT_FALSE(periodic.start(loop.wall_now() - 1s, 0ns));  // an instant already past: next iteration
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  async.send();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(io_calls, 1);
  EXPECT_EQ(timer_calls, 1);
  EXPECT_EQ(async_calls, 1);
  EXPECT_EQ(check_calls, 1);
  EXPECT_EQ(periodic_calls, 1);
  Signal signal(loop);
  signal.set_callback([] {});
  EXPECT_FALSE(signal.active());
  Io empty(loop);
  empty.set_callback(static_cast<void (*)()>(nullptr));
  EXPECT_EQ(empty.start(pipe.read_end.get(), Readable).code(), EINVAL) << "a null function pointer is no callback";
}

TEST_F(Ergonomics, SetCallbackWithANullFunctionPointerStopsAnActiveWatcher) {
  // Regression: the watcher stayed active with no callback, and its next firing called
  // through a null pointer.
  Timer timer(loop);
  ASSERT_FALSE(timer.start(0ns, [] {}));
  timer.set_callback(static_cast<void (*)()>(nullptr));
  EXPECT_FALSE(timer.active());
  WithCapacity<Idle, 64> idle(loop);
  ASSERT_FALSE(idle.start([] {}));
  idle.set_callback(static_cast<void (*)()>(nullptr));
  EXPECT_FALSE(idle.active());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(Ergonomics, SetCallbackOnAnActiveWatcherReplacesItsCallbackInPlace) {
  Idle idle(loop);
  int first = 0, second = 0;
  ASSERT_FALSE(idle.start([&] { ++first; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  idle.set_callback([&] { ++second; });
  EXPECT_TRUE(idle.active());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
}

TEST_F(Ergonomics, WithCapacityHoldsCapturesLargerThanTheInlineBuffer) {
  std::array<int, 12> values{};
  for (int i = 0; i < 12; ++i)
    values[static_cast<size_t>(i)] = i + 1;
  static_assert(sizeof(values) > kCallbackCapacity);
  auto token = std::make_shared<int>(0);
  int sum = 0;
  {
    WithCapacity<Timer, 80> timer(loop);
    timer.set_callback([values, token, &sum](Timer& self) {
      for (int v : values)
        sum += v;
      EXPECT_FALSE(self.active());
    });
    EXPECT_EQ(token.use_count(), 2);
    ASSERT_FALSE(timer.start(0ns));
    EXPECT_FALSE(loop.run(RunMode::NoWait));
    EXPECT_EQ(sum, 78);
    ASSERT_FALSE(timer.start(1h));  // still active when destroyed
  }
  EXPECT_EQ(token.use_count(), 1) << "the large callable is destroyed with its watcher";
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(Ergonomics, WithCapacityGivenANullFunctionPointerHasNoCallback) {
  WithCapacity<Async, 64> async(loop);
  async.set_callback(static_cast<void (*)()>(nullptr));
  EXPECT_EQ(async.start().code(), EINVAL);
}

class TimerErgonomics : public FakeClockLoopTest {};

TEST_F(TimerErgonomics, StartAtFiresAtTheDeadlineAndNotBefore) {
  Timer timer(loop);
  int calls = 0;
  ASSERT_FALSE(timer.start_at(loop.now() + 10ms, [&] { ++calls; }));
  EXPECT_EQ(timer.when(), loop.now() + 10ms);
  step(9ms);
  EXPECT_EQ(calls, 0);
  step(1ms);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(timer.active()) << "one-shot";
  // again() counts the time the start_at() gave, from now().
  ASSERT_FALSE(timer.again());
  EXPECT_EQ(timer.remaining(), 10ms);
}

TEST_F(TimerErgonomics, StartAtADeadlineAlreadyPastFiresInTheNextIteration) {
  Timer timer(loop);
  int calls = 0;
  ASSERT_FALSE(timer.start_at(loop.now() - 1s, [&] { ++calls; }));
  step(0ns);
  EXPECT_EQ(calls, 1);
  Timer none(loop);
  EXPECT_EQ(none.start_at(loop.now()).code(), EINVAL) << "no callback";
}

TEST_F(TimerErgonomics, AgainWithATimeoutRestartsWithoutMakingTheTimerRepeat) {
  Timer timer(loop);
  int calls = 0;
  ASSERT_FALSE(timer.start(50ms, [&] { ++calls; }));
  step(10ms);
  ASSERT_FALSE(timer.again(5ms));
  EXPECT_EQ(timer.remaining(), 5ms);
  step(5ms);
  EXPECT_EQ(calls, 1);
  step(50ms);
  EXPECT_EQ(calls, 1) << "still one-shot";
  ASSERT_FALSE(timer.again());
  EXPECT_EQ(timer.remaining(), 5ms) << "again() uses the last timeout";
  // On a repeating timer the interval stays.
  Timer repeating(loop);
  int ticks = 0;
  ASSERT_FALSE(repeating.start(1s, 20ms, [&] { ++ticks; }));
  ASSERT_FALSE(repeating.again(3ms));
  step(3ms);
  EXPECT_EQ(ticks, 1);
  step(20ms);
  EXPECT_EQ(ticks, 2);
  EXPECT_EQ(repeating.repeat(), 20ms);
}

TEST_F(Ergonomics, RunForReturnsOnceTheDurationHasPassedAndNotBefore) {
  auto pipe = testing::make_pipe();
  Io quiet(loop);  // would keep run() waiting for ever
  ASSERT_FALSE(quiet.start(pipe.read_end.get(), Readable, [] {}));
  const auto start = MonotonicClock::now();
  EXPECT_FALSE(loop.run_for(20ms));
  EXPECT_GE(MonotonicClock::now() - start, 20ms);
  EXPECT_TRUE(quiet.active());
}

TEST_F(Ergonomics, RunUntilADeadlinePastRunsOneIterationThatDoesNotBlock) {
  auto pipe = testing::make_pipe();
  Io quiet(loop);
  ASSERT_FALSE(quiet.start(pipe.read_end.get(), Readable, [] {}));
  int timer_calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(0ns, [&] { ++timer_calls; }));
  const uint64_t before = loop.iteration();
  EXPECT_FALSE(loop.run_until(loop.now()));
  EXPECT_EQ(loop.iteration(), before + 1);
  EXPECT_EQ(timer_calls, 1);
}

TEST_F(Ergonomics, RunUntilStillReturnsEarlyOnStopOrWhenNothingIsActive) {
  Timer timer(loop);
  ASSERT_FALSE(timer.start(0ns, [&] {}));
  EXPECT_FALSE(loop.run_until(loop.now() + 1h)) << "the timer fired: nothing active";
  Idle idle(loop);
  ASSERT_FALSE(idle.start([&] { loop.stop(); }));
  EXPECT_FALSE(loop.run_until(loop.now() + 1h));
}

}  // namespace
}  // namespace evflow
