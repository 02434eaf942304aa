// Loop::post and Loop::post_from_any_thread: work that runs in the loop's thread, in the
// posted-work phase (the last of step 5), and keeps the loop from blocking.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/descriptors.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

class PostTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  Loop loop;
};

TEST_F(PostTest, WorkPostedFromTheLoopThreadRunsInTheNextIterationInPostOrder) {
  std::vector<int> order;
  for (int i = 0; i < 3; ++i)
    ASSERT_FALSE(loop.post([&order, i] { order.push_back(i); }));
  EXPECT_TRUE(order.empty()) << "posting never runs the work on the spot";
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(order.size(), 3u) << "each piece of work runs once";
}

TEST_F(PostTest, RunsAfterTheIterationsIoAndTimerCallbacks) {
  auto pipe = testing::make_pipe();
  std::vector<const char*> order;
  Io io(loop);
  Timer timer(loop);
  ASSERT_FALSE(io.start(pipe.read_end.get(), Readable, [&](Io& self, Events) {
    order.push_back("io");
    self.stop();
  }));
  ASSERT_FALSE(timer.start(0ns, [&] { order.push_back("timer"); }));
  ASSERT_FALSE(loop.post([&] { order.push_back("posted"); }));
  ASSERT_TRUE(testing::write_byte(pipe.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_EQ(order.size(), 3u);
  EXPECT_STREQ(order[0], "io");
  EXPECT_STREQ(order[1], "timer");
  EXPECT_STREQ(order[2], "posted");
}

TEST_F(PostTest, WorkPostedByPostedWorkRunsInTheFollowingIterationWhichDoesNotBlock) {
  // An Io watcher on a quiet pipe would make a blocking iteration wait for ever; a watchdog
  // timer turns a wrong block into a failure instead of a hang.
  auto pipe = testing::make_pipe();
  Io quiet(loop);
  ASSERT_FALSE(quiet.start(pipe.read_end.get(), Readable, [] {}));
  bool watchdog_fired = false;
  Timer watchdog(loop);
  ASSERT_FALSE(watchdog.start(30s, [&] { watchdog_fired = true; }));
  int first = 0, second = 0;
  ASSERT_FALSE(loop.post([&] {
    ++first;
    EXPECT_FALSE(loop.post([&] { ++second; }));
  }));
  EXPECT_FALSE(loop.run(RunMode::Once));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0) << "posted during the phase: the next iteration's";
  const uint64_t iteration = loop.iteration();
  EXPECT_FALSE(loop.run(RunMode::Once));
  EXPECT_EQ(second, 1);
  EXPECT_EQ(loop.iteration(), iteration + 1);
  EXPECT_FALSE(watchdog_fired) << "the iteration with work pending did not block";
}

TEST_F(PostTest, PostedWorkCountsAsACallbackSoIdleWaits) {
  int idle_calls = 0, work = 0;
  Idle idle(loop);
  ASSERT_FALSE(idle.start([&] { ++idle_calls; }));
  ASSERT_FALSE(loop.post([&] { ++work; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(work, 1);
  EXPECT_EQ(idle_calls, 0) << "Idle runs only in iterations in which no other callback ran";
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(idle_calls, 1);
}

TEST_F(PostTest, RunDefaultWithNoWatcherRunsThePendingWorkBeforeItReturns) {
  int chain = 0;
  ASSERT_FALSE(loop.post([&] {
    ++chain;
    EXPECT_FALSE(loop.post([&] { ++chain; }));
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(chain, 2);
}

TEST_F(PostTest, ANullFunctionPointerOrALoopNotOpenIsEinval) {
  void (*none)() = nullptr;
  EXPECT_EQ(loop.post(none).code(), EINVAL);
  EXPECT_EQ(loop.post_from_any_thread(none).code(), EINVAL);
  Loop closed;
  EXPECT_EQ(closed.post([] {}).code(), EINVAL);
  EXPECT_FALSE(loop.run(RunMode::NoWait));
}

TEST_F(PostTest, WorkNeverRunIsDestroyedWithTheLoop) {
  auto token = std::make_shared<int>(7);
  {
    Loop other;
    ASSERT_FALSE(other.open());
    ASSERT_FALSE(other.post([token] { FAIL() << "never runs"; }));
    ASSERT_FALSE(other.post_from_any_thread([token] { FAIL() << "never runs"; }));
    EXPECT_EQ(token.use_count(), 3);
  }
  EXPECT_EQ(token.use_count(), 1) << "the captures of work never run were destroyed";
}

TEST_F(PostTest, PendingWorkIsDestroyedBeforeTheLoopsWatchersAreDetached) {
  // A destructor of pending work may still use the loop's watchers: they are attached.
  struct StopsOnDestruction {
    Timer* timer;
    bool* was_active;
    StopsOnDestruction(Timer* t, bool* seen) noexcept : timer(t), was_active(seen) {}
    StopsOnDestruction(StopsOnDestruction&& other) noexcept : timer(other.timer), was_active(other.was_active) {
      other.timer = nullptr;
    }
    ~StopsOnDestruction() {
      if (timer == nullptr) return;
      *was_active = timer->active();
      timer->stop();
    }
    void operator()() const {}
  };
  bool was_active = false;
  auto other = std::make_unique<Loop>();
  ASSERT_FALSE(other->open());
  Timer timer(*other);
  ASSERT_FALSE(timer.start(1h, [] {}));
  ASSERT_FALSE(other->post(StopsOnDestruction(&timer, &was_active)));
  other.reset();
  EXPECT_TRUE(was_active);
  EXPECT_FALSE(timer.active());
}

TEST_F(PostTest, PostingAllocatesNothingOnceThePoolHasGrown) {
  int runs = 0;
  auto round = [&] {
    for (int i = 0; i < 16; ++i) {
      ASSERT_FALSE(loop.post([&runs] { ++runs; }));
      ASSERT_FALSE(loop.post_from_any_thread([&runs] { ++runs; }));
    }
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  };
  round();  // the pools grow to 16 nodes each
  const long before = testing::allocation_count();
  for (int i = 0; i < 100; ++i)
    round();
  EXPECT_EQ(testing::allocation_count() - before, 0);
  EXPECT_EQ(runs, 101 * 32);
}

TEST_F(PostTest, AFailedAllocationIsEnomemAndPostsNothing) {
  int runs = 0;
  testing::arm_failure(1);
  EXPECT_EQ(loop.post([&] { ++runs; }).code(), ENOMEM);
  EXPECT_TRUE(testing::disarm_failure());
  testing::arm_failure(1);
  EXPECT_EQ(loop.post_from_any_thread([&] { ++runs; }).code(), ENOMEM);
  EXPECT_TRUE(testing::disarm_failure());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(runs, 0);
}

TEST_F(PostTest, PostsFromOtherThreadsWakeABlockedLoopAndKeepEachThreadsOrder) {
  // The loop blocks on a quiet pipe; two threads post 2,000 pieces of work each; the last
  // piece to run stops the loop. Each thread's work must run in the order it was posted.
  auto pipe = testing::make_pipe();
  Io quiet(loop);
  ASSERT_FALSE(quiet.start(pipe.read_end.get(), Readable, [] {}));
  constexpr int kPerThread = 2000;
  struct Seen {
    Loop* loop;
    int next[2] = {0, 0};
    int out_of_order = 0;
    int done = 0;
  } seen{&loop};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&seen, &go, t] {
      while (!go.load())
        std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        while (seen.loop->post_from_any_thread([s = &seen, t, i] {
          if (s->next[t]++ != i) ++s->out_of_order;
          if (++s->done == 2 * kPerThread) s->loop->stop();
        }))
          std::this_thread::yield();
      }
    });
  }
  go.store(true);
  EXPECT_FALSE(loop.run());
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(seen.done, 2 * kPerThread);
  EXPECT_EQ(seen.out_of_order, 0);
}

}  // namespace
}  // namespace evflow
