#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using ContextVarTest = testing::FakeClockLoopTest;

// A value that counts the copies of it alive, to see that contexts free what they hold.
struct Counted {
  static inline int alive = 0;
  int value = 0;
  explicit Counted(int v = 0) : value(v) { ++alive; }
  Counted(const Counted& other) : value(other.value) { ++alive; }
  Counted(Counted&& other) noexcept : value(other.value) { ++alive; }
  Counted& operator=(const Counted&) = default;
  ~Counted() { --alive; }
};

TEST_F(ContextVarTest, GetGivesTheDefaultWhereNothingIsSet) {
  ContextVar<std::string> name("nobody");
  EXPECT_EQ(name.get(), "nobody");
  EXPECT_FALSE(name.is_set());
  EXPECT_EQ(name.find(), nullptr);
  std::string seen;
  auto task = spawn(loop, [&]() -> Task<> {
    seen = name.get();
    co_return;
  });
  step(0s);
  EXPECT_TRUE(task.done());
  EXPECT_EQ(seen, "nobody");
}

TEST_F(ContextVarTest, AChildStartsFromItsParentsValuesAtTheSpawnAndLaterChangesStayApart) {
  ContextVar<int> level(-1);
  std::vector<std::string> log;
  Notification parent_changed(loop);
  Notification child_changed(loop);
  auto parent = spawn(loop, [&]() -> Task<> {
    EXPECT_FALSE(level.set(1));
    auto child = spawn(loop, [&]() -> Task<> {
      log.push_back("child sees " + std::to_string(level.get()));
      (void)co_await parent_changed.wait();
      log.push_back("child still sees " + std::to_string(level.get()));
      EXPECT_FALSE(level.set(20));
      child_changed.notify();
      log.push_back("child set " + std::to_string(level.get()));
    });
    EXPECT_FALSE(level.set(2));  // after the spawn: not the child's
    (void)co_await yield();
    parent_changed.notify();
    (void)co_await child_changed.wait();
    log.push_back("parent sees " + std::to_string(level.get()));
    (void)co_await child.join();
  });
  for (int i = 0; i < 5 && !parent.done(); ++i)
    step(0s);
  EXPECT_TRUE(parent.done());
  EXPECT_EQ(log, (std::vector<std::string>{"child sees 1", "child still sees 1", "child set 20", "parent sees 2"}));
  EXPECT_EQ(level.get(), -1);  // plain code saw none of it
}

TEST_F(ContextVarTest, EachTaskKeepsItsOwnValueAcrossSuspensionsWhileOthersRunBetween) {
  ContextVar<int> mine(0);
  std::vector<int> seen;
  auto worker = [&](int id) -> Task<> {
    EXPECT_FALSE(mine.set(id));
    for (int round = 0; round < 3; ++round) {
      (void)co_await yield();
      seen.push_back(mine.get() * 10 + round);
      (void)co_await evflow::sleep(1ms);
      EXPECT_EQ(mine.get(), id);
    }
  };
  auto a = spawn(loop, worker, 1);
  auto b = spawn(loop, worker, 2);
  for (int i = 0; i < 5 && !(a.done() && b.done()); ++i)
    step(1ms);
  ASSERT_TRUE(a.done() && b.done());
  EXPECT_EQ(seen, (std::vector<int>{10, 20, 11, 21, 12, 22}));
}

// An awaited Task, a scope's body and a group's body run in the awaiting task: they see
// and change its values. A group's child is spawned: a snapshot.
TEST_F(ContextVarTest, AwaitedCodeSharesTheTaskValuesAndGroupChildrenTakeASnapshotAtTheirSpawn) {
  ContextVar<std::string> where("none");
  std::vector<std::string> log;
  auto task = spawn(loop, [&]() -> Task<> {
    co_await [&]() -> Task<> {
      EXPECT_FALSE(where.set("inner"));
      co_return;
    }();
    log.push_back("after awaited task: " + where.get());
    auto scoped = co_await with_timeout(1s, [&]() -> Task<> {
      log.push_back("scope body: " + where.get());
      EXPECT_FALSE(where.set("scope"));
      co_return;
    }());
    EXPECT_TRUE(scoped.completed());
    TaskGroup outer;
    auto ended = co_await outer.run([&]() -> Task<> {
      EXPECT_FALSE(where.set("outer body"));
      (void)outer.spawn([&]() -> Task<> {
        log.push_back("child: " + where.get());
        EXPECT_FALSE(where.set("child"));
        TaskGroup inner;
        auto inner_ended = co_await inner.run([&]() -> Task<> {
          (void)inner.spawn([&]() -> Task<> {
            (void)co_await yield();
            log.push_back("grandchild: " + where.get());
          });
          EXPECT_FALSE(where.set("child after spawn"));
          co_return;
        }());
        EXPECT_FALSE(inner_ended.failed());
        log.push_back("child after its group: " + where.get());
      });
      EXPECT_FALSE(where.set("outer body after spawn"));
      co_return;
    }());
    EXPECT_FALSE(ended.failed());
    log.push_back("task: " + where.get());
  });
  for (int i = 0; i < 5 && !task.done(); ++i)
    step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(log, (std::vector<std::string>{"after awaited task: inner", "scope body: inner", "child: outer body",
                                           "grandchild: child", "child after its group: child after spawn",
                                           "task: outer body after spawn"}));
}

TEST_F(ContextVarTest, PlainCodeValuesGoToTheTasksItSpawnsAndResetGoesBackToTheDefault) {
  ContextVar<int> setting(5);
  ASSERT_FALSE(setting.set(7));
  EXPECT_EQ(setting.get(), 7);
  std::vector<int> seen;
  auto first = spawn(loop, [&]() -> Task<> {
    seen.push_back(setting.get());
    EXPECT_FALSE(setting.reset());
    seen.push_back(setting.get());
    co_return;
  });
  ASSERT_FALSE(setting.reset());
  EXPECT_FALSE(setting.is_set());
  auto second = spawn(loop, [&]() -> Task<> {
    seen.push_back(setting.get());
    co_return;
  });
  step(0s);
  EXPECT_TRUE(first.done() && second.done());
  EXPECT_EQ(seen, (std::vector<int>{7, 5, 5}));
  EXPECT_EQ(setting.get(), 5);
}

TEST_F(ContextVarTest, ManyVariablesKeepTheirValuesAsTheTableGrows) {
  std::vector<std::unique_ptr<ContextVar<int>>> vars;
  for (int i = 0; i < 20; ++i)
    vars.push_back(std::make_unique<ContextVar<int>>(-i));
  std::vector<int> seen;
  auto task = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 20; i += 2)
      EXPECT_FALSE(vars[static_cast<std::size_t>(i)]->set(i * 100));
    (void)co_await yield();
    for (const auto& var : vars)
      seen.push_back(var->get());
  });
  step(0s);
  ASSERT_TRUE(task.done());
  ASSERT_EQ(seen.size(), 20u);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(seen[static_cast<std::size_t>(i)], i % 2 == 0 ? i * 100 : -i) << i;
}

TEST_F(ContextVarTest, ValuesGoWhenTheLastContextHoldingThemEnds) {
  {
    ContextVar<Counted> var;
    const int before = Counted::alive;
    auto task = spawn(loop, [&]() -> Task<> {
      EXPECT_FALSE(var.set(Counted(1)));
      auto child = spawn(loop, [&]() -> Task<> {
        (void)co_await evflow::sleep(1ms);  // holds the shared value past its parent's end
        EXPECT_EQ(var.get().value, 1);
      });
      EXPECT_FALSE(var.set(Counted(2)));  // a copy of the table: the child keeps value 1
      co_return;
    });
    step(0s);
    EXPECT_TRUE(task.done());
    EXPECT_EQ(Counted::alive, before + 1);  // value 1, held by the child; value 2 went with the task
    step(1ms);
    EXPECT_EQ(live_tasks(loop), 0u);
    EXPECT_EQ(Counted::alive, before);
  }
}

TEST_F(ContextVarTest, ALoopDestroyedWithTasksFreesTheirValues) {
  const int before = Counted::alive;
  {
    Loop doomed;
    ASSERT_FALSE(doomed.open());
    ContextVar<Counted> var;
    auto task = spawn(doomed, [&]() -> Task<> {
      EXPECT_FALSE(var.set(Counted(3)));
      (void)co_await evflow::sleep(1h);
    });
    ASSERT_FALSE(doomed.run(RunMode::NoWait));
    EXPECT_EQ(Counted::alive, before + 2);  // the default and the task's value
  }
  EXPECT_EQ(Counted::alive, before);
}

TEST_F(ContextVarTest, ASetThatCannotAllocateIsEnomemAndLeavesTheValueAsItWas) {
  ContextVar<int> var(0);
  std::vector<int> codes;
  auto task = spawn(loop, [&]() -> Task<> {
    EXPECT_FALSE(var.set(1));
    auto child = spawn(loop, [&]() -> Task<> { co_return; });  // shares the table
    testing::arm_failure(1);                                   // the new value's memory
    codes.push_back(var.set(2).code());
    EXPECT_TRUE(testing::disarm_failure());
    testing::arm_failure(2);  // the copy of the shared table
    codes.push_back(var.set(3).code());
    EXPECT_TRUE(testing::disarm_failure());
    codes.push_back(var.get());
    co_return;
  });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(codes, (std::vector<int>{ENOMEM, ENOMEM, 1}));
}

TEST_F(ContextVarTest, ASpawnCopiesNothingAndASwitchAllocatesNothing) {
  ContextVar<int> var(0);
  ASSERT_FALSE(var.set(9));
  long allocations = 0;
  auto task = spawn(loop, [&]() -> Task<> {
    (void)co_await yield();  // the pool has this task's frame class now
    const long before = testing::allocation_count();
    for (int i = 0; i < 100; ++i) {
      (void)co_await yield();
      EXPECT_EQ(var.get(), 9);
    }
    allocations = testing::allocation_count() - before;
  });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(allocations, 0);
  EXPECT_FALSE(var.reset());
}

}  // namespace
}  // namespace evflow
