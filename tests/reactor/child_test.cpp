#include "reactor/child.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <vector>

#include <evflow/evflow.hpp>
#include "tests/support/run_until.hpp"
#include "tests/support/spawned_process.hpp"
#if defined(_WIN32)
#include <windows.h>

#include <chrono>
#include <string>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace evflow {
namespace {

#if !defined(_WIN32)
pid_t spawn_exiting_with(int code) {
  const pid_t pid = ::fork();
  if (pid == 0) _exit(code);
  return pid;
}

pid_t spawn_waiting_for_a_signal() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (;;)
      ::pause();
  }
  return pid;
}

class ChildTest : public ::testing::TestWithParam<ChildPath> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(loop.open());
    loop.request_child_path(GetParam());
  }
  Loop loop;
};

TEST_P(ChildTest, ReportsTheExitCodeAndStopsItself) {
  const pid_t pid = spawn_exiting_with(7);
  ASSERT_GT(pid, 0);
  ExitStatus seen;
  int calls = 0;
  Child child(loop);
  ASSERT_FALSE(child.start(pid, [&](Child& self, ExitStatus status) {
    ++calls;
    seen = status;
    EXPECT_FALSE(self.active()) << "semantics 15: stopped once the exit is reported";
  }));
  ASSERT_FALSE(loop.run());  // returns: the only watcher stopped itself
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen.exited());
  EXPECT_EQ(seen.code(), 7);
  EXPECT_FALSE(seen.signaled());
  EXPECT_EQ(child.status().code(), 7);
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1) << "already reaped";
}

TEST_P(ChildTest, ReportsTheSignalThatKilledIt) {
  const pid_t pid = spawn_waiting_for_a_signal();
  ASSERT_GT(pid, 0);
  ExitStatus seen;
  Child child(loop);
  ASSERT_FALSE(child.start(pid, [&](Child&, ExitStatus status) { seen = status; }));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_FALSE(loop.run());
  EXPECT_TRUE(seen.signaled());
  EXPECT_EQ(seen.signal_number(), SIGTERM);
  EXPECT_FALSE(seen.exited());
}

TEST_P(ChildTest, AChildThatExitedBeforeTheWatcherStartedIsStillReported) {
  const pid_t pid = spawn_exiting_with(3);
  ASSERT_GT(pid, 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);  // exited, not reaped
  int code = -1;
  Child child(loop);
  ASSERT_FALSE(child.start(pid, [&](Child&, ExitStatus status) { code = status.code(); }));
  ASSERT_FALSE(loop.run());
  EXPECT_EQ(code, 3);
}

TEST_P(ChildTest, AHundredChildrenAtOnce) {
  constexpr int kChildren = 100;
  std::vector<std::unique_ptr<Child>> watchers;
  std::vector<int> codes(kChildren, -1);
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = spawn_exiting_with(i);
    ASSERT_GT(pid, 0);
    watchers.push_back(std::make_unique<Child>(loop));
    ASSERT_FALSE(watchers.back()->start(pid, [&codes, i](Child&, ExitStatus status) { codes[i] = status.code(); }));
  }
  ASSERT_FALSE(loop.run());
  for (int i = 0; i < kChildren; ++i)
    EXPECT_EQ(codes[i], i) << "child " << i;
}

// Semantics 8: only watched pids are reaped, never another library's children.
TEST_P(ChildTest, NeverReapsAChildNobodyWatches) {
  const pid_t unwatched = spawn_exiting_with(1);
  const pid_t watched = spawn_exiting_with(2);
  ASSERT_GT(unwatched, 0);
  ASSERT_GT(watched, 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(unwatched), &info, WEXITED | WNOWAIT), 0);
  Child child(loop);
  ASSERT_FALSE(child.start(watched, [] {}));
  ASSERT_FALSE(loop.run());
  int status = 0;
  EXPECT_EQ(::waitpid(unwatched, &status, WNOHANG), unwatched) << "still there for its owner to reap";
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

std::atomic<int> g_application_sigchlds{0};
void application_sigchld_handler(int) { g_application_sigchlds.fetch_add(1); }

// Regression: while a Child watcher used the SIGCHLD path, a SIGCHLD handler the
// application had installed for its own children was never called.
TEST_P(ChildTest, TheApplicationsOwnSigchldHandlerIsStillCalled) {
  struct sigaction mine {
  }, seen{};
  mine.sa_handler = application_sigchld_handler;
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(::sigaction(SIGCHLD, &mine, nullptr), 0);
  g_application_sigchlds.store(0);
  const pid_t watched = spawn_exiting_with(3);
  ASSERT_GT(watched, 0);
  int code = -1;
  Child child(loop);
  ASSERT_FALSE(child.start(watched, [&](Child&, ExitStatus s) { code = s.code(); }));
  const pid_t own = spawn_exiting_with(4);  // the application's: no watcher names it
  ASSERT_GT(own, 0);
  siginfo_t info{};
  int waited;
  while ((waited = ::waitid(P_PID, static_cast<id_t>(own), &info, WEXITED | WNOWAIT)) != 0 && errno == EINTR) {
  }                      // the handler has no SA_RESTART
  ASSERT_EQ(waited, 0);  // it has exited
  ASSERT_FALSE(loop.run());
  EXPECT_EQ(code, 3);
  if (GetParam() == ChildPath::SigChld) {
    EXPECT_GE(g_application_sigchlds.load(), 1) << "the application's handler ran beside evflow's";
  }
  int status = 0;
  EXPECT_EQ(::waitpid(own, &status, WNOHANG), own) << "its own child was left to it";
  ASSERT_EQ(::sigaction(SIGCHLD, nullptr, &seen), 0);
  EXPECT_EQ(seen.sa_handler, &application_sigchld_handler) << "and its handler is back";
  mine.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGCHLD, &mine, nullptr), 0);
}

TEST_P(ChildTest, AChildReapedByOtherCodeIsReportedAsSuch) {
  const pid_t pid = spawn_exiting_with(5);
  ASSERT_GT(pid, 0);
  ExitStatus seen = ExitStatus::from_wait_status(0);
  Child child(loop);
  ASSERT_FALSE(child.start(pid, [&](Child&, ExitStatus status) { seen = status; }));
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);              // someone else got there first
  if (GetParam() == ChildPath::SigChld) ::raise(SIGCHLD);  // nothing else would wake a check
  ASSERT_FALSE(loop.run());
  EXPECT_TRUE(seen.reaped_elsewhere());
  EXPECT_FALSE(seen.exited());
}

TEST_P(ChildTest, StoppingLeavesTheChildUnreaped) {
  const pid_t pid = spawn_exiting_with(9);
  ASSERT_GT(pid, 0);
  Child child(loop);
  ASSERT_FALSE(child.start(pid, [] { ADD_FAILURE() << "stopped watcher called"; }));
  child.stop();
  ASSERT_FALSE(loop.run());
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 9);
}

TEST_P(ChildTest, BadPidsAreRefused) {
  Child child(loop);
  EXPECT_EQ(child.start(0, [] {}).code(), EINVAL) << "no any-child watcher";
  EXPECT_EQ(child.start(-1, [] {}).code(), EINVAL);
  EXPECT_EQ(child.start(::getpid(), [] {}).code(), ECHILD) << "not our child";
  EXPECT_EQ(child.start(1, [] {}).code(), ECHILD);
  EXPECT_FALSE(child.active());
  EXPECT_EQ(loop.active_watchers(), 0);
}

// Regression: only one of them got the status, the other was told the child had been
// reaped elsewhere.
TEST_P(ChildTest, TwoWatchersOfOneChildAreBothCalledOnceWithTheStatus) {
  const pid_t pid = spawn_exiting_with(9);
  ASSERT_GT(pid, 0);
  int calls_a = 0, calls_b = 0;
  ExitStatus a_status, b_status;
  Child a(loop), b(loop);
  ASSERT_FALSE(a.start(pid, [&](Child&, ExitStatus s) {
    ++calls_a;
    a_status = s;
  }));
  ASSERT_FALSE(b.start(pid, [&](Child&, ExitStatus s) {
    ++calls_b;
    b_status = s;
  }));
  if (GetParam() == ChildPath::SigChld) ::raise(SIGCHLD);
  ASSERT_FALSE(loop.run());  // returns: both stopped themselves
  EXPECT_EQ(calls_a, 1);
  EXPECT_EQ(calls_b, 1);
  EXPECT_FALSE(a.active());
  EXPECT_FALSE(b.active());
  EXPECT_TRUE(a_status.exited() && a_status.code() == 9);
  EXPECT_TRUE(b_status.exited() && b_status.code() == 9);
  EXPECT_FALSE(a_status.reaped_elsewhere());
  EXPECT_FALSE(b_status.reaped_elsewhere());
}

TEST_P(ChildTest, StoppingOneOfTwoWatchersOfAChildKeepsTheOtherWatching) {
  const pid_t pid = spawn_exiting_with(4);
  ASSERT_GT(pid, 0);
  int calls_b = 0;
  Child a(loop), b(loop);
  ASSERT_FALSE(a.start(pid, [](Child&, ExitStatus) { ADD_FAILURE() << "stopped"; }));
  ASSERT_FALSE(b.start(pid, [&](Child&, ExitStatus s) {
    ++calls_b;
    EXPECT_EQ(s.code(), 4);
  }));
  a.stop();
  if (GetParam() == ChildPath::SigChld) ::raise(SIGCHLD);
  ASSERT_FALSE(loop.run());
  EXPECT_EQ(calls_b, 1);
}

// Every path this build has: pidfd and SIGCHLD on Linux, and the backend's own process
// events where it reports them (kqueue's EVFILT_PROC).
std::vector<ChildPath> available_child_paths() {
  std::vector<ChildPath> paths{ChildPath::Pidfd, ChildPath::SigChld};
  if (detail::Backend::kReportsProcesses) paths.push_back(ChildPath::ProcessEvent);
  return paths;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, ChildTest, ::testing::ValuesIn(available_child_paths()));

TEST(ChildPathChoice, APathTheBackendLacksMeansTheDefault) {
  Loop loop;
  loop.request_child_path(ChildPath::SigChld);
  EXPECT_EQ(loop.child_path(), ChildPath::SigChld);
  loop.request_child_path(ChildPath::ProcessEvent);
  EXPECT_EQ(loop.child_path(), detail::Backend::kReportsProcesses ? ChildPath::ProcessEvent : Loop::kDefaultChildPath);
  EXPECT_EQ(Loop::kDefaultChildPath, detail::Backend::kReportsProcesses ? ChildPath::ProcessEvent : ChildPath::Pidfd);
}

#endif  // !_WIN32

#if defined(_WIN32)
// Windows: a process has no parent that reaps it. Its exit code stays readable while any
// handle to it is open, and its pid is not reused meanwhile (platform/win/process.hpp), so
// each test keeps the handle CreateProcess gave it until the end.

using testing::Spawned;

Spawned exiting_with(int code) { return Spawned(L"cmd.exe /c exit " + std::to_wstring(code)); }

// Runs until terminated, and never by chance ends sooner: its only thread is created
// suspended and never resumed.
Spawned running_until_terminated() { return Spawned(L"cmd.exe", CREATE_SUSPENDED); }

class ChildTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }

  // Runs the loop until `done()` (tests/support/run_until.hpp).
  template <class Done>
  bool run_until(Done done) {
    return testing::run_until(loop, done);
  }

  Loop loop;
};

TEST_F(ChildTest, ReportsTheExitCodeAndStopsItself) {
  Spawned process = exiting_with(7);
  ASSERT_GT(process.pid(), 0);
  ExitStatus seen;
  int calls = 0;
  Child child(loop);
  ASSERT_FALSE(child.start(process.pid(), [&](Child& self, ExitStatus status) {
    ++calls;
    seen = status;
    EXPECT_FALSE(self.active()) << "semantics 15: stopped once the exit is reported";
  }));
  ASSERT_TRUE(run_until([&] { return calls > 0; }));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen.exited());
  EXPECT_EQ(seen.code(), 7);
  EXPECT_FALSE(seen.signaled());
  EXPECT_FALSE(seen.reaped_elsewhere());
  EXPECT_EQ(child.status().code(), 7);
  EXPECT_FALSE(child.active());
  EXPECT_EQ(loop.active_watchers(), 0) << "nothing left to wait for";
}

// Windows has no death by signal: TerminateProcess ends a process with the code it is given.
TEST_F(ChildTest, ReportsTheCodeTerminateProcessGave) {
  Spawned process = running_until_terminated();
  ASSERT_GT(process.pid(), 0);
  ExitStatus seen;
  int calls = 0;
  Child child(loop);
  ASSERT_FALSE(child.start(process.pid(), [&](Child&, ExitStatus status) {
    ++calls;
    seen = status;
  }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 0) << "still running";
  ASSERT_TRUE(process.terminate(3));
  ASSERT_TRUE(run_until([&] { return calls > 0; }));
  EXPECT_TRUE(seen.exited());
  EXPECT_EQ(seen.code(), 3);
  EXPECT_FALSE(seen.signaled());
}

TEST_F(ChildTest, TheExitCodeIsReportedWholeNotCutToEightBits) {
  constexpr DWORD kControlCExit = 0xC000013A;  // STATUS_CONTROL_C_EXIT: Ctrl+C's default end
  Spawned process = running_until_terminated();
  ASSERT_GT(process.pid(), 0);
  int code = 0;
  Child child(loop);
  ASSERT_FALSE(child.start(process.pid(), [&](Child&, ExitStatus status) { code = status.code(); }));
  ASSERT_TRUE(process.terminate(kControlCExit));
  ASSERT_TRUE(run_until([&] { return code != 0; }));
  EXPECT_EQ(static_cast<DWORD>(code), kControlCExit);
}

TEST_F(ChildTest, AChildThatExitedBeforeTheWatcherStartedIsStillReported) {
  Spawned process = exiting_with(3);
  ASSERT_GT(process.pid(), 0);
  ASSERT_TRUE(process.ended());  // our handle keeps its pid and its exit code
  int code = -1;
  Child child(loop);
  ASSERT_FALSE(child.start(process.pid(), [&](Child&, ExitStatus status) { code = status.code(); }));
  ASSERT_TRUE(run_until([&] { return code != -1; }));
  EXPECT_EQ(code, 3);
}

TEST_F(ChildTest, TheWatchersOwnHandleKeepsTheExitCodeOnceTheCreatorLetsGo) {
  Spawned process = exiting_with(5);
  ASSERT_GT(process.pid(), 0);
  int code = -1;
  Child child(loop);
  ASSERT_FALSE(child.start(process.pid(), [&](Child&, ExitStatus status) { code = status.code(); }));
  process.release();
  ASSERT_TRUE(run_until([&] { return code != -1; }));
  EXPECT_EQ(code, 5);
}

// More than a wait thread's 63 handles (RegisterWaitForSingleObject, iocp_backend.hpp note i).
TEST_F(ChildTest, AHundredChildrenAtOnce) {
  constexpr int kChildren = 100;
  std::vector<std::unique_ptr<Spawned>> processes;
  std::vector<std::unique_ptr<Child>> watchers;
  std::vector<int> codes(kChildren, -1);
  int reported = 0;
  for (int i = 0; i < kChildren; ++i) {
    processes.push_back(std::make_unique<Spawned>(L"cmd.exe", CREATE_SUSPENDED));
    ASSERT_GT(processes.back()->pid(), 0) << "child " << i << ", error " << processes.back()->error();
    watchers.push_back(std::make_unique<Child>(loop));
    ASSERT_FALSE(watchers.back()->start(processes.back()->pid(), [&codes, &reported, i](Child&, ExitStatus status) {
      codes[i] = status.code();
      ++reported;
    }));
  }
  for (int i = 0; i < kChildren; ++i)
    ASSERT_TRUE(processes[i]->terminate(static_cast<UINT>(i)));
  ASSERT_TRUE(run_until([&] { return reported == kChildren; }));
  for (int i = 0; i < kChildren; ++i)
    EXPECT_EQ(codes[i], i) << "child " << i;
}

TEST_F(ChildTest, StoppingBeforeTheExitMeansNoCallback) {
  Spawned process = running_until_terminated();
  ASSERT_GT(process.pid(), 0);
  Child child(loop);
  ASSERT_FALSE(child.start(process.pid(), [] { ADD_FAILURE() << "stopped watcher called"; }));
  child.stop();
  EXPECT_FALSE(child.active());
  EXPECT_EQ(loop.active_watchers(), 0);
  ASSERT_TRUE(process.terminate(9));
  ASSERT_TRUE(process.ended());
  // A later watcher of the same process: once it has its report, one for the stopped
  // watcher would have come too.
  int code = -1;
  Child witness(loop);
  ASSERT_FALSE(witness.start(process.pid(), [&](Child&, ExitStatus status) { code = status.code(); }));
  ASSERT_TRUE(run_until([&] { return code != -1; }));
  EXPECT_EQ(code, 9);
  DWORD creators_code = 0;
  ASSERT_TRUE(GetExitCodeProcess(process.handle(), &creators_code));
  EXPECT_EQ(creators_code, 9u) << "still there for the creator to read";
}

TEST_F(ChildTest, BadPidsAreRefused) {
  Child child(loop);
  EXPECT_EQ(child.start(0, [] {}).code(), EINVAL) << "no any-child watcher";
  EXPECT_EQ(child.start(-1, [] {}).code(), EINVAL);
  EXPECT_EQ(child.start(0x7ffffff0, [] {}).code(), ECHILD) << "no such process";
  EXPECT_EQ(child.start(pid_t{1} << 32, [] {}).code(), ECHILD) << "beyond a DWORD: not cut to another pid";
  EXPECT_FALSE(child.active());
  EXPECT_EQ(loop.active_watchers(), 0);
}

// Nothing is reaped on Windows: every watcher reads the exit code through its own handle.
TEST_F(ChildTest, TwoWatchersOfOneChildAreBothCalledOnceWithTheExitCode) {
  Spawned process = running_until_terminated();
  ASSERT_GT(process.pid(), 0);
  int calls_a = 0, calls_b = 0;
  ExitStatus a_status, b_status;
  Child a(loop), b(loop);
  ASSERT_FALSE(a.start(process.pid(), [&](Child&, ExitStatus s) {
    ++calls_a;
    a_status = s;
  }));
  ASSERT_FALSE(b.start(process.pid(), [&](Child&, ExitStatus s) {
    ++calls_b;
    b_status = s;
  }));
  ASSERT_TRUE(process.terminate(9));
  ASSERT_TRUE(run_until([&] { return calls_a > 0 && calls_b > 0; }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls_a, 1);
  EXPECT_EQ(calls_b, 1);
  EXPECT_FALSE(a.active());
  EXPECT_FALSE(b.active());
  EXPECT_TRUE(a_status.exited() && a_status.code() == 9);
  EXPECT_TRUE(b_status.exited() && b_status.code() == 9);
}

// The second start re-registers the pid while the first registration's report may be
// on its way already: that report is stale and must not count.
TEST_F(ChildTest, TwoWatchersOfAChildThatHadAlreadyExitedAreBothCalledOnce) {
  Spawned process = exiting_with(6);
  ASSERT_GT(process.pid(), 0);
  ASSERT_TRUE(process.ended());
  int calls_a = 0, calls_b = 0, code_a = -1, code_b = -1;
  Child a(loop), b(loop);
  ASSERT_FALSE(a.start(process.pid(), [&](Child&, ExitStatus s) {
    ++calls_a;
    code_a = s.code();
  }));
  ASSERT_FALSE(b.start(process.pid(), [&](Child&, ExitStatus s) {
    ++calls_b;
    code_b = s.code();
  }));
  ASSERT_TRUE(run_until([&] { return calls_a > 0 && calls_b > 0; }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls_a, 1);
  EXPECT_EQ(calls_b, 1);
  EXPECT_EQ(code_a, 6);
  EXPECT_EQ(code_b, 6);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(ChildTest, StoppingOneOfTwoWatchersOfAChildKeepsTheOtherWatching) {
  Spawned process = running_until_terminated();
  ASSERT_GT(process.pid(), 0);
  int calls_b = 0, code_b = -1;
  Child a(loop), b(loop);
  ASSERT_FALSE(a.start(process.pid(), [](Child&, ExitStatus) { ADD_FAILURE() << "stopped"; }));
  ASSERT_FALSE(b.start(process.pid(), [&](Child&, ExitStatus s) {
    ++calls_b;
    code_b = s.code();
  }));
  a.stop();
  ASSERT_TRUE(process.terminate(4));
  ASSERT_TRUE(run_until([&] { return calls_b > 0; }));
  EXPECT_EQ(calls_b, 1);
  EXPECT_EQ(code_b, 4);
}

TEST(ChildPathChoice, WindowsHasTheProcessEventPathOnly) {
  Loop loop;
  EXPECT_EQ(Loop::kDefaultChildPath, ChildPath::ProcessEvent);
  for (ChildPath path : {ChildPath::Pidfd, ChildPath::SigChld, ChildPath::ProcessEvent}) {
    loop.request_child_path(path);
    EXPECT_EQ(loop.child_path(), ChildPath::ProcessEvent);
  }
}
#endif

}  // namespace
}  // namespace evflow
