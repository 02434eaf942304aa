// Channel<T> (tasks/channel.hpp): order, waiting senders and receivers, rendezvous, close,
// cancellation of queued waiters, move-only values, growth, destruction under waiters,
// and contention from 1,000 tasks cancelled at random points.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/tasks.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;
using ChannelTest = testing::FakeClockLoopTest;

TEST_F(ChannelTest, AFastProducerWaitsWhenFullAndNothingIsLostOrReordered) {
  Channel<int> channel(2);
  ASSERT_TRUE(channel.valid());
  EXPECT_EQ(channel.capacity(), 2u);
  std::vector<int> received;
  int sent = 0;
  auto producer = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 10; ++i) {
      if (co_await channel.send(i)) co_return;
      ++sent;
    }
  });
  auto consumer = spawn(loop, [&]() -> Task<> {
    (void)co_await sleep(1ms);  // the producer fills the buffer first
    for (int i = 0; i < 10; ++i) {
      Result<int> v = co_await channel.receive();
      if (!v) co_return;
      received.push_back(v.value());
      (void)co_await sleep(1ms);
    }
  });
  step(0s);
  EXPECT_EQ(sent, 2);
  EXPECT_EQ(channel.size(), 2u);
  EXPECT_TRUE(channel.senders_waiting()) << "the third send waits for room";
  for (int i = 0; i < 20 && !(producer.done() && consumer.done()); ++i)
    step(1ms);
  ASSERT_TRUE(producer.done() && consumer.done());
  EXPECT_EQ(sent, 10);
  EXPECT_EQ(received, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(channel.empty());
  EXPECT_FALSE(channel.senders_waiting());
  EXPECT_FALSE(channel.receivers_waiting());
}

TEST_F(ChannelTest, ASendWhileReceiversWaitGoesToTheLongestWaiting) {
  Channel<int> channel(4);
  std::vector<int> got(3, -1);
  auto receiver = [&](int index) -> Task<> {
    Result<int> v = co_await channel.receive();
    if (v) got[index] = v.value();
  };
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < 3; ++i)
    handles.push_back(spawn(loop, receiver, i));
  step(0s);
  EXPECT_TRUE(channel.receivers_waiting());
  EXPECT_FALSE(channel.try_send(10));
  EXPECT_FALSE(channel.try_send(11));
  EXPECT_FALSE(channel.try_send(12));
  EXPECT_TRUE(channel.empty()) << "handed over, not buffered";
  step(0s);
  EXPECT_EQ(got, (std::vector<int>{10, 11, 12}));
}

TEST_F(ChannelTest, RendezvousWithTheReceiverFirst) {
  Channel<int> channel(0);
  Result<int> got = Error(EAGAIN);
  Error sent(EAGAIN);
  auto receiver = spawn(loop, [&]() -> Task<> { got = co_await channel.receive(); });
  step(0s);
  EXPECT_FALSE(receiver.done());
  EXPECT_TRUE(channel.receivers_waiting());
  auto sender = spawn(loop, [&]() -> Task<> { sent = co_await channel.send(7); });
  step(0s);
  step(0s);
  ASSERT_TRUE(sender.done() && receiver.done());
  EXPECT_EQ(sent, Error());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), 7);
}

TEST_F(ChannelTest, RendezvousWithTheSenderFirstCompletesTheSendOnlyWhenTaken) {
  Channel<int> channel(0);
  EXPECT_EQ(channel.try_send(1), Error(EAGAIN)) << "no receiver waits";
  Error sent(EAGAIN);
  auto sender = spawn(loop, [&]() -> Task<> { sent = co_await channel.send(8); });
  step(0s);
  step(1ms);
  EXPECT_FALSE(sender.done()) << "no receiver yet";
  EXPECT_TRUE(channel.senders_waiting());
  EXPECT_EQ(channel.size(), 0u);
  Result<int> got = Error(EAGAIN);
  auto receiver = spawn(loop, [&]() -> Task<> { got = co_await channel.receive(); });
  step(0s);
  step(0s);
  ASSERT_TRUE(sender.done() && receiver.done());
  EXPECT_EQ(sent, Error());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), 8);
  EXPECT_FALSE(channel.senders_waiting());
}

TEST_F(ChannelTest, CloseWakesWaitingSendersWithEpipe) {
  Channel<int> channel(1);
  ASSERT_FALSE(channel.try_send(1));
  Error sent;
  auto sender = spawn(loop, [&]() -> Task<> { sent = co_await channel.send(2); });
  step(0s);
  EXPECT_FALSE(sender.done());
  channel.close();
  channel.close();  // idempotent
  step(0s);
  ASSERT_TRUE(sender.done());
  EXPECT_EQ(sent, Error(EPIPE));
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(channel.size(), 1u) << "the waiting sender's value was not accepted";
  Error late;
  auto late_sender = spawn(loop, [&]() -> Task<> { late = co_await channel.send(3); });
  step(0s);
  ASSERT_TRUE(late_sender.done());
  EXPECT_EQ(late, Error(EPIPE));
}

TEST_F(ChannelTest, CloseWakesWaitingReceiversWithEpipe) {
  Channel<int> channel(1);
  Result<int> got = 0;
  auto receiver = spawn(loop, [&]() -> Task<> { got = co_await channel.receive(); });
  step(0s);
  EXPECT_FALSE(receiver.done());
  channel.close();
  step(0s);
  ASSERT_TRUE(receiver.done());
  EXPECT_EQ(got.error(), Error(EPIPE));
}

TEST_F(ChannelTest, AReceiverDrainsBufferedValuesAfterCloseThenGetsEpipe) {
  Channel<int> channel(4);
  for (int i = 1; i <= 3; ++i)
    ASSERT_FALSE(channel.try_send(std::move(i)));
  channel.close();
  EXPECT_EQ(channel.try_send(4), Error(EPIPE));
  std::vector<int> received;
  Error end;
  auto consumer = spawn(loop, [&]() -> Task<> {
    for (;;) {
      Result<int> v = co_await channel.receive();
      if (!v) {
        end = v.error();
        co_return;
      }
      received.push_back(v.value());
    }
  });
  step(0s);
  ASSERT_TRUE(consumer.done());
  EXPECT_EQ(received, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(end, Error(EPIPE));
  EXPECT_EQ(channel.try_receive().error(), Error(EPIPE));
}

TEST_F(ChannelTest, ACancelledQueuedSenderIsNotDeliveredAndTheNextSendersIs) {
  Channel<int> channel(1);
  ASSERT_FALSE(channel.try_send(0));
  Error first_sent;
  Error second_sent(EAGAIN);
  auto first = spawn(loop, [&]() -> Task<> { first_sent = co_await channel.send(1); });
  auto second = spawn(loop, [&]() -> Task<> { second_sent = co_await channel.send(2); });
  step(0s);
  first.cancel();
  step(0s);
  ASSERT_TRUE(first.done());
  EXPECT_EQ(first_sent, Error(ECANCELED));
  std::vector<int> received;
  for (int i = 0; i < 2; ++i) {
    Result<int> v = channel.try_receive();
    ASSERT_TRUE(v.ok());
    received.push_back(v.value());
  }
  EXPECT_EQ(received, (std::vector<int>{0, 2}));
  EXPECT_EQ(channel.try_receive().error(), Error(EAGAIN));
  step(0s);
  ASSERT_TRUE(second.done());
  EXPECT_EQ(second_sent, Error());
}

TEST_F(ChannelTest, ACancelledRendezvousSenderIsNeverTaken) {
  Channel<int> channel(0);
  Error first_sent;
  auto first = spawn(loop, [&]() -> Task<> { first_sent = co_await channel.send(1); });
  auto second = spawn(loop, [&]() -> Task<> { (void)co_await channel.send(2); });
  step(0s);
  first.cancel();
  Result<int> v = channel.try_receive();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value(), 2);
  step(0s);
  EXPECT_EQ(first_sent, Error(ECANCELED));
  EXPECT_TRUE(second.done());
}

TEST_F(ChannelTest, ACancelledQueuedReceiverLeavesTheNextValueToTheNextReceiver) {
  Channel<int> channel(2);
  Result<int> first_got = 0;
  Result<int> second_got = 0;
  auto first = spawn(loop, [&]() -> Task<> { first_got = co_await channel.receive(); });
  auto second = spawn(loop, [&]() -> Task<> { second_got = co_await channel.receive(); });
  step(0s);
  first.cancel();
  ASSERT_FALSE(channel.try_send(5));
  step(0s);
  ASSERT_TRUE(first.done() && second.done());
  EXPECT_EQ(first_got.error(), Error(ECANCELED));
  ASSERT_TRUE(second_got.ok());
  EXPECT_EQ(second_got.value(), 5);
  EXPECT_TRUE(channel.empty());
}

TEST_F(ChannelTest, SendAndReceiveAreCancellationPointsEvenWhenTheyCouldComplete) {
  Channel<int> channel(2);
  ASSERT_FALSE(channel.try_send(1));
  Error sent;
  Error received;
  auto task = spawn(loop, [&]() -> Task<> {
    CancellationScope scope;
    (void)co_await scope.run([&]() -> Task<> {
      scope.cancel();
      sent = co_await channel.send(2);                  // there is room
      received = (co_await channel.receive()).error();  // there is a value
    }());
  });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(sent, Error(ECANCELED));
  EXPECT_EQ(received, Error(ECANCELED));
  ASSERT_EQ(channel.size(), 1u) << "nothing sent, nothing taken";
  EXPECT_EQ(channel.try_receive().value(), 1);
}

TEST_F(ChannelTest, TrySendAndTryReceiveErrors) {
  Channel<std::unique_ptr<int>> channel(1);
  EXPECT_EQ(channel.try_receive().error(), Error(EAGAIN));
  EXPECT_FALSE(channel.try_send(std::make_unique<int>(1)));
  auto kept = std::make_unique<int>(2);
  EXPECT_EQ(channel.try_send(std::move(kept)), Error(EAGAIN));
  ASSERT_NE(kept, nullptr) << "a value not accepted stays the caller's";
  channel.close();
  EXPECT_EQ(channel.try_send(std::move(kept)), Error(EPIPE));
  EXPECT_NE(kept, nullptr);
  Result<std::unique_ptr<int>> v = channel.try_receive();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v.value(), 1);
  EXPECT_EQ(channel.try_receive().error(), Error(EPIPE));
}

TEST_F(ChannelTest, MoveOnlyValuesPassThroughBufferAndHandOff) {
  Channel<std::unique_ptr<int>> channel(1);
  std::vector<int> received;
  auto producer = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 4; ++i)
      if (co_await channel.send(std::make_unique<int>(i))) co_return;
    channel.close();
  });
  auto consumer = spawn(loop, [&]() -> Task<> {
    for (;;) {
      Result<std::unique_ptr<int>> v = co_await channel.receive();
      if (!v) co_return;
      received.push_back(*v.value());
      (void)co_await sleep(1ms);
    }
  });
  for (int i = 0; i < 10 && !(producer.done() && consumer.done()); ++i)
    step(1ms);
  ASSERT_TRUE(producer.done() && consumer.done());
  EXPECT_EQ(received, (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(ChannelTest, AnUnboundedChannelGrowsPastItsFirstRingAndKeepsTheOrder) {
  Channel<int> channel(Channel<int>::kUnbounded);
  EXPECT_EQ(channel.capacity(), Channel<int>::kUnbounded);
  int next = 0;
  int expected = 0;
  for (int i = 0; i < 5; ++i)
    ASSERT_FALSE(channel.try_send(next++));
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(channel.try_receive().value(), expected++);  // the ring's start moves on
  auto producer = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 100; ++i)
      if (co_await channel.send(next++)) co_return;
  });
  step(0s);
  ASSERT_TRUE(producer.done()) << "an unbounded channel never makes a sender wait";
  EXPECT_EQ(channel.size(), 102u);
  while (!channel.empty())
    ASSERT_EQ(channel.try_receive().value(), expected++);
  EXPECT_EQ(expected, 105);
}

TEST_F(ChannelTest, ADestroyedChannelWakesItsWaitersWithEidrmAndDestroysItsValues) {
  auto full = std::make_unique<Channel<std::shared_ptr<int>>>(1);
  auto empty = std::make_unique<Channel<std::shared_ptr<int>>>(1);
  auto buffered = std::make_shared<int>(1);
  auto pending = std::make_shared<int>(2);
  ASSERT_FALSE(full->try_send(std::shared_ptr<int>(buffered)));
  Error sent;
  Error received;
  auto sender = spawn(loop, [&]() -> Task<> { sent = co_await full->send(pending); });
  auto receiver = spawn(loop, [&]() -> Task<> { received = (co_await empty->receive()).error(); });
  step(0s);
  EXPECT_EQ(buffered.use_count(), 2);
  EXPECT_EQ(pending.use_count(), 2);
  full.reset();
  empty.reset();
  EXPECT_EQ(buffered.use_count(), 1) << "the buffered value was destroyed";
  step(0s);
  ASSERT_TRUE(sender.done() && receiver.done());
  EXPECT_EQ(sent, Error(EIDRM));
  EXPECT_EQ(received, Error(EIDRM));
  EXPECT_EQ(pending.use_count(), 1) << "the value not accepted was destroyed";
}

// ---- Memory

TEST_F(ChannelTest, SendAndReceiveAllocateNothingOnceTheRingIsThere) {
  Channel<int> fixed(4);
  Channel<int> growing(Channel<int>::kUnbounded);
  for (int i = 0; i < 32; ++i)
    ASSERT_FALSE(growing.try_send(std::move(i)));  // grown to 32
  while (!growing.empty())
    (void)growing.try_receive();
  const long before = testing::allocation_count();
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 4; ++i)
      ASSERT_FALSE(fixed.try_send(std::move(i)));
    for (int i = 0; i < 32; ++i)
      ASSERT_FALSE(growing.try_send(std::move(i)));
    for (int i = 0; i < 4; ++i)
      ASSERT_EQ(fixed.try_receive().value(), i);
    for (int i = 0; i < 32; ++i)
      ASSERT_EQ(growing.try_receive().value(), i);
  }
  EXPECT_EQ(testing::allocation_count(), before);
}

TEST_F(ChannelTest, ARingThatCannotBeAllocatedLeavesTheChannelInvalidAndClosed) {
  testing::arm_failure(1);
  Channel<int> channel(16);
  EXPECT_TRUE(testing::disarm_failure());
  EXPECT_FALSE(channel.valid());
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(channel.try_send(1), Error(EPIPE));
  EXPECT_EQ(channel.try_receive().error(), Error(EPIPE));
  Channel<int> rendezvous(0);  // nothing to allocate
  EXPECT_TRUE(rendezvous.valid());
}

TEST_F(ChannelTest, AnUnboundedChannelThatCannotGrowGivesEnomemAndKeepsItsValues) {
  Channel<std::unique_ptr<int>> channel(Channel<std::unique_ptr<int>>::kUnbounded);
  for (int i = 0; i < 8; ++i)
    ASSERT_FALSE(channel.try_send(std::make_unique<int>(i)));  // the first ring: 8
  auto ninth = std::make_unique<int>(8);
  testing::arm_failure(1);
  EXPECT_EQ(channel.try_send(std::move(ninth)), Error(ENOMEM));
  EXPECT_TRUE(testing::disarm_failure());
  ASSERT_NE(ninth, nullptr) << "a value not accepted stays the caller's";
  Error sent;
  auto sender = spawn(loop, [&]() -> Task<> {
    auto tenth = std::make_unique<int>(9);
    testing::arm_failure(1);
    sent = co_await channel.send(std::move(tenth));
    (void)testing::disarm_failure();
  });
  step(0s);
  ASSERT_TRUE(sender.done());
  EXPECT_EQ(sent, Error(ENOMEM));
  EXPECT_FALSE(channel.try_send(std::move(ninth))) << "it grows once memory is there";
  for (int i = 0; i < 9; ++i)
    ASSERT_EQ(*channel.try_receive().value(), i);
  EXPECT_TRUE(channel.empty());
}

// ---- Contention

// 500 senders (3 distinct numbers each) and 500 receivers over a channel of capacity 4,
// a task cancelled at random every few steps: no number is received twice, every number
// whose send succeeded is received exactly once, no other number is received, and no task
// is left waiting.
TEST_F(ChannelTest, AThousandTasksCancelledAtRandomPointsNeitherLoseNorDuplicateAValue) {
  constexpr int kSenders = 500;
  constexpr int kReceivers = 500;
  constexpr int kPerSender = 3;
  constexpr int kValues = kSenders * kPerSender;
  Channel<int> channel(4);
  std::vector<bool> accepted(kValues, false);
  std::vector<int> times_received(kValues, 0);
  int send_cancelled = 0;
  int receive_cancelled = 0;
  int receivers_drained = 0;
  auto sender = [&](int id) -> Task<> {
    for (int k = 0; k < kPerSender; ++k) {
      int value = id * kPerSender + k;
      Error e = co_await channel.send(value);
      if (e) {
        EXPECT_EQ(e, Error(ECANCELED));
        ++send_cancelled;
        co_return;
      }
      accepted[value] = true;
      (void)co_await sleep(0ms);
    }
  };
  auto receiver = [&]() -> Task<> {
    for (;;) {
      Result<int> v = co_await channel.receive();
      if (!v) {
        if (v.error() == Error(ECANCELED)) {
          ++receive_cancelled;
        } else {
          EXPECT_EQ(v.error(), Error(EPIPE));
          ++receivers_drained;
        }
        co_return;
      }
      ++times_received[v.value()];
      (void)co_await sleep(std::chrono::microseconds(300));
    }
  };
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < kSenders + kReceivers; ++i) {
    if (i % 2 == 0) {
      handles.push_back(spawn(loop, sender, i / 2));
    } else {
      handles.push_back(spawn(loop, receiver));
    }
  }
  std::mt19937 random(2024);
  std::uniform_int_distribution<int> pick(0, kSenders + kReceivers - 1);
  bool closed = false;
  for (int step_count = 0; step_count < 20000; ++step_count) {
    if (step_count % 2 == 0) handles[pick(random)].cancel();
    step(std::chrono::microseconds(100));
    bool senders_done = true;
    bool all_done = true;
    for (int i = 0; i < kSenders + kReceivers; ++i) {
      all_done = all_done && handles[i].done();
      if (i % 2 == 0) senders_done = senders_done && handles[i].done();
    }
    if (senders_done && !closed) {
      channel.close();  // the receivers left drain the buffer, then end with EPIPE
      closed = true;
    }
    if (all_done) break;
  }
  ASSERT_TRUE(closed);
  for (auto& h : handles)
    EXPECT_TRUE(h.done());
  EXPECT_FALSE(channel.senders_waiting());
  EXPECT_FALSE(channel.receivers_waiting());
  for (;;) {  // what no receiver was left to take
    Result<int> v = channel.try_receive();
    if (!v) {
      EXPECT_EQ(v.error(), Error(EPIPE));
      break;
    }
    ++times_received[v.value()];
  }
  int accepted_count = 0;
  for (int v = 0; v < kValues; ++v) {
    EXPECT_LE(times_received[v], 1) << v;
    EXPECT_EQ(times_received[v], accepted[v] ? 1 : 0) << v;
    if (accepted[v]) ++accepted_count;
  }
  EXPECT_GT(accepted_count, kValues / 2);
  EXPECT_GT(send_cancelled, 0);
  EXPECT_GT(receive_cancelled, 0);
  EXPECT_GT(receivers_drained, 0);
}

}  // namespace
}  // namespace evflow
