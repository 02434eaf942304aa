// ThreadChannel<T> (tasks/thread_channel.hpp): eight producer threads into one task,
// back-pressure, close with waiters on both sides, draining, cancellation, timeouts,
// the loop's own thread, construction errors, and no allocation per value.
#include "tasks/thread_channel.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/tasks.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/run_until.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

class ThreadChannelTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  // One non-blocking iteration.
  void step() { ASSERT_FALSE(loop.run(RunMode::NoWait)); }
  Loop loop;
};

// Producer threads that are always joined: on the way out (a failed assertion included)
// the channel is closed first, so that no producer stays blocked in send().
template <class T>
class Producers {
 public:
  explicit Producers(ThreadChannel<T>& channel) : channel_(channel) {}
  Producers(const Producers&) = delete;
  Producers& operator=(const Producers&) = delete;
  ~Producers() {
    channel_.close();
    join();
  }
  template <class F>
  void start(F&& body) {
    threads_.emplace_back(std::forward<F>(body));
  }
  void join() {
    for (std::thread& thread : threads_)
      if (thread.joinable()) thread.join();
  }

 private:
  ThreadChannel<T>& channel_;
  std::vector<std::thread> threads_;
};

// Busy-waits (yielding, never sleeping) until `count` threads are blocked in a send.
template <class T>
void wait_for_blocked_senders(const ThreadChannel<T>& channel, std::size_t count) {
  while (channel.senders_waiting() < count)
    std::this_thread::yield();
}

TEST_F(ThreadChannelTest, EightProducersDeliverEveryValueExactlyOnceEachInItsOrder) {
  constexpr int kProducers = 8;
  constexpr int kValues = 500;
  ThreadChannel<int> channel(loop, 4);
  ASSERT_TRUE(channel.valid());
  std::vector<int> next(kProducers, 0);  // the value each producer's next one must be
  int received = 0;
  bool in_order = true;
  Error end;
  auto consumer = spawn(loop, [&]() -> Task<> {
    while (received < kProducers * kValues) {
      Result<int> v = co_await channel.receive();
      if (!v) {
        end = v.error();
        co_return;
      }
      const int producer = v.value() / kValues;
      const int index = v.value() % kValues;
      if (producer < 0 || producer >= kProducers || index != next[producer]) in_order = false;
      if (producer >= 0 && producer < kProducers) next[producer] = index + 1;
      ++received;
    }
  });
  std::atomic<int> failed_sends{0};
  {
    Producers<int> producers(channel);
    for (int p = 0; p < kProducers; ++p) {
      producers.start([&channel, &failed_sends, p] {
        for (int i = 0; i < kValues; ++i)
          if (channel.send(p * kValues + i)) failed_sends.fetch_add(1);
      });
    }
    ASSERT_TRUE(testing::run_until(loop, [&] { return consumer.done(); }));
    producers.join();  // every send returned: none is left blocked by back-pressure
  }
  EXPECT_FALSE(end);
  EXPECT_EQ(failed_sends.load(), 0);
  EXPECT_EQ(received, kProducers * kValues);
  EXPECT_TRUE(in_order) << "each producer's values arrive once, in the order it sent them";
  EXPECT_EQ(next, std::vector<int>(kProducers, kValues));
  EXPECT_EQ(channel.size(), 0u);
  EXPECT_FALSE(channel.receivers_waiting());
}

TEST_F(ThreadChannelTest, AProducerBlockedOnAFullChannelIsReleasedWhenTheLoopTakesAValue) {
  ThreadChannel<int> channel(loop, 2);
  ASSERT_FALSE(channel.try_send(1));
  ASSERT_FALSE(channel.try_send(2));
  Error sent(EAGAIN);
  Producers<int> producers(channel);
  producers.start([&] { sent = channel.send(3); });
  wait_for_blocked_senders(channel, 1);
  std::vector<int> got;
  auto consumer = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 3; ++i) {
      Result<int> v = co_await channel.receive();
      if (!v) co_return;
      got.push_back(v.value());
    }
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return consumer.done(); }));
  producers.join();
  EXPECT_FALSE(sent);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(channel.senders_waiting(), 0u);
}

TEST_F(ThreadChannelTest, TrySendOnAFullChannelGivesEagainAndLeavesTheValueToTheCaller) {
  ThreadChannel<std::unique_ptr<int>> channel(loop, 1);
  EXPECT_EQ(channel.capacity(), 1u);
  EXPECT_EQ(channel.try_receive().error(), Error(EAGAIN));
  EXPECT_FALSE(channel.try_send(std::make_unique<int>(1)));
  auto kept = std::make_unique<int>(2);
  EXPECT_EQ(channel.try_send(std::move(kept)), Error(EAGAIN));
  ASSERT_NE(kept, nullptr) << "a value not accepted stays the caller's";
  channel.close();
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(channel.try_send(std::move(kept)), Error(EPIPE));
  EXPECT_NE(kept, nullptr);
  Result<std::unique_ptr<int>> first = channel.try_receive();
  ASSERT_TRUE(first.ok()) << "a closed channel still gives what it holds";
  EXPECT_EQ(*first.value(), 1);
  EXPECT_EQ(channel.try_receive().error(), Error(EPIPE));
}

TEST_F(ThreadChannelTest, CloseFromAnotherThreadWakesTheWaitingReceiverWithEpipe) {
  ThreadChannel<int> channel(loop, 4);
  Result<int> got = 0;
  auto consumer = spawn(loop, [&]() -> Task<> { got = co_await channel.receive(); });
  step();
  ASSERT_TRUE(channel.receivers_waiting());
  Producers<int> producers(channel);
  producers.start([&] { channel.close(); });
  ASSERT_TRUE(testing::run_until(loop, [&] { return consumer.done(); }));
  EXPECT_EQ(got.error(), Error(EPIPE));
}

TEST_F(ThreadChannelTest, CloseReleasesEveryBlockedProducerWithEpipe) {
  ThreadChannel<int> channel(loop, 1);
  ASSERT_FALSE(channel.try_send(0));
  std::vector<Error> sent(3, Error(EAGAIN));
  Producers<int> producers(channel);
  for (int p = 0; p < 3; ++p)
    producers.start([&, p] { sent[p] = channel.send(p + 1); });
  wait_for_blocked_senders(channel, 3);
  channel.close();
  producers.join();
  for (const Error& error : sent)
    EXPECT_EQ(error, Error(EPIPE));
  EXPECT_EQ(channel.senders_waiting(), 0u);
  EXPECT_EQ(channel.size(), 1u) << "what was queued before the close stays to be received";
}

TEST_F(ThreadChannelTest, ReceiveDrainsTheQueuedValuesBeforeEpipe) {
  ThreadChannel<int> channel(loop, 4);
  ASSERT_FALSE(channel.try_send(1));
  ASSERT_FALSE(channel.try_send(2));
  channel.close();
  std::vector<Result<int>> got;
  auto consumer = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 3; ++i) {
      Result<int> v = co_await channel.receive();
      got.push_back(v);
    }
  });
  step();
  ASSERT_TRUE(consumer.done());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].value(), 1);
  EXPECT_EQ(got[1].value(), 2);
  EXPECT_EQ(got[2].error(), Error(EPIPE));
}

TEST_F(ThreadChannelTest, WaitingReceiversAreServedInTheOrderTheyCame) {
  ThreadChannel<int> channel(loop, 4);
  std::vector<int> got(3, -1);
  auto receiver = [&](int index) -> Task<> {
    Result<int> v = co_await channel.receive();
    if (v) got[index] = v.value();
  };
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < 3; ++i)
    handles.push_back(spawn(loop, receiver, i));
  step();
  ASSERT_TRUE(channel.receivers_waiting());
  ASSERT_FALSE(channel.try_send(10));
  ASSERT_FALSE(channel.try_send(11));
  ASSERT_FALSE(channel.try_send(12));
  ASSERT_TRUE(testing::run_until(loop, [&] { return handles[2].done(); }));
  EXPECT_EQ(got, (std::vector<int>{10, 11, 12}));
  EXPECT_FALSE(channel.receivers_waiting());
}

TEST_F(ThreadChannelTest, ACancelledReceiveTakesNothingAndALaterReceiveGetsTheValue) {
  ThreadChannel<int> channel(loop, 2);
  Result<int> first_got = 0;
  auto first = spawn(loop, [&]() -> Task<> { first_got = co_await channel.receive(); });
  step();
  ASSERT_TRUE(channel.receivers_waiting());
  first.cancel();
  step();
  ASSERT_TRUE(first.done());
  EXPECT_EQ(first_got.error(), Error(ECANCELED));
  EXPECT_FALSE(channel.receivers_waiting());
  ASSERT_FALSE(channel.try_send(7));
  // A receive in a cancelled scope does not take a value that is there either.
  Error in_scope;
  auto cancelled = spawn(loop, [&]() -> Task<> {
    CancellationScope scope;
    (void)co_await scope.run([&]() -> Task<> {
      scope.cancel();
      in_scope = (co_await channel.receive()).error();
    }());
  });
  step();
  ASSERT_TRUE(cancelled.done());
  EXPECT_EQ(in_scope, Error(ECANCELED));
  EXPECT_EQ(channel.size(), 1u);
  Result<int> second_got = 0;
  auto second = spawn(loop, [&]() -> Task<> { second_got = co_await channel.receive(); });
  step();
  ASSERT_TRUE(second.done());
  ASSERT_TRUE(second_got.ok());
  EXPECT_EQ(second_got.value(), 7);
}

TEST_F(ThreadChannelTest, SendForOnAFullChannelTimesOutAndKeepsTheValue) {
  ThreadChannel<std::unique_ptr<int>> channel(loop, 1);
  ASSERT_FALSE(channel.try_send(std::make_unique<int>(1)));
  Error sent;
  Error sent_until;
  bool kept = false;
  Producers<std::unique_ptr<int>> producers(channel);
  producers.start([&] {
    auto value = std::make_unique<int>(2);
    sent = channel.send_for(std::move(value), 2ms);
    sent_until = channel.send_until(std::move(value), ThreadChannel<int>::Clock::now() + 1ms);
    kept = value != nullptr;
  });
  producers.join();
  EXPECT_EQ(sent, Error(ETIMEDOUT));
  EXPECT_EQ(sent_until, Error(ETIMEDOUT));
  EXPECT_TRUE(kept);
  EXPECT_EQ(channel.size(), 1u);
}

TEST_F(ThreadChannelTest, AWaitingSendOnTheLoopsThreadGivesEdeadlkInsteadOfBlocking) {
  ThreadChannel<int> channel(loop, 1);
  EXPECT_FALSE(channel.send(1)) << "there is room: nothing to wait for";
  EXPECT_EQ(channel.send(2), Error(EDEADLK));
  EXPECT_EQ(channel.send_for(2, 1h), Error(EDEADLK));
  EXPECT_EQ(channel.try_send(2), Error(EAGAIN));
}

TEST_F(ThreadChannelTest, TheLoopRunsOutOfWorkOnceNoReceiverWaits) {
  ThreadChannel<int> channel(loop, 2);
  Result<int> got = 0;
  auto consumer = spawn(loop, [&]() -> Task<> { got = co_await channel.receive(); });
  step();
  ASSERT_FALSE(channel.try_send(5));
  ASSERT_FALSE(loop.run());  // returns: the channel's Async stopped with the last receiver
  ASSERT_TRUE(consumer.done());
  EXPECT_EQ(got.value(), 5);
}

TEST_F(ThreadChannelTest, ACapacityOfZeroOrARingThatCannotBeAllocatedLeavesTheChannelInvalidAndClosed) {
  ThreadChannel<int> none(loop, 0);
  EXPECT_FALSE(none.valid());
  EXPECT_EQ(none.error(), Error(EINVAL));
  EXPECT_TRUE(none.closed());
  EXPECT_EQ(none.try_send(1), Error(EPIPE));
  EXPECT_EQ(none.send(1), Error(EPIPE));
  testing::arm_failure(1);
  ThreadChannel<int> unallocated(loop, 16);
  EXPECT_TRUE(testing::disarm_failure());
  EXPECT_FALSE(unallocated.valid());
  EXPECT_EQ(unallocated.error(), Error(ENOMEM));
  EXPECT_EQ(unallocated.try_send(1), Error(EPIPE));
  EXPECT_EQ(unallocated.try_receive().error(), Error(EPIPE));
  Result<int> got = 0;
  auto consumer = spawn(loop, [&]() -> Task<> { got = co_await unallocated.receive(); });
  step();
  EXPECT_EQ(got.error(), Error(EPIPE));
}

TEST_F(ThreadChannelTest, ADestroyedChannelWakesItsWaitingReceiverWithEidrm) {
  Result<int> got = 0;
  TaskHandle<void> consumer;
  {
    ThreadChannel<int> channel(loop, 2);
    consumer = spawn(loop, [&]() -> Task<> { got = co_await channel.receive(); });
    step();
    ASSERT_TRUE(channel.receivers_waiting());
  }
  step();
  ASSERT_TRUE(consumer.done());
  EXPECT_EQ(got.error(), Error(EIDRM));
}

TEST_F(ThreadChannelTest, SendingAndReceivingAllocateNothingPerValue) {
  constexpr int kValues = 500;
  ThreadChannel<int> channel(loop, 8);
  long sum = 0;
  int received = 0;
  auto consumer = spawn(loop, [&]() -> Task<> {
    while (received < 2 * kValues) {
      Result<int> v = co_await channel.receive();
      if (!v) co_return;
      sum += v.value();
      ++received;
    }
  });
  step();
  // On the loop's thread: a value sent, the waiting task woken, one value each time.
  const long before = testing::allocation_count();
  for (int i = 0; i < kValues; ++i) {
    ASSERT_FALSE(channel.try_send(1));
    step();
  }
  EXPECT_EQ(testing::allocation_count(), before);
  // From another thread, created (and started) before counting.
  std::atomic<bool> ready{false};
  std::atomic<bool> go{false};
  Producers<int> producers(channel);
  producers.start([&] {
    ready.store(true);
    while (!go.load())
      std::this_thread::yield();
    for (int i = 0; i < kValues; ++i)
      if (channel.send(1)) return;
  });
  while (!ready.load())
    std::this_thread::yield();
  const long before_threads = testing::allocation_count();
  go.store(true);
  while (!consumer.done())
    ASSERT_FALSE(loop.run(RunMode::Once));
  const long after_run = testing::allocation_count();
  producers.join();
  EXPECT_EQ(after_run, before_threads);
  EXPECT_EQ(sum, 2 * kValues);
}

}  // namespace
}  // namespace evflow
