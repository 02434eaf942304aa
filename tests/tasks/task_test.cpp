#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <coroutine>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/fake_clock.hpp"
#include "tests/support/unwind_counter.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using TaskTest = testing::FakeClockLoopTest;

Task<int> value_of(int v) { co_return v; }

Task<int> sum_of_awaits(long n) {
  int sum = 0;
  for (long i = 0; i < n; ++i)
    sum += co_await value_of(1);
  co_return sum;
}

TEST_F(TaskTest, AwaitingATaskGivesItsValue) {
  auto result = run_until_complete(
      loop, [](int a) -> Task<int> { co_return co_await value_of(a) + 1; }, 41);
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value(), 42);
}

// Symmetric transfer is a nested call in unoptimised builds: without the bound on inline
// transfers, ten million awaits that complete at once would overflow the stack there.
TEST_F(TaskTest, TenMillionAwaitsThatCompleteAtOnceRunInBoundedStack) {
  auto result = run_until_complete(loop, sum_of_awaits, 10'000'000L);
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value(), 10'000'000);
}

TEST_F(TaskTest, AnAwaitedTaskIsEmptyAfterwards) {
  auto result = run_until_complete(loop, []() -> Task<int> {
    Task<int> task = value_of(3);
    const bool before = task.valid();
    const int v = co_await std::move(task);
    co_return before && !task.valid() ? v : -1;  // NOLINT(bugprone-use-after-move): the point of the test
  });
  EXPECT_EQ(result.value(), 3);
}

TEST_F(TaskTest, EveryJoinerAndResultGetTheValueAndAJoinKeepsTheRecordAlive) {
  auto producer = std::make_unique<TaskHandle<std::string>>(spawn(loop, []() -> Task<std::string> {
    (void)co_await sleep(1ms);
    co_return std::string(40, 'x');  // long enough to live on the heap
  }));
  std::vector<std::string> got;
  auto joiner = [&got](TaskHandle<std::string>* handle) -> Task<> {
    auto value = co_await handle->join();
    got.push_back(value ? value.value() : "error");
  };
  auto first = spawn(loop, joiner, producer.get());
  auto second = spawn(loop, joiner, producer.get());
  auto late = spawn(loop, joiner, producer.get());
  step(0s);
  producer.reset();  // every handle goes while the joins wait: each awaiter keeps the record
  step(1ms);
  step(0s);
  EXPECT_EQ(got, (std::vector<std::string>(3, std::string(40, 'x'))));
}

// A Task<Error>'s handle gives an Error: the task's own, or the join's (ECANCELED).
TEST_F(TaskTest, TheJoinAndResultOfATaskGivingAnErrorAreThatError) {
  auto failing = spawn(loop, []() -> Task<Error> {
    (void)co_await sleep(1ms);
    co_return Error(EPIPE);
  });
  std::vector<int> codes;
  auto joiner = spawn(loop, [&]() -> Task<> {
    const Error joined = co_await failing.join();
    codes.push_back(joined.code());
  });
  EXPECT_EQ(failing.result().code(), EAGAIN);
  step(0s);
  step(1ms);
  step(0s);
  ASSERT_TRUE(joiner.done());
  codes.push_back(failing.result().code());
  EXPECT_EQ(codes, (std::vector<int>{EPIPE, EPIPE}));
}

TEST_F(TaskTest, ACancelledTasksJoinOfAFinishedTaskIsEcanceled) {
  auto finished = spawn(loop, value_of, 5);
  step(0s);
  ASSERT_TRUE(finished.done());
  Error seen;
  auto joiner = spawn(loop, [&]() -> Task<> {
    (void)co_await sleep(1ms);
    seen = (co_await finished.join()).error();
  });
  step(0s);
  joiner.cancel();
  step(0s);
  EXPECT_EQ(seen.code(), ECANCELED) << "cancellation is checked before the joined task's end";
}

TEST_F(TaskTest, ATaskIsLazyAndItsFirstStepRunsInTheLoopNotInSpawn) {
  bool ran = false;
  auto handle = spawn(loop, [&ran]() -> Task<> {
    ran = true;
    co_return;
  });
  ASSERT_TRUE(handle.valid());
  EXPECT_FALSE(ran);
  EXPECT_EQ(handle.state(), TaskState::Pending);
  step(0s);
  EXPECT_TRUE(ran);
  EXPECT_EQ(handle.state(), TaskState::Completed);
  EXPECT_TRUE(handle.done());
}

TEST_F(TaskTest, DroppingTheHandleNeitherDestroysNorStopsTheTask) {
  int steps = 0;
  (void)spawn(loop, [&steps]() -> Task<> {
    ++steps;
    (void)co_await sleep(10ms);
    ++steps;
  });
  step(0s);
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(live_tasks(loop), 1u);
  step(10ms);
  EXPECT_EQ(steps, 2);
  EXPECT_EQ(live_tasks(loop), 0u);
}

Task<size_t> length_later(const std::string& text) {
  (void)co_await sleep(1ms);  // a reference parameter outlives this only if its object does
  co_return text.size();
}

TEST_F(TaskTest, SpawnCopiesTheArgumentsSoAReferenceParameterOutlivesTheCaller) {
  TaskHandle<size_t> handle;
  {
    std::string temporary(100, 'x');
    handle = spawn(loop, length_later, temporary);
    temporary.assign(3, 'y');  // the task has its own copy
  }
  step(0s);
  step(1ms);
  ASSERT_TRUE(handle.done());
  EXPECT_EQ(handle.result().value(), 100u);
}

TEST_F(TaskTest, TasksWokenInOneIterationRunInWakeOrder) {
  std::vector<int> order;
  auto sleeper = [&order](int id, std::chrono::milliseconds d) -> Task<> {
    (void)co_await sleep(d);
    order.push_back(id);
  };
  (void)spawn(loop, sleeper, 1, 5ms);
  (void)spawn(loop, sleeper, 2, 3ms);
  (void)spawn(loop, sleeper, 3, 5ms);
  (void)spawn(loop, sleeper, 4, 3ms);
  step(0s);
  step(5ms);  // all four timers fire in this iteration, in deadline then start order
  EXPECT_EQ(order, (std::vector<int>{2, 4, 1, 3}));
}

TEST_F(TaskTest, TasksRunInThePostedWorkPhaseAfterTheTimerCallbacksOfTheIteration) {
  std::vector<std::string> log;
  (void)spawn(loop, [&log]() -> Task<> {
    (void)co_await sleep(1ms);
    log.push_back("task");
  });
  step(0s);
  Timer later(loop);  // started after the task's timer, same deadline: its callback runs first anyway
  ASSERT_FALSE(later.start(1ms, [&log] { log.push_back("timer"); }));
  ASSERT_FALSE(loop.post([&log] { log.push_back("posted"); }));
  step(1ms);
  // Timer callbacks first (the task's timer wakes it, then `later` runs), then posted
  // work in post order: the work posted before the iteration, then the woken task.
  EXPECT_EQ(log, (std::vector<std::string>{"timer", "posted", "task"}));
}

TEST_F(TaskTest, YieldGoesToTheTailOfTheQueueWithoutASystemCall) {
  std::vector<std::string> log;
  auto yielder = [&log](std::string name) -> Task<> {
    log.push_back(name + "1");
    (void)co_await yield();
    log.push_back(name + "2");
  };
  (void)spawn(loop, yielder, std::string("a"));
  (void)spawn(loop, yielder, std::string("b"));
  const uint64_t syscalls_before = loop.stats().interest_syscalls;
  step(0s);
  EXPECT_EQ(log, (std::vector<std::string>{"a1", "b1", "a2", "b2"}));
  EXPECT_EQ(loop.stats().interest_syscalls, syscalls_before);
}

// A task that only yields gets kResumptionsPerPhase resumptions of the task phase; the rest of its
// work waits for the next iteration, after the loop has polled and fired due timers.
TEST_F(TaskTest, ATaskThatOnlyYieldsDoesNotStarveTimers) {
  bool fired = false;
  long yields_before_the_timer = -1;
  Timer timer(loop);
  auto spinner = spawn(loop, [&]() -> Task<> {
    EXPECT_FALSE(timer.start(0ms, [&fired] { fired = true; }));
    long yields = 0;
    while (!fired) {  // set by the timer's callback while the task is suspended
      yields_before_the_timer = yields++;
      (void)co_await yield();
    }
  });
  step(0s);
  step(0s);
  step(0s);
  ASSERT_TRUE(spinner.done());
  EXPECT_TRUE(fired);
  EXPECT_LE(yields_before_the_timer, detail::TaskScheduler::kResumptionsPerPhase);
}

// Work left for the end of the task phase runs once the ready queue is empty, in the order
// it was left, before the loop polls; a task it wakes runs in the same phase; work left
// after that turn waits for the next iteration; withdrawn work never runs.
struct LoggedPhaseEndWork : detail::PhaseEndWork {
  std::vector<std::string>* log = nullptr;
  std::string name;
  detail::TaskRoot* wakes = nullptr;
};

TEST_F(TaskTest, WorkLeftForThePhaseEndRunsAfterTheReadyTasksOnceAPhase) {
  std::vector<std::string> log;
  auto run = [](detail::PhaseEndWork& self) noexcept {
    auto& w = static_cast<LoggedPhaseEndWork&>(self);
    w.log->push_back(w.name);
    if (w.wakes != nullptr) w.wakes->scheduler->wake(*std::exchange(w.wakes, nullptr));
  };
  LoggedPhaseEndWork first, second, withdrawn, late;
  for (auto* w : {&first, &second, &withdrawn, &late}) {
    w->log = &log;
    w->run = run;
  }
  first.name = "first";
  second.name = "second";
  withdrawn.name = "withdrawn";
  late.name = "late";
  auto leaver = spawn(loop, [&]() -> Task<> {
    detail::TaskScheduler& scheduler = *detail::TaskScheduler::current()->scheduler;
    EXPECT_TRUE(scheduler.busy());  // the other task is queued
    scheduler.defer_to_phase_end(first);
    scheduler.defer_to_phase_end(withdrawn);
    scheduler.defer_to_phase_end(second);
    scheduler.withdraw(withdrawn);
    EXPECT_FALSE(withdrawn.pending);
    log.push_back("leaver");
    co_return;
  });
  auto other = spawn(loop, [&]() -> Task<> {
    log.push_back("other");
    // Suspends until `second` wakes it at the phase's end; then leaves more work.
    struct Park {
      LoggedPhaseEndWork* by;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) noexcept {
        detail::TaskRoot* root = detail::TaskScheduler::current();
        root->resume_point = h;
        by->wakes = root;
      }
      void await_resume() const noexcept {}
    };
    co_await Park{&second};
    log.push_back("other woken");
    detail::TaskScheduler::current()->scheduler->defer_to_phase_end(late);
  });
  const uint64_t before = loop.iteration();
  step(0s);
  EXPECT_EQ(log, (std::vector<std::string>{"leaver", "other", "first", "second", "other woken"}));
  EXPECT_TRUE(late.pending) << "work left after the phase-end turn waits for the next phase";
  step(0s);
  EXPECT_EQ(log.back(), "late");
  EXPECT_FALSE(late.pending);
  EXPECT_GT(loop.iteration(), before);
  EXPECT_TRUE(leaver.done());
  EXPECT_TRUE(other.done());
}

TEST_F(TaskTest, JoinWaitsForTheOtherTaskAndGivesItsValue) {
  auto worker = spawn(loop, []() -> Task<int> {
    (void)co_await sleep(2ms);
    co_return 7;
  });
  auto joiner = spawn(
      loop,
      [](TaskHandle<int>* other) -> Task<int> {
        Result<int> r = co_await other->join();
        co_return r.value() * 6;
      },
      &worker);
  step(0s);
  EXPECT_EQ(joiner.state(), TaskState::Running);
  step(2ms);
  step(0s);
  ASSERT_TRUE(joiner.done());
  EXPECT_EQ(joiner.result().value(), 42);
}

TEST_F(TaskTest, RunKeepsGoingWhileTasksLive) {
  int done = 0;
  (void)spawn(loop, [&done]() -> Task<> {
    (void)co_await yield();
    (void)co_await yield();
    ++done;
  });
  ASSERT_FALSE(loop.run());
  EXPECT_EQ(done, 1);
  EXPECT_EQ(live_tasks(loop), 0u);
}

TEST_F(TaskTest, ASpawnAllocatesNothingFromTheHeapInSteadyState) {
  auto trivial = [](int v) -> Task<int> { co_return v; };
  for (int warm = 0; warm < 3; ++warm) {
    auto handle = spawn(loop, trivial, warm);
    step(0s);
  }
  const long before = testing::allocation_count();
  for (int i = 0; i < 100; ++i) {
    auto handle = spawn(loop, trivial, i);
    step(0s);
    ASSERT_EQ(handle.result().value(), i);
  }
  EXPECT_EQ(testing::allocation_count() - before, 0);
  EXPECT_GT(task_frames_high_water(loop), 0u);
}

// Every allocation a first spawn makes (the scheduler, its frame pool, the task's record,
// its frame) failing in turn: each failure is ENOMEM with nothing left behind (the
// sanitizer and valgrind runs check for leaks), the others run the task to its value.
TEST(TaskMemory, ASpawnThatCannotAllocateIsEnomemAndLeavesNothing) {
  auto measure = [](std::string text) -> Task<size_t> {
    (void)co_await yield();
    co_return text.size();
  };
  int refused = 0;
  for (long k = 1; k <= 12; ++k) {
    Loop loop;
    ASSERT_FALSE(loop.open());
    testing::arm_failure(k);
    auto handle = spawn(loop, measure, std::string("four"));
    const bool failed = testing::disarm_failure();
    if (!handle.valid()) {
      EXPECT_TRUE(failed);
      EXPECT_EQ(handle.error().code(), ENOMEM) << "allocation " << k;
      EXPECT_EQ(live_tasks(loop), 0u);
      ++refused;
      continue;
    }
    while (!handle.done())
      ASSERT_FALSE(loop.run(RunMode::NoWait));
    EXPECT_EQ(handle.result().value(), 4u) << "allocation " << k;
  }
  EXPECT_GE(refused, 4) << "the scheduler, its pool, the record and the frame";
}

TEST(TaskLoop, DestroyingALoopWithSuspendedTasksDestroysThemAndTheirHandlesSayCancelled) {
  auto loop = std::make_unique<Loop>();
  ASSERT_FALSE(loop->open());
  int destroyed = 0;
  using Guard = testing::UnwindCounter;
  auto sleeper = spawn(*loop, [&destroyed]() -> Task<int> {
    Guard guard{&destroyed};
    (void)co_await sleep(1h);
    co_return 1;
  });
  auto joiner = spawn(
      *loop,
      [&destroyed](TaskHandle<int>* other) -> Task<> {
        Guard guard{&destroyed};
        (void)co_await other->join();
      },
      &sleeper);
  auto yielder = spawn(*loop, [&destroyed]() -> Task<> {
    Guard guard{&destroyed};
    for (;;)
      (void)co_await yield();
  });
  ASSERT_FALSE(loop->run(RunMode::NoWait));
  auto never_started = spawn(*loop, []() -> Task<> { co_return; });
  EXPECT_EQ(destroyed, 0);
  loop.reset();
  EXPECT_EQ(destroyed, 3);
  EXPECT_EQ(sleeper.state(), TaskState::Cancelled);
  EXPECT_EQ(sleeper.result().error().code(), ECANCELED);
  EXPECT_EQ(joiner.state(), TaskState::Cancelled);
  EXPECT_EQ(yielder.state(), TaskState::Cancelled);
  EXPECT_EQ(never_started.state(), TaskState::Cancelled);
}

TEST(TaskLoop, SpawnOnALoopNotOpenIsEinval) {
  Loop loop;
  auto handle = spawn(loop, []() -> Task<> { co_return; });
  EXPECT_FALSE(handle.valid());
  EXPECT_EQ(handle.error().code(), EINVAL);
}

#if defined(__cpp_exceptions)
TEST_F(TaskTest, AnExceptionLeavingATaskIsRethrownByJoinNotFatal) {
  auto failing = spawn(loop, []() -> Task<int> {
    (void)co_await yield();
    throw std::runtime_error("broken");
    co_return 0;
  });
  std::string caught;
  auto joiner = spawn(loop, [&]() -> Task<> {
    try {
      (void)co_await failing.join();
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
  });
  step(0s);
  step(0s);
  EXPECT_EQ(failing.state(), TaskState::Failed);
  EXPECT_EQ(caught, "broken") << "join() in another task rethrows it";
  EXPECT_EQ(joiner.state(), TaskState::Completed);
  EXPECT_THROW((void)failing.result(), std::runtime_error);
}
#endif

TEST_F(TaskTest, ATaskCancelledBeforeItsFirstStepNeverRuns) {
  bool ran = false;
  auto handle = spawn(loop, [&ran]() -> Task<> {
    ran = true;
    co_return;
  });
  handle.cancel();
  EXPECT_EQ(handle.state(), TaskState::Cancelled);
  step(0s);
  EXPECT_FALSE(ran);
  EXPECT_EQ(handle.result().code(), ECANCELED);
  EXPECT_EQ(live_tasks(loop), 0u);
}

TEST_F(TaskTest, CancellationEndsThePendingSleepAndEveryLaterAwaitAtOnce) {
  std::vector<int> outcomes;
  auto handle = spawn(loop, [&outcomes]() -> Task<> {
    outcomes.push_back((co_await sleep(1h)).code());
    outcomes.push_back((co_await sleep(1h)).code());  // level-triggered: at once
    outcomes.push_back((co_await yield()).code());
    outcomes.push_back((co_await sleep(0s)).code());
  });
  step(0s);
  EXPECT_EQ(loop.active_watchers(), 2) << "the sleep's timer and the scheduler's keep-alive";
  handle.cancel();
  step(0s);
  EXPECT_EQ(outcomes, (std::vector<int>{ECANCELED, ECANCELED, ECANCELED, ECANCELED}));
  EXPECT_EQ(handle.state(), TaskState::Completed) << "it returned: cancellation is what its awaits saw";
  EXPECT_EQ(loop.active_watchers(), 0) << "the cancelled sleep stopped its timer";
}

TEST_F(TaskTest, ACancelArrivingAfterTheAwaitedEventInTheSameIterationLetsTheResultThrough) {
  std::vector<int> outcomes;
  auto handle = spawn(loop, [&outcomes]() -> Task<> {
    outcomes.push_back((co_await sleep(1ms)).code());
    outcomes.push_back((co_await sleep(1ms)).code());
  });
  step(0s);
  Timer canceller(loop);  // fires after the task's timer in the same iteration
  ASSERT_FALSE(canceller.start(1ms, [&handle] { handle.cancel(); }));
  step(1ms);
  EXPECT_EQ(outcomes, (std::vector<int>{0, ECANCELED}));
}

TEST_F(TaskTest, CancellingATaskBlockedInJoinEndsTheJoinButNotTheJoinedTask) {
  auto worker = spawn(loop, []() -> Task<int> {
    (void)co_await sleep(5ms);
    co_return 5;
  });
  auto joiner = spawn(
      loop,
      [](TaskHandle<int>* other) -> Task<int> {
        Result<int> r = co_await other->join();
        co_return r ? r.value() : -r.error().code();
      },
      &worker);
  step(0s);
  joiner.cancel();
  step(0s);
  ASSERT_TRUE(joiner.done());
  EXPECT_EQ(joiner.result().value(), -ECANCELED);
  EXPECT_EQ(worker.state(), TaskState::Running);
  step(5ms);
  EXPECT_EQ(worker.result().value(), 5);
}

}  // namespace
}  // namespace evflow
