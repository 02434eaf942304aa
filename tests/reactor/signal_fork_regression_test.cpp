// Regression tests for signal and fork defects, each named after what broke. Each body
// runs in a forked subprocess so that signal masks, dispositions and deaths stay
// isolated; the subprocess reports through its exit code.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>
#include "signals/signal_registry.hpp"
#include "tests/support/backend_kind.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/pipe_waker.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

int exit_code_of(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

template <class F>
int in_subprocess(F&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) _exit(body());
  return exit_code_of(pid);
}

// D1: in a forked child, a ChildPath::SigChld watcher started before the loop's first
// iteration is silently stopped by the automatic after_fork() of that first iteration.
int sigchld_child_started_in_forked_child(ChildPath path) {
  Loop loop;
  if (loop.open()) return 20;
  Timer parent_timer(loop);  // the parent's loop is in use before the fork
  (void)parent_timer.start(1h, [] {});
  (void)loop.run(RunMode::NoWait);
  const pid_t pid = ::fork();
  if (pid == 0) {
    parent_timer.stop();
    loop.request_child_path(path);
    const pid_t grandchild = ::fork();
    if (grandchild == 0) _exit(5);
    int code = -1;
    Child child(loop);
    if (child.start(grandchild, [&](Child&, ExitStatus s) { code = s.code(); })) _exit(10);
    Timer guard(loop);  // bound the run
    (void)guard.start(2s, [&] { loop.stop(); });
    const bool active_before = child.active();
    (void)loop.run(RunMode::NoWait);
    const bool active_after = child.active();
    (void)loop.run();
    if (code != 5)
      std::fprintf(stderr, "D1: active after start=%d, after first iteration=%d, code=%d\n", active_before,
                   active_after, code);
    _exit(code == 5 ? 0 : 1);
  }
  return exit_code_of(pid);
}

TEST(SignalForkRegression, ASigChldChildWatcherStartedInAForkedChildBeforeItsFirstIterationIsNotDropped) {
  EXPECT_EQ(in_subprocess([] { return sigchld_child_started_in_forked_child(ChildPath::SigChld); }), 0);
}
TEST(SignalForkRegression, APidfdChildWatcherStartedInAForkedChildIsReported) {
  EXPECT_EQ(in_subprocess([] { return sigchld_child_started_in_forked_child(ChildPath::Pidfd); }), 0);
}
TEST(SignalForkRegression, AProcessEventChildWatcherStartedInAForkedChildIsReported) {
  if (!detail::Backend::kReportsProcesses) GTEST_SKIP() << "this backend reports no process events";
  EXPECT_EQ(in_subprocess([] { return sigchld_child_started_in_forked_child(ChildPath::ProcessEvent); }), 0);
}

// D2: after_fork() stops inherited SigChld Child watchers *before* it replaces the
// inherited signalfd; dropping SIGCHLD rewrites the mask of the signalfd shared with the
// parent, which then never reads SIGCHLD again and misses its children's exits.
TEST(SignalForkRegression, AForkedChildDroppingItsChildWatchersNeverEditsTheParentsSignalfdMask) {
  EXPECT_EQ(in_subprocess([] {
              sigset_t block;
              sigemptyset(&block);
              sigaddset(&block, SIGCHLD);
              sigaddset(&block, SIGUSR1);
              if (::pthread_sigmask(SIG_BLOCK, &block, nullptr) != 0) return 20;
              Loop loop;
              if (loop.open()) return 21;
              loop.request_child_path(ChildPath::SigChld);
              Signal usr1(loop);  // keeps the signalfd mask non-empty once SIGCHLD goes
              if (usr1.start(SIGUSR1, [] {})) return 22;
              int go[2];
              if (::pipe(go) != 0) return 23;
              const pid_t worker = ::fork();
              if (worker == 0) {
                char c;
                (void)!::read(go[0], &c, 1);
                _exit(7);
              }
              int code = -1;
              Child child(loop);
              if (child.start(worker, [&](Child&, ExitStatus s) { code = s.code(); })) return 24;
              (void)loop.run(RunMode::NoWait);
              const pid_t forked = ::fork();
              if (forked == 0) {
                (void)loop.run(RunMode::NoWait);  // rebuilds itself
                _exit(0);
              }
              if (exit_code_of(forked) != 0) return 25;
              for (int fd = 0; fd < 64; ++fd) {
                char path[64], target[64] = {};
                std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
                if (::readlink(path, target, sizeof target - 1) > 0 && std::strstr(target, "signalfd")) {
                  std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
                  FILE* f = std::fopen(path, "r");
                  char line[128];
                  while (f && std::fgets(line, sizeof line, f)) {
                    // The parent's mask must still hold SIGCHLD (bit 16) after the child rebuilt.
                    if (std::strstr(line, "sigmask") &&
                        (std::strtoull(std::strchr(line, ':') + 1, nullptr, 16) & (1ull << (SIGCHLD - 1))) == 0) {
                      std::fclose(f);
                      return 26;
                    }
                  }
                  if (f) std::fclose(f);
                }
              }
              (void)!::write(go[1], "x", 1);  // let the worker exit
              Timer guard(loop);
              (void)guard.start(2s, [&] { loop.stop(); });
              while (child.active() && guard.active())
                (void)loop.run(RunMode::Once);
              return code == 7 ? 0 : 1;
            }),
            0);
}

// D3: start() on the only active watcher of a signal (a restart, as documented) goes
// through unwatch(): the previous disposition (SIG_DFL, "terminate") is restored and
// re-replaced; a signal arriving in that window kills the process.
TEST(SignalForkRegression, RestartingTheOnlyWatcherOfASignalNeverExposesItsDefaultDisposition) {
  EXPECT_EQ(in_subprocess([] {
              Loop loop;
              if (loop.open()) return 20;
              Signal s(loop);
              if (s.start(SIGUSR1, [] {})) return 21;
              std::atomic<bool> done{false};
              std::thread raiser([&] {
                sigset_t block;  // the raiser never takes the signal itself
                sigemptyset(&block);
                sigaddset(&block, SIGUSR1);
                pthread_sigmask(SIG_BLOCK, &block, nullptr);
                while (!done.load()) {
                  ::kill(::getpid(), SIGUSR1);
                  std::this_thread::yield();  // lets the loop thread run under valgrind's scheduler too
                }
              });
              const auto until = std::chrono::steady_clock::now() + 2s;
              while (std::chrono::steady_clock::now() < until) {
                (void)s.start(SIGUSR1, [] {});  // restart: stays watched throughout
                (void)loop.run(RunMode::NoWait);
              }
              done.store(true);
              raiser.join();
              return 0;
            }),
            0);
}

// D4: a signal caught while the watcher is active but not yet dispatched is thrown away
// by a restart of that watcher (unwatch clears the mailbox), yet kept if another watcher
// of the same signal happens to exist in the loop.
TEST(SignalForkRegression, ASignalCaughtBeforeAWatcherRestartIsNotLost) {
  EXPECT_EQ(in_subprocess([] {
              Loop loop;
              if (loop.open()) return 20;
              int calls = 0;
              Signal s(loop);
              if (s.start(SIGUSR2, [&] { ++calls; })) return 21;
              ::raise(SIGUSR2);                                   // caught: in the mailbox
              if (s.start(SIGUSR2, [&] { ++calls; })) return 22;  // restart, same signal
              (void)loop.run(RunMode::NoWait);
              return calls == 1 ? 0 : 1;
            }),
            0);
}

// D5: destroying a loop in a forked child before its first iteration: the first
// Child::stop() in detach_all() triggers after_fork(), which stops the other Child
// watchers without detaching them; they keep a dangling loop_ (use-after-free on start).
TEST(SignalForkRegression, ALoopDestroyedInAForkedChildBeforeItsFirstIterationDetachesEveryChildWatcher) {
  EXPECT_EQ(in_subprocess([] {
              auto loop = std::make_unique<Loop>();
              if (loop->open()) return 20;
              const pid_t a = ::fork();
              if (a == 0) {
                for (;;)
                  ::pause();
              }
              const pid_t b = ::fork();
              if (b == 0) {
                for (;;)
                  ::pause();
              }
              Child ca(*loop), cb(*loop);
              if (ca.start(a, [] {}) || cb.start(b, [] {})) return 21;
              const pid_t forked = ::fork();
              if (forked == 0) {
                loop.reset();  // detaches: every watcher forgets the loop
                const Error again = cb.start(b, [] {});
                _exit(again.code() == EINVAL ? 0 : 1);  // ASan: heap-use-after-free in start()
              }
              const int result = exit_code_of(forked);
              ::kill(a, SIGKILL);
              ::kill(b, SIGKILL);
              ::waitpid(a, nullptr, 0);
              ::waitpid(b, nullptr, 0);
              return result;
            }),
            0);
}

// D6 (a stall): the loop closed its signalfd when the last watcher of a blocked signal
// stopped, leaving the epoll registration to the copy a forked child held; the signal
// then kept that orphan reporting, and the loop re-registered every descriptor.
TEST(SignalForkRegression, TheLoopsSignalfdClosedWhileAForkedChildHoldsACopyLeavesNothingStale) {
  if (!testing::loop_uses_epoll()) GTEST_SKIP() << "the signalfd path (kqueue reports signals itself)";
  EXPECT_EQ(in_subprocess([] {
              sigset_t block;
              sigemptyset(&block);
              sigaddset(&block, SIGUSR2);
              if (::pthread_sigmask(SIG_BLOCK, &block, nullptr) != 0) return 20;  // the signalfd path
              Loop loop;
              if (loop.open()) return 21;
              Timer keep_going(loop);
              (void)keep_going.start(1h, [] {});
              Signal s(loop);
              if (s.start(SIGUSR2, [] {})) return 22;
              (void)loop.run(RunMode::NoWait);
              int hold[2];
              if (::pipe(hold) != 0) return 23;
              const pid_t holder = ::fork();  // holds a copy of every descriptor until told
              if (holder == 0) {
                char c;
                ::close(hold[1]);
                (void)!::read(hold[0], &c, 1);
                _exit(0);
              }
              s.stop();          // the last watcher: the signalfd closes
              ::raise(SIGUSR2);  // blocked: pending, and a signalfd still registered would report it
              for (int i = 0; i < 4; ++i)
                (void)loop.run(RunMode::NoWait);
              const uint64_t rebuilds = loop.stats().backend_rebuilds;
              ::close(hold[1]);
              if (exit_code_of(holder) != 0) return 24;
              siginfo_t info;
              const timespec now{0, 0};
              (void)::sigtimedwait(&block, &info, &now);  // consume it before anything unblocks it
              return rebuilds == 0 ? 0 : 1;
            }),
            0);
}

// Takes every descriptor the process may still open (the soft limit lowered to 64);
// returns them, to be closed again.
std::vector<int> take_every_descriptor() {
  rlimit limit{};
  std::vector<int> taken;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return taken;
  limit.rlim_cur = 64;  // the soft limit only: valgrind refuses changes to the hard one
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return taken;
  for (int fd; (fd = ::dup(0)) >= 0;)
    taken.push_back(fd);
  return taken;
}

// D7: a forked child whose rebuild hit EMFILE had the fork marked handled before the
// steps that failed: it was never retried, its loop received no I/O again while run()
// reported success, and changing its Signal watchers rewrote the mask of the signalfd the
// parent still read, so the parent's SIGUSR1 watcher was never called again.
TEST(SignalForkRegression, AForkedChildWhoseRebuildFailsReportsItRetriesAndNeverEditsTheParentsObjects) {
  EXPECT_EQ(in_subprocess([] {
              sigset_t block;
              sigemptyset(&block);
              sigaddset(&block, SIGUSR1);
              sigaddset(&block, SIGUSR2);
              if (::pthread_sigmask(SIG_BLOCK, &block, nullptr) != 0) return 20;  // the signalfd path on Linux
              Loop loop;
              if (loop.open()) return 21;
              int parent_calls = 0;
              Signal usr1(loop);
              if (usr1.start(SIGUSR1, [&] { ++parent_calls; })) return 22;
              (void)loop.run(RunMode::NoWait);
              auto pipe = testing::make_pipe();
              if (pipe.read_end.get() < 0) return 23;
              const pid_t child = ::fork();
              if (child == 0) {
                std::vector<int> taken = take_every_descriptor();
                if (taken.empty()) _exit(30);
                if (loop.run(RunMode::NoWait).code() != EMFILE) _exit(31);  // reported...
                Signal usr2(loop);
                if (usr2.start(SIGUSR2, [] {}).code() != EMFILE) _exit(32);  // ...by every call that needs it
                usr1.stop();  // nor does this edit anything of the parent's
                for (int fd : taken)
                  ::close(fd);
                if (loop.run(RunMode::NoWait)) _exit(34);  // ...and retried
                Io io(loop);
                int reads = 0;
                if (io.start(pipe.read_end.get(), Readable,
                             [&](Io& self, Events) { reads += testing::drain(self.fd()) > 0; }))
                  _exit(35);
                (void)testing::write_byte(pipe.write_end.get());
                for (int i = 0; i < 100 && reads == 0; ++i)
                  (void)loop.run(RunMode::Once);
                _exit(reads == 1 && loop.stats().backend_rebuilds == 1 ? 0 : 36);
              }
              const int code = exit_code_of(child);
              if (code != 0) return code;
              ::raise(SIGUSR1);  // blocked in this thread: read from the signalfd, whose mask must be intact
              Timer guard(loop);
              (void)guard.start(30s, [&] { loop.stop(); });  // only a failing test waits this long
              while (parent_calls == 0 && guard.active())
                (void)loop.run(RunMode::Once);
              return parent_calls == 1 ? 0 : 1;
            }),
            0);
}

}  // namespace
}  // namespace evflow

namespace evflow::detail::signals {
namespace {

// D6: release_slot() clears the mailbox's pending set *after* dropping the lock and
// waiting for in-flight handlers; by then another loop may have acquired the same slot
// and received a signal, which is wiped. Here an in-flight deliver() is held up by a
// full blocking pipe to keep the window open deterministically.
TEST(SignalForkRegression, ReleasingAMailboxNeverWipesTheNextOwnersPendingSignals) {
  int old_pipe[2], new_pipe[2];
  ASSERT_EQ(::pipe(old_pipe), 0);  // blocking on purpose
  ASSERT_EQ(::pipe(new_pipe), 0);
  ASSERT_EQ(::fcntl(new_pipe[1], F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(::fcntl(old_pipe[1], F_SETFL, O_NONBLOCK), 0);
  char fill[4096] = {};
  while (::write(old_pipe[1], fill, sizeof fill) > 0) {
  }
  ASSERT_EQ(::fcntl(old_pipe[1], F_SETFL, 0), 0);  // full and blocking
  Result<int> first = acquire_slot(pipe_waker(&old_pipe[1]));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(watch(first.value(), SIGUSR1, false).ok());  // handler installed; nothing raises it
  std::thread in_flight([] { deliver(SIGUSR1); });         // blocks in its write: handlers_inside == 1
  // Give it a head start. This only widens the window the test looks into: whatever the
  // scheduling, a correct release never wipes the new owner's signal, so the test
  // cannot fail falsely; a slow start only makes it check less.
  for (const auto until = std::chrono::steady_clock::now() + 50ms; std::chrono::steady_clock::now() < until;) {
    std::this_thread::yield();
  }
  std::thread releaser([&] { release_slot(first.value()); });  // waits for in_flight
  while (watchers_of(SIGUSR1) != 0)
    std::this_thread::yield();                                  // released, now draining
  Result<int> second = acquire_slot(pipe_waker(&new_pipe[1]));  // not the draining one
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(watch(second.value(), SIGUSR2, false).ok());
  deliver(SIGUSR2);  // the new owner's signal: pending + one wake-up
  char buffer[65536];
  while (::read(old_pipe[0], buffer, sizeof buffer) == sizeof buffer) {
  }  // unblock in_flight
  in_flight.join();
  releaser.join();
  EXPECT_EQ(take_pending(second.value()), bit_of(SIGUSR2)) << "the new owner's SIGUSR2 was wiped";
  unwatch(second.value(), SIGUSR2);
  release_slot(second.value());
  for (int fd : {old_pipe[0], old_pipe[1], new_pipe[0], new_pipe[1]})
    ::close(fd);
}

}  // namespace
}  // namespace evflow::detail::signals
