#include "reactor/loop.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <evflow/evflow.hpp>
#include "tests/support/backend_kind.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/run_until.hpp"

namespace evflow {
namespace {

using testing::make_pipe;
using testing::write_byte;

TEST(Loop, ConstructionMakesNoKernelObjectsAndOpenDoes) {
  Loop loop;
  EXPECT_FALSE(loop.is_open());
  EXPECT_EQ(loop.native_handle(), -1);
  ASSERT_FALSE(loop.open());
  EXPECT_TRUE(loop.is_open());
  EXPECT_GE(loop.native_handle(), 0);
  EXPECT_EQ(loop.open().code(), EBUSY);
}

TEST(Loop, SaysWhichBackendItRunsOn) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  if (testing::loop_uses_epoll()) {
    EXPECT_EQ(loop.backend_kind(), BackendKind::Epoll) << "the Linux slot's default";
  } else if (testing::loop_uses_io_uring()) {
    EXPECT_EQ(loop.backend_kind(), BackendKind::IoUring) << "asked for by EVFLOW_BACKEND";
  } else if (testing::kLoopUsesIocp) {
    EXPECT_EQ(loop.backend_kind(), BackendKind::Iocp);
  } else {
    EXPECT_EQ(loop.backend_kind(), BackendKind::Kqueue);
  }
}

TEST(Loop, RunBeforeOpenIsRefused) {
  Loop loop;
  EXPECT_EQ(loop.run().code(), EINVAL);
}

TEST(Loop, RunReturnsAtOnceWithNoActiveWatchers) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(loop.iteration(), 0u);
}

TEST(Loop, NoWaitRunsOneIterationWithoutBlocking) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = make_pipe();
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(loop.iteration(), 2u);
}

TEST(Loop, OnceWaitsForAnEventThenReturns) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = make_pipe();
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&] { ++calls; }));
  std::thread writer([&] { write_byte(p.write_end.get()); });
  EXPECT_FALSE(loop.run(RunMode::Once));  // blocks until the writer's byte arrives
  writer.join();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.iteration(), 1u);
}

// Semantics 1: stop() while the loop is not running is ignored.
TEST(Loop, StopWhileNotRunningIsIgnored) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    if (++calls == 3) self.loop().stop();
  }));
  loop.stop();
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(calls, 3) << "the earlier stop() must not cut the next run short";
}

// Semantics 2: stop() inside a callback finishes the callbacks already due, then returns.
TEST(Loop, StopInsideACallbackFinishesTheIteration) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto a = make_pipe();
  auto b = make_pipe();
  ASSERT_TRUE(write_byte(a.write_end.get()));
  ASSERT_TRUE(write_byte(b.write_end.get()));
  int calls = 0;
  int checks = 0;
  Io first(loop), second(loop);
  Check check(loop);
  auto stop_on_first = [&](Io& self, Events) {
    ++calls;
    self.loop().stop();
  };
  ASSERT_FALSE(first.start(a.read_end.get(), Readable, stop_on_first));
  ASSERT_FALSE(second.start(b.read_end.get(), Readable, stop_on_first));
  ASSERT_FALSE(check.start([&] { ++checks; }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(calls, 2) << "both ready descriptors are served in the iteration that stopped";
  EXPECT_EQ(checks, 1) << "check watchers still run in that iteration";
  EXPECT_EQ(loop.iteration(), 1u);
}

TEST(Loop, RunFromInsideACallbackIsRefusedWithEbusy) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  Error nested;
  Idle idle(loop);
  ASSERT_FALSE(idle.start([&](Idle& self) {
    nested = loop.run();
    self.stop();
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(nested.code(), EBUSY);
}

TEST(Loop, NowIsCachedPerIterationAndUpdateNowRefreshesIt) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  const auto opened = loop.now();
  EXPECT_GT(opened.time_since_epoch().count(), 0);
  EXPECT_EQ(loop.now(), opened) << "now() is cached, not re-read";
  MonotonicClock::time_point seen_in_callback{}, refreshed{};
  Idle idle(loop);
  ASSERT_FALSE(idle.start([&](Idle& self) {
    seen_in_callback = self.loop().now();
    const auto target = MonotonicClock::now() + std::chrono::microseconds(50);
    while (MonotonicClock::now() < target) {
    }
    self.loop().update_now();
    refreshed = self.loop().now();
    self.stop();
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_GE(seen_in_callback, opened);
  EXPECT_GT(refreshed, seen_in_callback);
}

// Semantics 5: the order within one iteration.
TEST(Loop, PhasesRunInTheDocumentedOrder) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  std::string order;
  Prepare prepare(loop);
  Check check(loop);
  Idle idle(loop);
  Async async(loop);
  Io io(loop);
  ASSERT_FALSE(prepare.start([&] { order += 'P'; }));
  ASSERT_FALSE(check.start([&] { order += 'C'; }));
  ASSERT_FALSE(idle.start([&] { order += 'I'; }));
  ASSERT_FALSE(async.start([&] { order += 'A'; }));
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&] { order += 'O'; }));
  async.send();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(order, "POAC") << "prepare, Io, Async, (no idle: callbacks ran), check";
  io.stop();
  order.clear();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(order, "PIC") << "idle runs only when no other callback ran";
}

TEST(Loop, CountsActiveWatchersOfEveryKind) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = make_pipe();
  Io io(loop);
  Async async(loop);
  Prepare prepare(loop);
  EXPECT_EQ(loop.active_watchers(), 0);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [] {}));
  ASSERT_FALSE(async.start([] {}));
  ASSERT_FALSE(prepare.start([] {}));
  EXPECT_EQ(loop.active_watchers(), 3);
  io.stop();
  async.stop();
  prepare.stop();
  EXPECT_EQ(loop.active_watchers(), 0);
}

// Semantics 12: destroying a loop with active watchers detaches them safely.
TEST(Loop, DestroyingALoopDetachesItsActiveWatchers) {
  auto p = make_pipe();
  auto loop = std::make_unique<Loop>();
  ASSERT_FALSE(loop->open());
  Io io(*loop);
  Async async(*loop);
  Idle idle(*loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [] {}));
  ASSERT_FALSE(async.start([] {}));
  ASSERT_FALSE(idle.start([] {}));
  loop.reset();
  EXPECT_FALSE(io.active());
  EXPECT_FALSE(async.active());
  EXPECT_FALSE(idle.active());
  EXPECT_EQ(io.start().code(), EINVAL);
  EXPECT_EQ(async.start().code(), EINVAL);
  EXPECT_EQ(idle.start().code(), EINVAL);
  async.send();  // harmless: no loop to wake
  io.stop();
}

TEST(Loop, WatchersOnAnUnopenedLoopAreRefused) {
  Loop loop;
  auto p = make_pipe();
  Io io(loop);
  Async async(loop);
  Check check(loop);
  EXPECT_EQ(io.start(p.read_end.get(), Readable, [] {}).code(), EINVAL);
  EXPECT_EQ(async.start([] {}).code(), EINVAL);
  EXPECT_EQ(check.start([] {}).code(), EINVAL);
}

TEST(Loop, RebuildKeepsEveryActiveWatcherWorking) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = make_pipe();
  int reads = 0, asyncs = 0;
  Io io(loop);
  Async async(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    ++reads;
    testing::drain(self.fd());
  }));
  ASSERT_FALSE(async.start([&] { ++asyncs; }));
  const int old_handle = loop.native_handle();
  ASSERT_FALSE(loop.rebuild());
  EXPECT_EQ(loop.stats().backend_rebuilds, 1u);
  (void)old_handle;
  ASSERT_TRUE(write_byte(p.write_end.get()));
  async.send();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(asyncs, 1);
}

// Regression: destroying the loop from one of its own callbacks ran the rest of the
// iteration on freed memory. It is refused with a message, in every build.
TEST(LoopDeathTest, DestroyingTheLoopInsideItsOwnCallbackAbortsWithAMessage) {
  EXPECT_DEATH(
      {
        auto loop = std::make_unique<Loop>();
        if (loop->open()) std::abort();
        Idle idle(*loop);
        if (idle.start([&] { loop.reset(); })) std::abort();
        (void)loop->run(RunMode::NoWait);
      },
      "Loop destroyed while it runs");
}

// A callback must not throw: the loop's functions are noexcept, so an exception that
// leaves a callback ends the process through std::terminate (documented in loop.hpp).
TEST(LoopDeathTest, ACallbackThatThrowsEndsTheProcessThroughTerminate) {
  EXPECT_DEATH(
      {
        Loop loop;
        if (loop.open()) std::abort();
        Idle idle(loop);
        if (idle.start([] { throw std::runtime_error("from a callback"); })) std::abort();
        (void)loop.run(RunMode::NoWait);
      },
      "terminate");
}

#ifndef NDEBUG
TEST(LoopDeathTest, UseFromAThreadThatDoesNotOwnTheLoopAborts) {
  EXPECT_DEATH(
      {
        Loop loop;
        if (loop.open()) std::abort();
        Idle idle(loop);
        std::thread other([&] { (void)idle.start([] {}); });
        other.join();
      },
      "does not own the loop");
}
#endif

}  // namespace
}  // namespace evflow

namespace evflow {
namespace {

// Regression: the "issued after the last wait" test of registration tags used a signed
// difference, which called tags 2^31 behind "recent" and never rebuilt the epoll set.
TEST(LoopTags, RecencyIsCorrectAcrossTheCounterWrap) {
  EXPECT_TRUE(detail::issued_since(5, 5, 6));
  EXPECT_FALSE(detail::issued_since(4, 5, 6));
  EXPECT_FALSE(detail::issued_since(6, 5, 6)) << "not issued yet";
  EXPECT_TRUE(detail::issued_since(0xfffffffeu, 0xfffffffeu, 1)) << "the mark just before the wrap";
  EXPECT_TRUE(detail::issued_since(0, 0xfffffffeu, 1)) << "issued after the wrap";
  EXPECT_FALSE(detail::issued_since(5 - 0x80000001u, 5, 6)) << "2^31 + 1 behind is old, not recent";
  EXPECT_FALSE(detail::issued_since(0x80000000u, 5, 6));
}

// Regression: a timerfd left armed for a stopped timer fired during a later wait of
// another kind; its event reached the loop as an unknown descriptor and forced a rebuild.
TEST(LoopSleep, AnExpiredTimerfdForAStoppedTimerIsNotAStaleRegistration) {
  if (!testing::loop_uses_epoll()) GTEST_SKIP() << "epoll's timerfd sleep path";
  Loop loop;
  ASSERT_FALSE(loop.open());
  loop.request_sleep_path(SleepPath::TimerFd);
  auto p = testing::make_pipe();
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  Io io(loop);
  Timer timer(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [](Io& self, Events) { testing::drain(self.fd()); }));
  ASSERT_FALSE(timer.start(std::chrono::microseconds(300), [] {}));
  ASSERT_FALSE(loop.run(RunMode::Once));  // armed the timerfd, then woke for the pipe
  ASSERT_EQ(loop.sleep_path(), SleepPath::TimerFd);
  timer.stop();
  const auto past = MonotonicClock::now() + std::chrono::microseconds(600);
  while (MonotonicClock::now() < past) {
  }  // the timerfd expires now, unwanted
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(loop.stats().backend_rebuilds, 0u);
}

}  // namespace
}  // namespace evflow

#if !defined(_WIN32)  // descriptor limits are POSIX's (getrlimit)
#include <sys/resource.h>

namespace evflow {
namespace {

// Construction failures are reported: with no descriptor left, open() says EMFILE.
void open_with_every_descriptor_taken() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) std::_Exit(2);
  limit.rlim_cur = 64;  // the soft limit only: valgrind refuses changes to the hard one
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) std::_Exit(3);
  while (::dup(0) >= 0) {
  }
  Loop loop;
  const Error err = loop.open();
  std::_Exit(err.code() == EMFILE && !loop.is_open() ? 0 : 1);
}

TEST(LoopDeathTest, OpenReportsEmfileWhenNoDescriptorIsLeft) {
  EXPECT_EXIT(open_with_every_descriptor_taken(), ::testing::ExitedWithCode(0), "");
}

// Takes every descriptor but `spare`; returns false if the limit cannot be set.
bool leave_only(int spare) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  limit.rlim_cur = 64;  // the soft limit only: valgrind refuses changes to the hard one
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  int last = -1;
  for (int fd; (fd = ::dup(0)) >= 0;)
    last = fd;
  for (int i = 0; i < spare && last >= 0; ++i)
    ::close(last--);
  return true;
}

// Regression: the timerfd of the sleep path was made at the loop's first timed sleep;
// with no descriptor free at that moment, the loop fell back to millisecond sleeps for
// good (median lateness 50 us -> 850 us) and said nothing. It is made by open() now.
void timed_sleep_with_every_descriptor_taken() {
  Loop loop;
  if (loop.open()) std::_Exit(2);
  const SleepPath path = loop.sleep_path();
  if (!leave_only(0)) std::_Exit(3);
  bool fired = false;
  Timer timer(loop);
  if (timer.start(std::chrono::milliseconds(2), [&] { fired = true; })) std::_Exit(4);
  if (loop.run()) std::_Exit(5);  // one timed sleep, with no descriptor to spare
  std::_Exit(fired && loop.sleep_path() == path ? 0 : 1);
}

TEST(LoopDeathTest, NoDescriptorFreeAtTheFirstTimedSleepLeavesTheSleepPathAsItWas) {
  EXPECT_EXIT(timed_sleep_with_every_descriptor_taken(), ::testing::ExitedWithCode(0), "");
}

// ...and so open() is where a shortage shows: two descriptors free (the epoll instance
// and the wake-up) are not enough for the timerfd as well.
void open_with_two_descriptors_free() {
  if (!leave_only(2)) std::_Exit(3);
  Loop loop;
  const Error err = loop.open();
  std::_Exit(err.code() == EMFILE && !loop.is_open() ? 0 : 1);
}

TEST(LoopDeathTest, OpenReportsEmfileWhenTheSleepTimerCannotBeMade) {
  if (!testing::loop_uses_epoll()) GTEST_SKIP() << "epoll's three descriptors";
  EXPECT_EXIT(open_with_two_descriptors_free(), ::testing::ExitedWithCode(0), "");
}

// Embedding (Loop::native_handle): another loop watches the handle and runs this one
// without waiting when it is readable. Regression: the handle never became readable for
// a due timer, on any sleep path, so an embedded loop's timers fired only when the outer
// loop happened to wake for something else.
class Embedding : public ::testing::TestWithParam<SleepPath> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(outer.open());
    ASSERT_FALSE(inner.open());
    inner.request_sleep_path(GetParam());
    ASSERT_FALSE(handle.start(inner.native_handle(), Readable, [this] { (void)inner.run(RunMode::NoWait); }));
  }
  Loop outer, inner;
  Io handle{outer};
};

TEST_P(Embedding, ATimerOfTheEmbeddedLoopMakesItsHandleReadable) {
  bool fired = false;
  Timer timer(inner);
  ASSERT_FALSE(timer.start(std::chrono::milliseconds(5), [&] { fired = true; }));
  EXPECT_TRUE(testing::run_until(outer, [&] { return fired; }));
}

TEST_P(Embedding, ATimerStartedOutsideTheEmbeddedLoopsRunAndItsIoReachTheHandle) {
  auto p = make_pipe();
  int reads = 0;
  bool fired = false;
  Io io(inner);
  Timer timer(inner);
  WithCapacity<Timer, 32> kick(outer);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) { reads += testing::drain(self.fd()) > 0; }));
  // Started from the outer loop's callback, while the inner loop is not running.
  kick.set_callback([&] {
    (void)timer.start(std::chrono::milliseconds(5), [&fired] { fired = true; });
    (void)write_byte(p.write_end.get());
  });
  ASSERT_FALSE(kick.start(std::chrono::milliseconds(1)));
  EXPECT_TRUE(testing::run_until(outer, [&] { return fired && reads == 1; }));
}

TEST_P(Embedding, WorkPostedOutsideTheEmbeddedLoopsRunReachesTheHandle) {
  bool ran = false;
  WithCapacity<Timer, 32> kick(outer);
  // Posted from the outer loop's callback, while the inner loop is not running.
  kick.set_callback([this, &ran] { (void)inner.post([&ran] { ran = true; }); });
  ASSERT_FALSE(kick.start(std::chrono::milliseconds(1)));
  EXPECT_TRUE(testing::run_until(outer, [&] { return ran; }));
}

INSTANTIATE_TEST_SUITE_P(EverySleepPath, Embedding,
                         ::testing::Values(SleepPath::Nanoseconds, SleepPath::TimerFd, SleepPath::Milliseconds));

}  // namespace
}  // namespace evflow
#endif
