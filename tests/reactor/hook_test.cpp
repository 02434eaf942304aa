#include "reactor/hook.hpp"

#include <gtest/gtest.h>

#include <string>

#include <evflow/evflow.hpp>
#include "tests/support/descriptors.hpp"

namespace evflow {
namespace {

class HookTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  Loop loop;
};

TEST_F(HookTest, PrepareAndCheckRunEveryIteration) {
  int prepares = 0, checks = 0;
  Prepare prepare(loop);
  Check check(loop);
  ASSERT_FALSE(prepare.start([&] { ++prepares; }));
  ASSERT_FALSE(check.start([&] { ++checks; }));
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(prepares, 3);
  EXPECT_EQ(checks, 3);
}

TEST_F(HookTest, PrepareRunsBeforeTheLoopBlocksAndCheckAfterItWakes) {
  std::string log;
  auto p = testing::make_pipe();
  Prepare prepare(loop);
  Check check(loop);
  Io io(loop);
  // The prepare callback makes the descriptor ready: it must run before the wait for
  // this Once iteration to return at all.
  ASSERT_FALSE(prepare.start([&] {
    log += 'P';
    testing::write_byte(p.write_end.get());
  }));
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    log += 'O';
    testing::drain(self.fd());
  }));
  ASSERT_FALSE(check.start([&] { log += 'C'; }));
  EXPECT_FALSE(loop.run(RunMode::Once));
  EXPECT_EQ(log, "POC");
}

// Semantics 4: idle watchers run only in iterations with no other callback.
TEST_F(HookTest, IdleRunsOnlyWhenNothingElseRan) {
  auto p = testing::make_pipe();
  int idles = 0, reads = 0;
  Idle idle(loop);
  Io io(loop);
  ASSERT_FALSE(idle.start([&] { ++idles; }));
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    ++reads;
    testing::drain(self.fd());
  }));
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(idles, 0);
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(idles, 1);
}

TEST_F(HookTest, ActiveIdleKeepsTheLoopFromBlocking) {
  // An Io that never fires plus an idle: run() must keep iterating (not block) and
  // return when the idle stops everything.
  auto p = testing::make_pipe();
  int idles = 0;
  Io io(loop);
  Idle idle(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [] {}));
  ASSERT_FALSE(idle.start([&](Idle& self) {
    if (++idles == 10) {
      self.stop();
      io.stop();
    }
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(idles, 10);
}

TEST_F(HookTest, HooksRunInStartOrder) {
  std::string log;
  Check a(loop), b(loop), c(loop);
  ASSERT_FALSE(b.start([&] { log += 'b'; }));
  ASSERT_FALSE(a.start([&] { log += 'a'; }));
  ASSERT_FALSE(c.start([&] { log += 'c'; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(log, "bac");
}

TEST_F(HookTest, AHookStartedDuringItsPhaseFirstRunsInTheNextIteration) {
  std::string log;
  Check first(loop), late(loop);
  ASSERT_FALSE(first.start([&] {
    log += 'f';
    EXPECT_FALSE(late.start([&] { log += 'l'; }));
  }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(log, "f");
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(log, "ffl");
}

TEST_F(HookTest, ACallbackMayStopOrDestroyTheNextHook) {
  std::string log;
  Check a(loop);
  auto b = std::make_unique<Check>(loop);
  Check c(loop);
  ASSERT_FALSE(a.start([&] {
    log += 'a';
    b.reset();
  }));
  ASSERT_FALSE(b->start([&] { log += 'b'; }));
  ASSERT_FALSE(c.start([&](Check& self) {
    log += 'c';
    self.stop();
  }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(log, "ac");
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(log, "aca");
}

TEST_F(HookTest, StartingAnActiveHookIsANoOp) {
  int calls = 0;
  Prepare prepare(loop);
  ASSERT_FALSE(prepare.start([&] { ++calls; }));
  ASSERT_FALSE(prepare.start());
  EXPECT_EQ(loop.active_watchers(), 1);
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(HookTest, StartWithoutCallbackIsEinval) {
  Idle idle(loop);
  EXPECT_EQ(idle.start().code(), EINVAL);
  EXPECT_FALSE(idle.active());
}

}  // namespace
}  // namespace evflow
