// Lock, Semaphore, Event and Condition (tasks/lock.hpp, semaphore.hpp, event.hpp,
// condition.hpp): first come first served with hand-off, cancellation of queued waiters,
// and contention from 1,000 tasks cancelled at random points.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/tasks.hpp>
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;
using SyncTest = testing::FakeClockLoopTest;

// ---- Lock

TEST_F(SyncTest, ALockIsHandedToItsWaitersInTheOrderTheyCame) {
  Lock lock;
  std::vector<std::string> order;
  auto user = [&](std::string name) -> Task<> {
    if (co_await lock.lock()) co_return;
    order.push_back(name);
    (void)co_await sleep(1ms);
    EXPECT_FALSE(lock.unlock());
  };
  for (const char* name : {"a", "b", "c", "d"})
    (void)spawn(loop, user, std::string(name));
  step(0s);  // a holds it; b, c and d wait
  EXPECT_EQ(order, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(lock.contended());
  for (int i = 0; i < 4; ++i)
    step(1ms);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_FALSE(lock.locked());
  EXPECT_FALSE(lock.contended());
}

TEST_F(SyncTest, ATaskThatUnlocksAndLocksAgainQueuesBehindTheWaiters) {
  Lock lock;
  std::vector<std::string> order;
  auto greedy = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 2; ++i) {
      if (co_await lock.lock()) co_return;
      order.push_back("greedy");
      (void)co_await yield();  // the other task queues meanwhile
      (void)lock.unlock();
    }
  });
  auto other = spawn(loop, [&]() -> Task<> {
    if (co_await lock.lock()) co_return;
    order.push_back("other");
    (void)lock.unlock();
  });
  step(0s);
  step(0s);
  ASSERT_TRUE(greedy.done() && other.done());
  EXPECT_EQ(order, (std::vector<std::string>{"greedy", "other", "greedy"}));
}

TEST_F(SyncTest, ACancelledWaiterIsNeverHandedTheLock) {
  Lock lock;
  ASSERT_TRUE(lock.try_lock());
  Error seen_by_first;
  bool second_got_it = false;
  auto first = spawn(loop, [&]() -> Task<> { seen_by_first = co_await lock.lock(); });
  auto second = spawn(loop, [&]() -> Task<> {
    if (co_await lock.lock()) co_return;
    second_got_it = true;
    (void)lock.unlock();
  });
  step(0s);
  first.cancel();  // queued first: leaves the queue
  EXPECT_FALSE(lock.unlock());
  step(0s);
  EXPECT_EQ(seen_by_first, Error(ECANCELED));
  EXPECT_TRUE(second_got_it);
  EXPECT_FALSE(lock.locked()) << "the cancelled waiter does not hold it";
}

TEST_F(SyncTest, LockIsACancellationPointEvenWhenFree) {
  Lock lock;
  Error seen;
  auto task = spawn(loop, [&]() -> Task<> {
    CancellationScope scope;
    (void)co_await scope.run([&]() -> Task<> {
      scope.cancel();
      seen = co_await lock.lock();
    }());
  });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(seen, Error(ECANCELED));
  EXPECT_FALSE(lock.locked());
}

TEST_F(SyncTest, AGuardUnlocksAndUnlockingAFreeLockIsEperm) {
  Lock lock;
  EXPECT_EQ(lock.unlock(), Error(EPERM));
  bool held_inside = false;
  auto task = spawn(loop, [&]() -> Task<> {
    Result<LockGuard> guard = co_await lock.scoped();
    if (!guard) co_return;
    held_inside = lock.locked() && guard.value().owns_lock();
  });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_TRUE(held_inside);
  EXPECT_FALSE(lock.locked());
}

TEST_F(SyncTest, ALockDestroyedUnderItsWaitersWakesThemWithEidrm) {
  auto lock = std::make_unique<Lock>();
  ASSERT_TRUE(lock->try_lock());
  Error seen;
  auto waiter = spawn(loop, [&]() -> Task<> { seen = co_await lock->lock(); });
  step(0s);
  lock.reset();
  step(0s);
  ASSERT_TRUE(waiter.done());
  EXPECT_EQ(seen, Error(EIDRM));
}

// ---- Semaphore

TEST_F(SyncTest, ASemaphoreHandsReleasedPermitsToWaitersInOrder) {
  Semaphore slots(2);
  std::vector<int> order;
  int inside = 0;
  int most_inside = 0;
  auto user = [&](int id) -> Task<> {
    if (co_await slots.acquire()) co_return;
    order.push_back(id);
    most_inside = std::max(most_inside, ++inside);
    (void)co_await sleep(1ms);
    --inside;
    slots.release();
  };
  for (int id = 0; id < 5; ++id)
    (void)spawn(loop, user, id);
  step(0s);
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_EQ(slots.available(), 0u);
  for (int i = 0; i < 3; ++i)
    step(1ms);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(most_inside, 2);
  EXPECT_EQ(slots.available(), 2u);
}

TEST_F(SyncTest, ACancelledSemaphoreWaiterTakesNoPermit) {
  Semaphore slots(0);
  Error seen;
  auto waiter = spawn(loop, [&]() -> Task<> { seen = co_await slots.acquire(); });
  step(0s);
  waiter.cancel();
  slots.release();
  step(0s);
  EXPECT_EQ(seen, Error(ECANCELED));
  EXPECT_EQ(slots.available(), 1u) << "the permit went to the count, not to the cancelled waiter";
  EXPECT_TRUE(slots.try_acquire());
  EXPECT_FALSE(slots.try_acquire());
}

// ---- Event

TEST_F(SyncTest, SettingAnEventWakesEveryWaiterInOrderAndLaterWaitsPassAtOnce) {
  Event ready;
  std::vector<int> woken;
  for (int id = 0; id < 3; ++id) {
    (void)spawn(loop, [&, id]() -> Task<> {
      if (co_await ready.wait()) co_return;
      woken.push_back(id);
    });
  }
  step(0s);
  EXPECT_TRUE(woken.empty());
  ready.set();
  ready.clear();  // the tasks woken by set() still complete their wait
  step(0s);
  EXPECT_EQ(woken, (std::vector<int>{0, 1, 2}));
  ready.set();
  bool passed = false;
  auto late = spawn(loop, [&]() -> Task<> { passed = !co_await ready.wait(); });
  step(0s);
  EXPECT_TRUE(passed);
  EXPECT_TRUE(late.done());
}

TEST_F(SyncTest, ACancelledEventWaiterEndsWithEcanceled) {
  Event ready;
  Error seen;
  auto waiter = spawn(loop, [&]() -> Task<> { seen = co_await ready.wait(); });
  step(0s);
  waiter.cancel();
  step(0s);
  EXPECT_EQ(seen, Error(ECANCELED));
  ready.set();  // nobody left to wake
  step(0s);
  EXPECT_EQ(seen, Error(ECANCELED));
}

// ---- Condition

TEST_F(SyncTest, AConditionWaitReleasesTheLockAndReturnsHoldingIt) {
  Lock lock;
  Condition changed(lock);
  std::vector<int> queue;
  std::vector<int> consumed;
  bool held_after_wait = true;
  auto consumer = spawn(loop, [&]() -> Task<> {
    if (co_await lock.lock()) co_return;
    while (consumed.size() < 3) {
      while (queue.empty()) {
        if (co_await changed.wait()) co_return;
        held_after_wait = held_after_wait && lock.locked();
      }
      consumed.push_back(queue.front());
      queue.erase(queue.begin());
    }
    (void)lock.unlock();
  });
  auto producer = spawn(loop, [&]() -> Task<> {
    for (int i = 1; i <= 3; ++i) {
      if (co_await lock.lock()) co_return;  // free: the consumer released it in wait()
      queue.push_back(i);
      changed.notify();
      (void)lock.unlock();
      (void)co_await sleep(1ms);
    }
  });
  for (int i = 0; i < 5; ++i)
    step(1ms);
  ASSERT_TRUE(consumer.done() && producer.done());
  EXPECT_EQ(consumed, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(held_after_wait);
  EXPECT_FALSE(lock.locked());
}

TEST_F(SyncTest, NotifyWakesTheLongestWaitingAndNotifyAllTheRest) {
  Lock lock;
  Condition changed(lock);
  std::vector<int> woken;
  for (int id = 0; id < 3; ++id) {
    (void)spawn(loop, [&, id]() -> Task<> {
      if (co_await lock.lock()) co_return;
      if (co_await changed.wait()) co_return;
      woken.push_back(id);
      (void)lock.unlock();
    });
  }
  step(0s);
  changed.notify();
  step(0s);
  EXPECT_EQ(woken, (std::vector<int>{0}));
  changed.notify_all();
  step(0s);
  EXPECT_EQ(woken, (std::vector<int>{0, 1, 2}));
}

// Cancelled while waiting for a notification, the task still takes the lock back before it
// goes on; a cancellation while it waits for the lock does not interrupt that wait.
TEST_F(SyncTest, ACancelledConditionWaitReturnsHoldingTheLock) {
  Lock lock;
  Condition changed(lock);
  Error seen;
  bool held = false;
  auto waiter = spawn(loop, [&]() -> Task<> {
    if (co_await lock.lock()) co_return;
    seen = co_await changed.wait();
    held = lock.locked();
    (void)lock.unlock();
  });
  step(0s);
  ASSERT_FALSE(lock.locked());
  ASSERT_TRUE(lock.try_lock());  // another holder: the cancelled waiter must queue for it
  waiter.cancel();
  step(0s);
  EXPECT_FALSE(waiter.done()) << "it waits for the lock";
  waiter.cancel();  // again, while it waits for the lock: no effect
  step(0s);
  EXPECT_FALSE(waiter.done());
  EXPECT_FALSE(lock.unlock());  // handed to the waiter
  step(0s);
  ASSERT_TRUE(waiter.done());
  EXPECT_EQ(seen, Error(ECANCELED));
  EXPECT_TRUE(held);
  EXPECT_FALSE(lock.locked());
}

TEST_F(SyncTest, AConditionWaitWithoutTheLockIsEperm) {
  Lock lock;
  Condition changed(lock);
  Error seen;
  auto task = spawn(loop, [&]() -> Task<> { seen = co_await changed.wait(); });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(seen, Error(EPERM));
}

// ---- Contention

// 1,000 tasks take a lock and a semaphore in turn, sleeping inside, while a third of them
// are cancelled at random points: no two hold the lock at once, no more than the permits
// hold the semaphore, nothing is handed to a cancelled task, and everything is free at
// the end.
TEST_F(SyncTest, AThousandTasksCancelledAtRandomPointsNeitherLoseNorDuplicateAHandOff) {
  constexpr int kTasks = 1000;
  constexpr std::size_t kPermits = 3;
  Lock lock;
  Semaphore slots(kPermits);
  int in_lock = 0;
  int most_in_lock = 0;
  std::size_t in_slots = 0;
  std::size_t most_in_slots = 0;
  int finished = 0;
  int cancelled = 0;
  std::mt19937 random(12345);
  auto worker = [&](int rounds) -> Task<> {
    for (int r = 0; r < rounds; ++r) {
      if (co_await lock.lock()) {
        ++cancelled;
        co_return;
      }
      most_in_lock = std::max(most_in_lock, ++in_lock);
      (void)co_await sleep(0ms);  // may be cancelled while holding: unlock regardless
      --in_lock;
      EXPECT_FALSE(lock.unlock());
      if (co_await slots.acquire()) {
        ++cancelled;
        co_return;
      }
      most_in_slots = std::max(most_in_slots, ++in_slots);
      (void)co_await sleep(1ms);
      --in_slots;
      slots.release();
    }
    ++finished;
  };
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < kTasks; ++i)
    handles.push_back(spawn(loop, worker, 3));
  std::uniform_int_distribution<int> pick(0, kTasks - 1);
  for (int step_count = 0; step_count < 5000; ++step_count) {
    if (step_count % 3 == 0) handles[pick(random)].cancel();
    step(std::chrono::microseconds(100));
    bool all_done = true;
    for (auto& h : handles)
      all_done = all_done && h.done();
    if (all_done) break;
  }
  int never_started = 0;  // cancelled before their first step: they never run
  for (auto& h : handles) {
    EXPECT_TRUE(h.done());
    if (h.state() == TaskState::Cancelled) ++never_started;
  }
  EXPECT_EQ(most_in_lock, 1);
  EXPECT_LE(most_in_slots, kPermits);
  EXPECT_EQ(in_lock, 0);
  EXPECT_EQ(in_slots, 0u);
  EXPECT_GT(cancelled, 0);
  EXPECT_GT(finished, 0);
  EXPECT_EQ(finished + cancelled + never_started, kTasks) << "every task finished or saw its cancellation";
  EXPECT_FALSE(lock.locked());
  EXPECT_FALSE(lock.contended());
  EXPECT_EQ(slots.available(), kPermits);
  EXPECT_FALSE(slots.contended());
}

}  // namespace
}  // namespace evflow
