#include "tasks/tasks.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using ObserverTest = testing::FakeClockLoopTest;

// Records each event as "id:event" (and the rest of the TaskInfo beside it).
struct Recorder final : TaskObserver {
  std::vector<std::string> events;
  std::vector<TaskInfo> infos;
  void on_task_event(TaskEvent event, const TaskInfo& task) noexcept override {
    events.push_back(std::to_string(task.id) + ":" + to_string(event));
    infos.push_back(task);
  }
  // The events of task `id`, in order.
  std::vector<std::string> of(uint64_t id) const {
    std::vector<std::string> mine;
    const std::string prefix = std::to_string(id) + ":";
    for (const std::string& event : events)
      if (event.compare(0, prefix.size(), prefix) == 0) mine.push_back(event.substr(prefix.size()));
    return mine;
  }
};

TEST_F(ObserverTest, EveryTransitionIsSeenOnceAndInOrder) {
  Recorder recorder;
  ASSERT_FALSE(set_task_observer(loop, &recorder));
  EXPECT_EQ(task_observer(loop), &recorder);
  auto task = spawn(loop, [&]() -> Task<> {
    (void)co_await evflow::sleep(1ms);
    co_await [&]() -> Task<> {  // an awaited Task is the same task: no events of its own
      (void)co_await yield();
    }();
    auto child = spawn(loop, []() -> Task<int> { co_return 3; });
    (void)co_await child.join();
  });
  EXPECT_EQ(recorder.events, (std::vector<std::string>{"1:created"}));
  step(0s);
  step(1ms);
  for (int i = 0; i < 3 && !task.done(); ++i)
    step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(recorder.of(1), (std::vector<std::string>{"created", "started", "suspended", "resumed", "suspended",
                                                      "resumed", "suspended", "resumed", "completed"}));
  EXPECT_EQ(recorder.of(2), (std::vector<std::string>{"created", "started", "completed"}));
  // The child is created while its parent runs, and ends before the parent resumes.
  const std::vector<std::string> tail(recorder.events.end() - 6, recorder.events.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"2:created", "1:suspended", "2:started", "2:completed", "1:resumed",
                                            "1:completed"}));
  ASSERT_FALSE(set_task_observer(loop, nullptr));
  auto unseen = spawn(loop, []() -> Task<> { co_return; });
  step(0s);
  EXPECT_TRUE(unseen.done());
  EXPECT_EQ(recorder.of(3), std::vector<std::string>{});
}

TEST_F(ObserverTest, ACancelBeforeTheFirstStepAndALoopDestroyedAreCancelledEvents) {
  Recorder recorder;
  {
    Loop doomed;
    ASSERT_FALSE(doomed.open());
    ASSERT_FALSE(set_task_observer(doomed, &recorder));
    auto never = spawn(doomed, []() -> Task<> { co_return; });
    never.cancel();
    auto waiting = spawn(doomed, []() -> Task<> { (void)co_await evflow::sleep(1h); });
    ASSERT_FALSE(doomed.run(RunMode::NoWait));
    EXPECT_EQ(waiting.state(), TaskState::Running);
  }
  EXPECT_EQ(recorder.of(1), (std::vector<std::string>{"created", "cancelled"}));
  EXPECT_EQ(recorder.of(2), (std::vector<std::string>{"created", "started", "suspended", "cancelled"}));
  EXPECT_EQ(recorder.infos.back().state, TaskState::Cancelled);
}

#if defined(__cpp_exceptions)
TEST_F(ObserverTest, AnExceptionLeavingATaskIsAFailedEvent) {
  Recorder recorder;
  ASSERT_FALSE(set_task_observer(loop, &recorder));
  auto task = spawn(loop, []() -> Task<> {
    (void)co_await yield();
    throw std::runtime_error("boom");
  });
  step(0s);
  ASSERT_TRUE(task.done());
  EXPECT_EQ(recorder.of(1), (std::vector<std::string>{"created", "started", "suspended", "resumed", "failed"}));
  EXPECT_EQ(recorder.infos.back().state, TaskState::Failed);
}
#endif

TEST_F(ObserverTest, EventsCarryTheParentAndThePlaceOfTheSpawn) {
  Recorder recorder;
  ASSERT_FALSE(set_task_observer(loop, &recorder));
  uint_least32_t spawn_line = 0;
  uint_least32_t group_line = 0;
  auto task = spawn(loop, [&]() -> Task<> {
    spawn_line = __LINE__ + 1;
    auto loose = spawn(loop, []() -> Task<> { co_return; });
    group_line = __LINE__ + 1;
    TaskGroup group;
    auto ended = co_await group.run([&]() -> Task<> {
      (void)group.spawn([]() -> Task<> { co_return; });
      co_return;
    }());
    EXPECT_FALSE(ended.failed());
    (void)co_await loose.join();
  });
  const uint_least32_t outer_line = __LINE__ - 12;
  for (int i = 0; i < 5 && !task.done(); ++i)
    step(0s);
  ASSERT_TRUE(task.done());
  auto created = [&](uint64_t id) {
    for (std::size_t i = 0; i < recorder.events.size(); ++i)
      if (recorder.events[i] == std::to_string(id) + ":created") return recorder.infos[i];
    ADD_FAILURE() << "no created event for task " << id;
    return TaskInfo{};
  };
  EXPECT_EQ(created(1).parent_id, 0u);
  EXPECT_EQ(created(1).spawned_at.line(), outer_line);
  EXPECT_EQ(created(2).parent_id, 1u);
  EXPECT_EQ(created(2).spawned_at.line(), spawn_line);
  EXPECT_EQ(created(3).parent_id, 1u);
  EXPECT_EQ(created(3).spawned_at.line(), group_line);
  EXPECT_NE(std::string(created(3).spawned_at.file_name()).find("observer_test.cpp"), std::string::npos);
}

TEST_F(ObserverTest, TheTreeShowsEachLiveTaskUnderItsParentWithWhatItWaitsFor) {
  Notification never(loop);
  auto task = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    (void)co_await group.run([&]() -> Task<> {
      (void)group.spawn([&]() -> Task<> { (void)co_await never.wait(); });
      (void)group.spawn([]() -> Task<> { (void)co_await evflow::sleep(1h); });
      co_return;
    }());
  });
  auto other = spawn(loop, []() -> Task<> { co_return; });
  struct Line {
    uint64_t id;
    int depth;
    std::string activity;
  };
  std::vector<Line> lines;
  auto collect = [](const TaskInfo& info, int depth, void* context) {
    static_cast<std::vector<Line>*>(context)->push_back(Line{info.id, depth, info.activity});
  };
  visit_task_tree(loop, collect, &lines);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].activity, "not started");
  step(0s);
  lines.clear();
  visit_task_tree(loop, collect, &lines);
  ASSERT_EQ(lines.size(), 3u);  // `other` has finished
  EXPECT_EQ(lines[0].id, 1u);
  EXPECT_EQ(lines[0].depth, 0);
  EXPECT_EQ(lines[0].activity, "waiting on the children of its group");
  EXPECT_EQ(lines[1].id, 3u);
  EXPECT_EQ(lines[1].depth, 1);
  EXPECT_EQ(lines[1].activity, "waiting on a notification");
  EXPECT_EQ(lines[2].id, 4u);
  EXPECT_EQ(lines[2].depth, 1);
  EXPECT_EQ(lines[2].activity, "waiting on a timer");
  EXPECT_TRUE(other.done());

  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  print_task_tree(loop, out);
  std::rewind(out);
  std::string printed;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, out) != nullptr)
    printed += buffer;
  std::fclose(out);
  EXPECT_NE(printed.find("task 1 (parent 0) waiting on the children of its group; spawned at"), std::string::npos)
      << printed;
  EXPECT_NE(printed.find("\n  task 4 (parent 1) waiting on a timer;"), std::string::npos) << printed;
  task.cancel();
  step(0s);
  EXPECT_TRUE(task.done());
  lines.clear();
  visit_task_tree(loop, collect, &lines);
  EXPECT_TRUE(lines.empty());
}

TEST_F(ObserverTest, ALoopThatIsNotOpenRefusesAnObserver) {
  Loop closed;
  Recorder recorder;
  EXPECT_EQ(set_task_observer(closed, &recorder).code(), EINVAL);
  EXPECT_EQ(task_observer(closed), nullptr);
  EXPECT_STREQ(to_string(TaskEvent::Resumed), "resumed");
  EXPECT_STREQ(to_string(TaskState::Pending), "pending");
}

}  // namespace
}  // namespace evflow
