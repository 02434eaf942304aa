// Fork safety (DESIGN.md, "Fork"): after fork() both processes keep using their loops.
// Children report through their exit code; they end with _exit, never returning into
// the test framework.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include <sys/syscall.h>
#include <array>
#include <atomic>
#include <thread>

#include <evflow/evflow.hpp>
#include "platform/fork_generation.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/thread_state.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

// Descriptors of the kinds a loop creates (epoll, eventfd, timerfd, signalfd, pidfd:
// all anonymous inodes). Counting only these keeps the count immune to descriptors a
// sanitizer runtime opens and closes for itself.
int open_descriptor_count() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* entry = ::readdir(dir)) {
    char path[300], target[256];
    std::snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
    const ssize_t n = ::readlink(path, target, sizeof target - 1);
    if (n > 0 && std::string_view(target, static_cast<size_t>(n)).starts_with("anon_inode:")) ++count;
  }
  ::closedir(dir);
  return count;
}

// One timed sleep, so that descriptors the loop makes lazily (its sleep timer) exist
// before descriptors are counted.
void warm_up_timed_sleep(Loop& loop) {
  Timer warm(loop);
  (void)warm.start(500us, [] {});
  (void)loop.run(RunMode::Once);
}

int wait_for_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Everything a loop can watch, driven by hand; `poke` makes each one due.
struct Workbench {
  explicit Workbench(Loop& loop) : io(loop), timer(loop), signal(loop), async(loop) {}

  Error start(int read_fd) {
    if (auto e = io.start(read_fd, Readable, [this](Io& self, Events) {
          testing::drain(self.fd());
          seen |= 1;
        }))
      return e;
    if (auto e = signal.start(SIGUSR2, [this] { seen |= 2; })) return e;
    if (auto e = async.start([this] { seen |= 4; })) return e;
    return Error();
  }
  void poke(int write_fd) {
    testing::write_byte(write_fd);
    ::raise(SIGUSR2);
    async.send();
    (void)timer.start(1ms, [this] { seen |= 8; });
  }
  // Runs until all four fired; false if that never happens within `limit` iterations.
  bool run_until_all_seen(Loop& loop, int limit = 100000) {
    for (int i = 0; i < limit && seen != 15; ++i) {
      if (loop.run(RunMode::Once)) return false;
    }
    return seen == 15;
  }

  Io io;
  Timer timer;
  Signal signal;
  Async async;
  int seen = 0;
};

TEST(Fork, ParentAndChildBothKeepEveryKindOfWatcherWorking) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto parent_pipe = testing::make_pipe();
  auto child_pipe = testing::make_pipe();
  Workbench bench(loop);
  // One Io watcher per process: each watches its own pipe after the fork.
  ASSERT_FALSE(bench.start(parent_pipe.read_end.get()));
  ASSERT_FALSE(loop.run(RunMode::NoWait));  // registrations applied before the fork
  warm_up_timed_sleep(loop);
  // Counted before the fork: an epoll set is inherited and replaced in the child, a kqueue
  // is not inherited at all; either way the child ends up with what the parent had.
  const int before = open_descriptor_count();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (bench.io.start(child_pipe.read_end.get(), Readable, [&](Io& self, Events) {
          testing::drain(self.fd());
          bench.seen |= 1;
        }))
      _exit(10);
    bench.poke(child_pipe.write_end.get());
    if (!bench.run_until_all_seen(loop)) _exit(11);
    if (loop.stats().backend_rebuilds < 1) _exit(12);
    const int after = open_descriptor_count();
    if (after > before) {  // new objects replace the inherited ones (the sleep timer is made lazily)
      std::fprintf(stderr, "loop descriptors: %d in the parent, %d in the child\n", before, after);
      _exit(13);
    }
    _exit(0);
  }
  bench.poke(parent_pipe.write_end.get());
  EXPECT_TRUE(bench.run_until_all_seen(loop));
  EXPECT_EQ(wait_for_exit_code(pid), 0);
  // And the parent still works after the child used (and discarded) its copy.
  bench.seen = 0;
  bench.poke(parent_pipe.write_end.get());
  EXPECT_TRUE(bench.run_until_all_seen(loop));
  EXPECT_EQ(loop.stats().backend_rebuilds, 0u) << "the parent never rebuilds";
}

TEST(Fork, TheChildNeverEditsTheParentsEpollSet) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = testing::make_pipe();
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    testing::drain(self.fd());
    ++calls;
  }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    io.stop();  // an EPOLL_CTL_DEL on the shared epoll instance would remove the parent's
    (void)loop.run(RunMode::NoWait);
    _exit(0);
  }
  ASSERT_EQ(wait_for_exit_code(pid), 0);
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST(Fork, ASignalCaughtButNotDispatchedBeforeForkIsDroppedInTheChildOnly) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  int calls = 0;
  Signal signal(loop);
  ASSERT_FALSE(signal.start(SIGUSR1, [&] { ++calls; }));
  ASSERT_EQ(::raise(SIGUSR1), 0);  // caught: pending in the loop's mailbox
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (int i = 0; i < 3; ++i)
      (void)loop.run(RunMode::NoWait);
    // Dropped, and the inherited wake-up did not leave the loop spinning.
    Timer guard(loop);
    (void)guard.start(20ms, [] {});
    const uint64_t before = loop.iteration();
    (void)loop.run(RunMode::Once);  // must sleep until the guard, not return at once
    _exit(calls == 0 && loop.iteration() == before + 1 && !guard.active() ? 0 : 1);
  }
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1) << "the parent dispatches it";
  EXPECT_EQ(wait_for_exit_code(pid), 0);
}

TEST(Fork, AnAsyncSentBeforeForkIsDeliveredInBoth) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  int calls = 0;
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++calls; }));
  async.send();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    (void)loop.run(RunMode::NoWait);
    (void)loop.run(RunMode::NoWait);
    _exit(calls == 1 ? 0 : 1);
  }
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(wait_for_exit_code(pid), 0);
}

TEST(Fork, ExplicitAfterForkRebuildsAtOnce) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = testing::make_pipe();
  Io io(loop);
  int calls = 0;
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    testing::drain(self.fd());
    ++calls;
  }));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int old_handle = loop.native_handle();
    if (loop.after_fork()) _exit(1);
    if (loop.stats().backend_rebuilds != 1) _exit(2);
    testing::write_byte(p.write_end.get());
    (void)loop.run(RunMode::NoWait);  // the automatic check finds nothing more to do
    (void)old_handle;
    _exit(calls == 1 && loop.stats().backend_rebuilds == 1 ? 0 : 3);
  }
  EXPECT_EQ(wait_for_exit_code(pid), 0);
  testing::drain(p.read_end.get());
}

TEST(Fork, AChildInheritsNoChildWatchers) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  const pid_t sibling = ::fork();
  if (sibling == 0) {
    for (;;)
      ::pause();
  }
  Child watcher(loop);
  ASSERT_FALSE(watcher.start(sibling, [] {}));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    (void)loop.run(RunMode::NoWait);
    _exit(!watcher.active() && loop.active_watchers() == 0 ? 0 : 1);
  }
  EXPECT_EQ(wait_for_exit_code(pid), 0);
  ::kill(sibling, SIGKILL);
  ASSERT_FALSE(loop.run());
  EXPECT_TRUE(watcher.status().signaled());
}

TEST(Fork, TwoHundredForksWithChildrenThatExitAtOnceLeakNothing) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto p = testing::make_pipe();
  Io io(loop);
  Timer timer(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [](Io& self, Events) { testing::drain(self.fd()); }));
  ASSERT_FALSE(timer.start(1h, [] {}));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  warm_up_timed_sleep(loop);
  const int descriptors_before = open_descriptor_count();
  constexpr int kForks = 200;
  std::vector<int> codes(kForks, -1);
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < kForks; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (i % 2 == 1) (void)loop.run(RunMode::NoWait);  // half of them touch the loop first
      _exit(i % 256);
    }
    children.push_back(std::make_unique<Child>(loop));
    ASSERT_FALSE(children.back()->start(pid, [&codes, i](Child&, ExitStatus s) { codes[i] = s.code(); }));
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  }
  while (loop.active_watchers() > 2)
    ASSERT_FALSE(loop.run(RunMode::Once));
  for (int i = 0; i < kForks; ++i)
    EXPECT_EQ(codes[i], i % 256) << "child " << i;
  EXPECT_EQ(open_descriptor_count(), descriptors_before) << "every pidfd was closed";
  EXPECT_EQ(loop.stats().backend_rebuilds, 0u);
}

// Regression: a loop that another thread was running at the fork could never run in the
// child (run() answered EBUSY for good; debug builds aborted on the owner check), though
// the thread that ran it does not exist there.
TEST(Fork, ALoopThatAnotherThreadWasRunningAtTheForkRunsInTheChild) {
  Loop loop;
  auto p = testing::make_pipe();
  Io io(loop);
  Async quit(loop);
  std::atomic<bool> ready{false}, done{false};
  std::atomic<pid_t> runner_tid{0};
  std::thread runner([&] {
    if (loop.open() || io.start(p.read_end.get(), Readable, [](Io& self, Events) { testing::drain(self.fd()); }) ||
        quit.start([&] {
          io.stop();
          quit.stop();
        })) {
      done.store(true);
      return;
    }
    runner_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    ready.store(true);
    (void)loop.run();  // blocks in the kernel until quit
    done.store(true);
  });
  while (!ready.load() && !done.load())
    std::this_thread::yield();
  ASSERT_TRUE(testing::wait_until_asleep(runner_tid.load(), done)) << "the runner never blocked";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the child's only thread: the runner is gone
    bool fired = false;
    Timer timer(loop);
    if (timer.start(1ms, [&] { fired = true; })) _exit(10);
    for (int i = 0; i < 1000 && !fired; ++i) {
      if (Error err = loop.run(RunMode::Once)) _exit(err.code() == EBUSY ? 11 : 12);
    }
    _exit(fired && loop.stats().backend_rebuilds == 1 ? 0 : 13);
  }
  EXPECT_EQ(wait_for_exit_code(pid), 0);
  quit.send();
  runner.join();
}

// Three callbacks of one phase of the iteration, the first of which sleeps in the kernel
// (reading a pipe) when the process forks; the thread that ran the loop is gone in the
// child. `schedule(loop, work)` makes work(0), work(1), work(2) due in that phase (from
// the loop's thread, before it runs). In the child, the other two run at the first
// iteration, the interrupted one does not run again, then the loop is destroyed and
// `after_loop(...)` runs (the loop's watchers may go after it). The parent's thread then
// finishes the phase.
template <class Schedule, class AfterLoop>
void fork_inside_the_first_of_three(Schedule schedule, AfterLoop after_loop) {
  auto loop = std::make_unique<Loop>();
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  std::array<std::atomic<int>, 3> ran{};
  auto work = [&ran, &gate](int i) {
    ran[static_cast<size_t>(i)].fetch_add(1);
    if (i == 0) {
      char c;
      (void)!::read(gate[0], &c, 1);  // asleep in the kernel, inside the loop's phase
    }
  };
  Async quit(*loop);
  std::atomic<bool> ready{false}, done{false};
  std::atomic<pid_t> runner_tid{0};
  std::thread runner([&] {
    if (loop->open() || quit.start([&] { quit.stop(); })) {
      done.store(true);
      return;
    }
    schedule(*loop, work);
    runner_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    ready.store(true);
    (void)loop->run();
    done.store(true);
  });
  while (!ready.load() && !done.load())
    std::this_thread::yield();
  while (ran[0] == 0 && !done.load())  // written by the runner before it blocks
    std::this_thread::yield();
  ASSERT_TRUE(testing::wait_until_asleep(runner_tid.load(), done));
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (ran[1] != 0 || ran[2] != 0) _exit(10);  // the rest of the phase was still to come
    if (loop->run(RunMode::NoWait)) _exit(11);
    if (ran[0] != 1 || ran[1] != 1 || ran[2] != 1) _exit(12);
    loop.reset();
    after_loop();
    _exit(0);
  }
  EXPECT_EQ(wait_for_exit_code(pid), 0);
  (void)!::write(gate[1], "x", 1);  // the parent's runner goes on
  quit.send();
  runner.join();
  EXPECT_EQ(ran[0].load() + ran[1].load() + ran[2].load(), 3);
  ::close(gate[0]);
  ::close(gate[1]);
}

// The runner thread is inside the first callback of a batch of due timers at the fork:
// the rest of that batch goes back into the wheel and fires at the child's first
// iteration, and the loop and its timers can be destroyed in any order.
TEST(Fork, TimersTakenOutForFiringByAThreadGoneInTheChildFireThere) {
  std::vector<std::unique_ptr<WithCapacity<Timer, 16>>> timers;
  fork_inside_the_first_of_three(
      [&](Loop& loop, auto& work) {
        for (int i = 0; i < 3; ++i) {
          timers.push_back(std::make_unique<WithCapacity<Timer, 16>>(loop));
          timers.back()->set_callback([&work, i] { work(i); });
          (void)timers.back()->start(1ms);
        }
      },
      [&] { timers.clear(); });  // after the loop: the timers were detached
}

// The same for posted work: the runner thread is inside the first of three pieces of
// posted work at the fork.
TEST(Fork, PostedWorkTakenForRunningByAThreadGoneInTheChildRunsThere) {
  fork_inside_the_first_of_three(
      [](Loop& loop, auto& work) {
        for (int i = 0; i < 3; ++i)
          (void)loop.post([&work, i] { work(i); });
      },
      [] {});
}

TEST(ForkGeneration, AdvancesInTheChildOnly) {
  detail::watch_forks();
  const uint64_t before = detail::fork_generation();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(detail::fork_generation() == before + 1 ? 0 : 1);
  EXPECT_EQ(wait_for_exit_code(pid), 0);
  EXPECT_EQ(detail::fork_generation(), before);
}

}  // namespace
}  // namespace evflow
