#include "signals/signal_registry.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#if defined(_WIN32)
#include <windows.h>

#include <atomic>

#include "platform/win/console_events.hpp"
#else
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/pipe_waker.hpp"
#endif

namespace evflow::detail::signals {
namespace {

#if !defined(_WIN32)
TEST(SignalRegistry, RefusesSignalsThatCannotBeWatched) {
  for (int signo : {0, -1, 65, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
    EXPECT_FALSE(watchable(signo)) << signo;
  }
  for (int signo : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH, SIGRTMIN, SIGRTMAX}) {
    EXPECT_TRUE(watchable(signo)) << signo;
  }
}

// Kernel-filter mode (kqueue) keeps the default action away with a handler, never with
// SIG_IGN, which would survive exec and silence SIGTTIN/SIGTTOU and SIGCHLD; the handler
// notes the signal for forked children; the previous disposition comes back at the end.
TEST(SignalRegistry, AKernelFilterSignalGetsAHandlerThatNotesItAndTheDispositionComesBack) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  struct sigaction before {
  }, seen{};
  ASSERT_EQ(::sigaction(SIGWINCH, nullptr, &before), 0);
  Result<int> slot = acquire_slot(pipe_waker(&fds[1]));
  ASSERT_TRUE(slot.ok());
  Result<CatchMode> mode = watch(slot.value(), SIGWINCH, true);
  ASSERT_TRUE(mode.ok());
  ASSERT_EQ(mode.value(), CatchMode::KernelFilter);
  ASSERT_EQ(::sigaction(SIGWINCH, nullptr, &seen), 0);
  EXPECT_NE(seen.sa_handler, SIG_IGN);
  EXPECT_NE(seen.sa_handler, SIG_DFL);
  EXPECT_NE(seen.sa_handler, before.sa_handler);
  const pid_t pid = ::fork();  // a forked child starts with nothing noted
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (filtered_since_fork() != 0) _exit(1);
    if (::raise(SIGWINCH) != 0) _exit(2);
    _exit(filtered_since_fork() == bit_of(SIGWINCH) ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(take_pending(slot.value()), 0u) << "the kqueue reports it, not the mailbox";
  unwatch(slot.value(), SIGWINCH);
  ASSERT_EQ(::sigaction(SIGWINCH, nullptr, &seen), 0);
  EXPECT_EQ(seen.sa_handler, before.sa_handler);
  release_slot(slot.value());
  ::close(fds[0]);
  ::close(fds[1]);
}
#endif

TEST(SignalRegistry, BitsAreOnePerSignal) {
  EXPECT_EQ(bit_of(1), 1u);
  EXPECT_EQ(bit_of(64), uint64_t{1} << 63);
}

#if !defined(_WIN32)
TEST(SignalRegistry, DeliverMarksOnlyTheSlotsWatchingTheSignalAndTakeClearsIt) {
  int a_fds[2], b_fds[2];
  ASSERT_EQ(::pipe(a_fds), 0);
  ASSERT_EQ(::pipe(b_fds), 0);
  Result<int> a = acquire_slot(pipe_waker(&a_fds[1]));
  Result<int> b = acquire_slot(pipe_waker(&b_fds[1]));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(watch(a.value(), SIGUSR1, false).ok());
  EXPECT_EQ(watchers_of(SIGUSR1), 1);
  deliver(SIGUSR1);
  deliver(SIGUSR1);  // coalesced: one mark, one wake-up
  EXPECT_EQ(take_pending(a.value()), bit_of(SIGUSR1));
  EXPECT_EQ(take_pending(a.value()), 0u);
  EXPECT_EQ(take_pending(b.value()), 0u) << "b does not watch SIGUSR1";
  char buffer[64];
  EXPECT_EQ(::read(a_fds[0], buffer, sizeof buffer), 8) << "exactly one wake-up for two deliveries";
  unwatch(a.value(), SIGUSR1);
  EXPECT_EQ(watchers_of(SIGUSR1), 0);
  release_slot(a.value());
  release_slot(b.value());
  for (int fd : {a_fds[0], a_fds[1], b_fds[0], b_fds[1]})
    ::close(fd);
}
#endif

#if defined(_WIN32)
// Windows: a Waker that counts its calls, where Linux counts the bytes in a pipe.
Waker counting_waker(std::atomic<int>* wakes) noexcept {
  return Waker{[](void* context) noexcept { static_cast<std::atomic<int>*>(context)->fetch_add(1); }, wakes};
}

// Only the console control events' signals reach a Windows process from outside
// (console_events.hpp); the C runtime's SIGTERM, SIGABRT and the faults never do.
TEST(SignalRegistry, OnWindowsOnlySighupSigintAndSigbreakCanBeWatched) {
  for (int signo = -1; signo <= 70; ++signo) {
    const bool console_signal = signo == win::kSigHup || signo == win::kSigInt || signo == win::kSigBreak;
    EXPECT_EQ(watchable(signo), console_signal) << signo;
  }
  EXPECT_FALSE(watchable(1000));
  EXPECT_EQ(win::kSigInt, SIGINT) << "the C runtime's numbers";
  EXPECT_EQ(win::kSigBreak, SIGBREAK);
}

TEST(SignalRegistry, WatchRefusesOtherSignalsAndNeedsNoKernelFilter) {
  std::atomic<int> wakes{0};
  Result<int> slot = acquire_slot(counting_waker(&wakes));
  ASSERT_TRUE(slot.ok());
  for (int signo : {0, SIGTERM, SIGABRT, SIGSEGV, 3, 15, 65})
    EXPECT_EQ(watch(slot.value(), signo, false).error().code(), EINVAL) << signo;
  Result<CatchMode> mode = watch(slot.value(), SIGINT, true);
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(mode.value(), CatchMode::Handler) << "no Windows backend reports signals: the console handler does";
  unwatch(slot.value(), SIGINT);
  EXPECT_EQ(watchers_of(SIGINT), 0);
  release_slot(slot.value());
}

TEST(SignalRegistry, DeliverMarksOnlyTheSlotsWatchingTheSignalAndTakeClearsIt) {
  std::atomic<int> a_wakes{0}, b_wakes{0};
  Result<int> a = acquire_slot(counting_waker(&a_wakes));
  Result<int> b = acquire_slot(counting_waker(&b_wakes));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(watch(a.value(), SIGINT, false).ok());
  ASSERT_TRUE(watch(b.value(), SIGBREAK, false).ok());
  EXPECT_EQ(watchers_of(SIGINT), 1);
  deliver(SIGINT);
  deliver(SIGINT);  // coalesced: one mark, one wake-up
  EXPECT_EQ(take_pending(a.value()), bit_of(SIGINT));
  EXPECT_EQ(take_pending(a.value()), 0u);
  EXPECT_EQ(take_pending(b.value()), 0u) << "b does not watch SIGINT";
  EXPECT_EQ(a_wakes.load(), 1) << "exactly one wake-up for two deliveries";
  EXPECT_EQ(b_wakes.load(), 0);
  deliver(SIGINT);  // after the take: marked and woken again, not lost
  EXPECT_EQ(a_wakes.load(), 2);
  EXPECT_EQ(take_pending(a.value()), bit_of(SIGINT));
  unwatch(a.value(), SIGINT);
  unwatch(b.value(), SIGBREAK);
  EXPECT_EQ(watchers_of(SIGINT), 0);
  EXPECT_EQ(watchers_of(SIGBREAK), 0);
  release_slot(a.value());
  release_slot(b.value());
}

// The console handler is the signal layer's way in: a control event reaches the slots
// watching its signal, and one that no slot watches is left to the next handler.
TEST(SignalRegistry, AConsoleEventIsDeliveredToTheSlotsWatchingItsSignalOnly) {
  std::atomic<int> wakes{0};
  Result<int> slot = acquire_slot(counting_waker(&wakes));
  ASSERT_TRUE(slot.ok());
  ASSERT_TRUE(watch(slot.value(), SIGBREAK, false).ok());
  EXPECT_TRUE(win::dispatch_console_event(CTRL_BREAK_EVENT));
  EXPECT_EQ(take_pending(slot.value()), bit_of(SIGBREAK));
  EXPECT_EQ(wakes.load(), 1);
  EXPECT_FALSE(win::dispatch_console_event(CTRL_C_EVENT)) << "SIGINT is not watched";
  EXPECT_FALSE(win::dispatch_console_event(CTRL_CLOSE_EVENT)) << "SIGHUP is not watched";
  EXPECT_EQ(take_pending(slot.value()), 0u);
  unwatch(slot.value(), SIGBREAK);
  EXPECT_FALSE(win::dispatch_console_event(CTRL_BREAK_EVENT)) << "the last unwatch lets it go";
  EXPECT_EQ(wakes.load(), 1);
  release_slot(slot.value());
}
#endif

}  // namespace
}  // namespace evflow::detail::signals
