#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using GroupTest = testing::FakeClockLoopTest;

// A child that sleeps, logs how its sleep ended, and returns `result`.
Task<Error> sleeper(std::vector<std::string>* log, std::string name, Timer::Duration duration, Error result) {
  const Error slept = co_await sleep(duration);
  log->push_back(name + (slept ? ":cancelled" : ":slept"));
  co_return slept ? slept : result;
}

// A cleanup that sleeps and logs how its sleep ended (into `log` when there is one).
Task<Error> sleep_for_log(std::vector<std::string>* log, Timer::Duration duration) {
  const Error slept = co_await sleep(duration);
  if (log != nullptr) log->push_back(slept ? "cleanup:cancelled" : "cleanup:slept");
  co_return slept;
}

TEST_F(GroupTest, RunEndsOnlyAfterTheBodyAndEveryChildHaveFinished) {
  std::vector<std::string> log;
  auto task = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    auto ended = co_await group.run([&]() -> Task<int> {
      EXPECT_TRUE(group.spawn(sleeper, &log, "a", 2ms, Error()).valid());
      EXPECT_TRUE(group.spawn(sleeper, &log, "b", 1ms, Error()).valid());
      log.push_back("body returns");
      co_return 7;
    }());
    log.push_back("group ended with " + std::to_string(ended.value()));
    EXPECT_FALSE(ended.failed());
    EXPECT_FALSE(ended.cancelled());
    EXPECT_EQ(group.size(), 0u);
  });
  step(0s);
  EXPECT_EQ(log, (std::vector<std::string>{"body returns"}));
  EXPECT_EQ(live_tasks(loop), 3u);
  step(1ms);
  step(1ms);
  EXPECT_EQ(log, (std::vector<std::string>{"body returns", "b:slept", "a:slept", "group ended with 7"}));
  EXPECT_TRUE(task.done());
}

TEST_F(GroupTest, TheFirstFailureCancelsTheOthersAndEveryFailureIsReported) {
  std::vector<std::string> log;
  std::vector<int> failures;
  Error late_spawn;
  auto task = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    auto ended = co_await group.run([&]() -> Task<> {
      (void)group.spawn(sleeper, &log, "a", 5ms, Error(EIO));
      (void)group.spawn(sleeper, &log, "b", 5ms, Error(EPIPE));  // fails in the same iteration
      (void)group.spawn(sleeper, &log, "c", 1h, Error());
      log.push_back((co_await sleep(1h)) ? "body:cancelled" : "body:slept");
      late_spawn = group.spawn(sleeper, &log, "d", 1ms, Error()).error();
    }());
    for (Error e : ended.failures())
      failures.push_back(e.code());
    EXPECT_TRUE(ended.failed());
    EXPECT_FALSE(ended.cancelled()) << "ended by its own failure, not by a cancellation from outside";
  });
  step(0s);
  step(5ms);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(failures, (std::vector<int>{EIO, EPIPE}));
  EXPECT_EQ(late_spawn.code(), ECANCELED) << "a failing group takes no new children";
  EXPECT_EQ(log, (std::vector<std::string>{"a:slept", "b:slept", "body:cancelled", "c:cancelled"}));
  EXPECT_EQ(live_tasks(loop), 0u);
}

TEST_F(GroupTest, ASupervisorGroupReportsAFailureAndCancelsNothing) {
  std::vector<std::string> log;
  std::vector<int> failures;
  auto task = spawn(loop, [&]() -> Task<> {
    SupervisorGroup group;
    auto ended = co_await group.run([&]() -> Task<> {
      (void)group.spawn(sleeper, &log, "a", 1ms, Error(EIO));
      (void)group.spawn(sleeper, &log, "b", 2ms, Error());
      co_return;
    }());
    for (Error e : ended.failures())
      failures.push_back(e.code());
  });
  step(0s);
  step(1ms);
  step(1ms);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(log, (std::vector<std::string>{"a:slept", "b:slept"}));
  EXPECT_EQ(failures, (std::vector<int>{EIO}));
}

// Three levels of groups; cancelling the outer task reaches every descendant, and the
// inner groups do not swallow it: the outer task's next await is still cancelled.
TEST_F(GroupTest, ACancellationReachesEveryDescendantOfNestedGroupsAndIsNotSwallowed) {
  std::vector<std::string> log;
  std::function<Task<Error>(int)> level = [&](int depth) -> Task<Error> {
    TaskGroup group;
    auto ended = co_await group.run([&]() -> Task<> {
      (void)group.spawn(sleeper, &log, "leaf" + std::to_string(depth), 1h, Error());
      if (depth < 3) (void)group.spawn(level, depth + 1);
      co_return;
    }());
    log.push_back("group" + std::to_string(depth) + (ended.cancelled() ? ":cancelled" : ":ended"));
    co_return co_await sleep(1ms);  // still cancelled after the group
  };
  Error after;
  auto task = spawn(loop, [&]() -> Task<> { after = co_await level(1); });
  step(0s);
  EXPECT_EQ(live_tasks(loop), 6u) << "the task, three leaves, two inner levels";
  task.cancel();
  step(0s);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(after.code(), ECANCELED);
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"group1:cancelled", "group2:cancelled", "group3:cancelled",
                                           "leaf1:cancelled", "leaf2:cancelled", "leaf3:cancelled"}));
  EXPECT_EQ(live_tasks(loop), 0u);
}

TEST_F(GroupTest, ACancelledGroupWaitsForAChildInAShieldedCleanup) {
  std::vector<std::string> log;
  TaskGroup* running = nullptr;
  auto task = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    running = &group;
    auto ended = co_await group.run([&]() -> Task<> {
      (void)group.spawn([&]() -> Task<> {
        log.push_back((co_await sleep(1h)) ? "work:cancelled" : "work:done");
        log.push_back((co_await shielded(sleep_for_log(&log, 3ms))) ? "cleanup:cancelled" : "cleanup:done");
      });
      co_return;
    }());
    log.push_back(ended.cancelled() ? "group:cancelled" : "group:ended");
  });
  step(0s);
  running->cancel();
  step(0s);
  EXPECT_FALSE(task.done()) << "the cleanup still runs";
  step(3ms);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(log, (std::vector<std::string>{"work:cancelled", "cleanup:slept", "cleanup:done", "group:cancelled"}));
}

TEST_F(GroupTest, SpawnOutsideARunIsEinvalAndASecondRunAtOnceIsEbusy) {
  TaskGroup group;
  EXPECT_EQ(group.spawn([]() -> Task<> { co_return; }).error().code(), EINVAL);
  Error busy;
  auto first = spawn(loop, [&]() -> Task<> { (void)co_await group.run(sleep_for_log(nullptr, 1ms)); });
  step(0s);
  auto second = spawn(loop, [&]() -> Task<> { busy = (co_await group.run(sleep_for_log(nullptr, 1ms))).error(); });
  step(0s);
  EXPECT_EQ(busy.code(), EBUSY);
  step(1ms);
  EXPECT_TRUE(first.done());
}

TEST_F(GroupTest, ADeadlineAroundAGroupCancelsItsChildrenAndTimesOutAfterTheyEnded) {
  std::vector<std::string> log;
  auto task = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await with_timeout(5ms, [&]() -> Task<> {
      TaskGroup group;
      (void)co_await group.run([&]() -> Task<> {
        (void)group.spawn(sleeper, &log, "a", 1h, Error());
        (void)group.spawn(sleeper, &log, "b", 1h, Error());
        co_return;
      }());
      log.push_back("group ended");
    }());
    log.push_back(scoped.timed_out() ? "timed out" : "in time");
  });
  step(0s);
  step(5ms);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(log, (std::vector<std::string>{"b:cancelled", "a:cancelled", "group ended", "timed out"}));
}

TEST(GroupLoop, DestroyingALoopWithAGroupRunningLeavesNothingBehind) {
  auto loop = std::make_unique<Loop>();
  ASSERT_FALSE(loop->open());
  std::vector<std::string> log;
  auto task = spawn(*loop, [&]() -> Task<> {
    TaskGroup group;
    (void)co_await group.run([&]() -> Task<> {
      (void)group.spawn(sleeper, &log, "a", 1h, Error());
      (void)co_await sleep(1h);
    }());
  });
  ASSERT_FALSE(loop->run(RunMode::NoWait));
  EXPECT_EQ(live_tasks(*loop), 2u);
  loop.reset();
  EXPECT_EQ(task.state(), TaskState::Cancelled);
  EXPECT_TRUE(log.empty());
}

#if defined(__cpp_exceptions)
TEST_F(GroupTest, ExceptionsFromSeveralChildrenComeBackTogether) {
  std::size_t thrown = 0;
  auto task = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    try {
      (void)co_await group.run([&]() -> Task<> {
        for (int i = 0; i < 2; ++i) {
          (void)group.spawn([]() -> Task<> {
            (void)co_await yield();
            throw std::runtime_error("child");
          });
        }
        co_return;
      }());
    } catch (const TaskGroupError& e) {
      thrown = e.exceptions().size();
    }
  });
  step(0s);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(thrown, 2u) << "the second child failed in the same iteration, before the cancellation reached it";
}
#endif

// A group inside a scope that is already cancelled, whose body then fails: the failure
// cancels the group too, and the group still says a cancellation from outside reached it.
// A cancel() after a failure says so as well.
TEST_F(GroupTest, CancelledStaysTrueWhenAFailureFollowsACancellationFromOutsideOrPrecedesACancel) {
  std::vector<bool> cancelled;
  std::vector<std::size_t> failures;
  auto task = spawn(loop, [&]() -> Task<> {
    CancellationScope shield_scope(shield);
    (void)shield_scope.set_timeout(0ms);  // cancelled as soon as the body starts
    auto scoped = co_await shield_scope.run([&]() -> Task<> {
      TaskGroup group;
      auto ended = co_await group.run([]() -> Task<Error> { co_return Error(EIO); }());
      cancelled.push_back(ended.cancelled());
      failures.push_back(ended.failures().size());
    }());
    EXPECT_TRUE(scoped.timed_out());
    TaskGroup second;
    auto ended = co_await second.run([&]() -> Task<Error> {
      (void)second.spawn([]() -> Task<Error> { co_return Error(EPIPE); });
      (void)co_await yield();
      second.cancel();
      co_return Error();
    }());
    cancelled.push_back(ended.cancelled());
    failures.push_back(ended.failures().size());
    TaskGroup failing_alone;
    auto alone = co_await failing_alone.run([]() -> Task<Error> { co_return Error(EIO); }());
    cancelled.push_back(alone.cancelled());
  });
  for (int i = 0; i < 4 && !task.done(); ++i)
    step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(cancelled, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(failures, (std::vector<std::size_t>{1, 1}));
}

}  // namespace
}  // namespace evflow
