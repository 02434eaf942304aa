#include "tasks/generator.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <evflow/evflow.hpp>
#include "tasks/tasks.hpp"
#include "tests/support/allocation_control.hpp"
#include "tests/support/fake_clock.hpp"
#include "tests/support/unwind_counter.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using GeneratorTest = testing::FakeClockLoopTest;

Generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

// Runs the loop until `handle`'s task has finished (tasks that only hand values over never
// wait for time).
template <class T>
void run_to_end(Loop& loop, TaskHandle<T>& handle) {
  for (int i = 0; i < 100 && !handle.done(); ++i)
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_TRUE(handle.done());
}

TEST_F(GeneratorTest, NothingOfTheBodyRunsBeforeTheFirstNextIsAwaited) {
  std::vector<std::string> log;
  auto logged = [](std::vector<std::string>* out) -> Generator<int> {
    out->push_back("body");
    co_yield 1;
  };
  auto handle = spawn(loop, [&]() -> Task<int> {
    auto values = logged(&log);
    log.push_back("made");
    (void)co_await yield();
    log.push_back("next");
    auto first = co_await values.next();
    co_return first ? *first : -1;
  });
  run_to_end(loop, handle);
  EXPECT_EQ(log, (std::vector<std::string>{"made", "next", "body"}));
  EXPECT_EQ(handle.result().value(), 1);
}

TEST_F(GeneratorTest, ValuesComeInOrderThenTheEndWhichEveryLaterNextGivesAgain) {
  std::vector<int> seen;
  int ends = 0;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto values = count_to(4);
    while (auto value = co_await values.next())
      seen.push_back(*value);
    for (int i = 0; i < 3; ++i) {
      auto after = co_await values.next();
      if (after.ended() && !after.has_value() && !after.error()) ++ends;
    }
    EXPECT_TRUE(values.done());
  });
  run_to_end(loop, handle);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(ends, 3);
}

Generator<int> ticks(int n, std::chrono::milliseconds every, std::vector<std::string>* log) {
  for (int i = 0; i < n; ++i) {
    Error slept = co_await evflow::sleep(every);
    log->push_back("slept:" + std::to_string(slept.code()));
    co_yield i;
  }
}

// The producer's awaits suspend the consumer's task: it stays Running, waiting, and the
// timer's wake-up resumes the producer, which hands over to the consumer.
TEST_F(GeneratorTest, TheProducersAwaitsSuspendTheConsumersTask) {
  std::vector<std::string> log;
  auto handle = spawn(loop, [&]() -> Task<int> {
    auto values = ticks(2, 5ms, &log);
    int sum = 0;
    while (auto value = co_await values.next()) {
      log.push_back("got:" + std::to_string(*value));
      sum += *value + 1;
    }
    co_return sum;
  });
  step(0s);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(handle.state(), TaskState::Running);
  EXPECT_EQ(live_tasks(loop), 1u) << "the producer is not a task of its own";
  step(5ms);
  EXPECT_EQ(log, (std::vector<std::string>{"slept:0", "got:0"}));
  step(5ms);
  ASSERT_TRUE(handle.done());
  EXPECT_EQ(handle.result().value(), 3);
  EXPECT_EQ(log, (std::vector<std::string>{"slept:0", "got:0", "slept:0", "got:1"}));
}

Task<int> doubled(int v) {
  (void)co_await yield();
  co_return 2 * v;
}

Generator<int> doubles(int n) {
  for (int i = 0; i < n; ++i) {
    const int value = co_await doubled(i);
    co_yield value;
  }
}

TEST_F(GeneratorTest, TheProducerAwaitsTasksAndYieldsWhatTheyGive) {
  auto handle = spawn(loop, []() -> Task<int> {
    auto values = doubles(5);
    int sum = 0;
    while (auto value = co_await values.next())
      sum += *value;
    co_return sum;
  });
  run_to_end(loop, handle);
  EXPECT_EQ(handle.result().value(), 20);
}

// A producer may consume another generator: both frames run in the consumer's task.
Generator<int> squares_of(Generator<int> source) {
  while (auto value = co_await source.next())
    co_yield *value** value;
}

TEST_F(GeneratorTest, AProducerMayConsumeAnotherGenerator) {
  std::vector<int> seen;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto values = squares_of(count_to(4));
    while (auto value = co_await values.next())
      seen.push_back(*value);
  });
  run_to_end(loop, handle);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 4, 9}));
}

Generator<long long> naturals(long long n) {
  for (long long i = 1; i <= n; ++i)
    co_yield i;
}

// Symmetric transfer is a nested call in unoptimised builds: without the scheduler's bound
// on inline transfers, a million hand-overs each way would overflow the stack there.
TEST_F(GeneratorTest, AMillionValuesRunInBoundedStack) {
  auto result = run_until_complete(loop, []() -> Task<long long> {
    auto values = naturals(1'000'000);
    long long sum = 0;
    while (auto value = co_await values.next())
      sum += *value;
    co_return sum;
  });
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value(), 1'000'000LL * 1'000'001LL / 2);
}

TEST_F(GeneratorTest, YieldingValuesAllocatesNothingAfterTheFirst) {
  long allocations_after_first = -1;
  long allocations_of_a_second_generator = -1;
  auto handle = spawn(loop, [&]() -> Task<long long> {
    long long sum = 0;
    {
      auto values = naturals(1'000);
      auto first = co_await values.next();
      sum += first ? *first : 0;
      const long before = testing::allocation_count();
      while (auto value = co_await values.next())
        sum += *value;
      allocations_after_first = testing::allocation_count() - before;
    }
    const long before = testing::allocation_count();
    auto again = naturals(10);
    while (auto value = co_await again.next())
      sum += *value;
    allocations_of_a_second_generator = testing::allocation_count() - before;
    co_return sum;
  });
  run_to_end(loop, handle);
  EXPECT_EQ(handle.result().value(), 1'000LL * 1'001LL / 2 + 55);
  EXPECT_EQ(allocations_after_first, 0);
  EXPECT_EQ(allocations_of_a_second_generator, 0) << "its frame comes from the frame pool";
}

Generator<int> guarded(int* unwound, std::vector<int>* produced) {
  testing::UnwindCounter guard{unwound};
  for (int i = 0;; ++i) {
    testing::UnwindCounter per_value{unwound};
    produced->push_back(i);
    co_yield i;
  }
}

TEST_F(GeneratorTest, BreakingOutEarlyDestroysTheProducerAtItsYieldWithItsLocals) {
  int unwound = 0;
  std::vector<int> produced;
  int unwound_after_break = -1;
  auto handle = spawn(loop, [&]() -> Task<> {
    {
      auto values = guarded(&unwound, &produced);
      while (auto value = co_await values.next())
        if (*value == 2) break;
      EXPECT_EQ(unwound, 2) << "two values' locals unwound, the third's still there";
    }
    unwound_after_break = unwound;
  });
  run_to_end(loop, handle);
  EXPECT_EQ(produced, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(unwound_after_break, 4) << "the last value's local and the body's guard";
}

TEST_F(GeneratorTest, MoveAssigningOverAGeneratorDestroysItsProducerAndTheNewOneStartsFresh) {
  int unwound = 0;
  std::vector<int> produced;
  std::vector<int> seen;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto values = guarded(&unwound, &produced);
    auto first = co_await values.next();
    seen.push_back(first ? *first : -1);
    values = guarded(&unwound, &produced);
    EXPECT_EQ(unwound, 2) << "the first producer's locals, at its co_yield";
    auto again = co_await values.next();
    seen.push_back(again ? *again : -1);
  });
  run_to_end(loop, handle);
  EXPECT_EQ(seen, (std::vector<int>{0, 0}));
  EXPECT_EQ(unwound, 4);
}

// with_timeout around the consumer: the deadline reaches the producer's pending sleep,
// which ends with ECANCELED; the producer passes it on, the consumer returns, and the
// scope reports TimedOut.
TEST_F(GeneratorTest, AConsumersTimeoutEndsTheProducersSleepWithEcanceledAndTheScopeTimesOut) {
  std::vector<std::string> log;
  auto producer = [](std::vector<std::string>* out) -> Generator<int> {
    for (int i = 0;; ++i) {
      Error slept = co_await evflow::sleep(10ms);
      out->push_back("slept:" + std::to_string(slept.code()));
      if (slept) co_yield fail_with(slept);
      co_yield i;
    }
  };
  auto consumer = [](Generator<int> values, std::vector<std::string>* out) -> Task<int> {
    for (;;) {
      auto value = co_await values.next();
      if (!value) co_return value.error().code();
      out->push_back("got:" + std::to_string(*value));
    }
  };
  auto handle = spawn(loop, [&]() -> Task<> {
    auto ended = co_await with_timeout(25ms, consumer(producer(&log), &log));
    EXPECT_TRUE(ended.timed_out());
    EXPECT_EQ(ended.value(), ECANCELED);
    log.push_back("timed out");
  });
  step(0s);
  step(10ms);
  step(10ms);
  EXPECT_EQ(log, (std::vector<std::string>{"slept:0", "got:0", "slept:0", "got:1"}));
  step(5ms);
  ASSERT_TRUE(handle.done());
  EXPECT_EQ(log, (std::vector<std::string>{"slept:0", "got:0", "slept:0", "got:1", "slept:" + std::to_string(ECANCELED),
                                           "timed out"}));
  EXPECT_EQ(loop.active_watchers(), 0) << "the producer's timer was stopped";
}

TEST_F(GeneratorTest, CancellingTheConsumersTaskReachesTheProducersAwaitLevelTriggered) {
  std::vector<int> outcomes;
  auto producer = [](std::vector<int>* out) -> Generator<int> {
    out->push_back((co_await evflow::sleep(1h)).code());
    out->push_back((co_await yield()).code());  // level-triggered: at once
    co_yield 7;
  };
  auto handle = spawn(loop, [&]() -> Task<int> {
    auto values = producer(&outcomes);
    auto value = co_await values.next();
    co_return value ? *value : -1;
  });
  step(0s);
  handle.cancel();
  step(0s);
  ASSERT_TRUE(handle.done());
  EXPECT_EQ(outcomes, (std::vector<int>{ECANCELED, ECANCELED}));
  EXPECT_EQ(handle.result().value(), 7) << "the producer chose to yield a value anyway";
}

Generator<int> failing_after(int n, int* unwound) {
  testing::UnwindCounter guard{unwound};
  for (int i = 0; i < n; ++i)
    co_yield i;
  co_yield fail_with(Error(EIO));
  ADD_FAILURE() << "a producer does not resume after fail_with";
}

TEST_F(GeneratorTest, AFailureReachesTheConsumerAtItsNextRequestAfterTheProducerUnwound) {
  int unwound = 0;
  std::vector<int> seen;
  Error failure;
  int unwound_at_failure = -1;
  bool ended_afterwards = false;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto values = failing_after(2, &unwound);
    for (;;) {
      auto value = co_await values.next();
      if (!value) {
        failure = value.error();
        unwound_at_failure = unwound;
        break;
      }
      seen.push_back(*value);
    }
    auto after = co_await values.next();
    ended_afterwards = after.ended();
  });
  run_to_end(loop, handle);
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  EXPECT_EQ(failure.code(), EIO);
  EXPECT_EQ(unwound_at_failure, 1) << "the producer's frame goes before next() gives the error";
  EXPECT_TRUE(ended_afterwards) << "after the failure, the end";
}

#if defined(__cpp_exceptions)
Generator<int> breaking(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
  (void)co_await yield();
  throw std::runtime_error("broken");
}

TEST_F(GeneratorTest, AnExceptionLeavingTheProducerIsRethrownByTheNextThatWaited) {
  std::vector<int> seen;
  std::string caught;
  bool ended_afterwards = false;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto values = breaking(2);
    try {
      while (auto value = co_await values.next())
        seen.push_back(*value);
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    auto after = co_await values.next();
    ended_afterwards = after.ended();
  });
  run_to_end(loop, handle);
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  EXPECT_EQ(caught, "broken");
  EXPECT_TRUE(ended_afterwards);
  EXPECT_EQ(handle.state(), TaskState::Completed);
}
#endif

TEST_F(GeneratorTest, AMovedFromOrDefaultGeneratorGivesEinval) {
  std::vector<int> codes;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto values = count_to(3);
    Generator<int> moved = std::move(values);
    Generator<int> empty;
    codes.push_back((co_await values.next()).error().code());  // NOLINT(bugprone-use-after-move): the point of the test
    codes.push_back((co_await empty.next()).error().code());
    auto first = co_await moved.next();
    codes.push_back(first ? *first : -1);
    EXPECT_FALSE(values.valid());  // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(empty.valid());
    EXPECT_TRUE(moved.valid());
  });
  run_to_end(loop, handle);
  EXPECT_EQ(codes, (std::vector<int>{EINVAL, EINVAL, 0}));
}

TEST_F(GeneratorTest, ASecondTasksNextWhileOneWaitsGetsEbusy) {
  std::vector<std::string> log;
  Generator<int> shared = ticks(1, 5ms, &log);
  int first = -1;
  int second = -1;
  auto a = spawn(loop, [&]() -> Task<> {
    auto value = co_await shared.next();
    first = value ? *value : -value.error().code();
  });
  auto b = spawn(loop, [&]() -> Task<> {
    auto value = co_await shared.next();
    second = value ? *value : -value.error().code();
  });
  step(0s);
  EXPECT_EQ(second, -EBUSY);
  step(5ms);
  EXPECT_EQ(first, 0);
}

TEST_F(GeneratorTest, LvaluesAreCopiedRvaluesMovedAndMoveOnlyValuesWork) {
  auto strings = [](std::vector<std::string>* kept) -> Generator<std::string> {
    std::string text(40, 'a');  // long enough to live on the heap
    co_yield text;              // a copy: the producer keeps its own
    kept->push_back(text);
    co_yield std::move(text);  // moved out
    kept->push_back(text);     // NOLINT(bugprone-use-after-move): moved from, as the consumer took it
    co_yield std::string(3, 'c');
  };
  auto pointers = []() -> Generator<std::unique_ptr<int>> {
    auto owned = std::make_unique<int>(1);
    co_yield std::move(owned);
    co_yield std::make_unique<int>(2);
  };
  std::vector<std::string> kept;
  std::vector<std::string> got;
  std::vector<int> pointed;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto texts = strings(&kept);
    while (auto text = co_await texts.next())
      got.push_back(std::move(*text));
    auto owners = pointers();
    while (auto owner = co_await owners.next()) {
      std::unique_ptr<int> mine = std::move(owner.value());
      pointed.push_back(*mine);
    }
  });
  run_to_end(loop, handle);
  EXPECT_EQ(got, (std::vector<std::string>{std::string(40, 'a'), std::string(40, 'a'), "ccc"}));
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], std::string(40, 'a'));
  EXPECT_TRUE(kept[1].empty()) << "the rvalue was moved into the consumer's value";
  EXPECT_EQ(pointed, (std::vector<int>{1, 2}));
}

// The frame allocation failing: next() gives ENOMEM, nothing runs, nothing leaks.
TEST_F(GeneratorTest, AGeneratorWhoseFrameCannotBeAllocatedGivesEnomem) {
  bool ran = false;
  auto body = [](bool* out) -> Generator<int> {
    *out = true;
    co_yield 1;
  };
  testing::arm_failure(1);
  Generator<int> values = body(&ran);
  EXPECT_TRUE(testing::disarm_failure());
  EXPECT_FALSE(values.valid());
  int code = -1;
  auto handle = spawn(loop, [&]() -> Task<> {
    auto value = co_await values.next();
    code = value.error().code();
  });
  run_to_end(loop, handle);
  EXPECT_EQ(code, ENOMEM);
  EXPECT_FALSE(ran);
}

TEST(GeneratorLoop, DestroyingTheLoopWhileTheProducerWaitsUnwindsProducerAndConsumer) {
  auto loop = std::make_unique<Loop>();
  ASSERT_FALSE(loop->open());
  int unwound = 0;
  auto producer = [](int* count) -> Generator<int> {
    testing::UnwindCounter guard{count};
    (void)co_await evflow::sleep(1h);
    co_yield 1;
  };
  auto handle = spawn(*loop, [&]() -> Task<> {
    testing::UnwindCounter guard{&unwound};
    auto values = producer(&unwound);
    (void)co_await values.next();
  });
  ASSERT_FALSE(loop->run(RunMode::NoWait));
  EXPECT_EQ(unwound, 0);
  loop.reset();
  EXPECT_EQ(unwound, 2);
  EXPECT_EQ(handle.state(), TaskState::Cancelled);
}

}  // namespace
}  // namespace evflow
