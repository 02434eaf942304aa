#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/fake_clock.hpp"
#include "tests/support/unwind_counter.hpp"

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

enum class Kind : uint8_t { Group, Supervisor };

std::string kind_name(Kind kind) { return kind == Kind::Group ? "TaskGroup" : "SupervisorGroup"; }

// --- Several failures in one iteration ------------------------------------------------

// Fails with `code` at 5 ms; `late` yields first, which puts its timer behind those of the
// tasks that start in the same phase without yielding.
Task<Error> fails_at_5ms(int code, bool late) {
  if (late) (void)co_await yield();
  const Error slept = co_await sleep(5ms);
  co_return slept ? slept : Error(code);
}
Task<Result<int>> result_fails_at_5ms(int code, bool late) {
  const Error failed = co_await fails_at_5ms(code, late);
  if (failed) co_return failed;
  co_return 0;
}

class GroupFailures : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<Kind> {
 protected:
  template <class Group>
  void check() {
    std::vector<std::string> log;
    std::vector<int> failures;
    Error body_value;
    bool cancelled = true;
    auto task = spawn(loop, [&]() -> Task<> {
      Group group;
      auto ended = co_await group.run([&]() -> Task<Error> {
        (void)group.spawn(fails_at_5ms, EIO, true);
        (void)group.spawn(result_fails_at_5ms, EPIPE, false);
        (void)group.spawn(result_fails_at_5ms, ENOENT, true);
        (void)group.spawn(fails_at_5ms, EACCES, false);
        (void)group.spawn(sleeper, &log, "sibling", 7ms, Error());
        co_return co_await fails_at_5ms(EINVAL, false);  // the body's timer starts first
      }());
      for (Error e : ended.failures())
        failures.push_back(e.code());
      body_value = ended.value();
      cancelled = ended.cancelled();
    });
    step(0s);
    step(5ms);
    step(2ms);
    ASSERT_TRUE(task.done());
    EXPECT_EQ(failures, (std::vector<int>{EINVAL, EPIPE, EACCES, EIO, ENOENT}))
        << "every failure of the iteration, in the order the tasks ended";
    EXPECT_EQ(body_value.code(), EINVAL);
    EXPECT_FALSE(cancelled) << "failures are not a cancellation from outside";
    const bool supervised = std::is_same_v<Group, SupervisorGroup>;
    EXPECT_EQ(log, (std::vector<std::string>{supervised ? "sibling:slept" : "sibling:cancelled"}));
    EXPECT_EQ(live_tasks(loop), 0u);
  }
};

TEST_P(GroupFailures, OfTheSameIterationAreAllReportedInTheOrderTheTasksEnded) {
  if (GetParam() == Kind::Group) {
    check<TaskGroup>();
  } else {
    check<SupervisorGroup>();
  }
}

INSTANTIATE_TEST_SUITE_P(BothKinds, GroupFailures, ::testing::Values(Kind::Group, Kind::Supervisor),
                         [](const ::testing::TestParamInfo<Kind>& param_info) { return kind_name(param_info.param); });

// --- A cancellation in the same iteration as a child's completion ----------------------

enum class Canceller : uint8_t { Group, ChildHandle };
enum class First : uint8_t { Completion, Cancellation };
enum class ChildEnds : uint8_t { Value, Fails };
using RaceCase = std::tuple<Kind, Canceller, First, ChildEnds>;

class GroupCancelledAsAChildEnds : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<RaceCase> {
 protected:
  template <class Group>
  void check() {
    const auto kind = std::get<0>(GetParam());
    const auto canceller = std::get<1>(GetParam());
    const auto first = std::get<2>(GetParam());
    const auto child_ends = std::get<3>(GetParam());
    std::vector<std::string> log;
    std::vector<int> failures;
    bool cancelled = false;
    Group* running = nullptr;
    TaskHandle<Error> child;
    Timer at_1ms(loop);
    auto cancel = [&] {
      if (canceller == Canceller::Group) {
        running->cancel();
      } else {
        child.cancel();
      }
    };
    auto task = spawn(loop, [&]() -> Task<> {
      Group group;
      running = &group;
      auto ended = co_await group.run([&]() -> Task<> {
        if (first == First::Cancellation) {
          EXPECT_FALSE(at_1ms.start(1ms, [&cancel] { cancel(); }));  // before the child's sleep
        }
        child = group.spawn(sleeper, &log, "child", 1ms, child_ends == ChildEnds::Fails ? Error(EIO) : Error());
        log.push_back((co_await sleep(3ms)) ? "body:cancelled" : "body:slept");
      }());
      for (Error e : ended.failures())
        failures.push_back(e.code());
      cancelled = ended.cancelled();
    });
    step(0s);
    if (first == First::Completion) {
      ASSERT_FALSE(at_1ms.start(1ms, [&cancel] { cancel(); }));  // after the child's sleep
    }
    step(1ms);
    step(2ms);
    ASSERT_TRUE(task.done());

    const bool completed = first == First::Completion;
    const bool failed = completed && child_ends == ChildEnds::Fails;
    const bool body_cancelled =
        canceller == Canceller::Group || (failed && kind == Kind::Group);  // a failure cancels a TaskGroup
    const std::string child_line = !completed ? "child:cancelled" : "child:slept";
    std::sort(log.begin(), log.end());  // the order of unwinding is not the point
    EXPECT_EQ(log, (std::vector<std::string>{body_cancelled ? "body:cancelled" : "body:slept", child_line}));
    EXPECT_EQ(failures, failed ? std::vector<int>{EIO} : std::vector<int>{})
        << "a completion before the cancellation keeps its result; ECANCELED is no failure";
    EXPECT_EQ(cancelled, canceller == Canceller::Group) << "only the group's cancel() is a cancellation of the group";
    EXPECT_EQ(child.state(), TaskState::Completed) << "a cancelled child returns, passing ECANCELED on";
    EXPECT_EQ(live_tasks(loop), 0u);
  }
};

TEST_P(GroupCancelledAsAChildEnds, TheCallbackThatComesFirstDecidesAndNothingElseIsTouched) {
  if (std::get<0>(GetParam()) == Kind::Group) {
    check<TaskGroup>();
  } else {
    check<SupervisorGroup>();
  }
}

std::string race_case_name(const ::testing::TestParamInfo<RaceCase>& param_info) {
  const auto [kind, canceller, first, child_ends] = param_info.param;
  return kind_name(kind) + (canceller == Canceller::Group ? "_GroupCancel" : "_ChildHandleCancel") +
         (first == First::Completion ? "_CompletionFirst" : "_CancellationFirst") +
         (child_ends == ChildEnds::Value ? "_ChildGivesAValue" : "_ChildFails");
}

INSTANTIATE_TEST_SUITE_P(EveryOrder, GroupCancelledAsAChildEnds,
                         ::testing::Combine(::testing::Values(Kind::Group, Kind::Supervisor),
                                            ::testing::Values(Canceller::Group, Canceller::ChildHandle),
                                            ::testing::Values(First::Completion, First::Cancellation),
                                            ::testing::Values(ChildEnds::Value, ChildEnds::Fails)),
                         race_case_name);

// --- Nested groups, cancelled at each level ------------------------------------------
//
// The task runs group 0; its body spawns leaf0 and a child that runs group 1, whose body
// spawns leaf1 and a child that runs group 2, whose body spawns leaf2. Every body and
// leaf sleeps 5 ms; a cancellation comes at 1 ms. After its group returns, the task that
// ran group d awaits a 1 ms sleep: after[d].

enum class CancelAt : uint8_t { Task, Outer, Middle, Inner };

struct Tree {
  std::vector<std::string> log;
  TaskGroup* groups[3] = {};
  bool cancelled[3] = {};
  int after[3] = {-1, -1, -1};
  int unwound = 0;
};

Task<> tree_leaf(Tree* tree, std::string name) {
  testing::UnwindCounter guard{&tree->unwound};
  const Error slept = co_await sleep(5ms);
  tree->log.push_back(name + (slept ? ":cancelled" : ":slept"));
}

Task<> tree_level(Tree* tree, int depth) {
  testing::UnwindCounter guard{&tree->unwound};
  TaskGroup group;
  tree->groups[depth] = &group;
  auto ended = co_await group.run([](Tree* in, TaskGroup* level_group, int level) -> Task<> {
    (void)level_group->spawn(tree_leaf, in, "leaf" + std::to_string(level));
    if (level < 2) (void)level_group->spawn(tree_level, in, level + 1);
    co_await tree_leaf(in, "body" + std::to_string(level));
  }(tree, &group, depth));
  tree->groups[depth] = nullptr;
  tree->cancelled[depth] = ended.cancelled();
  tree->after[depth] = (co_await sleep(1ms)).code();  // an inner group does not swallow a cancellation
}

class NestedGroups : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<CancelAt> {};

TEST_P(NestedGroups, ACancellationReachesEveryDescendantBelowItAndOutlivesTheInnerGroups) {
  const CancelAt at = GetParam();
  Tree tree;
  auto task = spawn(loop, tree_level, &tree, 0);
  step(0s);
  step(1ms);
  ASSERT_EQ(live_tasks(loop), 6u) << "the task, three leaves, two inner levels";
  if (at == CancelAt::Task) {
    task.cancel();
  } else {
    tree.groups[static_cast<int>(at) - 1]->cancel();
  }
  step(0s);
  for (int i = 0; i < 10 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());

  // The level the cancellation came in at: 0 for the task and the outer group.
  const int from = at == CancelAt::Task ? 0 : static_cast<int>(at) - 1;
  std::vector<std::string> expected_log;
  for (int depth = 0; depth < 3; ++depth) {
    const char* how = depth >= from ? ":cancelled" : ":slept";
    expected_log.push_back("body" + std::to_string(depth) + how);
    expected_log.push_back("leaf" + std::to_string(depth) + how);
  }
  std::sort(tree.log.begin(), tree.log.end());
  std::sort(expected_log.begin(), expected_log.end());
  EXPECT_EQ(tree.log, expected_log) << "every descendant below the cancelled level, nothing above it";
  for (int depth = 0; depth < 3; ++depth) {
    SCOPED_TRACE("group " + std::to_string(depth));
    EXPECT_EQ(tree.cancelled[depth], depth >= from) << "cancelled(): by its cancel() or from outside it";
    // The group's own cancel() ends with the group; one from further out goes on.
    const bool still_cancelled = at == CancelAt::Task ? true : depth > from;
    EXPECT_EQ(tree.after[depth], still_cancelled ? ECANCELED : 0);
  }
  EXPECT_EQ(tree.unwound, 9) << "three levels, three leaves, three bodies";
  EXPECT_EQ(live_tasks(loop), 0u);
  EXPECT_EQ(loop.active_watchers(), 0);
}

std::string cancel_at_name(const ::testing::TestParamInfo<CancelAt>& param_info) {
  constexpr const char* kNames[] = {"TaskHandle", "OuterGroup", "MiddleGroup", "InnerGroup"};
  return kNames[static_cast<int>(param_info.param)];
}

INSTANTIATE_TEST_SUITE_P(EachLevel, NestedGroups,
                         ::testing::Values(CancelAt::Task, CancelAt::Outer, CancelAt::Middle, CancelAt::Inner),
                         cancel_at_name);

// --- A child in a shielded cleanup when the group is cancelled ------------------------

enum class ShieldBy : uint8_t { Shielded, ShieldScope };
enum class CancelBy : uint8_t { GroupCancel, TaskHandle, SiblingFailure, Deadline };
using ShieldCase = std::tuple<ShieldBy, CancelBy>;

// Two awaits in the shield: a 2 ms sleep, then a 1 ms one.
Task<Error> cleanup(std::vector<std::string>* log, int* unwound) {
  testing::UnwindCounter guard{unwound};
  const Error first = co_await sleep(2ms);
  log->push_back(first ? "cleanup 1:cancelled" : "cleanup 1:slept");
  const Error second = co_await sleep(1ms);
  log->push_back(second ? "cleanup 2:cancelled" : "cleanup 2:slept");
  co_return first ? first : second;
}

Task<> worker(std::vector<std::string>* log, int* unwound, ShieldBy by) {
  testing::UnwindCounter guard{unwound};
  const Error worked = co_await sleep(1h);
  log->push_back(worked ? "work:cancelled" : "work:done");
  Error cleaned;
  if (by == ShieldBy::Shielded) {
    cleaned = co_await shielded(cleanup(log, unwound));
  } else {
    CancellationScope scope(shield);
    auto scoped = co_await scope.run(cleanup(log, unwound));
    cleaned = scoped.value();
    if (!scoped.completed()) log->push_back("shield scope not completed");
  }
  log->push_back(cleaned ? "cleanup:failed" : "cleanup:done");
  const Error after = co_await sleep(1ms);
  log->push_back(after ? "after:cancelled" : "after:slept");  // the cancellation applies again
}

class ShieldedCleanupInAGroup : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<ShieldCase> {};

TEST_P(ShieldedCleanupInAGroup, FinishesItsAwaitsBeforeTheGroupEndsAndNothingLeaks) {
  const auto by = std::get<0>(GetParam());
  const auto cancel_by = std::get<1>(GetParam());
  std::vector<std::string> log;
  int unwound = 0;
  TaskGroup* running = nullptr;
  bool cancelled = false;
  std::vector<int> failures;
  ScopeOutcome outcome = ScopeOutcome::Completed;
  auto task = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await with_timeout(cancel_by == CancelBy::Deadline ? 1ms : 1h, [&]() -> Task<> {
      TaskGroup group;
      running = &group;
      auto ended = co_await group.run([&]() -> Task<> {
        (void)group.spawn(worker, &log, &unwound, by);
        if (cancel_by == CancelBy::SiblingFailure) (void)group.spawn(sleeper, &log, "sibling", 1ms, Error(EIO));
        co_return;
      }());
      running = nullptr;
      cancelled = ended.cancelled();
      for (Error e : ended.failures())
        failures.push_back(e.code());
      log.push_back("group ended");
    }());
    outcome = scoped.outcome();
  });
  step(0s);
  step(1ms);
  if (cancel_by == CancelBy::GroupCancel) running->cancel();
  if (cancel_by == CancelBy::TaskHandle) task.cancel();
  step(0s);
  step(1ms);
  step(1ms);
  EXPECT_FALSE(task.done()) << "the cleanup's second sleep still runs";
  EXPECT_EQ(unwound, 0);
  step(1ms);
  ASSERT_TRUE(task.done());
  std::vector<std::string> expected_log{"work:cancelled", "cleanup 1:slept", "cleanup 2:slept",
                                        "cleanup:done",   "after:cancelled", "group ended"};
  if (cancel_by == CancelBy::SiblingFailure) expected_log.insert(expected_log.begin(), "sibling:slept");
  EXPECT_EQ(log, expected_log);
  EXPECT_EQ(cancelled, cancel_by != CancelBy::SiblingFailure) << "a failure is not a cancellation from outside";
  EXPECT_EQ(failures, cancel_by == CancelBy::SiblingFailure ? std::vector<int>{EIO} : std::vector<int>{});
  EXPECT_EQ(outcome, cancel_by == CancelBy::Deadline     ? ScopeOutcome::TimedOut
                     : cancel_by == CancelBy::TaskHandle ? ScopeOutcome::Cancelled
                                                         : ScopeOutcome::Completed);
  EXPECT_EQ(unwound, 2) << "the worker's frame and the cleanup's";
  EXPECT_EQ(live_tasks(loop), 0u);
  EXPECT_EQ(loop.active_watchers(), 0);
}

std::string shield_case_name(const ::testing::TestParamInfo<ShieldCase>& param_info) {
  constexpr const char* kCancels[] = {"GroupCancel", "TaskHandleCancel", "SiblingFailure", "Deadline"};
  const auto [by, cancel_by] = param_info.param;
  return std::string(by == ShieldBy::Shielded ? "Shielded_" : "ShieldScope_") + kCancels[static_cast<int>(cancel_by)];
}

INSTANTIATE_TEST_SUITE_P(EachShieldAndCancellation, ShieldedCleanupInAGroup,
                         ::testing::Combine(::testing::Values(ShieldBy::Shielded, ShieldBy::ShieldScope),
                                            ::testing::Values(CancelBy::GroupCancel, CancelBy::TaskHandle,
                                                              CancelBy::SiblingFailure, CancelBy::Deadline)),
                         shield_case_name);

// --- SupervisorGroup: failures and a cancellation at every moment ----------------------
//
// a fails at 2 ms, b gives a value at 4 ms, c fails at 4 ms; the group (its cancel(), or
// the task's handle) is cancelled at some moment, or never.

enum class Moment : uint8_t { Never, At1ms, At2msBeforeTheFailure, At2msAfterTheFailure, At3ms };
using SupervisorCase = std::tuple<Moment, CancelBy>;

class SupervisorCancelled : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<SupervisorCase> {};

TEST_P(SupervisorCancelled, ReportsEveryFailureBeforeItAndTouchesNoSiblingForAFailure) {
  const auto moment = std::get<0>(GetParam());
  const auto canceller = std::get<1>(GetParam());
  std::vector<std::string> log;
  std::vector<int> failures;
  bool cancelled = false;
  SupervisorGroup* running = nullptr;
  TaskHandle<void> task;
  Timer timer(loop);
  auto cancel = [&] {
    if (canceller == CancelBy::GroupCancel) {
      running->cancel();
    } else {
      task.cancel();
    }
  };
  task = spawn(loop, [&]() -> Task<> {
    SupervisorGroup group;
    running = &group;
    auto ended = co_await group.run([&]() -> Task<> {
      if (moment == Moment::At2msBeforeTheFailure) {
        EXPECT_FALSE(timer.start(2ms, [&cancel] { cancel(); }));  // before the children's sleeps
      }
      (void)group.spawn(sleeper, &log, "a", 2ms, Error(EIO));
      (void)group.spawn(sleeper, &log, "b", 4ms, Error());
      (void)group.spawn(sleeper, &log, "c", 4ms, Error(EPIPE));
      co_return;
    }());
    for (Error e : ended.failures())
      failures.push_back(e.code());
    cancelled = ended.cancelled();
  });
  step(0s);
  if (moment == Moment::At1ms || moment == Moment::At2msAfterTheFailure || moment == Moment::At3ms) {
    // After the children's sleeps: at 2 ms, a's failure comes first.
    const auto after = moment == Moment::At1ms ? 1ms : moment == Moment::At3ms ? 3ms : 2ms;
    ASSERT_FALSE(timer.start(after, [&cancel] { cancel(); }));
  }
  for (int i = 0; i < 6 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());

  const bool a_failed = moment == Moment::Never || moment == Moment::At2msAfterTheFailure || moment == Moment::At3ms;
  std::vector<std::string> expected_log;
  std::vector<int> expected_failures;
  if (a_failed) {
    expected_log.push_back("a:slept");
    expected_failures.push_back(EIO);
  }
  if (moment == Moment::Never) {
    expected_log.insert(expected_log.end(), {"b:slept", "c:slept"});
    expected_failures.push_back(EPIPE);
  }
  for (const char* name : {"a", "b", "c"}) {
    const std::string line = std::string(name) + ":slept";
    if (std::find(expected_log.begin(), expected_log.end(), line) == expected_log.end())
      expected_log.push_back(std::string(name) + ":cancelled");
  }
  std::sort(log.begin(), log.end());
  std::sort(expected_log.begin(), expected_log.end());
  EXPECT_EQ(log, expected_log) << "a's failure reached neither b nor c";
  EXPECT_EQ(failures, expected_failures);
  EXPECT_EQ(cancelled, moment != Moment::Never);
  EXPECT_EQ(live_tasks(loop), 0u);
}

std::string supervisor_case_name(const ::testing::TestParamInfo<SupervisorCase>& param_info) {
  constexpr const char* kMoments[] = {"NotCancelled", "CancelledAt1ms", "CancelledAt2msBeforeTheFailure",
                                      "CancelledAt2msAfterTheFailure", "CancelledAt3ms"};
  const auto [moment, canceller] = param_info.param;
  return std::string(kMoments[static_cast<int>(moment)]) +
         (canceller == CancelBy::GroupCancel ? "_ByGroupCancel" : "_ByTaskHandle");
}

INSTANTIATE_TEST_SUITE_P(EveryMoment, SupervisorCancelled,
                         ::testing::Combine(::testing::Values(Moment::Never, Moment::At1ms,
                                                              Moment::At2msBeforeTheFailure,
                                                              Moment::At2msAfterTheFailure, Moment::At3ms),
                                            ::testing::Values(CancelBy::GroupCancel, CancelBy::TaskHandle)),
                         supervisor_case_name);

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

TEST_F(GroupTest, AnExceptionAndErrorFailuresOfOneIterationComeBackTogether) {
  std::size_t exceptions = 0;
  std::vector<int> errors;
  auto task = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    try {
      (void)co_await group.run([&]() -> Task<> {
        (void)group.spawn(fails_at_5ms, EIO, false);
        (void)group.spawn([]() -> Task<> {
          (void)co_await sleep(5ms);
          throw std::runtime_error("child");
        });
        (void)group.spawn(result_fails_at_5ms, EPIPE, false);
        co_return;
      }());
    } catch (const TaskGroupError& e) {
      exceptions = e.exceptions().size();
      for (Error error : e.errors())
        errors.push_back(error.code());
    }
  });
  step(0s);
  step(5ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(exceptions, 1u);
  EXPECT_EQ(errors, (std::vector<int>{EIO, EPIPE})) << "the Error failures beside the exception, in order";
  EXPECT_EQ(live_tasks(loop), 0u);
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
