// Proves "no heap allocation per event": the global allocation functions of this test
// binary count every call (tests/support/allocation_control.hpp), and a warm loop's
// steady state must not move the counter.
#include <gtest/gtest.h>

#include <signal.h>

#if defined(_WIN32)
#include <winsock2.h>  // before windows.h, which would include the older winsock.h

#include <windows.h>

#include "platform/win/console_events.hpp"
#endif

#include <evflow/evflow.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/descriptors.hpp"

namespace {

// A signal the test can raise in its own process: a console control event on Windows
// (platform/win/console_events.hpp), a real signal elsewhere.
#if defined(_WIN32)
constexpr int kSignal = evflow::detail::win::kSigInt;
void raise_signal() { (void)evflow::detail::win::dispatch_console_event(CTRL_C_EVENT); }
#else
constexpr int kSignal = SIGUSR1;
void raise_signal() { ::raise(SIGUSR1); }
#endif
}  // namespace

namespace evflow {
namespace {

TEST(Allocations, SteadyStateEventsTimersSignalsStartsAndStopsAllocateNothing) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto s = testing::make_socketpair();
  int reads = 0, asyncs = 0, hooks = 0;
  Io a(loop), b(loop);
  Async async(loop);
  Timer repeating(loop), restarted(loop);
  Signal signal(loop);
  int timer_calls = 0, signals_seen = 0;
  Prepare prepare(loop);
  Check check(loop);
  Idle idle(loop);
  auto echo = [&reads](Io& self, Events) {
    char c;
    if (testing::read_fd(self.fd(), &c, 1) == 1) {
      ++reads;
      testing::write_byte(self.fd());
    }
  };
  ASSERT_FALSE(a.start(s.a.get(), Readable, echo));
  ASSERT_FALSE(b.start(s.b.get(), Readable, echo));
  ASSERT_FALSE(async.start([&] { ++asyncs; }));
  ASSERT_FALSE(prepare.start([&] { ++hooks; }));
  ASSERT_FALSE(check.start([&] { ++hooks; }));
  ASSERT_FALSE(repeating.start(std::chrono::nanoseconds(1), std::chrono::nanoseconds(1), [&] { ++timer_calls; }));
  ASSERT_FALSE(restarted.start(std::chrono::hours(1), [] {}));
  ASSERT_FALSE(signal.start(kSignal, [&] { ++signals_seen; }));
  ASSERT_TRUE(testing::write_byte(s.a.get()));
  auto one_round = [&] {
    async.send();
    // Re-register everything, change interest back and forth, and run.
    a.stop();
    ASSERT_FALSE(a.start());
    ASSERT_FALSE(b.set_interest(Readable | Writable));
    ASSERT_FALSE(b.set_interest(Readable));
    idle.stop();
    ASSERT_FALSE(idle.start([&] { ++hooks; }));
    ASSERT_FALSE(restarted.again());
    raise_signal();
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  };
  for (int i = 0; i < 100; ++i)
    one_round();  // warm-up: tables reach their size
  const long before = testing::allocation_count();
  for (int i = 0; i < 10'000; ++i)
    one_round();
  const long allocations = testing::allocation_count() - before;
  EXPECT_EQ(allocations, 0) << "allocations during 10,000 iterations";
  EXPECT_GE(reads, 10'000);
  EXPECT_EQ(asyncs, 10'100);
  EXPECT_GT(hooks, 0);
  EXPECT_GT(timer_calls, 0);
  EXPECT_EQ(signals_seen, 10'100);
}

TEST(AllocationTest, StartingUpToTheReservedNumberOfTimersAllocatesNothing) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  constexpr size_t kTimers = 5000;
  std::vector<std::unique_ptr<Timer>> timers;
  for (size_t i = 0; i < kTimers; ++i)
    timers.push_back(std::make_unique<Timer>(loop));
  ASSERT_FALSE(loop.reserve_timers(kTimers));
  const long before = testing::allocation_count();
  for (auto& timer : timers)
    ASSERT_FALSE(timer->start(std::chrono::hours(1), [] {}));
  EXPECT_EQ(testing::allocation_count() - before, 0);
  EXPECT_EQ(loop.active_watchers(), static_cast<int>(kTimers));
}

TEST(AllocationTest, ATimerReservationBeyondTheAddressSpaceIsEnomemAndStartsStillWork) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  // More than an address space holds: refused before any allocation is tried.
  EXPECT_EQ(loop.reserve_timers(static_cast<size_t>(-1) / 2).code(), ENOMEM);
  Timer timer(loop);
  ASSERT_FALSE(timer.start(std::chrono::hours(1), [] {}));
  EXPECT_TRUE(timer.active());
}

}  // namespace
}  // namespace evflow
