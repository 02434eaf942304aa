#include "reactor/timer.hpp"

#if defined(__linux__)
#include <sys/epoll.h>
#include <unistd.h>

#include "platform/linux/sys.hpp"
#endif

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/backend_kind.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using TimerTest = testing::FakeClockLoopTest;

TEST_F(TimerTest, OneShotFiresAtItsDeadlineAndNotBefore) {
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(10ms, [&] { ++calls; }));
  EXPECT_TRUE(timer.active());
  EXPECT_EQ(loop.active_watchers(), 1);
  step(10ms - 1ns);
  EXPECT_EQ(calls, 0);
  step(1ns);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(timer.active());
  step(1h);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(TimerTest, TheDeadlineCountsFromTheCachedNow) {
  // Semantics 10: started 5 ms after the iteration began (fake time moved inside a
  // callback), a 10 ms timer still counts from the iteration's now().
  Timer timer(loop);
  Idle idle(loop);
  ASSERT_FALSE(idle.start([&](Idle& self) {
    clock.advance(5ms);
    EXPECT_FALSE(timer.start(10ms, [] {}));
    self.stop();
  }));
  const auto began = MonotonicClock::time_point(MonotonicClock::duration(clock.monotonic));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(timer.when(), began + 10ms);
  // update_now() moves the base to the present.
  loop.update_now();
  ASSERT_FALSE(timer.start(10ms));
  EXPECT_EQ(timer.when(), began + 15ms);
}

TEST_F(TimerTest, EqualDeadlinesFireInStartOrderAndEarlierDeadlinesFirst) {
  std::string order;
  Timer a(loop), b(loop), c(loop), d(loop);
  ASSERT_FALSE(a.start(5ms, [&] { order += 'a'; }));
  ASSERT_FALSE(b.start(3ms, [&] { order += 'b'; }));
  ASSERT_FALSE(c.start(5ms, [&] { order += 'c'; }));
  ASSERT_FALSE(d.start(5ms, [&] { order += 'd'; }));
  ASSERT_FALSE(a.start(5ms));  // a restart is a new start: a now goes after d
  step(10ms);
  EXPECT_EQ(order, "bcda");
}

TEST_F(TimerTest, RepeatKeepsItsPhaseWhenACallbackIsSlow) {
  std::vector<int64_t> fired_at;
  WithCapacity<Timer, 32> timer(loop);  // three references: beyond a Timer's one pointer
  const int64_t start = clock.monotonic;
  timer.set_callback([&] {
    fired_at.push_back(clock.monotonic - start);
    clock.advance(3ms);  // a slow callback
  });
  ASSERT_FALSE(timer.start(10ms, 10ms));
  step(10ms);
  step(7ms);   // t = 20 ms (10 + 3 in the callback + 7)
  step(10ms);  // t = 33 ms: the 30 ms deadline
  EXPECT_EQ(fired_at, (std::vector<int64_t>{10'000'000, 20'000'000, 33'000'000}));
  EXPECT_EQ(timer.when().time_since_epoch().count() - start, 40'000'000) << "still on the 10 ms grid";
}

TEST_F(TimerTest, MissedPeriodsAreCoalescedIntoOneCallback) {
  int calls = 0;
  Timer timer(loop);
  const int64_t start = clock.monotonic;
  ASSERT_FALSE(timer.start(10ms, 10ms, [&] { ++calls; }));
  step(55ms);  // five periods elapsed (10, 20, 30, 40, 50)
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(timer.when().time_since_epoch().count() - start, 60'000'000) << "next on the grid, after now";
  step(5ms);
  EXPECT_EQ(calls, 2);
}

TEST_F(TimerTest, AgainPushesAnIdleTimeoutBack) {
  int timeouts = 0;
  Timer idle(loop);
  ASSERT_FALSE(idle.start(30s, [&] { ++timeouts; }));
  for (int i = 0; i < 10; ++i) {
    step(20s);
    ASSERT_FALSE(idle.again());  // activity: restart the 30 s countdown
  }
  EXPECT_EQ(timeouts, 0);
  step(30s);
  EXPECT_EQ(timeouts, 1);
}

// Semantics 3: again() on a never-started timer, on an active one-shot, on a stopped one.
TEST_F(TimerTest, AgainOnANeverStartedTimerIsEinval) {
  Timer timer(loop);
  EXPECT_EQ(timer.again().code(), EINVAL);
  EXPECT_FALSE(timer.active());
}

TEST_F(TimerTest, AgainOnAnActiveOneShotRestartsItsTimeout) {
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(10ms, [&] { ++calls; }));
  step(6ms);
  ASSERT_FALSE(timer.again());
  EXPECT_EQ(timer.remaining(), 10ms);
  step(6ms);
  EXPECT_EQ(calls, 0);
  step(4ms);
  EXPECT_EQ(calls, 1);
}

TEST_F(TimerTest, AgainOnAStoppedTimerStartsItWithTheRepeatInterval) {
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(50ms, 5ms, [&] { ++calls; }));
  timer.stop();
  ASSERT_FALSE(timer.again());
  EXPECT_TRUE(timer.active());
  EXPECT_EQ(timer.remaining(), 5ms);
}

TEST_F(TimerTest, RemainingCountsDownAndIsZeroWhenInactive) {
  Timer timer(loop);
  EXPECT_EQ(timer.remaining(), 0ns);
  ASSERT_FALSE(timer.start(100ms, [] {}));
  step(30ms);
  EXPECT_EQ(timer.remaining(), 70ms);
  timer.stop();
  EXPECT_EQ(timer.remaining(), 0ns);
}

// A timer costs no more memory than libev's (48-byte ev_timer plus its 16-byte heap
// entry): links, deadline, sequence, loop, interval and a one-pointer callback.
TEST_F(TimerTest, IsSixtyFourBytesWithItsCallback) {
  static_assert(sizeof(void*) != 8 || sizeof(Timer) == 64);
  static_assert(Timer::Callback::kCapacity == sizeof(void*));
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(1ms, [&calls] { ++calls; }));  // one reference fits
  step(1ms);
  EXPECT_EQ(calls, 1);
}

// One interval serves again(): the timeout of the last start, or the repeat interval
// while one is set, which a timer made one-shot keeps.
TEST_F(TimerTest, AgainUsesTheRepeatIntervalAndKeepsItWhenMadeOneShot) {
  int calls = 0;
  Timer timer(loop);
  EXPECT_FALSE(timer.set_repeat(4ms)) << "allowed before any start";
  timer.set_callback([&calls] { ++calls; });
  EXPECT_EQ(timer.again().code(), EINVAL) << "never started, repeat interval or not";
  ASSERT_FALSE(timer.start(10ms));
  EXPECT_EQ(timer.repeat(), 0ms) << "start() sets the repeat interval too";
  ASSERT_FALSE(timer.set_repeat(3ms));
  EXPECT_EQ(timer.repeat(), 3ms);
  ASSERT_FALSE(timer.again());
  EXPECT_EQ(timer.remaining(), 3ms);
  ASSERT_FALSE(timer.set_repeat(0ms));
  EXPECT_EQ(timer.repeat(), 0ms);
  ASSERT_FALSE(timer.again());
  EXPECT_EQ(timer.remaining(), 3ms) << "the last interval, now a one-shot timeout";
  step(3ms);
  EXPECT_EQ(calls, 1);
  step(10ms);
  EXPECT_EQ(calls, 1) << "one-shot";
  ASSERT_FALSE(timer.start(7ms, 2ms));
  ASSERT_FALSE(timer.again(1ms));
  EXPECT_EQ(timer.repeat(), 2ms) << "again(timeout) keeps a repeating timer's interval";
  step(1ms);
  step(2ms);
  EXPECT_EQ(calls, 3);
}

TEST_F(TimerTest, BadInputIsRefused) {
  Timer timer(loop), never_given_a_callback(loop);
  EXPECT_EQ(timer.start(1ms, -1ms, [] {}).code(), EINVAL);
  EXPECT_EQ(never_given_a_callback.start(1ms).code(), EINVAL) << "no callback";
  EXPECT_EQ(timer.set_repeat(-1ns).code(), EINVAL);
  EXPECT_FALSE(timer.active());
  EXPECT_FALSE(never_given_a_callback.active());
}

TEST_F(TimerTest, NegativeTimeoutFiresInTheNextIteration) {
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(-5s, [&] { ++calls; }));
  step(0ns);
  EXPECT_EQ(calls, 1);
}

TEST_F(TimerTest, HugeTimeoutsSaturateInsteadOfWrapping) {
  Timer timer(loop);
  ASSERT_FALSE(timer.start(std::chrono::nanoseconds::max(), [] { ADD_FAILURE() << "fired"; }));
  EXPECT_EQ(timer.when().time_since_epoch().count(), detail::kNoDeadline);
  step(std::chrono::hours(24 * 365 * 100));
  EXPECT_TRUE(timer.active());
}

TEST_F(TimerTest, CallbackMayStopRestartOrDestroyTimersOfTheSameBatch) {
  std::string log;
  struct Others {
    std::string* log;
    Timer* stopped;
    std::unique_ptr<Timer>* doomed;
    Timer* restarted;
  };
  auto doomed = std::make_unique<Timer>(loop);
  Timer first(loop), stopped(loop), restarted(loop);
  Others others{&log, &stopped, &doomed, &restarted};
  ASSERT_FALSE(first.start(1ms, [&others] {
    *others.log += '1';
    others.stopped->stop();
    others.doomed->reset();
    EXPECT_FALSE(others.restarted->start(5ms));
  }));
  ASSERT_FALSE(stopped.start(2ms, [&] { log += 's'; }));
  ASSERT_FALSE(doomed->start(3ms, [&] { log += 'd'; }));
  ASSERT_FALSE(restarted.start(4ms, [&] { log += 'r'; }));
  step(4ms);
  EXPECT_EQ(log, "1");
  step(5ms);
  EXPECT_EQ(log, "1r");
}

TEST_F(TimerTest, CallbackMayStopOrDestroyItself) {
  struct {
    int calls = 0;
    std::unique_ptr<Timer> self_destructing;
  } s;
  s.self_destructing = std::make_unique<Timer>(loop);
  Timer repeating(loop);
  ASSERT_FALSE(s.self_destructing->start(1ms, 1ms, [&s] {
    ++s.calls;
    s.self_destructing.reset();
  }));
  ASSERT_FALSE(repeating.start(1ms, 1ms, [&s](Timer& self) {
    ++s.calls;
    self.stop();
  }));
  step(5ms);
  step(5ms);
  EXPECT_EQ(s.calls, 2);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(TimerTest, TimersRunAfterIoAndAsyncAndBeforeIdleAndCheck) {
  auto p = testing::make_pipe();
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  std::string order;
  Io io(loop);
  Async async(loop);
  Timer timer(loop);
  Check check(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    order += 'O';
    self.stop();
  }));
  ASSERT_FALSE(async.start([&](Async& self) {
    order += 'A';
    self.stop();
  }));
  ASSERT_FALSE(timer.start(1ms, [&] { order += 'T'; }));
  ASSERT_FALSE(check.start([&](Check& self) {
    order += 'C';
    self.stop();
  }));
  async.send();
  step(1ms);
  EXPECT_EQ(order, "OATC");
}

TEST_F(TimerTest, SetClockIsRefusedWhileTimersAreActive) {
  Timer timer(loop);
  ASSERT_FALSE(timer.start(1s, [] {}));
  EXPECT_EQ(loop.set_clock(nullptr).code(), EBUSY);
}

TEST_F(TimerTest, DestroyingTheLoopDetachesActiveTimers) {
  auto other = std::make_unique<Loop>();
  ASSERT_FALSE(other->open());
  Timer timer(*other);
  ASSERT_FALSE(timer.start(1s, [] {}));
  other.reset();
  EXPECT_FALSE(timer.active());
  EXPECT_EQ(timer.again().code(), EINVAL);
}

// A restart reads the loop through a hint, the loop of the timer the thread started last
// (timer.cpp): timers of two loops restarted in turn on one thread each keep to their own
// loop's time and wheel. The second loop's clock is an hour ahead, so a restart counted
// from the other loop's time would show in when().
TEST_F(TimerTest, RestartsInTurnOnTwoLoopsOfOneThreadKeepToEachTimersLoop) {
  testing::FakeClock later_clock;
  later_clock.advance(1h);
  Loop other;
  ASSERT_FALSE(other.open());
  ASSERT_FALSE(other.set_clock(&later_clock.source));
  int here = 0, there = 0;
  Timer a(loop), b(other);
  ASSERT_FALSE(a.start(10ms, [&] { ++here; }));
  ASSERT_FALSE(b.start(10ms, [&] { ++there; }));
  const auto now_here = MonotonicClock::time_point(MonotonicClock::duration(clock.monotonic));
  const auto now_there = MonotonicClock::time_point(MonotonicClock::duration(later_clock.monotonic));
  // Each kind of turn: the same loop again (the hint), the other loop (the full path),
  // later and earlier deadlines.
  for (auto [timer_a, timer_b] : {std::pair{20ms, 30ms}, std::pair{40ms, 5ms}, std::pair{3ms, 50ms}}) {
    ASSERT_FALSE(a.start(timer_a));
    ASSERT_FALSE(a.start(timer_a));
    EXPECT_EQ(a.when(), now_here + timer_a);
    ASSERT_FALSE(b.start(timer_b));
    EXPECT_EQ(b.when(), now_there + timer_b);
    ASSERT_FALSE(b.start(timer_b));
    EXPECT_EQ(b.when(), now_there + timer_b);
    EXPECT_EQ(a.when(), now_here + timer_a);
    // again() takes the same path, with the last timeout.
    ASSERT_FALSE(a.again());
    EXPECT_EQ(a.when(), now_here + timer_a);
    ASSERT_FALSE(b.again());
    EXPECT_EQ(b.when(), now_there + timer_b);
    ASSERT_FALSE(a.again(timer_a));
    EXPECT_EQ(a.when(), now_here + timer_a);
  }
  EXPECT_EQ(loop.active_watchers(), 1);
  EXPECT_EQ(other.active_watchers(), 1);
  step(3ms - 1ns);
  EXPECT_EQ(here, 0);
  step(1ns);
  EXPECT_EQ(here, 1);
  EXPECT_EQ(there, 0) << "b is on the other loop, whose clock did not move";
  later_clock.advance(50ms - 1ns);
  ASSERT_FALSE(other.run(RunMode::NoWait));
  EXPECT_EQ(there, 0);
  later_clock.advance(1ns);
  ASSERT_FALSE(other.run(RunMode::NoWait));
  EXPECT_EQ(there, 1);
}

// The hint outlives its loop: a timer that loop left behind is refused, and a timer of a
// new loop, wherever it is, starts on that loop.
TEST_F(TimerTest, ARestartAfterTheHintedLoopIsGoneIsRefusedOrGoesToTheNewLoop) {
  auto gone = std::make_unique<Loop>();
  ASSERT_FALSE(gone->open());
  Timer left(*gone);
  ASSERT_FALSE(left.start(1s, [] {}));
  ASSERT_FALSE(left.start(2s));  // its loop is the hint now
  gone.reset();
  EXPECT_EQ(left.start(1s).code(), EINVAL);
  EXPECT_EQ(left.again().code(), EINVAL);
  EXPECT_EQ(left.again(1s).code(), EINVAL);
  EXPECT_FALSE(left.active());
  auto next = std::make_unique<Loop>();
  ASSERT_FALSE(next->open());
  Timer fresh(*next);
  ASSERT_FALSE(fresh.start(1s, [] {}));
  ASSERT_FALSE(fresh.start(2s));
  EXPECT_TRUE(fresh.active());
  EXPECT_EQ(next->active_watchers(), 1);
  EXPECT_EQ(left.start(1s).code(), EINVAL);
}

// With the real clock: the loop blocks until the deadline and never fires early. Only
// lower bounds on elapsed time are asserted; a slow machine passes too.
class RealTimeTimer : public ::testing::TestWithParam<SleepPath> {};

TEST_P(RealTimeTimer, BlockingRunSleepsUntilTheDeadlineAndNeverFiresEarly) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  loop.request_sleep_path(GetParam());
  std::vector<std::pair<MonotonicClock::time_point, MonotonicClock::time_point>> fired;  // deadline, actual
  std::vector<std::unique_ptr<Timer>> timers;
  for (std::chrono::microseconds after : {300us, 1000us, 2500us, 100us}) {
    timers.push_back(std::make_unique<Timer>(loop));
    ASSERT_FALSE(
        timers.back()->start(after, [&fired](Timer& self) { fired.emplace_back(self.when(), MonotonicClock::now()); }));
  }
  ASSERT_FALSE(loop.run());
  ASSERT_EQ(fired.size(), 4u);
  for (size_t i = 0; i < fired.size(); ++i) {
    EXPECT_GE(fired[i].second, fired[i].first) << "timer " << i << " fired early";
    if (i > 0) {
      EXPECT_GE(fired[i].first, fired[i - 1].first) << "out of deadline order";
    }
  }
  if (testing::loop_uses_epoll()) {
    EXPECT_GE(loop.sleep_path(), GetParam());
  } else if (testing::kLoopUsesIocp) {  // GetQueuedCompletionStatusEx: milliseconds only
    EXPECT_EQ(loop.sleep_path(), SleepPath::Milliseconds);
  } else {  // kevent() sleeps in nanoseconds; there is no timerfd path to take
    EXPECT_EQ(loop.sleep_path(), GetParam() == SleepPath::TimerFd ? SleepPath::Nanoseconds : GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, RealTimeTimer,
                         ::testing::Values(SleepPath::Nanoseconds, SleepPath::TimerFd, SleepPath::Milliseconds));

#if defined(__linux__)
// Whether this process may call epoll_pwait2 (not under valgrind 3.19 or qemu-user 7.2).
bool epoll_pwait2_exists() {
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  detail::linux_abi::EpollEvent event{};
  const detail::linux_abi::KernelTimespec zero{0, 0};
  const Result<int> answer = detail::linux_abi::epoll_pwait2(epoll, &event, 1, &zero);
  ::close(epoll);
  return answer || (answer.error().code() != ENOSYS && answer.error().code() != EPERM);
}

TEST(TimerSlack, TheDefaultSleepPathAvoidsTheSlackOfANanosecondTimeout) {
  if (!testing::loop_uses_epoll()) GTEST_SKIP() << "epoll's choice: kevent() has one sleep path";
  Loop loop;
  ASSERT_FALSE(loop.open());
  const auto before = Loop::timer_slack();
  ASSERT_FALSE(loop.set_timer_slack(50us));
  EXPECT_EQ(loop.sleep_path(), SleepPath::TimerFd) << "a 50 us slack would delay epoll_pwait2";
  ASSERT_FALSE(loop.set_timer_slack(1ns));
  // The truth from open() on: where epoll_pwait2 is missing, the timerfd path it is.
  EXPECT_EQ(loop.sleep_path(), epoll_pwait2_exists() ? SleepPath::Nanoseconds : SleepPath::TimerFd)
      << "no slack: the cheaper precise path";
  loop.request_sleep_path(SleepPath::Milliseconds);
  EXPECT_EQ(loop.sleep_path(), SleepPath::Milliseconds);
  ASSERT_FALSE(loop.set_timer_slack(before > 0ns ? before : 50us));
}
#endif

TEST(TimerSlack, CanBeLoweredForTheLoopThread) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  const auto before = Loop::timer_slack();
#if defined(__linux__)
  ASSERT_FALSE(loop.set_timer_slack(1ns));
  EXPECT_EQ(Loop::timer_slack(), 1ns);
  EXPECT_EQ(loop.set_timer_slack(0ns).code(), EINVAL);
  ASSERT_FALSE(loop.set_timer_slack(before > 0ns ? before : 50us));
#else  // prctl(PR_SET_TIMERSLACK) is Linux's; elsewhere the call says so
  EXPECT_EQ(loop.set_timer_slack(1ns).code(), ENOTSUP);
  EXPECT_EQ(loop.set_timer_slack(0ns).code(), EINVAL);
  EXPECT_EQ(before, 0ns);
#endif
}

}  // namespace
}  // namespace evflow

namespace evflow {
namespace {

// Regression: on a fake clock, a blocking run() armed the fake deadline as a real
// absolute time on the timerfd: in the real past it fired at once (the loop spun), in the
// real future it hung. A blocking wait sleeps the timeout in real time instead, as the
// clock header promises; a wait never ends before its timeout (a lower bound, which
// holds however loaded the machine is).
TEST(FakeClockRegression, ABlockingRunSleepsTheFakeTimeoutInRealTime) {
  for (const int64_t start :
       {int64_t{1'000'000'000}, int64_t{4'000'000'000'000'000'000}}) {  // far in the real past and future
    testing::FakeClock clock;
    clock.monotonic = start;
    Loop loop;
    ASSERT_FALSE(loop.open());
    ASSERT_FALSE(loop.set_clock(&clock.source));
    bool fired = false;
    Timer timer(loop);
    ASSERT_FALSE(timer.start(20ms, [&] { fired = true; }));
    const auto before = std::chrono::steady_clock::now();
    ASSERT_FALSE(loop.run(RunMode::Once));  // the fake time does not move: nothing is due after it
    EXPECT_GE(std::chrono::steady_clock::now() - before, 20ms) << "start " << start;
    EXPECT_FALSE(fired);
    clock.advance(20ms);
    ASSERT_FALSE(loop.run(RunMode::NoWait));
    EXPECT_TRUE(fired);
  }
}

// Regression: with a clock spanning more than 2^63 ns between a repeating timer's deadline
// and now, the computation of its next deadline overflowed a signed integer.
TEST(FakeClockRegression, ARepeatingTimerKeepsItsPhaseAcrossMoreThanTwoToTheSixtyThreeNanoseconds) {
  testing::FakeClock clock;
  clock.monotonic = -9'000'000'000'000'000'000;
  Loop loop;
  ASSERT_FALSE(loop.open());
  ASSERT_FALSE(loop.set_clock(&clock.source));
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(0ns, std::chrono::nanoseconds(1'000'000'000'000'000'000), [&] { ++calls; }));
  clock.monotonic = 8'500'000'000'000'000'000;  // 17.5e18 ns after the deadline
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1) << "missed periods coalesce into one callback";
  EXPECT_EQ(timer.when().time_since_epoch().count(), 9'000'000'000'000'000'000) << "the phase is kept";
  EXPECT_EQ(timer.remaining(), std::chrono::nanoseconds(500'000'000'000'000'000));
}

}  // namespace
}  // namespace evflow
