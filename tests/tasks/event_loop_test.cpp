// EventLoop (tasks/event_loop.hpp): where call_soon, call_later and readers run relative to
// watchers, FIFO order, cancellation through current and stale handles, timed calls on a
// fake clock, level-triggered readers and writers, run_forever/stop, and the pools: no
// allocation in steady state, growth, ENOMEM.
#include "tasks/event_loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/tasks.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/fake_clock.hpp"
#include "tests/support/run_until.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

// Calls and timers on a fake clock, driven one non-blocking iteration at a time.
class EventLoopTest : public testing::FakeClockLoopTest {
 protected:
  EventLoop events{loop};
  std::vector<std::string> order;
};

// Readers, writers and run_forever on the real clock.
class EventLoopIoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(events.open()); }
  EventLoop events;
  Loop& loop = events.loop();
};

TEST_F(EventLoopTest, CallSoonRunsOnceInCallOrder) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(events.call_soon([this, i] { order.push_back(std::to_string(i)); }));
  EXPECT_EQ(events.pending_calls(), 5u);
  step(0ms);
  step(0ms);
  EXPECT_EQ(order, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(events.pending_calls(), 0u);
}

TEST_F(EventLoopTest, CallsRunAfterIoAndTimersInThePostedWorkPhase) {
  testing::Pipe pipe = testing::make_pipe();
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  Io io(loop);
  ASSERT_FALSE(io.start(pipe.read_end.get(), Readable, [this](Io& self) {
    order.push_back("io");
    self.stop();
  }));
  Timer timer(loop);
  ASSERT_FALSE(timer.start(1ms, [this] { order.push_back("timer"); }));
  ASSERT_TRUE(events.call_later(1ms, [this] { order.push_back("call_later"); }));
  ASSERT_FALSE(loop.post([this] { order.push_back("post A"); }));
  ASSERT_TRUE(events.call_soon([this] { order.push_back("call_soon B"); }));
  ASSERT_FALSE(loop.post([this] { order.push_back("post C"); }));
  ASSERT_TRUE(events.call_soon([this] { order.push_back("call_soon D"); }));
  // One batch of call_soon calls, at the place of its first call among the posted work.
  step(1ms);
  EXPECT_EQ(order,
            (std::vector<std::string>{"io", "timer", "call_later", "post A", "call_soon B", "call_soon D", "post C"}));
}

TEST_F(EventLoopTest, CallSoonFromACallSoonCallbackRunsInTheNextIteration) {
  ASSERT_TRUE(events.call_soon([this] {
    order.push_back("first");
    (void)events.call_soon([this] { order.push_back("second"); });
  }));
  step(0ms);
  EXPECT_EQ(order, (std::vector<std::string>{"first"}));
  step(0ms);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second"}));
}

TEST_F(EventLoopTest, CallSoonFromATimedCallbackRunsAtTheEndOfTheSameIteration) {
  ASSERT_TRUE(events.call_later(1ms, [this] {
    order.push_back("later");
    (void)events.call_soon([this] { order.push_back("soon"); });
  }));
  step(1ms);
  EXPECT_EQ(order, (std::vector<std::string>{"later", "soon"}));
}

TEST_F(EventLoopTest, CancelBeforeTheCallPreventsItAndDestroysTheCallableAtOnce) {
  auto state = std::make_shared<int>(0);
  Result<CallHandle> soon = events.call_soon([state] { ++*state; });
  Result<CallHandle> later = events.call_later(1ms, [state] { ++*state; });
  ASSERT_TRUE(soon && later);
  EXPECT_TRUE(soon.value().pending());
  EXPECT_TRUE(soon.value().cancel());
  EXPECT_TRUE(later.value().cancel());
  EXPECT_TRUE(soon.value().cancelled());
  EXPECT_FALSE(soon.value().pending());
  EXPECT_EQ(state.use_count(), 1);  // both callables are gone
  EXPECT_EQ(events.pending_calls(), 0u);
  step(1ms);
  step(1ms);
  EXPECT_EQ(*state, 0);
}

TEST_F(EventLoopTest, CancelDuringAfterOrTwiceIsHarmless) {
  CallHandle self;
  bool cancelled_inside = true;
  Result<CallHandle> handle = events.call_soon([&] { cancelled_inside = self.cancel(); });
  ASSERT_TRUE(handle);
  self = handle.value();
  step(0ms);
  EXPECT_FALSE(cancelled_inside);         // during the call
  EXPECT_FALSE(handle.value().cancel());  // after it
  EXPECT_FALSE(handle.value().cancelled());
  Result<CallHandle> other = events.call_later(1ms, [] {});
  ASSERT_TRUE(other);
  EXPECT_TRUE(other.value().cancel());
  EXPECT_FALSE(other.value().cancel());  // twice
}

TEST_F(EventLoopTest, AStaleHandleNeverCancelsTheCallThatReusedItsRecord) {
  Result<CallHandle> old_soon = events.call_soon([] {});
  ASSERT_TRUE(old_soon);
  step(0ms);
  Result<CallHandle> old_later = events.call_later(1ms, [] {});
  ASSERT_TRUE(old_later);
  EXPECT_TRUE(old_later.value().cancel());  // its record is free at once
  int runs = 0;
  Result<CallHandle> fresh = events.call_soon([&runs] { ++runs; });
  ASSERT_TRUE(fresh);
  EXPECT_EQ(events.call_pool_size(), 1u);  // one record served all three calls
  EXPECT_FALSE(old_soon.value().cancel());
  EXPECT_FALSE(old_later.value().cancel());
  EXPECT_TRUE(fresh.value().pending());
  step(0ms);
  EXPECT_EQ(runs, 1);
}

TEST_F(EventLoopTest, CallLaterRunsAtItsDeadlineOnTheLoopClockNeverBefore) {
  bool ran = false;
  ASSERT_TRUE(events.call_later(10ms, [&] { ran = true; }));
  step(9ms);
  EXPECT_FALSE(ran);
  step(1ms);
  EXPECT_TRUE(ran);
  bool at_ran = false;
  ASSERT_TRUE(events.call_at(events.now() + 5ms, [&] { at_ran = true; }));
  step(4ms);
  EXPECT_FALSE(at_ran);
  step(1ms);
  EXPECT_TRUE(at_ran);
}

TEST_F(EventLoopTest, EqualDeadlinesRunInCallOrderAndPastDeadlinesAreDueAtOnce) {
  const auto deadline = events.now() + 3ms;
  ASSERT_TRUE(events.call_at(deadline, [this] { order.push_back("a"); }));
  ASSERT_TRUE(events.call_later(3ms, [this] { order.push_back("b"); }));
  ASSERT_TRUE(events.call_at(deadline, [this] { order.push_back("c"); }));
  ASSERT_TRUE(events.call_later(1ms, [this] { order.push_back("earlier"); }));
  step(3ms);
  EXPECT_EQ(order, (std::vector<std::string>{"earlier", "a", "b", "c"}));
  order.clear();
  ASSERT_TRUE(events.call_at(events.now() - 1s, [this] { order.push_back("past"); }));
  ASSERT_TRUE(events.call_later(-1s, [this] { order.push_back("negative"); }));
  step(0ms);
  EXPECT_EQ(order, (std::vector<std::string>{"past", "negative"}));
}

TEST_F(EventLoopIoTest, AReaderIsCalledInEveryIterationWhileReadableUntilRemoved) {
  testing::Pipe pipe = testing::make_pipe();
  const int fd = pipe.read_end.get();
  int calls = 0;
  int seen_fd = -1;
  ASSERT_FALSE(events.add_reader(fd, [&](int ready_fd) {
    ++calls;
    seen_fd = ready_fd;
  }));
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  ASSERT_TRUE(testing::run_until(loop, [&] { return calls >= 3; }));  // not read: still readable
  EXPECT_EQ(seen_fd, fd);
  EXPECT_TRUE(events.remove_reader(fd));
  EXPECT_FALSE(events.remove_reader(fd));
  const int before = calls;
  for (int i = 0; i < 3; ++i)
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, before);
}

TEST_F(EventLoopIoTest, AddingAReaderAgainReplacesItsCallback) {
  testing::Pipe pipe = testing::make_pipe();
  const int fd = pipe.read_end.get();
  int first = 0, second = 0;
  ASSERT_FALSE(events.add_reader(fd, [&] { ++first; }));
  ASSERT_FALSE(events.add_reader(fd, [&] { ++second; }));
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  ASSERT_TRUE(testing::run_until(loop, [&] { return second >= 1; }));
  EXPECT_EQ(first, 0);
  EXPECT_TRUE(events.remove_reader(fd));
}

TEST_F(EventLoopIoTest, AReaderRemovedFromInsideItsCallKeepsItsCapturesUntilItReturns) {
  testing::Pipe pipe = testing::make_pipe();
  const int fd = pipe.read_end.get();
  auto state = std::make_shared<int>(0);
  long captures_during_call = 0;
  ASSERT_FALSE(events.add_reader(fd, [this, state, &captures_during_call](int ready) {
    EXPECT_TRUE(events.remove_reader(ready));
    captures_during_call = state.use_count();  // the capture is still there
    ++*state;
  }));
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  ASSERT_TRUE(testing::run_until(loop, [&] { return *state >= 1; }));
  EXPECT_EQ(captures_during_call, 2);
  EXPECT_EQ(state.use_count(), 1);  // destroyed once the call returned
  for (int i = 0; i < 2; ++i)
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(*state, 1);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(EventLoopIoTest, AWriterAndAReaderShareADescriptorAndAreRemovedApart) {
  testing::SocketPair pair = testing::make_socketpair();
  const int fd = pair.a.get();
  int reads = 0, writes = 0;
  ASSERT_FALSE(events.add_writer(fd, [&] { ++writes; }));
  ASSERT_FALSE(events.add_reader(fd, [&] { ++reads; }));
  ASSERT_TRUE(testing::run_until(loop, [&] { return writes >= 2; }));  // writable, level-triggered
  EXPECT_EQ(reads, 0);
  EXPECT_TRUE(events.remove_writer(fd));
  EXPECT_FALSE(events.remove_writer(fd));
  const int writes_before = writes;
  ASSERT_TRUE(testing::write_byte(pair.b.get()));
  ASSERT_TRUE(testing::run_until(loop, [&] { return reads >= 1; }));
  EXPECT_EQ(writes, writes_before);
  EXPECT_TRUE(events.remove_reader(fd));
}

TEST_F(EventLoopIoTest, ABadDescriptorIsRefusedAndLeavesNothingRegistered) {
  EXPECT_EQ(events.add_reader(-1, [] {}), Error(EBADF));
  EXPECT_EQ(events.add_writer(-5, [] {}), Error(EBADF));
  EXPECT_EQ(events.add_reader(1 << 30, [] {}), Error(EBADF));  // refused before any table grows to it
  testing::Pipe pipe = testing::make_pipe();
  const int closed = pipe.read_end.release();
  testing::close_fd(closed);
  EXPECT_EQ(events.add_reader(closed, [] {}), Error(EBADF));
  EXPECT_FALSE(events.remove_reader(closed));
  void (*none)() = nullptr;
  EXPECT_EQ(events.add_reader(pipe.write_end.get(), none), Error(EINVAL));
  EXPECT_FALSE(events.call_soon(none));
}

TEST_F(EventLoopIoTest, RunForeverKeepsRunningWithNothingScheduledUntilStop) {
  std::atomic<bool> running{false};
  ASSERT_TRUE(events.call_soon([&] { running = true; }));
  std::thread other([&] {
    while (!running)
      std::this_thread::yield();
    (void)loop.post_from_any_thread([this] { events.stop(); });
  });
  EXPECT_FALSE(events.run_forever());  // no watcher is active after the first call
  other.join();
  EXPECT_FALSE(events.running());
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(EventLoopIoTest, StopLetsTheIterationFinishAndStopBeforeRunGivesOneIteration) {
  std::vector<std::string> order;
  ASSERT_TRUE(events.call_soon([&] {
    order.push_back("stop");
    events.stop();
    (void)events.call_soon([&] { order.push_back("next run"); });
  }));
  ASSERT_TRUE(events.call_soon([&] { order.push_back("same iteration"); }));
  ASSERT_FALSE(events.run_forever());
  EXPECT_EQ(order, (std::vector<std::string>{"stop", "same iteration"}));
  order.clear();
  events.stop();  // before run_forever: one non-blocking iteration
  const uint64_t iteration = loop.iteration();
  ASSERT_FALSE(events.run_forever());
  EXPECT_EQ(loop.iteration(), iteration + 1);
  EXPECT_EQ(order, (std::vector<std::string>{"next run"}));
}

TEST_F(EventLoopIoTest, RunUntilCompleteGivesTheValueOfATask) {
  auto answer = [](int x) -> Task<int> { co_return x * 2; };
  Result<int> result = events.run_until_complete(answer, 21);
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value(), 42);
}

TEST_F(EventLoopTest, SteadyStateAllocatesNothingPerCall) {
  int runs = 0;
  auto round = [&] {
    for (int i = 0; i < 16; ++i) {
      (void)events.call_soon([&runs] { ++runs; });
      (void)events.call_later(1ms, [&runs] { ++runs; });
    }
    step(1ms);
  };
  round();  // warm-up: the pools grow to 32 records
  const long before = testing::allocation_count();
  for (int i = 0; i < 100; ++i)
    round();
  EXPECT_EQ(testing::allocation_count(), before);
  EXPECT_EQ(runs, 101 * 32);
  EXPECT_EQ(events.call_pool_size(), 32u);
}

TEST_F(EventLoopTest, AnExhaustedPoolGrowsAndOutOfMemorySchedulesNothing) {
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(events.call_soon([] {}));
  EXPECT_EQ(events.call_pool_size(), 3u);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(events.call_later(1ms, [] {}));
  EXPECT_EQ(events.call_pool_size(), 5u);
  testing::arm_failure(1);
  bool ran = false;
  Result<CallHandle> refused = events.call_soon([&ran] { ran = true; });
  EXPECT_TRUE(testing::disarm_failure());
  EXPECT_EQ(refused.error(), Error(ENOMEM));
  EXPECT_EQ(events.pending_calls(), 5u);
  step(1ms);
  step(1ms);
  EXPECT_FALSE(ran);
  EXPECT_EQ(events.pending_calls(), 0u);
  EXPECT_EQ(events.call_pool_size(), 5u);  // reused from here on
}

TEST_F(EventLoopTest, DestroyingTheEventLoopCancelsEverythingAndLeavesTheLoopUsable) {
  testing::Pipe pipe = testing::make_pipe();
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  bool ran = false;
  {
    EventLoop scoped(loop);
    ASSERT_TRUE(scoped.call_soon([&ran] { ran = true; }));
    ASSERT_TRUE(scoped.call_later(1ms, [&ran] { ran = true; }));
    ASSERT_FALSE(scoped.add_reader(pipe.read_end.get(), [&ran] { ran = true; }));
  }
  step(1ms);
  step(1ms);
  EXPECT_FALSE(ran);
  EXPECT_EQ(loop.active_watchers(), 0);
}

}  // namespace
}  // namespace evflow
