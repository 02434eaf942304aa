#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <evflow/evflow.hpp>
#include "tests/support/descriptors.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/unwind_counter.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

class AwaitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  void iterate() { ASSERT_FALSE(loop.run(RunMode::NoWait)); }
  Loop loop;
};

TEST_F(AwaitTest, ReadableCompletesWhenDataArrivesAndAgainWithoutASystemCall) {
  auto pair = testing::make_socketpair();
  const int fd = pair.a.get();
  std::vector<char> got;
  auto reader = spawn(
      loop,
      [&got](int from) -> Task<> {
        for (int i = 0; i < 3; ++i) {
          Result<Events> ready = co_await readable(from);
          if (!ready || !ready.value().readable()) co_return;
          char c;
          if (testing::read_fd(from, &c, 1) == 1) got.push_back(c);
        }
      },
      fd);
  iterate();  // the first await registers the descriptor
  iterate();
  const uint64_t syscalls = loop.stats().interest_syscalls;
  for (char c : {'a', 'b', 'c'}) {
    ASSERT_TRUE(testing::write_byte(pair.b.get(), c));
    ASSERT_TRUE(testing::run_until(loop, [&] { return got.size() == static_cast<size_t>(c - 'a' + 1); }));
  }
  EXPECT_EQ(got, (std::vector<char>{'a', 'b', 'c'}));
  // IOCP's AFD poll is one-shot: each report is re-armed with a call, handed over or not
  // (platform/win/iocp_backend.hpp, note b). The readiness backends keep registrations.
  if (loop.backend_kind() != BackendKind::Iocp) {
    EXPECT_EQ(loop.stats().interest_syscalls, syscalls) << "each await handed the registration to the next";
  }
  EXPECT_TRUE(testing::run_until(loop, [&] { return reader.done(); }));
}

TEST_F(AwaitTest, ACancelledReadinessAwaitStopsItsWatcherAndGivesEcanceled) {
  auto pair = testing::make_socketpair();
  Error seen;
  auto reader = spawn(
      loop,
      [&seen](int from) -> Task<> {
        Result<Events> ready = co_await readable(from);
        seen = ready.error();
      },
      pair.a.get());
  iterate();
  EXPECT_EQ(loop.active_watchers(), 2) << "the Io and the scheduler's keep-alive";
  reader.cancel();
  iterate();
  EXPECT_EQ(seen.code(), ECANCELED);
  EXPECT_EQ(loop.active_watchers(), 0);
  ASSERT_TRUE(testing::write_byte(pair.b.get()));
  iterate();  // nothing is called any more
}

TEST_F(AwaitTest, ReadinessOfABadDescriptorIsEbadfAtOnce) {
  auto result = run_until_complete(loop, []() -> Task<int> { co_return (co_await readable(-1)).error().code(); });
  EXPECT_EQ(result.value(), EBADF);
}

TEST_F(AwaitTest, ANotificationFromAnotherThreadWakesTheTaskAndOneMadeBeforeTheWaitIsNotLost) {
  Notification note(loop);
  int wakes = 0;
  auto waiter = spawn(loop, [&note, &wakes]() -> Task<> {
    for (int i = 0; i < 2; ++i) {
      if (co_await note.wait()) co_return;
      ++wakes;
    }
  });
  iterate();
  std::thread other([&note] { note.notify(); });
  other.join();
  ASSERT_TRUE(testing::run_until(loop, [&] { return wakes == 1; }));
  note.notify();  // before the task waits again: kept for its next wait
  ASSERT_TRUE(testing::run_until(loop, [&] { return waiter.done(); }));
  EXPECT_EQ(wakes, 2);
}

TEST_F(AwaitTest, ACancelledNotificationWaitGivesEcanceledAndLeavesNoWatcher) {
  Notification note(loop);
  Error seen;
  auto waiter = spawn(loop, [&]() -> Task<> { seen = co_await note.wait(); });
  iterate();
  waiter.cancel();
  iterate();
  EXPECT_EQ(seen.code(), ECANCELED);
  EXPECT_EQ(loop.active_watchers(), 0);
}

// A loop destroyed while its tasks wait in each kind of await: every frame is destroyed
// (its locals too), every watcher awaited in one is stopped, every handle says Cancelled
// and no longer refers to the loop (ASan and valgrind check that nothing is left).
TEST(TaskLoopEnd, DestroyingALoopWithTasksInEveryKindOfAwaitLeavesNothingBehind) {
  auto pair = testing::make_socketpair();
  auto loop = std::make_unique<Loop>();
  ASSERT_FALSE(loop->open());
  int unwound = 0;
  using Guard = testing::UnwindCounter;
  Notification note(*loop);
  std::vector<TaskHandle<int>> handles;
  auto keep = [&](auto&& fn) { handles.push_back(spawn(*loop, fn)); };
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    co_return (co_await readable(pair.a.get())).error().code();
  });
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    co_return (co_await note.wait()).code();
  });
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    co_return (co_await sleep(1h)).code();
  });
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    co_return (co_await handles[2].join()).error().code();
  });
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    for (;;)
      (void)co_await yield();
  });
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    auto scoped = co_await with_timeout(
        1h, [](int fd) -> Task<int> { co_return (co_await readable(fd)).error().code(); }(pair.b.get()));
    co_return scoped.value();
  });
#if !defined(_WIN32)
  SignalWaiter usr1(*loop);
  ASSERT_FALSE(usr1.start(SIGUSR1));
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    (void)!::read(gate[0], &c, 1);
    _exit(0);
  }
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    co_return (co_await usr1.next()).code();
  });
  keep([&]() -> Task<int> {
    Guard guard{&unwound};
    co_return (co_await child_exit(child)).error().code();
  });
#endif
  ASSERT_FALSE(loop->run(RunMode::NoWait));
  ASSERT_FALSE(loop->run(RunMode::NoWait));
  EXPECT_EQ(unwound, 0);
  loop.reset();
  EXPECT_EQ(unwound, static_cast<int>(handles.size()));
  for (auto& handle : handles) {
    EXPECT_EQ(handle.state(), TaskState::Cancelled);
    EXPECT_EQ(handle.loop(), nullptr);
    handle.cancel();  // nothing to do any more
  }
#if !defined(_WIN32)
  (void)!::write(gate[1], "x", 1);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child) << "not reaped by the destroyed await";
  ::close(gate[0]);
  ::close(gate[1]);
#endif
}

TEST_F(AwaitTest, RunUntilDoneJoinsATaskFromPlainCode) {
  auto handle = spawn(loop, []() -> Task<int> {
    (void)co_await yield();
    (void)co_await yield();
    co_return 9;
  });
  EXPECT_EQ(handle.loop(), &loop);
  auto value = run_until_done(loop, handle);
  ASSERT_TRUE(value);
  EXPECT_EQ(value.value(), 9);
  EXPECT_EQ(run_until_done(loop, handle).value(), 9) << "a finished task gives its value again";
  TaskHandle<int> empty;
  EXPECT_EQ(run_until_done(loop, empty).error().code(), EINVAL);
  Loop other;
  ASSERT_FALSE(other.open());
  auto elsewhere = spawn(other, []() -> Task<int> { co_return 1; });
  EXPECT_EQ(run_until_done(loop, elsewhere).error().code(), EINVAL) << "a task of another loop";
  EXPECT_EQ(run_until_done(other, elsewhere).value(), 1);
}

// Each loop's tasks, scheduler and frame pool belong to its thread; one loop's task wakes
// the other's through a Notification.
TEST(TaskThreads, TwoLoopsInTwoThreadsRunTheirTasksAndNotifyEachOther) {
  Loop first_loop;
  ASSERT_FALSE(first_loop.open());
  Notification to_first(first_loop);
  std::atomic<bool> second_ready{false};
  long second_sum = 0;
  std::thread second([&] {
    Loop loop;
    if (loop.open()) return;
    auto result = run_until_complete(loop, [&]() -> Task<long> {
      long sum = 0;
      for (int i = 0; i < 1000; ++i) {
        auto child = spawn(
            loop,
            [](int v) -> Task<int> {
              (void)co_await yield();
              co_return v;
            },
            i);
        sum += (co_await child.join()).value();
      }
      second_ready.store(true);
      to_first.notify();
      co_return sum;
    });
    second_sum = result.value_or(-1);
  });
  auto first = run_until_complete(first_loop, [&]() -> Task<int> {
    long local = 0;
    for (int i = 0; i < 1000; ++i) {
      (void)co_await yield();
      ++local;
    }
    while (!second_ready.load())
      if (co_await to_first.wait()) co_return -1;
    co_return static_cast<int>(local);
  });
  second.join();
  EXPECT_EQ(first.value(), 1000);
  EXPECT_EQ(second_sum, 999L * 1000 / 2);
}

#if !defined(_WIN32)
TEST(TaskFork, AForkedChildsLoopKeepsItsTasks) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  int steps = 0;
  auto task = spawn(loop, [&steps]() -> Task<> {
    ++steps;
    (void)co_await sleep(1ms);
    ++steps;
  });
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_EQ(steps, 1);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (int i = 0; i < 10000 && !task.done(); ++i)
      if (loop.run(RunMode::Once)) _exit(10);
    _exit(task.done() && steps == 2 ? 0 : 11);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_TRUE(testing::run_until(loop, [&] { return task.done(); }));
  EXPECT_EQ(steps, 2);
}

TEST_F(AwaitTest, ChildExitGivesTheStatusOfTheChild) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(7);
  auto result = run_until_complete(
      loop,
      [](pid_t child) -> Task<int> {
        Result<ExitStatus> status = co_await child_exit(child);
        co_return status ? status.value().code() : -1;
      },
      pid);
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value(), 7);
}

TEST_F(AwaitTest, ACancelledChildExitAwaitGivesEcanceledAndTheChildCanStillBeWaitedFor) {
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    (void)!::read(gate[0], &c, 1);
    _exit(0);
  }
  Error seen;
  auto waiter = spawn(
      loop, [&seen](pid_t child) -> Task<> { seen = (co_await child_exit(child)).error(); }, pid);
  iterate();
  waiter.cancel();
  iterate();
  EXPECT_EQ(seen.code(), ECANCELED);
  (void)!::write(gate[1], "x", 1);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid) << "not reaped by the cancelled await";
  ::close(gate[0]);
  ::close(gate[1]);
}

TEST_F(AwaitTest, ASignalRaisedWhileNoTaskWaitsCompletesTheNextWait) {
  SignalWaiter usr1(loop);
  ASSERT_FALSE(usr1.start(SIGUSR1));
  int raised = 0;
  auto waiter = spawn(loop, [&usr1, &raised]() -> Task<> {
    for (int i = 0; i < 2; ++i) {
      if (co_await usr1.next()) co_return;
      ++raised;
    }
  });
  iterate();
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_TRUE(testing::run_until(loop, [&] { return raised == 1; }));
  ASSERT_EQ(::raise(SIGUSR1), 0);  // the task is in the task phase or waiting: either way kept
  ASSERT_TRUE(testing::run_until(loop, [&] { return waiter.done(); }));
  EXPECT_EQ(raised, 2);
}

TEST_F(AwaitTest, ACancelledTasksSignalWaitLeavesASignalAlreadyCaughtToTheNextWait) {
  SignalWaiter usr1(loop);
  ASSERT_FALSE(usr1.start(SIGUSR1));
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_FALSE(loop.run(RunMode::NoWait));  // caught while no task waits: pending
  Error cancelled_wait, next_wait(EINVAL);
  auto cancelled = spawn(loop, [&]() -> Task<> {
    (void)co_await sleep(1h);
    cancelled_wait = co_await usr1.next();
  });
  iterate();
  cancelled.cancel();
  iterate();
  EXPECT_EQ(cancelled_wait.code(), ECANCELED);
  auto next = spawn(loop, [&]() -> Task<> { next_wait = co_await usr1.next(); });
  iterate();
  EXPECT_TRUE(next.done());
  EXPECT_FALSE(next_wait) << "the signal caught before was kept for this wait";
}

TEST_F(AwaitTest, ACancelledSignalWaitGivesEcanceledAndTheWatcherStaysForTheNext) {
  SignalWaiter usr2(loop);
  ASSERT_FALSE(usr2.start(SIGUSR2));
  Error seen;
  auto waiter = spawn(loop, [&]() -> Task<> { seen = co_await usr2.next(); });
  iterate();
  waiter.cancel();
  iterate();
  EXPECT_EQ(seen.code(), ECANCELED);
  ASSERT_EQ(::raise(SIGUSR2), 0);  // still caught, not fatal
  auto again = spawn(loop, [&]() -> Task<> { seen = co_await usr2.next(); });
  ASSERT_TRUE(testing::run_until(loop, [&] { return again.done(); }));
  EXPECT_FALSE(seen);
}
#endif

}  // namespace
}  // namespace evflow
