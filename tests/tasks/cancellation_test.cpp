#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <optional>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <evflow/evflow.hpp>
#include "tests/support/descriptors.hpp"
#include "tests/support/fake_clock.hpp"
#include "tests/support/unwind_counter.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using ScopeTest = testing::FakeClockLoopTest;

template <class T>
Error error_of(const Result<T>& result) {
  return result.error();
}

// Level-triggered: the deadline ends the pending sleep, and every later await of the
// body completes at once; the awaiting code sees TimedOut only after the body returned.
TEST_F(ScopeTest, ADeadlineEndsThePendingAwaitAndEveryLaterOneAndTimedOutComesAfterTheBodyUnwound) {
  auto pair = testing::make_socketpair();
  std::vector<std::string> events;
  auto body = [&events](int fd) -> Task<int> {
    events.push_back("sleep:" + std::to_string((co_await evflow::sleep(1h)).code()));
    events.push_back("sleep again:" + std::to_string((co_await evflow::sleep(1ms)).code()));
    events.push_back("yield:" + std::to_string((co_await yield()).code()));
    events.push_back("readable:" + std::to_string((co_await readable(fd)).error().code()));
    events.push_back("body returns");
    co_return 5;
  };
  auto task = spawn(
      loop,
      [&](int fd) -> Task<> {
        auto scoped = co_await with_timeout(10ms, body(fd));
        events.push_back(scoped.timed_out() ? "timed out" : "not timed out");
        events.push_back("value:" + std::to_string(scoped.value()));
        events.push_back("after:" + std::to_string((co_await evflow::sleep(1ms)).code()));
      },
      pair.a.get());
  step(0s);
  step(9ms);
  EXPECT_TRUE(events.empty());
  step(1ms);
  const std::string cancelled = std::to_string(ECANCELED);
  EXPECT_EQ(events, (std::vector<std::string>{"sleep:" + cancelled, "sleep again:" + cancelled, "yield:" + cancelled,
                                              "readable:" + cancelled, "body returns", "timed out", "value:5"}));
  step(1ms);  // the scope is over: the task's own awaits are not cancelled
  EXPECT_EQ(events.back(), "after:0");
  EXPECT_EQ(task.state(), TaskState::Completed);
  EXPECT_EQ(loop.active_watchers(), 0);
}

enum class AwaitKind { Sleep, Readable, Join, Notification, Signal, ChildExit };

std::string kind_name(const ::testing::TestParamInfo<AwaitKind>& info) {
  switch (info.param) {
    case AwaitKind::Sleep:
      return "Sleep";
    case AwaitKind::Readable:
      return "Readable";
    case AwaitKind::Join:
      return "Join";
    case AwaitKind::Notification:
      return "Notification";
    case AwaitKind::Signal:
      return "Signal";
    case AwaitKind::ChildExit:
      return "ChildExit";
  }
  return "Unknown";
}

class DeadlineInEachAwait : public testing::FakeClockLoopTest, public ::testing::WithParamInterface<AwaitKind> {
 protected:
  // One await of the kind under test; its error.
  Task<Error> await_one() {
    switch (GetParam()) {
      case AwaitKind::Sleep:
        co_return co_await evflow::sleep(1h);
      case AwaitKind::Readable:
        co_return error_of(co_await readable(pair.a.get()));
      case AwaitKind::Join:
        co_return error_of(co_await sleeper.join());
      case AwaitKind::Notification:
        co_return co_await note.wait();
#if !defined(_WIN32)
      case AwaitKind::Signal:
        co_return co_await usr1.next();
      case AwaitKind::ChildExit:
        co_return error_of(co_await child_exit(child));
#else
      default:
        break;
#endif
    }
    co_return Error(ENOSYS);
  }

  testing::SocketPair pair = testing::make_socketpair();
  TaskHandle<int> sleeper;
  Notification note{loop};
#if !defined(_WIN32)
  SignalWaiter usr1{loop};
  pid_t child = -1;
  int gate[2] = {-1, -1};
#endif
};

TEST_P(DeadlineInEachAwait, EndsTheAwaitWithEcanceledStopsItsWatcherAndTheScopeTimesOut) {
#if defined(_WIN32)
  if (GetParam() == AwaitKind::Signal || GetParam() == AwaitKind::ChildExit) {
    GTEST_SKIP() << "POSIX only";
  }
#else
  if (GetParam() == AwaitKind::Signal) {
    ASSERT_FALSE(usr1.start(SIGUSR1));
  }
  if (GetParam() == AwaitKind::ChildExit) {
    ASSERT_EQ(::pipe(gate), 0);
    child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      char c;
      (void)!::read(gate[0], &c, 1);
      _exit(0);
    }
  }
#endif
  if (GetParam() == AwaitKind::Join) {
    sleeper = spawn(loop, []() -> Task<int> {
      (void)co_await evflow::sleep(1h);
      co_return 1;
    });
  }
  step(0s);
  const int baseline = loop.active_watchers();
  Error seen;
  ScopeOutcome outcome = ScopeOutcome::Completed;
  auto task = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await with_timeout(5ms, [&]() -> Task<> { seen = co_await await_one(); }());
    outcome = scoped.outcome();
  });
  step(0s);
  EXPECT_GT(loop.active_watchers(), baseline) << "the await's watcher and the deadline";
  step(5ms);
  EXPECT_EQ(seen.code(), ECANCELED);
  EXPECT_EQ(outcome, ScopeOutcome::TimedOut);
  EXPECT_TRUE(task.done());
  // The await's watcher and the deadline's timer are stopped (a SignalWaiter's own
  // watcher stays, as between waits, and was counted in the baseline).
  EXPECT_EQ(loop.active_watchers(), baseline);
  if (GetParam() == AwaitKind::Join) {
    EXPECT_FALSE(sleeper.done()) << "the joined task goes on";
    sleeper.cancel();
    step(0s);
  }
#if !defined(_WIN32)
  if (child > 0) {
    (void)!::write(gate[1], "x", 1);
    int status = 0;
    EXPECT_EQ(::waitpid(child, &status, 0), child);
    ::close(gate[0]);
    ::close(gate[1]);
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(Kinds, DeadlineInEachAwait,
                         ::testing::Values(AwaitKind::Sleep, AwaitKind::Readable, AwaitKind::Join,
                                           AwaitKind::Notification, AwaitKind::Signal, AwaitKind::ChildExit),
                         kind_name);

Task<Error> sleep_for(Timer::Duration duration) { co_return co_await evflow::sleep(duration); }

TEST_F(ScopeTest, ReschedulingTheDeadlineMovesItAndClearingItRemovesIt) {
  CancellationScope moved(10ms);
  CancellationScope cleared(10ms);
  Error moved_sleep, cleared_sleep;
  ScopeOutcome moved_outcome = ScopeOutcome::Completed, cleared_outcome = ScopeOutcome::TimedOut;
  auto first = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await moved.run(sleep_for(1h));
    moved_sleep = scoped.value();
    moved_outcome = scoped.outcome();
  });
  auto second = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await cleared.run(sleep_for(30ms));
    cleared_sleep = scoped.value();
    cleared_outcome = scoped.outcome();
  });
  step(0s);
  step(5ms);
  ASSERT_FALSE(moved.set_timeout(20ms));  // now 25 ms after the start
  cleared.clear_deadline();
  step(5ms);
  step(14ms);
  EXPECT_FALSE(first.done()) << "the first deadline no longer applies";
  step(1ms);
  EXPECT_TRUE(first.done());
  EXPECT_EQ(moved_sleep.code(), ECANCELED);
  EXPECT_EQ(moved_outcome, ScopeOutcome::TimedOut);
  step(5ms);
  EXPECT_TRUE(second.done());
  EXPECT_FALSE(cleared_sleep) << "the sleep ran its 30 ms";
  EXPECT_EQ(cleared_outcome, ScopeOutcome::Completed);
}

TEST_F(ScopeTest, CancelEndsTheBodyWithCancelledAndTheRestOfTheTaskGoesOn) {
  CancellationScope scope;
  Error inside, after;
  ScopeOutcome outcome = ScopeOutcome::Completed;
  auto task = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await scope.run(sleep_for(1h));
    inside = scoped.value();
    outcome = scoped.outcome();
    after = co_await evflow::sleep(1ms);
  });
  step(0s);
  EXPECT_TRUE(scope.running());
  scope.cancel();  // from plain code, as a callback or another task would
  step(0s);
  EXPECT_EQ(inside.code(), ECANCELED);
  EXPECT_EQ(outcome, ScopeOutcome::Cancelled);
  EXPECT_FALSE(scope.running());
  step(1ms);
  EXPECT_TRUE(task.done());
  EXPECT_FALSE(after);
}

TEST_F(ScopeTest, AShieldKeepsTheTasksCancellationOutUntilItEnds) {
  std::vector<int> codes;
  auto task = spawn(loop, [&]() -> Task<> {
    codes.push_back((co_await shielded(sleep_for(10ms))).code());
    codes.push_back((co_await shielded(sleep_for(1ms))).code());  // a new shield: still protected
    codes.push_back((co_await evflow::sleep(1h)).code());         // outside: cancelled at once
  });
  step(0s);
  task.cancel();
  step(0s);
  EXPECT_TRUE(codes.empty()) << "the shielded sleep goes on";
  step(10ms);
  step(1ms);
  EXPECT_EQ(codes, (std::vector<int>{0, 0, ECANCELED}));
  EXPECT_EQ(task.state(), TaskState::Completed);
}

TEST_F(ScopeTest, AShieldObeysItsOwnDeadlineAndLiftingItLetsAnOuterCancellationIn) {
  CancellationScope guarded(shield);
  ASSERT_FALSE(guarded.set_timeout(5ms));
  CancellationScope lifted(shield);
  Error first, second;
  ScopeOutcome first_outcome = ScopeOutcome::Completed, second_outcome = ScopeOutcome::Completed;
  auto task = spawn(loop, [&]() -> Task<> {
    auto a = co_await guarded.run(sleep_for(1h));
    first = a.value();
    first_outcome = a.outcome();
    auto b = co_await lifted.run(sleep_for(1h));
    second = b.value();
    second_outcome = b.outcome();
  });
  step(0s);
  task.cancel();
  step(0s);
  EXPECT_FALSE(first) << "shielded";
  step(5ms);
  EXPECT_EQ(first.code(), ECANCELED);
  EXPECT_EQ(first_outcome, ScopeOutcome::TimedOut);
  step(0s);
  EXPECT_FALSE(second) << "the second shield holds the task's cancellation out";
  lifted.set_shield(false);
  step(0s);
  EXPECT_EQ(second.code(), ECANCELED);
  EXPECT_EQ(second_outcome, ScopeOutcome::Cancelled) << "the task's cancellation reached the body";
  EXPECT_TRUE(task.done());
}

TEST_F(ScopeTest, AnOuterDeadlineReachesAnInnerScopeAndAnInnerOneEndsOnlyItsOwn) {
  std::vector<ScopeOutcome> outcomes;
  Error after_inner;
  auto outer_expires = spawn(loop, [&]() -> Task<> {
    auto outer = co_await with_timeout(10ms, [&]() -> Task<> {
      auto inner = co_await with_timeout(20ms, sleep_for(1h));
      outcomes.push_back(inner.outcome());
    }());
    outcomes.push_back(outer.outcome());
  });
  step(0s);
  step(10ms);
  EXPECT_EQ(outcomes, (std::vector<ScopeOutcome>{ScopeOutcome::Cancelled, ScopeOutcome::TimedOut}));
  outcomes.clear();
  auto inner_expires = spawn(loop, [&]() -> Task<> {
    auto outer = co_await with_timeout(20ms, [&]() -> Task<> {
      auto inner = co_await with_timeout(5ms, sleep_for(1h));
      outcomes.push_back(inner.outcome());
      after_inner = co_await evflow::sleep(1ms);
    }());
    outcomes.push_back(outer.outcome());
  });
  step(0s);
  step(5ms);
  step(1ms);
  EXPECT_EQ(outcomes, (std::vector<ScopeOutcome>{ScopeOutcome::TimedOut, ScopeOutcome::Completed}));
  EXPECT_FALSE(after_inner);
  EXPECT_TRUE(outer_expires.done());
  EXPECT_TRUE(inner_expires.done());
}

TEST_F(ScopeTest, ADeadlineAlreadyPastCancelsTheBodyBeforeItsFirstAwait) {
  std::vector<int> codes;
  auto task = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await with_deadline(loop.now() - 1ms, [&]() -> Task<> {
      codes.push_back((co_await evflow::sleep(1h)).code());
      codes.push_back((co_await yield()).code());
    }());
    codes.push_back(static_cast<int>(scoped.outcome()));
  });
  step(0s);  // one iteration: nothing waited
  EXPECT_TRUE(task.done());
  EXPECT_EQ(codes, (std::vector<int>{ECANCELED, ECANCELED, static_cast<int>(ScopeOutcome::TimedOut)}));
}

TEST_F(ScopeTest, AScopeRunsOneBodyAtATimeAndItsCancellationIsPermanent) {
  CancellationScope scope;
  bool second_body_ran = false;
  Error busy, rerun;
  auto first = spawn(loop, [&]() -> Task<> { (void)co_await scope.run(sleep_for(1h)); });
  step(0s);
  auto second = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await scope.run([&]() -> Task<> {
      second_body_ran = true;
      co_return;
    }());
    busy = scoped.error();
  });
  step(0s);
  EXPECT_EQ(busy.code(), EBUSY);
  EXPECT_FALSE(second_body_ran);
  scope.cancel();
  step(0s);
  EXPECT_TRUE(first.done());
  auto third = spawn(loop, [&]() -> Task<> {
    auto scoped = co_await scope.run(sleep_for(1h));
    rerun = scoped.value();
  });
  step(0s);
  EXPECT_TRUE(third.done());
  EXPECT_EQ(rerun.code(), ECANCELED) << "a cancelled scope stays cancelled";
}

TEST_F(ScopeTest, SetTimeoutWhileABodyRunsAppliesToThisRunAndFromTheStartOfLaterOnes) {
  CancellationScope scope(1s);
  std::vector<ScopeOutcome> outcomes;
  auto task = spawn(loop, [&]() -> Task<> {
    for (int run = 0; run < 2; ++run) {
      auto scoped = co_await scope.run([&]() -> Task<> {
        (void)scope.set_timeout(5ms);
        (void)co_await evflow::sleep(3ms);
      }());
      outcomes.push_back(scoped.outcome());
    }
  });
  step(0s);
  step(3ms);  // the first run's sleep ends before its 5 ms
  step(3ms);  // the second run started 3 ms after the first: its deadline is its own
  EXPECT_EQ(outcomes, (std::vector<ScopeOutcome>{ScopeOutcome::Completed, ScopeOutcome::Completed}));
  EXPECT_TRUE(task.done());
}

TEST_F(ScopeTest, AnEmptyBodyIsEnomemWithoutRunning) {
  Error refused;
  auto task = spawn(loop, [&]() -> Task<> {
    Task<Error> body = sleep_for(1ms);
    Task<Error> taken = std::move(body);
    auto scoped = co_await with_timeout(5ms, std::move(body));  // NOLINT(bugprone-use-after-move): empty on purpose
    refused = scoped.error();
  });
  step(0s);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(refused.code(), ENOMEM);
}

TEST(ScopeLoop, DestroyingALoopWhileABodyWaitsInsideAScopeWithADeadlineLeavesNothingBehind) {
  auto loop = std::make_unique<Loop>();
  ASSERT_FALSE(loop->open());
  int unwound = 0;
  using Guard = testing::UnwindCounter;
  auto task = spawn(*loop, [&unwound]() -> Task<> {
    Guard outer{&unwound};
    (void)co_await with_timeout(1h, [](int* count) -> Task<> {
      Guard inner{count};
      (void)co_await shielded(sleep_for(2h));
    }(&unwound));
  });
  ASSERT_FALSE(loop->run(RunMode::NoWait));
  loop.reset();
  EXPECT_EQ(unwound, 2);
  EXPECT_EQ(task.state(), TaskState::Cancelled);
}

// move_on_after / fail_after: the value in time, else nothing or ETIMEDOUT, after the body
// has unwound; the body's own errors pass through fail_after.
TEST_F(ScopeTest, MoveOnAfterGivesTheValueInTimeAndNothingOnceTheDeadlineEndedTheBody) {
  std::vector<std::string> log;
  auto task = spawn(loop, [&]() -> Task<> {
    auto slow = [&](Timer::Duration d, int v) -> Task<int> {
      const Error slept = co_await evflow::sleep(d);
      log.push_back(slept ? "unwound" : "slept");
      co_return v;
    };
    std::optional<int> fast = co_await move_on_after(5ms, slow(1ms, 1));
    log.push_back(fast ? "got " + std::to_string(*fast) : "nothing");
    std::optional<int> late = co_await move_on_after(2ms, slow(1h, 2));
    log.push_back(late ? "got " + std::to_string(*late) : "nothing");
    const bool finished = co_await move_on_at(loop.now() + 1ms, [&]() -> Task<> {
      (void)co_await evflow::sleep(1h);
      log.push_back("void unwound");
    }());
    log.push_back(finished ? "void finished" : "void moved on");
    Task<int> body = slow(1ms, 3);
    Task<int> taken = std::move(body);
    std::optional<int> empty = co_await move_on_after(5ms, std::move(body));  // NOLINT(bugprone-use-after-move)
    log.push_back(empty ? "empty ran" : "empty gave nothing");
  });
  for (int i = 0; i < 10 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(log, (std::vector<std::string>{"slept", "got 1", "unwound", "nothing", "void unwound", "void moved on",
                                           "empty gave nothing"}));
}

TEST_F(ScopeTest, FailAfterGivesTheValueOrEtimedoutAndPassesTheBodysErrorsThrough) {
  std::vector<int> codes;
  auto task = spawn(loop, [&]() -> Task<> {
    Result<int> in_time = co_await fail_after(5ms, [&]() -> Task<int> {
      (void)co_await evflow::sleep(1ms);
      co_return 4;
    }());
    codes.push_back(in_time.ok() ? in_time.value() : -in_time.error().code());
    Result<int> late = co_await fail_after(1ms, [&]() -> Task<int> {
      (void)co_await evflow::sleep(1h);
      co_return 5;
    }());
    codes.push_back(late.ok() ? late.value() : -late.error().code());
    Error own = co_await fail_at(loop.now() + 5ms, [&]() -> Task<Error> { co_return Error(EIO); }());
    codes.push_back(-own.code());
    Result<int> own_result = co_await fail_after(5ms, [&]() -> Task<Result<int>> { co_return Error(EPIPE); }());
    codes.push_back(-own_result.error().code());
    Error void_late = co_await fail_after(1ms, [&]() -> Task<> { (void)co_await evflow::sleep(1h); }());
    codes.push_back(-void_late.code());
    Task<Error> body = sleep_for(1ms);
    Task<Error> taken = std::move(body);
    Error empty = co_await fail_after(1ms, std::move(body));  // NOLINT(bugprone-use-after-move): empty on purpose
    codes.push_back(-empty.code());
  });
  for (int i = 0; i < 10 && !task.done(); ++i)
    step(1ms);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(codes, (std::vector<int>{4, -ETIMEDOUT, -EIO, -EPIPE, -ETIMEDOUT, -ENOMEM}));
}

}  // namespace
}  // namespace evflow
