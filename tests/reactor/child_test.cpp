#include "reactor/child.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "reactor/evflow.hpp"

namespace evflow {
namespace {

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

TEST_P(ChildTest, TwoWatchersOfOneChildAreBothCalledOnceAndOnlyOneGetsTheStatus) {
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
  const bool a_has_it = a_status.exited() && a_status.code() == 9;
  const bool b_has_it = b_status.exited() && b_status.code() == 9;
  EXPECT_NE(a_has_it, b_has_it) << "one reap, one status";
  EXPECT_TRUE(a_has_it ? b_status.reaped_elsewhere() : a_status.reaped_elsewhere());
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
  if (Backend::kReportsProcesses) paths.push_back(ChildPath::ProcessEvent);
  return paths;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, ChildTest, ::testing::ValuesIn(available_child_paths()));

TEST(ChildPathChoice, APathTheBackendLacksMeansTheDefault) {
  Loop loop;
  loop.request_child_path(ChildPath::SigChld);
  EXPECT_EQ(loop.child_path(), ChildPath::SigChld);
  loop.request_child_path(ChildPath::ProcessEvent);
  EXPECT_EQ(loop.child_path(), Backend::kReportsProcesses ? ChildPath::ProcessEvent : Loop::kDefaultChildPath);
  EXPECT_EQ(Loop::kDefaultChildPath, Backend::kReportsProcesses ? ChildPath::ProcessEvent : ChildPath::Pidfd);
}

}  // namespace
}  // namespace evflow
