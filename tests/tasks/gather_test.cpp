#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using GatherTest = testing::FakeClockLoopTest;

struct Log {
  std::vector<std::string> lines;
  int running = 0;
  int most_running = 0;
};

// Gives `value` after `duration`; passes a cancellation on as ECANCELED.
Task<Result<int>> value_after(Log* log, std::string name, Timer::Duration duration, int value) {
  log->most_running = std::max(log->most_running, ++log->running);
  const Error slept = co_await sleep(duration);
  --log->running;
  log->lines.push_back(name + (slept ? ":cancelled" : ":value"));
  if (slept) co_return slept;
  co_return value;
}
// Fails with `code` after `duration`.
Task<Result<int>> failure_after(Log* log, std::string name, Timer::Duration duration, int code) {
  const Error slept = co_await sleep(duration);
  log->lines.push_back(name + (slept ? ":cancelled" : ":failed"));
  co_return slept ? slept : Error(code);
}
Task<Result<int>> never(Log* log, std::string name) { return value_after(log, std::move(name), 1h, 0); }

TEST_F(GatherTest, AllGivesEveryValueInArgumentOrder) {
  Log log;
  std::tuple<Result<int>, Result<int>, std::monostate> values{0, 0, {}};
  bool ok = false;
  auto task = spawn(loop, [&]() -> Task<> {
    auto both = co_await gather(all, value_after(&log, "a", 3ms, 1), value_after(&log, "b", 1ms, 2),
                                []() -> Task<> { co_return; }());
    ok = both.ok();
    if (ok) values = both.value();
  });
  step(0s);
  step(1ms);
  step(2ms);
  ASSERT_TRUE(task.done());
  ASSERT_TRUE(ok);
  EXPECT_EQ(std::get<0>(values).value(), 1);
  EXPECT_EQ(std::get<1>(values).value(), 2);
  EXPECT_EQ(log.lines, (std::vector<std::string>{"b:value", "a:value"}));
}

TEST_F(GatherTest, AllCancelsTheRestAtTheFirstFailureReportsEveryFailureAndAwaitsTheLosers) {
  Log log;
  std::vector<int> failures;
  bool ok = true;
  auto task = spawn(loop, [&]() -> Task<> {
    auto both = co_await gather(all, failure_after(&log, "a", 1ms, EIO), never(&log, "b"),
                                failure_after(&log, "c", 1ms, EPIPE));
    ok = both.ok();
    for (Error e : both.failures())
      failures.push_back(e.code());
    log.lines.push_back("gather returned");
  });
  step(0s);
  step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_FALSE(ok);
  EXPECT_EQ(failures, (std::vector<int>{EIO, EPIPE})) << "c failed in the same iteration: reported too";
  EXPECT_EQ(log.lines, (std::vector<std::string>{"a:failed", "c:failed", "b:cancelled", "gather returned"}));
  EXPECT_EQ(live_tasks(loop), 0u);
}

TEST_F(GatherTest, SettleGivesEveryOutcomeAndCancelsNothing) {
  Log log;
  std::vector<Outcome<Result<int>>::Kind> kinds;
  auto task = spawn(loop, [&]() -> Task<> {
    // The deadline ends the task that never finishes; the failure ends nothing.
    auto scoped = co_await with_timeout(5ms, [&]() -> Task<> {
      auto settled =
          co_await gather(settle, value_after(&log, "a", 1ms, 1), failure_after(&log, "b", 2ms, EIO), never(&log, "c"));
      std::apply([&](auto&... o) { (kinds.push_back(o.kind()), ...); }, settled.value());
    }());
    EXPECT_TRUE(scoped.timed_out());
  });
  step(0s);
  step(1ms);
  step(1ms);
  EXPECT_FALSE(task.done()) << "the failure cancelled nothing";
  step(3ms);
  ASSERT_TRUE(task.done());
  using Kind = Outcome<Result<int>>::Kind;
  EXPECT_EQ(kinds, (std::vector<Kind>{Kind::Value, Kind::Failed, Kind::Cancelled}));
}

TEST_F(GatherTest, AnyGivesTheFirstSuccessAndCancelsAndAwaitsTheOthers) {
  Log log;
  int value = 0, index = -1;
  std::vector<int> failures;
  auto task = spawn(loop, [&]() -> Task<> {
    auto first = co_await gather(any, failure_after(&log, "a", 1ms, EIO), value_after(&log, "b", 2ms, 7),
                                 value_after(&log, "c", 5ms, 9));
    value = first.value().value();
    index = first.index();
    for (Error e : first.failures())
      failures.push_back(e.code());
  });
  step(0s);
  step(1ms);
  step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(value, 7);
  EXPECT_EQ(index, 1);
  EXPECT_EQ(failures, (std::vector<int>{EIO}));
  EXPECT_EQ(log.lines, (std::vector<std::string>{"a:failed", "b:value", "c:cancelled"}));
}

TEST_F(GatherTest, AnyWithNoSuccessGivesEveryFailure) {
  Log log;
  bool ok = true;
  std::vector<int> failures;
  auto task = spawn(loop, [&]() -> Task<> {
    auto first = co_await gather(any, failure_after(&log, "a", 1ms, EIO), failure_after(&log, "b", 2ms, EPIPE));
    ok = first.ok();
    for (Error e : first.failures())
      failures.push_back(e.code());
  });
  step(0s);
  step(1ms);
  step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_FALSE(ok);
  EXPECT_EQ(failures, (std::vector<int>{EIO, EPIPE}));
}

// Both end in the same iteration: the first to end wins, and the other's value, which
// came before the cancellation could reach it, is kept as a value, not a cancellation.
TEST_F(GatherTest, RaceGivesTheFirstToEndInAnyWayEvenWhenCompletionRacesTheCancellation) {
  Log log;
  int index = -1;
  Outcome<Result<int>>::Kind kind{};
  auto task = spawn(loop, [&]() -> Task<> {
    auto first = co_await gather(race, failure_after(&log, "a", 1ms, EIO), value_after(&log, "b", 1ms, 2));
    index = first.index();
    kind = first.value().kind();
  });
  step(0s);
  step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(index, 0);
  EXPECT_EQ(kind, Outcome<Result<int>>::Kind::Failed);
  EXPECT_EQ(log.lines, (std::vector<std::string>{"a:failed", "b:value"}));
}

TEST_F(GatherTest, TheRangeFormRunsAtMostLimitAtOnceAndKeepsTheOrder) {
  Log log;
  std::vector<int> values;
  auto task = spawn(loop, [&]() -> Task<> {
    std::vector<Task<Result<int>>> tasks;
    for (int i = 0; i < 5; ++i)
      tasks.push_back(value_after(&log, std::to_string(i), std::chrono::milliseconds(5 - i), i * 10));
    auto every = co_await gather(all, std::move(tasks), 2);
    for (auto& r : every.value())
      values.push_back(r.value());
  });
  for (int i = 0; i < 20 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(values, (std::vector<int>{0, 10, 20, 30, 40}));
  EXPECT_EQ(log.most_running, 2);
}

TEST_F(GatherTest, ACancellationFromOutsideEndsEveryTaskAndIsReported) {
  Log log;
  bool cancelled = false;
  auto task = spawn(loop, [&]() -> Task<> {
    auto both = co_await gather(all, never(&log, "a"), never(&log, "b"));
    cancelled = both.cancelled() && !both.ok();
  });
  step(0s);
  task.cancel();
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_TRUE(cancelled);
  std::sort(log.lines.begin(), log.lines.end());
  EXPECT_EQ(log.lines, (std::vector<std::string>{"a:cancelled", "b:cancelled"}));
  EXPECT_EQ(live_tasks(loop), 0u);
}

// A gather that decided by itself (race's winner, all's failure) was not cancelled from
// outside: cancelled() stays false though it cancelled its losers.
TEST_F(GatherTest, AGatherThatCancelsItsOwnLosersIsNotCancelledFromOutside) {
  Log log;
  std::vector<bool> cancelled;
  auto task = spawn(loop, [&]() -> Task<> {
    auto raced = co_await gather(race, value_after(&log, "a", 1ms, 1), never(&log, "b"));
    cancelled.push_back(raced.cancelled());
    auto all_of = co_await gather(all, failure_after(&log, "c", 1ms, EIO), never(&log, "d"));
    cancelled.push_back(all_of.cancelled());
  });
  for (int i = 0; i < 4 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(cancelled, (std::vector<bool>{false, false}));
}

}  // namespace
}  // namespace evflow
