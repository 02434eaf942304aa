// Out of memory: every allocation the reactor makes may fail, and each failure is an
// ENOMEM returned to the caller, never an abort and never a watcher half started. One
// scenario (open, Io on a low and a high descriptor, 2,000 timers expiring as one batch,
// a Periodic, a Signal, an Async, the hooks, a Child) runs once to count its
// allocations, then once for every k with the k-th of them failing
// (tests/support/allocation_control.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#if !defined(_WIN32)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <evflow/evflow.hpp>
#include "tests/support/allocation_control.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/fake_clock.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

constexpr int kTimers = 2000;
#if !defined(_WIN32)
constexpr int kHighDescriptor = 900;  // below the usual soft limit of 1024
#endif

// One run: the loop and every watcher are made before a failure is armed (constructing
// them allocates nothing), so that the armed allocation is one the library makes.
struct Scenario {
  testing::FakeClock clock;
  Loop loop;
  Io low{loop}, high{loop};
  std::vector<std::unique_ptr<Timer>> timers;
  Periodic periodic{loop};
  Signal signal{loop};
  Async async{loop};
  Prepare prepare{loop};
  Check check{loop};
  Idle idle{loop};
  Child child{loop};

  // What the run saw; written without allocating.
  Error open, low_io, high_io, periodic_start, signal_start, async_start, hook_start[3], child_start;
  std::vector<Error> timer_start = std::vector<Error>(kTimers);
  std::vector<int> fired = std::vector<int>(kTimers);
  long low_reads = 0, high_reads = 0;
  int periodic_calls = 0, asyncs = 0, hooks = 0;

  Scenario() {
    for (int i = 0; i < kTimers; ++i)
      timers.push_back(std::make_unique<Timer>(loop));
  }
};

// The descriptors and the child process the scenarios watch, made once.
struct Fixture {
  testing::SocketPair low = testing::make_socketpair();
  testing::SocketPair high = testing::make_socketpair();
  int child_pid = -1;
  testing::OwnedFd lifeline_;

  Fixture() {
#if !defined(_WIN32)
    if (::dup2(high.a.get(), kHighDescriptor) == kHighDescriptor) high.a = testing::OwnedFd(kHighDescriptor);
    int lifeline[2];  // the child lives until this process goes, even if it dies abruptly
    if (::pipe(lifeline) != 0) return;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(lifeline[1]);
      char c;
      while (::read(lifeline[0], &c, 1) != 0) {
      }
      _exit(0);
    }
    ::close(lifeline[0]);
    lifeline_ = testing::OwnedFd(lifeline[1]);
    child_pid = pid;
#endif
  }
  ~Fixture() {
#if !defined(_WIN32)
    if (child_pid > 0) {
      ::kill(child_pid, SIGKILL);
      ::waitpid(child_pid, nullptr, 0);
    }
#endif
  }
};

// The armed part: every call the library may make an allocation in.
void run(Scenario& s, Fixture& f) {
  if ((s.open = s.loop.open())) return;
  (void)s.loop.set_clock(&s.clock.source);
  s.low_io = s.low.start(f.low.a.get(), Readable, [&s](Io& self, Events) { s.low_reads += testing::drain(self.fd()); });
  s.high_io =
      s.high.start(f.high.a.get(), Readable, [&s](Io& self, Events) { s.high_reads += testing::drain(self.fd()); });
  for (int i = 0; i < kTimers; ++i) {
    int* fired = &s.fired[static_cast<size_t>(i)];
    // Deadlines spread over a second, so that expiry sorts a large batch.
    s.timer_start[static_cast<size_t>(i)] = s.timers[static_cast<size_t>(i)]->start(
        std::chrono::microseconds((i * 7919) % 1'000'000), [fired] { ++*fired; });
  }
  s.periodic_start = s.periodic.start(WallClock::time_point(WallClock::duration(s.clock.realtime)) + 2s, 0s,
                                      [&s] { ++s.periodic_calls; });
#if defined(_WIN32)
  s.signal_start = s.signal.start(2, [] {});  // SIGINT: Ctrl+C (platform/win/console_events.hpp)
#else
  s.signal_start = s.signal.start(SIGUSR2, [] {});
  s.loop.request_child_path(ChildPath::SigChld);
  s.child_start = s.child.start(f.child_pid, [] {});
#endif
  s.async_start = s.async.start([&s] { ++s.asyncs; });
  s.hook_start[0] = s.prepare.start([&s] { ++s.hooks; });
  s.hook_start[1] = s.check.start([&s] { ++s.hooks; });
  s.hook_start[2] = s.idle.start([&s] { ++s.hooks; });
  testing::write_byte(f.low.b.get());
  testing::write_byte(f.high.b.get());
  s.async.send();
  s.clock.advance(1h);  // every timer and the periodic are due: one expiry batch
  for (int i = 0; i < 3; ++i)
    (void)s.loop.run(RunMode::NoWait);
}

bool ok_or_enomem(Error e) { return !e || e.code() == ENOMEM; }

// What must hold after any run: failures are ENOMEM and leave nothing half done.
void expect_consistent(const Scenario& s, long k) {
  SCOPED_TRACE(::testing::Message() << "allocation " << k << " failed");
  ASSERT_TRUE(ok_or_enomem(s.open)) << s.open.message();
  if (s.open) {
    EXPECT_FALSE(s.loop.is_open());
    return;
  }
  for (Error e : {s.low_io, s.high_io, s.periodic_start, s.signal_start, s.async_start, s.hook_start[0],
                  s.hook_start[1], s.hook_start[2], s.child_start})
    EXPECT_TRUE(ok_or_enomem(e)) << e.message();
  EXPECT_EQ(s.low.active(), !s.low_io);
  EXPECT_EQ(s.high.active(), !s.high_io);
  EXPECT_EQ(s.low_reads, s.low_io ? 0 : 1);
  EXPECT_EQ(s.high_reads, s.high_io ? 0 : 1);
  for (int i = 0; i < kTimers; ++i) {
    const Error e = s.timer_start[static_cast<size_t>(i)];
    ASSERT_TRUE(ok_or_enomem(e)) << "timer " << i << ": " << e.message();
    ASSERT_EQ(s.fired[static_cast<size_t>(i)], e ? 0 : 1) << "timer " << i;
  }
  EXPECT_EQ(s.periodic_calls, s.periodic_start ? 0 : 1);
  EXPECT_EQ(s.asyncs, s.async_start ? 0 : 1);
  EXPECT_EQ(s.signal.active(), !s.signal_start);
#if !defined(_WIN32)  // the scenario starts no Child on Windows
  EXPECT_EQ(s.child.active(), !s.child_start);
#endif
}

TEST(OutOfMemory, EveryAllocationOfTheReactorMayFailWithEnomemAndNothingHalfDone) {
  Fixture fixture;
  long allocations = 0;
  for (int clean = 0; clean < 2; ++clean) {  // the second count: one-time allocations (thread-locals, ...) done
    Scenario s;
    const long before = testing::allocation_count();
    run(s, fixture);
    allocations = testing::allocation_count() - before;
    expect_consistent(s, 0);
    ASSERT_FALSE(s.open);
    for (int i = 0; i < kTimers; ++i)
      ASSERT_FALSE(s.timer_start[static_cast<size_t>(i)]);
    testing::drain(fixture.low.a.get());
    testing::drain(fixture.high.a.get());
  }
  ASSERT_GT(allocations, 0);
  for (long k = 1; k <= allocations; ++k) {
    Scenario s;
    testing::arm_failure(k);
    run(s, fixture);
    const long throwing = testing::throwing_allocations_while_armed();
    const bool reached = testing::disarm_failure();
    EXPECT_TRUE(reached) << "allocation " << k << " of " << allocations << " was never made";
    EXPECT_EQ(throwing, 0) << "the library allocated with a throwing operator new";
    expect_consistent(s, k);
    testing::drain(fixture.low.a.get());
    testing::drain(fixture.high.a.get());
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace evflow
