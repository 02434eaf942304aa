#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <ostream>
#include <string>
#include <tuple>
#include <variant>
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

// --- Every combination of outcomes, for each strategy -------------------------------
//
// Each case runs two or three children, each ending in one way, inside a 10 ms deadline
// (with_timeout around the gather), and compares what gather gives with a model of the
// header's rules. Children end one per millisecond, the last argument first
// (Staggered: a decision cancels those still running), or all in the iteration at 1 ms
// (SameIteration: each one completed before any decision could reach it).

enum class Ends : uint8_t { Value, Fails, CancelsItself, Never };
enum class Strategy : uint8_t { All, Settle, Any, Race };
enum class Returns : uint8_t { Result, Error };
enum class Timing : uint8_t { Staggered, SameIteration };

struct Case {
  Strategy strategy;
  Returns returns;
  Timing timing;
  std::vector<Ends> ends;
};

constexpr int kCodes[] = {EIO, EPIPE, ENOENT};
constexpr auto kDeadline = 10ms;

// How each child ended, and how many run now.
struct Children {
  std::vector<std::string> how;
  int running = 0;
};
struct Running {
  Children* children;
  ~Running() { --children->running; }
};

template <class T>
T value_for(int index);
template <>
Result<int> value_for<Result<int>>(int index) {
  return 100 + index;
}
template <>
Error value_for<Error>(int) {
  return Error();
}
int id_of(const Result<int>& value) { return value.ok() ? value.value() : -1; }
int id_of(Error value) { return value ? -1 : 0; }
int expected_id(Returns returns, int index) { return returns == Returns::Result ? 100 + index : 0; }

Task<Error> pending() { co_return co_await sleep(1h); }

template <class T>
Task<T> child(Children* children, int index, Ends ends, Timer::Duration after) {
  ++children->running;
  Running running{children};
  std::string& how = children->how[static_cast<std::size_t>(index)];
  const Error slept = co_await sleep(ends == Ends::Never ? Timer::Duration(1h) : after);
  if (slept) {
    how = "cancelled";
    co_return T(slept);  // passes the cancellation on
  }
  if (ends == Ends::Value) {
    how = "value";
    co_return value_for<T>(index);
  }
  if (ends == Ends::Fails) {
    how = "failed";
    co_return T(Error(kCodes[index]));
  }
  CancellationScope own;  // Ends::CancelsItself
  own.cancel();
  auto scoped = co_await own.run(pending());
  how = scoped.cancelled() ? "cancelled" : "not cancelled";
  co_return T(scoped.value());
}

// What a gather gave, in the terms of the model.
struct Seen {
  bool ok = false;
  std::vector<int> failures;
  int index = -1;
  bool cancelled = false;
  std::vector<std::string> value;  // each value or Outcome that value() holds
  std::vector<std::string> how;    // how each child ended
  bool timed_out = false;
};

std::string describe(Result<int>& value) { return "value:" + std::to_string(id_of(value)); }
std::string describe(Error& value) { return "value:" + std::to_string(id_of(value)); }
std::string describe(std::monostate&) { return "value"; }
template <class T>
std::string describe(Outcome<T>& outcome) {
  if (outcome.has_value()) return describe(outcome.value());
  return (outcome.failed() ? "failed:" : "cancelled:") + std::to_string(outcome.error().code());
}

template <class V>
Seen observe(GatherResult<V>& result) {
  Seen seen;
  seen.ok = result.ok();
  for (Error e : result.failures())
    seen.failures.push_back(e.code());
  seen.index = result.index();
  seen.cancelled = result.cancelled();
  if (result.ok()) {
    V& value = result.value();
    if constexpr (requires { std::tuple_size<V>::value; }) {
      std::apply([&](auto&... each) { (seen.value.push_back(describe(each)), ...); }, value);
    } else if constexpr (requires { value.begin(); }) {
      for (auto& each : value)
        seen.value.push_back(describe(each));
    } else {
      seen.value.push_back(describe(value));
    }
  }
  return seen;
}

// Two children: the variadic forms; three: the range forms.
template <class T>
Task<Seen> gather_by(Strategy strategy, std::vector<Task<T>> tasks) {
  if (tasks.size() == 2) {
    switch (strategy) {
      case Strategy::All: {
        auto result = co_await gather(all, std::move(tasks[0]), std::move(tasks[1]));
        co_return observe(result);
      }
      case Strategy::Settle: {
        auto result = co_await gather(settle, std::move(tasks[0]), std::move(tasks[1]));
        co_return observe(result);
      }
      case Strategy::Any: {
        auto result = co_await gather(any, std::move(tasks[0]), std::move(tasks[1]));
        co_return observe(result);
      }
      case Strategy::Race: {
        auto result = co_await gather(race, std::move(tasks[0]), std::move(tasks[1]));
        co_return observe(result);
      }
    }
  }
  switch (strategy) {
    case Strategy::All: {
      auto result = co_await gather(all, std::move(tasks));
      co_return observe(result);
    }
    case Strategy::Settle: {
      auto result = co_await gather(settle, std::move(tasks));
      co_return observe(result);
    }
    case Strategy::Any: {
      auto result = co_await gather(any, std::move(tasks));
      co_return observe(result);
    }
    case Strategy::Race:
      break;
  }
  auto result = co_await gather(race, std::move(tasks));
  co_return observe(result);
}

// The rules of gather.hpp's header comment, applied to one case.
Seen expected(const Case& c) {
  const int n = static_cast<int>(c.ends.size());
  Seen model;
  model.how.assign(c.ends.size(), "cancelled");
  std::vector<std::string> outcome(c.ends.size(), "cancelled:" + std::to_string(ECANCELED));
  int winner = -1;
  for (int step = 0; step < n; ++step) {
    const int i = c.timing == Timing::Staggered ? n - 1 - step : step;  // in the order they end
    const auto at = static_cast<std::size_t>(i);
    if (c.ends[at] == Ends::Never) continue;
    if (c.timing == Timing::Staggered && winner >= 0) continue;  // cancelled by the decision
    bool decides = c.strategy == Strategy::Race;
    if (c.ends[at] == Ends::Value) {
      model.how[at] = "value";
      outcome[at] = "value:" + std::to_string(expected_id(c.returns, i));
      decides = decides || c.strategy == Strategy::Any;
    } else if (c.ends[at] == Ends::Fails) {
      model.how[at] = "failed";
      outcome[at] = "failed:" + std::to_string(kCodes[i]);
      model.failures.push_back(kCodes[i]);
      decides = decides || c.strategy == Strategy::All;
    }
    if (decides && winner < 0) winner = i;
  }
  const bool never = std::find(c.ends.begin(), c.ends.end(), Ends::Never) != c.ends.end();
  model.timed_out = winner < 0 && never;  // the deadline ends the gather
  model.cancelled = model.timed_out;      // a cancellation from outside reached it
  switch (c.strategy) {
    case Strategy::All:
      model.ok = std::all_of(c.ends.begin(), c.ends.end(), [](Ends e) { return e == Ends::Value; });
      if (model.ok) model.value = outcome;
      break;
    case Strategy::Settle:
      model.ok = true;
      model.value = outcome;
      break;
    case Strategy::Any:
    case Strategy::Race:
      model.index = winner;
      model.ok = winner >= 0;
      if (model.ok) model.value = {outcome[static_cast<std::size_t>(winner)]};
      break;
  }
  return model;
}

void PrintTo(const Case& c, std::ostream* out) {
  constexpr const char* kStrategies[] = {"all", "settle", "any", "race"};
  constexpr const char* kEndNames[] = {"value", "fails", "cancels itself", "never"};
  *out << kStrategies[static_cast<int>(c.strategy)] << (c.returns == Returns::Result ? " of Result<int>" : " of Error")
       << (c.timing == Timing::Staggered ? ", staggered:" : ", in one iteration:");
  for (Ends e : c.ends)
    *out << " " << kEndNames[static_cast<int>(e)] << ";";
}

class GatherOutcomes : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<Case> {
 protected:
  template <class T>
  void check() {
    const Case& c = GetParam();
    const int n = static_cast<int>(c.ends.size());
    Children children;
    children.how.assign(c.ends.size(), "running");
    Seen seen;
    int running_at_return = -1;
    std::size_t tasks_at_return = 0;
    auto task = spawn(loop, [&]() -> Task<> {
      std::vector<Task<T>> tasks;
      for (int i = 0; i < n; ++i) {
        const auto after = c.timing == Timing::Staggered ? std::chrono::milliseconds(n - i) : 1ms;
        tasks.push_back(child<T>(&children, i, c.ends[static_cast<std::size_t>(i)], after));
      }
      auto scoped = co_await with_timeout(kDeadline, [&]() -> Task<> {
        seen = co_await gather_by<T>(c.strategy, std::move(tasks));
        running_at_return = children.running;  // nothing has run since gather returned
        tasks_at_return = live_tasks(loop);
      }());
      seen.timed_out = scoped.timed_out();
    });
    step(0s);
    for (int i = 0; i < 12 && !task.done(); ++i)
      step(1ms);
    ASSERT_TRUE(task.done());
    seen.how = children.how;
    const Seen model = expected(c);
    EXPECT_EQ(running_at_return, 0) << "every child has ended when gather returns";
    EXPECT_EQ(tasks_at_return, 1u) << "only the awaiting task is left";
    EXPECT_EQ(seen.ok, model.ok);
    EXPECT_EQ(seen.value, model.value);
    EXPECT_EQ(seen.failures, model.failures) << "every failure, in the order the children ended";
    if (c.strategy == Strategy::Any || c.strategy == Strategy::Race) {
      EXPECT_EQ(seen.index, model.index);
    }
    EXPECT_EQ(seen.cancelled, model.cancelled);
    EXPECT_EQ(seen.how, model.how) << "how each child ended";
    EXPECT_EQ(seen.timed_out, model.timed_out);
  }
};

TEST_P(GatherOutcomes, GiveWhatTheRulesSayAndEveryChildHasEndedWhenGatherReturns) {
  if (GetParam().returns == Returns::Result) {
    check<Result<int>>();
  } else {
    check<Error>();
  }
}

// Pairs for both value types and both timings, through the variadic forms; triples of
// Result<int> through the range forms.
std::vector<Case> every_case() {
  constexpr Ends kEnds[] = {Ends::Value, Ends::Fails, Ends::CancelsItself, Ends::Never};
  std::vector<Case> cases;
  for (Strategy strategy : {Strategy::All, Strategy::Settle, Strategy::Any, Strategy::Race}) {
    for (Timing timing : {Timing::Staggered, Timing::SameIteration}) {
      for (Returns returns : {Returns::Result, Returns::Error}) {
        for (Ends a : kEnds) {
          for (Ends b : kEnds)
            cases.push_back(Case{strategy, returns, timing, {a, b}});
        }
      }
      for (Ends a : kEnds) {
        for (Ends b : kEnds) {
          for (Ends c : kEnds)
            cases.push_back(Case{strategy, Returns::Result, timing, {a, b, c}});
        }
      }
    }
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  constexpr const char* kStrategies[] = {"All", "Settle", "Any", "Race"};
  constexpr const char* kEndNames[] = {"Value", "Fails", "CancelsItself", "Never"};
  const Case& c = info.param;
  std::string name = kStrategies[static_cast<int>(c.strategy)];
  name += c.returns == Returns::Result ? "_Result" : "_Error";
  name += c.timing == Timing::Staggered ? "_Staggered" : "_SameIteration";
  for (Ends e : c.ends)
    name += std::string("_") + kEndNames[static_cast<int>(e)];
  return name;
}

INSTANTIATE_TEST_SUITE_P(EveryCombination, GatherOutcomes, ::testing::ValuesIn(every_case()), case_name);

// A race whose every task a cancellation from outside ended made the first of them to
// unwind its winner: ok() with a Cancelled Outcome, an index chosen by the unwinding order,
// and cancelled() false although the cancellation had reached the gather.
TEST_F(GatherTest, ARaceEndedByACancellationFromOutsideHasNoWinnerAndSaysItWasCancelled) {
  Log log;
  Seen seen;
  auto task = spawn(loop, [&]() -> Task<> {
    auto first = co_await gather(race, never(&log, "a"), never(&log, "b"));
    seen = observe(first);
  });
  step(0s);
  task.cancel();
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_FALSE(seen.ok);
  EXPECT_EQ(seen.index, -1);
  EXPECT_TRUE(seen.cancelled);
  std::sort(log.lines.begin(), log.lines.end());
  EXPECT_EQ(log.lines, (std::vector<std::string>{"a:cancelled", "b:cancelled"}));
}

// Task<> children: one that returns while its task is not cancelled gives a value, one
// that returns under a cancellation is Cancelled (there is no value to pass ECANCELED on).
Task<> void_after(Log* log, std::string name, Timer::Duration duration) {
  const Error slept = co_await sleep(duration);
  log->lines.push_back(name + (slept ? ":cancelled" : ":returned"));
}

TEST_F(GatherTest, VoidTasksGiveAValueOrAreCancelledAccordingToHowTheirTaskEnded) {
  Log log;
  Seen raced, settled, raced_out;
  auto task = spawn(loop, [&]() -> Task<> {
    auto first = co_await gather(race, void_after(&log, "a", 2ms), void_after(&log, "b", 1ms));
    raced = observe(first);
    auto scoped = co_await with_timeout(5ms, [&]() -> Task<> {
      auto every = co_await gather(settle, void_after(&log, "c", 1ms), void_after(&log, "d", 1h));
      settled = observe(every);
    }());
    EXPECT_TRUE(scoped.timed_out());
    scoped = co_await with_timeout(5ms, [&]() -> Task<> {
      auto none = co_await gather(race, void_after(&log, "e", 1h), void_after(&log, "f", 1h));
      raced_out = observe(none);
    }());
    EXPECT_TRUE(scoped.timed_out());
  });
  for (int i = 0; i < 16 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(raced.index, 1);
  EXPECT_EQ(raced.value, (std::vector<std::string>{"value"}));
  EXPECT_EQ(settled.value, (std::vector<std::string>{"value", "cancelled:" + std::to_string(ECANCELED)}));
  EXPECT_FALSE(raced_out.ok) << "a deadline ended both: no winner";
  EXPECT_EQ(raced_out.index, -1);
  EXPECT_TRUE(raced_out.cancelled);
  std::sort(log.lines.begin() + 4, log.lines.end());
  EXPECT_EQ(log.lines, (std::vector<std::string>{"b:returned", "a:cancelled", "c:returned", "d:cancelled",
                                                 "e:cancelled", "f:cancelled"}));
}

// --- A cancellation from outside in the same iteration as a completion ---------------

enum class First : uint8_t { Completion, Cancellation };

class GatherCancelledAsATaskEnds : public testing::FakeClockLoopTest,
                                   public ::testing::WithParamInterface<std::tuple<Strategy, First>> {};

// The task's completion and the cancellation of the awaiting task are both timer
// callbacks at 1 ms: the one started first fires first and decides.
TEST_P(GatherCancelledAsATaskEnds, TheCallbackThatComesFirstDecides) {
  const auto strategy = std::get<0>(GetParam());
  const auto first = std::get<1>(GetParam());
  Log log;
  Seen seen;
  Timer canceller(loop);
  TaskHandle<void> task;
  auto cancel = [&] { task.cancel(); };
  task = spawn(loop, [&]() -> Task<> {
    if (first == First::Cancellation) {
      EXPECT_FALSE(canceller.start(1ms, cancel));  // before the tasks' sleeps
    }
    if (strategy == Strategy::Any) {
      auto result = co_await gather(any, value_after(&log, "a", 1ms, 7), never(&log, "b"));
      seen = observe(result);
    } else {
      auto result = co_await gather(race, value_after(&log, "a", 1ms, 7), never(&log, "b"));
      seen = observe(result);
    }
  });
  step(0s);
  if (first == First::Completion) {
    ASSERT_FALSE(canceller.start(1ms, cancel));  // after them
  }
  step(1ms);
  ASSERT_TRUE(task.done());
  if (first == First::Completion) {
    EXPECT_EQ(log.lines, (std::vector<std::string>{"a:value", "b:cancelled"}));
    EXPECT_TRUE(seen.ok);
    EXPECT_EQ(seen.index, 0);
    EXPECT_EQ(seen.value, (std::vector<std::string>{"value:7"}));
  } else {
    std::sort(log.lines.begin(), log.lines.end());
    EXPECT_EQ(log.lines, (std::vector<std::string>{"a:cancelled", "b:cancelled"}));
    EXPECT_FALSE(seen.ok);
    EXPECT_EQ(seen.index, -1);
    EXPECT_TRUE(seen.cancelled);
  }
  EXPECT_EQ(live_tasks(loop), 0u);
}

std::string strategy_and_first(const ::testing::TestParamInfo<std::tuple<Strategy, First>>& param_info) {
  const auto [strategy, first] = param_info.param;
  return std::string(strategy == Strategy::Any ? "Any" : "Race") +
         (first == First::Completion ? "_CompletionFirst" : "_CancellationFirst");
}

INSTANTIATE_TEST_SUITE_P(AnyAndRace, GatherCancelledAsATaskEnds,
                         ::testing::Combine(::testing::Values(Strategy::Any, Strategy::Race),
                                            ::testing::Values(First::Completion, First::Cancellation)),
                         strategy_and_first);

}  // namespace
}  // namespace evflow
