// ProcessPool (tasks/process_pool.hpp): requests answered by forked workers, submitters
// waiting in turn, and a worker that crashes with a request in flight: the request fails
// with ECONNRESET, the exit is reported, the worker restarted, later requests answered;
// cancelled submits, waiting for a worker and with a worker holding the request.
// Worker code reports through its replies, never through test assertions.
#include "tasks/process_pool.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/process.hpp>
#include <evflow/tasks.hpp>

namespace evflow {
namespace {

using namespace std::chrono_literals;

// Replies "<request>!" to each request; aborts on "crash" (without a core file); never
// answers "hold".
Task<int> answer(MessageChannel& parent) {
  std::string request;
  for (;;) {
    auto got = co_await parent.receive(request);
    if (!got) co_return 0;
    if (request == "crash") {
      const rlimit no_core{0, 0};
      (void)::setrlimit(RLIMIT_CORE, &no_core);
      std::abort();
    }
    if (request == "hold") continue;
    request += "!";
    Error sent = co_await parent.send(request);
    if (sent) co_return 1;
  }
}

class ProcessPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  // Runs the loop until every task of `handles` has finished.
  template <class T>
  void finish(std::vector<TaskHandle<T>>& handles) {
    auto all_done = [&] {
      for (auto& handle : handles)
        if (!handle.done()) return false;
      return true;
    };
    for (int i = 0; i < 10000 && !all_done(); ++i)
      ASSERT_FALSE(loop.run(RunMode::Once));
    ASSERT_TRUE(all_done());
  }
  // Submits `request`; gives the reply, or "error <code>".
  Task<std::string> ask(ProcessPool& pool, std::string request) {
    std::string reply;
    auto got = co_await pool.submit(request, reply);
    if (!got) co_return "error " + std::to_string(got.error().code());
    co_return reply;
  }

  Loop loop;
};

TEST_F(ProcessPoolTest, SubmittersWaitInTurnForABusyWorker) {
  ProcessPool pool(loop, 1, answer);
  ASSERT_FALSE(pool.start());
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_GT(pool.pid(0), 0);
  std::vector<TaskHandle<std::string>> asks;
  for (const char* request : {"a", "b", "c"})
    asks.push_back(spawn(
        loop, [&](std::string r) { return ask(pool, r); }, std::string(request)));
  finish(asks);
  EXPECT_EQ(asks[0].result().value(), "a!");
  EXPECT_EQ(asks[1].result().value(), "b!");
  EXPECT_EQ(asks[2].result().value(), "c!");
  EXPECT_EQ(pool.idle(), 1u);
  auto closed = run_until_complete(loop, [&]() -> Task<> { co_await pool.close(1s); });
  EXPECT_FALSE(closed);
  EXPECT_EQ(pool.pid(0), 0);
}

TEST_F(ProcessPoolTest, AWorkerThatCrashesMidRequestFailsItIsReportedAndRestarted) {
  ProcessPool pool(loop, 4, answer);
  std::vector<WorkerExit> exits;
  pool.on_exit([&](const WorkerExit& exit) { exits.push_back(exit); });
  ASSERT_FALSE(pool.start());
  std::vector<int> first_pids;
  for (std::size_t i = 0; i < pool.size(); ++i)
    first_pids.push_back(pool.pid(i));
  std::vector<TaskHandle<std::string>> asks;
  for (const char* request : {"one", "crash", "two", "three"})
    asks.push_back(spawn(
        loop, [&](std::string r) { return ask(pool, r); }, std::string(request)));
  finish(asks);
  EXPECT_EQ(asks[0].result().value(), "one!");
  EXPECT_EQ(asks[1].result().value(), "error " + std::to_string(ECONNRESET));
  EXPECT_EQ(asks[2].result().value(), "two!");
  EXPECT_EQ(asks[3].result().value(), "three!");
  // The failed request may come back before the loop hears of the exit.
  for (int i = 0; i < 1000 && exits.empty(); ++i)
    ASSERT_FALSE(loop.run(RunMode::Once));
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].slot, 1u) << "round robin gave the second request to the second worker";
  EXPECT_EQ(exits[0].pid, first_pids[1]);
  ASSERT_TRUE(exits[0].status.signaled());
  EXPECT_EQ(exits[0].status.signal_number(), SIGABRT);
  EXPECT_EQ(pool.restarts(), 1u);
  EXPECT_NE(pool.pid(1), first_pids[1]);
  EXPECT_GT(pool.pid(1), 0);
  // Every worker answers afterwards, the new one included.
  std::vector<TaskHandle<std::string>> later;
  for (const char* request : {"w", "x", "y", "z"})
    later.push_back(spawn(
        loop, [&](std::string r) { return ask(pool, r); }, std::string(request)));
  finish(later);
  EXPECT_EQ(later[0].result().value(), "w!");
  EXPECT_EQ(later[1].result().value(), "x!");
  EXPECT_EQ(later[2].result().value(), "y!");
  EXPECT_EQ(later[3].result().value(), "z!");
  auto closed = run_until_complete(loop, [&]() -> Task<> { co_await pool.close(1s); });
  EXPECT_FALSE(closed);
  EXPECT_EQ(exits.size(), 5u) << "close() reports each worker's end too";
}

TEST_F(ProcessPoolTest, ACancelledSubmitCostsNothingWhileWaitingAndItsWorkerOnceTheWorkerHoldsIt) {
  ProcessPool pool(loop, 1, answer);
  std::vector<WorkerExit> exits;
  pool.on_exit([&](const WorkerExit& exit) { exits.push_back(exit); });
  ASSERT_FALSE(pool.start());
  const int first_pid = pool.pid(0);
  std::vector<TaskHandle<std::string>> held;
  std::vector<TaskHandle<std::string>> waiting;
  held.push_back(spawn(loop, [&] { return ask(pool, "hold"); }));
  waiting.push_back(spawn(loop, [&] { return ask(pool, "waits"); }));
  for (int i = 0; i < 100 && pool.idle() != 0; ++i)
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_EQ(pool.idle(), 0u);  // the worker has the first request; the second waits for it
  waiting[0].cancel();
  finish(waiting);
  EXPECT_EQ(waiting[0].result().value(), "error " + std::to_string(ECANCELED));
  EXPECT_EQ(pool.pid(0), first_pid);
  held[0].cancel();
  finish(held);
  EXPECT_EQ(held[0].result().value(), "error " + std::to_string(ECANCELED));
  // Its reply would be left in the channel for the next request to read: the worker goes.
  for (int i = 0; i < 1000 && exits.empty(); ++i)
    ASSERT_FALSE(loop.run(RunMode::Once));
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].pid, first_pid);
  ASSERT_TRUE(exits[0].status.signaled());
  EXPECT_EQ(exits[0].status.signal_number(), SIGKILL);
  EXPECT_EQ(pool.restarts(), 1u);
  std::vector<TaskHandle<std::string>> after;
  after.push_back(spawn(loop, [&] { return ask(pool, "after"); }));
  finish(after);
  EXPECT_EQ(after[0].result().value(), "after!");
  EXPECT_NE(pool.pid(0), first_pid);
  auto closed = run_until_complete(loop, [&]() -> Task<> { co_await pool.close(1s); });
  EXPECT_FALSE(closed);
}

}  // namespace
}  // namespace evflow
