#include "reactor/async.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include <evflow/evflow.hpp>
#include "tests/support/descriptors.hpp"

namespace evflow {
namespace {

class AsyncTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  Loop loop;
};

TEST_F(AsyncTest, SendFromTheLoopThreadRunsTheCallbackOnce) {
  int calls = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++calls; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 0) << "no send, no callback";
  async.send();
  EXPECT_TRUE(async.pending());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(async.pending());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(AsyncTest, SendsBeforeTheLoopLooksCoalesce) {
  int calls = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++calls; }));
  for (int i = 0; i < 100; ++i)
    async.send();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(AsyncTest, SendFromAnotherThreadWakesABlockedLoop) {
  int calls = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&](Async& self) {
    ++calls;
    self.stop();
  }));
  std::thread sender([&] { async.send(); });
  EXPECT_FALSE(loop.run());  // blocks until the send; returns when the async stops itself
  sender.join();
  EXPECT_EQ(calls, 1);
}

// A loop with nothing but an Async to watch waits for wake-ups alone (on Linux, on a
// futex word: epoll_backend.hpp, note l); a descriptor watched from then on takes it back
// to the kernel's readiness, and a stopped one out of it again.
TEST_F(AsyncTest, ALoopWokenFromAWaitWithNothingToWatchThenWatchesADescriptorAndLetsItGo) {
  auto p = testing::make_pipe();
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  int reads = 0;
  Io io(loop);
  const int fd = p.read_end.get();
  io.set_callback([&](Io& self, Events) {
    ++reads;
    self.stop();  // nothing in the kernel's set again: the next wait is for wake-ups alone
  });
  Async async(loop);
  ASSERT_FALSE(async.start([&io, &reads, fd](Async& self) {
    if (reads == 0)
      EXPECT_FALSE(io.start(fd, Readable));
    else
      self.stop();
  }));
  std::thread first([&] { async.send(); });
  ASSERT_FALSE(loop.run(RunMode::Once));  // parked until the send; the callback starts the Io
  first.join();
  while (reads == 0)
    ASSERT_FALSE(loop.run(RunMode::Once));  // the pipe's byte, through epoll
  EXPECT_EQ(reads, 1);
  std::thread second([&] { async.send(); });
  EXPECT_FALSE(loop.run());  // parked again until the second send, which stops the Async
  second.join();
  EXPECT_FALSE(async.active());
}

TEST_F(AsyncTest, EverySendEndsABlockingWaitAcrossTheWakeCounterDrain) {
  // The wake-up eventfd is edge-triggered and read only once every 65536 wake-ups
  // (epoll_backend.hpp, note g): each send must still end a blocking wait, before and
  // after that read. A lost wake-up would end the wait only at the 10 s guard timer,
  // restarted for every send so that the test does not depend on the machine's speed.
  int calls = 0;
  Timer guard(loop);
  ASSERT_FALSE(guard.start(std::chrono::seconds(10), [] {}));
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++calls; }));
  for (int i = 1; i <= 70'000; ++i) {
    loop.update_now();
    ASSERT_FALSE(guard.again());
    async.send();
    ASSERT_FALSE(loop.run(RunMode::Once));
    ASSERT_EQ(calls, i) << "send " << i << " did not wake the loop";
    ASSERT_TRUE(guard.active());
  }
}

TEST_F(AsyncTest, NoWakeUpIsLostInABurstFromAnotherThread) {
  // The sender publishes a sequence number before every send; the loop must eventually
  // see the last one, however the sends coalesce.
  constexpr int kSends = 200'000;
  std::atomic<int> published{0};
  int callbacks = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&](Async& self) {
    ++callbacks;
    if (published.load() == kSends) self.stop();
  }));
  std::thread sender([&] {
    for (int i = 1; i <= kSends; ++i) {
      published.store(i);
      async.send();
    }
  });
  EXPECT_FALSE(loop.run());
  sender.join();
  EXPECT_GE(callbacks, 1);
  EXPECT_LE(callbacks, kSends);
}

TEST_F(AsyncTest, PingPongBetweenTwoLoopsInTwoThreads) {
  constexpr int kRoundTrips = 2000;
  Loop other;
  ASSERT_FALSE(other.open());
  Async ping(other), pong(loop);
  int pongs = 0;
  std::atomic<int> pings{0};
  ASSERT_FALSE(pong.start([&](Async& self) {
    if (++pongs == kRoundTrips) {
      self.stop();
      return;
    }
    ping.send();
  }));
  ASSERT_FALSE(ping.start([&](Async& self) {
    if (pings.fetch_add(1) + 1 == kRoundTrips) self.stop();
    pong.send();
  }));
  std::thread remote([&] { EXPECT_FALSE(other.run()); });
  ping.send();
  EXPECT_FALSE(loop.run());
  remote.join();
  EXPECT_EQ(pongs, kRoundTrips);
  EXPECT_EQ(pings.load(), kRoundTrips);
}

TEST_F(AsyncTest, ASendWhileStoppedIsDeliveredAfterStart) {
  int calls = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++calls; }));
  async.stop();
  async.send();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 0) << "a stopped watcher gets no callback";
  ASSERT_FALSE(async.start());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(AsyncTest, CallbackMayDestroyAnotherPendingAsync) {
  auto a = std::make_unique<Async>(loop);
  auto b = std::make_unique<Async>(loop);
  int calls = 0;
  ASSERT_FALSE(a->start([&] {
    ++calls;
    b.reset();
  }));
  ASSERT_FALSE(b->start([&] {
    ++calls;
    a.reset();
  }));
  a->send();
  b->send();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(AsyncTest, StartWithoutCallbackIsEinval) {
  Async async(loop);
  EXPECT_EQ(async.start().code(), EINVAL);
}

TEST_F(AsyncTest, KeepsTheLoopRunningUntilStopped) {
  Async async(loop);
  Idle idle(loop);
  int idles = 0;
  ASSERT_FALSE(async.start([] {}));
  ASSERT_FALSE(idle.start([&](Idle& self) {
    if (++idles == 5) {
      self.stop();
      async.stop();
    }
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(idles, 5);
}

}  // namespace
}  // namespace evflow

namespace evflow {
namespace {

// Regression: a send before open() left the loop's "wake pending" flag set, and every
// later wake-up was coalesced into that lost one: a blocked run() never returned.
TEST(AsyncRegression, ASendBeforeOpenDoesNotSwallowLaterWakeUps) {
  Loop loop;
  Async early(loop), later(loop);
  early.send();
  ASSERT_FALSE(loop.open());
  int early_calls = 0, later_calls = 0;
  bool timed_out = false;
  ASSERT_FALSE(early.start([&] { ++early_calls; }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(early_calls, 1) << "the send before open is delivered after start";
  Timer guard(loop);
  ASSERT_FALSE(guard.start(std::chrono::seconds(30), [&timed_out](Timer& self) {
    timed_out = true;
    self.loop().stop();
  }));
  ASSERT_FALSE(later.start([&] {
    ++later_calls;
    loop.stop();
  }));
  std::thread sender([&] { later.send(); });
  ASSERT_FALSE(loop.run());
  sender.join();
  EXPECT_EQ(later_calls, 1);
  EXPECT_FALSE(timed_out);
}

// Regression: rebuilding the epoll set closed and recreated the wake-up eventfd while
// other threads could be writing to it (a race, and a write to a reused number).
TEST(AsyncRegression, RebuildWhileAnotherThreadSendsLosesNothing) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  int seen = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++seen; }));
  std::thread sender([&] {
    while (!done.load()) {
      async.send();
      sent.fetch_add(1);
      std::this_thread::yield();  // valgrind's scheduler can starve the loop thread behind a pure spin
    }
  });
  while (sent.load() == 0)
    std::this_thread::yield();  // the sender is running
  for (int i = 0; i < 300; ++i) {
    ASSERT_FALSE(loop.rebuild());
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  }
  done.store(true);
  sender.join();
  async.send();  // the last word: must arrive
  const int before = seen;
  ASSERT_FALSE(loop.run(RunMode::Once));
  EXPECT_GT(seen, before);
  EXPECT_GT(sent.load(), 0);
}

// Regression: an Async that restarted and re-sent itself from its callback was visited
// again in the same pass, forever.
TEST(AsyncRegression, AnAsyncThatRestartsAndResendsItselfRunsOncePerIteration) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  int calls = 0;
  Async a(loop), b(loop);
  auto again = [&calls](Async& self) {
    ++calls;
    self.stop();
    EXPECT_FALSE(self.start());
    self.send();
  };
  ASSERT_FALSE(a.start(again));
  ASSERT_FALSE(b.start(again));
  a.send();
  b.send();
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace evflow
