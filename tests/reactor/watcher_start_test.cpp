// The rules every watcher kind shares for start() (README, "Watchers"): a start that
// fails leaves the watcher inactive, whatever it was before, with nothing of it left
// registered; and a null function pointer is no callback (EINVAL). One test per kind.
#include <gtest/gtest.h>

#include <chrono>

#if !defined(_WIN32)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <evflow/evflow.hpp>
#include "tests/support/descriptors.hpp"
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

#if defined(_WIN32)
constexpr int kSignal = 2;   // SIGINT: Ctrl+C (platform/win/console_events.hpp)
constexpr int kRefused = 9;  // anything but SIGINT, SIGBREAK and SIGHUP
#else
constexpr int kSignal = SIGUSR1;
constexpr int kRefused = SIGKILL;
#endif

using FailedStart = testing::FakeClockLoopTest;

TEST_F(FailedStart, LeavesAnActiveIoInactive) {
  auto p = testing::make_pipe();
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&] { ++calls; }));
  EXPECT_EQ(io.start(-1, Readable, [&] { ++calls; }).code(), EBADF);
  EXPECT_FALSE(io.active());
  EXPECT_EQ(io.start(p.read_end.get(), Events(), [&] { ++calls; }).code(), EINVAL);
  EXPECT_FALSE(io.active());
  step(0ns);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(FailedStart, LeavesAnActiveTimerInactive) {
  int calls = 0;
  Timer timer(loop);
  ASSERT_FALSE(timer.start(1ms, [&] { ++calls; }));
  EXPECT_EQ(timer.start(1ms, -1ms, [&] { ++calls; }).code(), EINVAL);
  EXPECT_FALSE(timer.active());
  ASSERT_FALSE(timer.start(1ms, [&] { ++calls; }));
  EXPECT_EQ(timer.start(1ms, -1ms).code(), EINVAL) << "the form without a callback too";
  EXPECT_FALSE(timer.active());
  step(1s);
  EXPECT_EQ(calls, 0);
}

TEST_F(FailedStart, LeavesAnActivePeriodicInactive) {
  int calls = 0;
  Periodic periodic(loop);
  ASSERT_FALSE(periodic.start(wall() + 1s, 0s, [&] { ++calls; }));
  EXPECT_EQ(periodic.start(wall() + 1s, -1s, [&] { ++calls; }).code(), EINVAL);
  EXPECT_FALSE(periodic.active());
  step(2s);
  EXPECT_EQ(calls, 0);
}

// Regression: Signal::start(SIGKILL, cb2) on an active watcher answered EINVAL, yet the
// watcher stayed active on its old signal and called cb2 for it.
TEST_F(FailedStart, LeavesAnActiveSignalInactiveAndNeverCallsTheNewCallback) {
  int old_calls = 0, new_calls = 0;
  Signal signal(loop);
  ASSERT_FALSE(signal.start(kSignal, [&] { ++old_calls; }));
  EXPECT_EQ(signal.start(kRefused, [&] { ++new_calls; }).code(), EINVAL);
  EXPECT_FALSE(signal.active());
  EXPECT_EQ(loop.active_watchers(), 0);
#if !defined(_WIN32)
  struct sigaction seen {};
  ASSERT_EQ(::sigaction(kSignal, nullptr, &seen), 0);
  EXPECT_EQ(seen.sa_handler, SIG_DFL) << "nothing of the old start is left";
#endif
  EXPECT_EQ(old_calls + new_calls, 0);
}

#if !defined(_WIN32)
TEST_F(FailedStart, LeavesAnActiveChildInactive) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(3);
  Child child(loop);
  ASSERT_FALSE(child.start(pid, [] {}));
  EXPECT_EQ(child.start(-1, [] {}).code(), EINVAL);
  EXPECT_FALSE(child.active());
  EXPECT_EQ(loop.active_watchers(), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid) << "not reaped by the loop";
}
#endif

// Async and the hooks cannot fail a start with a callback; without one they now stop too.
TEST_F(FailedStart, LeavesAnActiveAsyncOrHookInactive) {
  Async async(loop);
  Idle idle(loop);
  ASSERT_FALSE(async.start([] {}));
  ASSERT_FALSE(idle.start([] {}));
  EXPECT_EQ(async.start(static_cast<void (*)()>(nullptr)).code(), EINVAL);
  EXPECT_EQ(idle.start(static_cast<void (*)()>(nullptr)).code(), EINVAL);
  EXPECT_FALSE(async.active());
  EXPECT_FALSE(idle.active());
}

// Regression: a null function pointer was accepted as a callback (Timer, Async), and the
// loop later called address 0.
TEST_F(FailedStart, ANullFunctionPointerIsNoCallbackForAnyWatcherKind) {
  void (*none)() = nullptr;
  auto p = testing::make_pipe();
  Io io(loop);
  Timer timer(loop);
  Periodic periodic(loop);
  Signal signal(loop);
  Child child(loop);
  Async async(loop);
  Prepare prepare(loop);
  Check check(loop);
  Idle idle(loop);
  EXPECT_EQ(io.start(p.read_end.get(), Readable, none).code(), EINVAL);
  EXPECT_EQ(timer.start(1ms, none).code(), EINVAL);
  EXPECT_EQ(periodic.start(wall() + 1s, 0s, none).code(), EINVAL);
  EXPECT_EQ(signal.start(kSignal, none).code(), EINVAL);
  EXPECT_EQ(child.start(1, none).code(), EINVAL);
  EXPECT_EQ(async.start(none).code(), EINVAL);
  EXPECT_EQ(prepare.start(none).code(), EINVAL);
  EXPECT_EQ(check.start(none).code(), EINVAL);
  EXPECT_EQ(idle.start(none).code(), EINVAL);
  EXPECT_EQ(loop.active_watchers(), 0);
  step(1h);  // nothing to call, at address 0 or anywhere
}

}  // namespace
}  // namespace evflow
