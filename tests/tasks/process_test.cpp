// spawn_process and WorkerProcess (tasks/process.hpp): a forked worker's round trip, its
// exit status (a code, a signal, a crash the parent survives), terminate() of a worker
// that ignores SIGTERM, and workers that end when their parent is killed. Worker code
// reports through its exit code or its channel, never through test assertions.
#include "tasks/process.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <chrono>
#include <cstdlib>
#include <string>

#include <evflow/evflow.hpp>
#include <evflow/process.hpp>
#include <evflow/tasks.hpp>

namespace evflow {
namespace {

using namespace std::chrono_literals;

// Echoes each frame back until the parent closes its end; exits with 0 then.
Task<int> echo(MessageChannel& parent) {
  std::string frame;
  for (;;) {
    auto got = co_await parent.receive(frame);
    if (!got) co_return got.error() == Error(EPIPE) ? 0 : 1;
    Error sent = co_await parent.send(frame);
    if (sent) co_return 2;
  }
}

class SpawnProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  Loop loop;
};

TEST_F(SpawnProcessTest, FramesOfEverySizeGoToTheWorkerAndComeBack) {
  ProcessOptions options;
  options.max_frame = 65536;
  auto worker = spawn_process(loop, echo, options);
  ASSERT_TRUE(worker) << worker.error().message();
  WorkerProcess& process = worker.value();
  EXPECT_GT(process.pid(), 0);
  const std::string largest(65536, 'z');
  auto outcome = run_until_complete(loop, [&]() -> Task<int> {
    std::string reply;
    const std::string sizes[] = {"ping", "", largest};
    for (const std::string& request : sizes) {
      Error sent = co_await process.channel().send(request);
      if (sent) co_return 1;
      auto got = co_await process.channel().receive(reply);
      if (!got || reply != request) co_return 2;
    }
    Error over = co_await process.channel().send(largest + "!");
    if (over != Error(EMSGSIZE)) co_return 3;
    (void)process.channel().close();  // the worker's receive gives EPIPE: it exits with 0
    auto status = co_await process.wait();
    if (!status || !status.value().exited()) co_return 4;
    co_return status.value().code() == 0 ? 0 : 5;
  });
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome.value(), 0);
  ASSERT_TRUE(process.status());
  EXPECT_TRUE(process.status()->exited());
}

TEST_F(SpawnProcessTest, TheExitStatusGivesTheCodeOrTheSignalAndTheParentSurvivesACrash) {
  auto coded = spawn_process(loop, [](MessageChannel&) -> Task<int> { co_return 7; });
  ASSERT_TRUE(coded);
  auto crashed = spawn_process(loop, [](MessageChannel&) -> Task<int> {
    std::abort();
    co_return 0;
  });
  ASSERT_TRUE(crashed);
  auto statuses = run_until_complete(loop, [&]() -> Task<int> {
    auto code = co_await coded.value().wait();
    if (!code || !code.value().exited() || code.value().code() != 7) co_return 1;
    auto signal = co_await crashed.value().wait();
    if (!signal || !signal.value().signaled() || signal.value().signal_number() != SIGABRT) co_return 2;
    co_return 0;
  });
  ASSERT_TRUE(statuses);
  EXPECT_EQ(statuses.value(), 0);
}

TEST_F(SpawnProcessTest, TerminateEndsAWorkerThatIgnoresSigtermWithSigkill) {
  auto worker = spawn_process(loop, [](MessageChannel& parent) -> Task<int> {
    ::signal(SIGTERM, SIG_IGN);
    Error ready = co_await parent.send("ready");
    if (ready) co_return 1;
    std::string frame;
    for (;;)
      (void)co_await parent.receive(frame);
  });
  ASSERT_TRUE(worker);
  auto outcome = run_until_complete(loop, [&]() -> Task<Error> {
    std::string frame;
    auto ready = co_await worker.value().channel().receive(frame);
    if (!ready) co_return ready.error();
    auto ended = co_await worker.value().terminate(20ms);
    co_return ended ? Error() : ended.error();
  });
  EXPECT_FALSE(outcome) << outcome.message();
  auto status = worker.value().status();
  ASSERT_TRUE(status);
  ASSERT_TRUE(status->signaled());
  EXPECT_EQ(status->signal_number(), SIGKILL);
}

TEST_F(SpawnProcessTest, AHandleDroppedBeforeItsWorkerExitedKillsAndReapsIt) {
  int pid = 0;
  {
    auto worker = spawn_process(loop, echo);
    ASSERT_TRUE(worker);
    pid = worker.value().pid();
  }
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1) << "reaped already";
  EXPECT_EQ(errno, ECHILD);
}

#if defined(__linux__)
// Says "ready" (it is past its start, parent-death signal asked for), then echoes.
Task<int> ready_then_echo(MessageChannel& parent) {
  Error ready = co_await parent.send("ready");
  if (ready) co_return 3;
  co_return co_await echo(parent);
}

// Says "ready", then waits an hour without looking at its channel: only a signal ends it.
Task<int> ready_then_idle(MessageChannel& parent) {
  Error ready = co_await parent.send("ready");
  if (ready) co_return 3;
  (void)co_await sleep(1h);
  co_return 4;
}

// Runs in a forked "parent": spawns two workers, one that ignores its channel and has the
// parent-death signal, and one relying on its channel alone, writes their pids to `report` once both are ready, then
// waits to be killed.
[[noreturn]] void doomed_parent(int report) {
  Loop parent_loop;
  if (parent_loop.open()) _exit(10);
  auto by_signal = spawn_process(parent_loop, ready_then_idle);
  ProcessOptions no_signal;
  no_signal.parent_death_signal = 0;
  auto by_channel = spawn_process(parent_loop, ready_then_echo, no_signal);
  if (!by_signal || !by_channel) _exit(11);
  auto ready = run_until_complete(parent_loop, [&]() -> Task<Error> {
    std::string frame;
    for (WorkerProcess* worker : {&by_signal.value(), &by_channel.value()}) {
      auto got = co_await worker->channel().receive(frame);
      if (!got) co_return got.error();
    }
    co_return Error();
  });
  if (ready) _exit(13);
  const int pids[2] = {by_signal.value().pid(), by_channel.value().pid()};
  if (::write(report, pids, sizeof pids) != static_cast<ssize_t>(sizeof pids)) _exit(12);
  for (;;)
    ::pause();
}

TEST_F(SpawnProcessTest, WorkersEndWhenTheirParentIsKilled) {
  // The orphaned workers become this process's children, so that the loop can wait for them.
  // qemu-user 7.2 does not pass PR_SET_CHILD_SUBREAPER on (EINVAL): nothing to wait with.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL) != 0)
    GTEST_SKIP() << "PR_SET_CHILD_SUBREAPER refused here (errno " << errno << ")";
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(report[0]);
    doomed_parent(report[1]);
  }
  ::close(report[1]);
  int pids[2] = {0, 0};
  const ssize_t got = ::read(report[0], pids, sizeof pids);
  ::close(report[0]);
  ::kill(parent, SIGKILL);
  int parent_status = 0;
  ASSERT_EQ(::waitpid(parent, &parent_status, 0), parent);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof pids));
  auto statuses = run_until_complete(loop, [&]() -> Task<int> {
    // A bound that only a failing run reaches: then the workers are killed below.
    auto by_signal =
        co_await fail_after(30s, [&]() -> Task<Result<ExitStatus>> { co_return co_await child_exit(pids[0]); }());
    auto by_channel =
        co_await fail_after(30s, [&]() -> Task<Result<ExitStatus>> { co_return co_await child_exit(pids[1]); }());
    if (!by_signal || !by_signal.value().signaled() || by_signal.value().signal_number() != SIGKILL) co_return 1;
    if (!by_channel || !by_channel.value().exited() || by_channel.value().code() != 0) co_return 2;
    co_return 0;
  });
  for (int pid : pids) {
    if (::kill(pid, SIGKILL) == 0) (void)::waitpid(pid, nullptr, 0);  // only after a failure
  }
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0UL, 0UL, 0UL, 0UL), 0);
  ASSERT_TRUE(statuses);
  EXPECT_EQ(statuses.value(), 0);
}
#endif

}  // namespace
}  // namespace evflow
