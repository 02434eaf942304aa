// The backend contract (platform/backend.hpp), run once per backend compiled in.
#include "platform/backend.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <thread>
#include <vector>

#include "platform/clock.hpp"
#include "tests/support/backend_harness.hpp"
#include "tests/support/descriptors.hpp"
#if defined(_WIN32)
#include <windows.h>
#else
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "platform/bsd/kqueue_backend.hpp"
#include "platform/linux/epoll_backend.hpp"
#include "tests/support/kqueue_emulation.hpp"
#endif

namespace evflow::detail {
namespace {

constexpr int64_t kNoDeadlineForTest = INT64_MAX;

using testing::make_pipe;
using testing::OwnedFd;
using testing::write_byte;

template <class B>
class BackendContract : public testing::BackendHarness<B> {};

// The kqueue backend runs on the test-only emulation (tests/support/kqueue_emulation.hpp),
// in both ABI flavours.
#if defined(_WIN32)
using Backends = ::testing::Types<IocpBackend>;  // sockets only: make_pipe() is a loopback TCP pair
#else
using Backends = ::testing::Types<EpollBackend, BasicKqueueBackend<testing::EmulatedKqueue<testing::FreeBsdAbi> >,
                                  BasicKqueueBackend<testing::EmulatedKqueue<testing::MacosAbi> > >;
#endif
TYPED_TEST_SUITE(BackendContract, Backends);

TYPED_TEST(BackendContract, ReportsReadinessWithTheRegistrationTag) {
  auto p = make_pipe();
  ASSERT_FALSE(this->apply_one(p.read_end.get(), Events(), Readable, 77));
  EXPECT_TRUE(this->poll().empty());
  ASSERT_TRUE(write_byte(p.write_end.get()));
  auto events = this->poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, p.read_end.get());
  EXPECT_EQ(events[0].tag, 77u);
  EXPECT_EQ(events[0].events, Readable);
}

TYPED_TEST(BackendContract, ModifyChangesInterestAndRemoveStopsReports) {
  auto p = make_pipe();
  const int w = p.write_end.get();
  ASSERT_FALSE(this->apply_one(w, Events(), Readable, 1));
  EXPECT_TRUE(this->poll().empty());  // a pipe's write end is never readable
  ASSERT_FALSE(this->apply_one(w, Readable, Writable, 2));
  auto events = this->poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tag, 2u);
  EXPECT_TRUE(events[0].events.writable());
  ASSERT_FALSE(this->apply_one(w, Writable, Events(), 3));
  EXPECT_TRUE(this->poll().empty());
}

TYPED_TEST(BackendContract, HangUpIsReportedAsReadableAndWritable) {
  auto p = make_pipe();
  ASSERT_FALSE(this->apply_one(p.read_end.get(), Events(), Readable, 5));
  p.write_end.reset();  // EPOLLHUP on the read end (a socket pair's: end of file)
  auto events = this->poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].events.readable());
}

#if !defined(_WIN32)  // Windows: tests/platform/win/iocp_backend_test.cpp (ENOTSOCK)
TYPED_TEST(BackendContract, RefusesARegularFileWithEperm) {
  char path[] = "/tmp/evflow-backend-XXXXXX";
  OwnedFd file(::mkstemp(path));
  ASSERT_GE(file.get(), 0);
  ::unlink(path);
  EXPECT_EQ(this->apply_one(file.get(), Events(), Readable, 1).code(), EPERM);
}
#endif

TYPED_TEST(BackendContract, RefusesAClosedDescriptorWithEbadf) {
  auto p = make_pipe();
  const int fd = p.read_end.release();
  testing::close_fd(fd);
  EXPECT_EQ(this->apply_one(fd, Events(), Readable, 1).code(), EBADF);
}

TYPED_TEST(BackendContract, AddOfARegisteredDescriptorBecomesAModify) {
  auto p = make_pipe();
  ASSERT_FALSE(this->apply_one(p.write_end.get(), Events(), Readable, 1));
  // The caller believes it is not registered: EEXIST is retried as a modify.
  ASSERT_FALSE(this->apply_one(p.write_end.get(), Events(), Writable, 9));
  auto events = this->poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tag, 9u);
}

TYPED_TEST(BackendContract, ModifyOfAnUnregisteredDescriptorBecomesAnAdd) {
  auto p = make_pipe();
  ASSERT_FALSE(this->apply_one(p.write_end.get(), Readable, Writable, 4));
  auto events = this->poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tag, 4u);
}

TYPED_TEST(BackendContract, AppliesABatchAndReportsEachOutcome) {
  auto good = make_pipe();
  auto bad = make_pipe();
  const int closed = bad.read_end.release();
  testing::close_fd(closed);
  InterestChange changes[2] = {{good.write_end.get(), Events(), Writable, 1}, {closed, Events(), Readable, 2}};
  const uint64_t before = this->backend.interest_syscalls();
  this->backend.apply(changes);
  EXPECT_FALSE(changes[0].error);
  EXPECT_EQ(changes[1].error.code(), EBADF);
  EXPECT_GE(this->backend.interest_syscalls() - before, 1u);  // epoll: one per change; kqueue: one batch
}

TYPED_TEST(BackendContract, WakeInterruptsAnInfiniteWaitAndCoalesces) {
  this->backend.wake();
  this->backend.wake();
  this->backend.wake();
  Result<int> n = this->backend.wait(-1, kNoDeadlineForTest);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(this->backend.event(0).fd, kWakeDescriptor);
  this->backend.acknowledge_wake();
  n = this->backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0) << "acknowledge_wake must consume every pending wake-up";
}

TYPED_TEST(BackendContract, FiniteTimeoutReturnsWithNoEvents) {
  Result<int> n = this->backend.wait(200'000, monotonic_ns() + 200'000);  // 0.2 ms
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);
}

#if defined(__linux__)
TEST(EpollBackend, AWakeBeforeReopenIsNotLostAndAnAcknowledgedOneIsAtMostReportedOnceMore) {
  // The eventfd survives reopen() with its count (epoll_backend.hpp, note g).
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  backend.wake();
  ASSERT_FALSE(backend.reopen());
  Result<int> n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 1) << "a wake-up written before reopen() must still be reported";
  EXPECT_EQ(backend.event(0).fd, kWakeDescriptor);
  backend.acknowledge_wake();
  ASSERT_FALSE(backend.reopen());
  n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  EXPECT_LE(n.value(), 1);  // at most the one spurious report
  backend.acknowledge_wake();
  n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 0) << "nothing after that: edge-triggered, reported once";
  backend.close();
}

// Note l: a loop with nothing in the set but the wake-up looks for wake-ups in a word.
TEST(EpollBackend, WaitForWakePollsTheWordWithoutTheKernelAndReportsAWakeOnceAcknowledged) {
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  Result<int> n = backend.wait_for_wake(false);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 0);
  backend.wake();  // not parked: through the eventfd, and the word says so
  n = backend.wait_for_wake(false);
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(backend.event(0).fd, kWakeDescriptor);
  n = backend.wait_for_wake(true);  // still not acknowledged: reported again, no sleep
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 1);
  backend.acknowledge_wake();
  n = backend.wait_for_wake(false);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 0);
  // The eventfd's edge is still queued: an epoll wait reports it at most once more.
  n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  EXPECT_LE(n.value(), 1);
  backend.close();
}

// 200 rounds of a wake-up sent from another thread, before the wait or while the loop
// waits: each must end the wait `wait_once` makes (made again after a return with no
// event, which only a signal causes; a lost wake-up would hang here).
template <class WaitOnce>
void expect_every_wake_from_a_thread_ends_the_wait(EpollBackend& backend, WaitOnce wait_once) {
  for (int round = 0; round < 200; ++round) {
    std::thread waker([&] { backend.wake(); });
    Result<int> n = wait_once();
    while (n && n.value() == 0)
      n = wait_once();
    waker.join();
    ASSERT_TRUE(n);
    ASSERT_GE(n.value(), 1) << "round " << round;
    EXPECT_EQ(backend.event(0).fd, kWakeDescriptor);
    backend.acknowledge_wake();
  }
}

TEST(EpollBackend, AWakeFromAnotherThreadEndsAWaitForWakeWhetherItCameBeforeOrDuringIt) {
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  expect_every_wake_from_a_thread_ends_the_wait(backend, [&] { return backend.wait_for_wake(true); });
  backend.close();
}

// Note m: the eventfd is written only for a loop that waits in epoll. A wake-up while the
// loop runs its callbacks changes the word alone, and the next wait reports it at once.
bool epoll_handle_readable(const EpollBackend& backend) {
  pollfd p{backend.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST(EpollBackend, AWakeWhileTheLoopRunsWritesNothingAndItsNextWaitReportsItAtOnce) {
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  backend.wake();
  EXPECT_FALSE(epoll_handle_readable(backend)) << "no eventfd write for a loop that is not waiting";
  Result<int> n = backend.wait(10'000'000'000, monotonic_ns() + 10'000'000'000);  // would sleep 10 s
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 1) << "the wake-up in the word turns the wait into a poll";
  EXPECT_EQ(backend.event(0).fd, kWakeDescriptor);
  backend.acknowledge_wake();
  n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 0);
  backend.close();
}

TEST(EpollBackend, AWakeFromAnotherThreadEndsAnEpollWaitWhetherItCameBeforeOrDuringIt) {
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  expect_every_wake_from_a_thread_ends_the_wait(
      backend, [&] { return backend.wait(10'000'000'000, monotonic_ns() + 10'000'000'000); });
  backend.close();
}

TEST(EpollBackend, ALoopPolledByAnotherHasTheEventfdWrittenAtEveryWake) {
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  backend.wake();  // before anyone polls: the word only
  EXPECT_FALSE(epoll_handle_readable(backend));
  backend.keep_ready_at(-1, std::numeric_limits<int64_t>::max());  // now another loop polls it
  EXPECT_TRUE(epoll_handle_readable(backend)) << "the wake-up sent before is written then";
  Result<int> n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 1);
  backend.acknowledge_wake();
  n = backend.wait(0, 0);  // the eventfd's queued edge: at most one spurious report
  backend.acknowledge_wake();
  n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 0);
  EXPECT_FALSE(epoll_handle_readable(backend));
  backend.wake();
  EXPECT_TRUE(epoll_handle_readable(backend)) << "a loop that another polls cannot look at its word";
  backend.close();
}

TEST(EpollBackend, SleepPathFollowsWhatTheKernelOffers) {
  // Ask the kernel directly whether epoll_pwait2 exists here (qemu-user 7.2 says ENOSYS).
  Result<int> probe_fd = linux_abi::epoll_create();
  ASSERT_TRUE(probe_fd.ok());
  linux_abi::EpollEvent out[1];
  linux_abi::KernelTimespec zero{0, 0};
  const bool has_pwait2 = linux_abi::epoll_pwait2(probe_fd.value(), out, 1, &zero).ok();
  (void)linux_abi::close(probe_fd.value());

  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  backend.request_sleep_path(SleepPath::Nanoseconds);
  EXPECT_EQ(backend.sleep_path(), has_pwait2 ? SleepPath::Nanoseconds : SleepPath::TimerFd)
      << "known from open(), before any timed wait";
  Result<int> n = backend.wait(1000, monotonic_ns() + 1000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(backend.sleep_path(), has_pwait2 ? SleepPath::Nanoseconds : SleepPath::TimerFd);
  // Either way a finite timeout still returns.
  n = backend.wait(1000, monotonic_ns() + 1000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);
}
#endif

#if defined(__linux__)
// Every sleep path: a finite wait returns, never before its timeout, and events and
// wake-ups still interrupt it. (A lower bound on elapsed time, never an upper one.)
class EpollSleepPath : public ::testing::TestWithParam<SleepPath> {};

TEST_P(EpollSleepPath, FiniteWaitNeverReturnsEarlyAndWakeStillInterrupts) {
  EpollBackend backend;
  ASSERT_FALSE(backend.open());
  backend.request_sleep_path(GetParam());
  // A signal handled by this thread ends a wait early by design (EINTR is "no events",
  // epoll_backend.hpp), and so may a timer report the backend hides; the loop then waits
  // again for what is left (Loop::run). Blocked here, signals wait for the other threads
  // or the end; a wait that ends early with no event is waited again, as the loop does,
  // and the whole must end at the deadline, never before it, in a few waits: a path that
  // did not sleep would take hundreds.
  sigset_t all, before;
  sigfillset(&all);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &all, &before), 0);
  for (int64_t timeout : {int64_t{1}, int64_t{150'000}, int64_t{1'300'000}}) {
    const int64_t start = monotonic_ns();
    const int64_t deadline = start + timeout;
    int waits = 0;
    int64_t now = start;
    do {
      Result<int> n = backend.wait(deadline - now, deadline);
      ++waits;
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(n.value(), 0) << "no descriptor is registered, and the timer's own event is hidden";
      now = monotonic_ns();
    } while (now < deadline && waits < 100);
    EXPECT_GE(now - start, timeout) << "woke before the timeout";
    EXPECT_LE(waits, 4) << "the path sleeps until the deadline, not in a loop of early returns";
  }
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &before, nullptr), 0);
  EXPECT_GE(backend.sleep_path(), GetParam());
  backend.wake();
  Result<int> n = backend.wait(60'000'000'000, monotonic_ns() + 60'000'000'000);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(backend.event(0).fd, kWakeDescriptor);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, EpollSleepPath,
                         ::testing::Values(SleepPath::Nanoseconds, SleepPath::TimerFd, SleepPath::Milliseconds));

// The timerfd path arms a timer that may expire after its wait ended for another reason;
// a later poll, the busy path, still takes the expiry out of its report, after a
// reopen() too, which forgets what the timer was armed for but not the timer.
TEST(EpollBackend, ATimerExpiryReportedToALaterPollIsHidden) {
  for (bool reopen : {false, true}) {
    EpollBackend backend;
    ASSERT_FALSE(backend.open());
    backend.request_sleep_path(SleepPath::TimerFd);
    auto p = make_pipe();
    InterestChange change{p.read_end.get(), Events(), Readable, 5};
    backend.apply(std::span<InterestChange>(&change, 1));
    ASSERT_FALSE(change.error);
    ASSERT_TRUE(write_byte(p.write_end.get()));
    const int64_t deadline = monotonic_ns() + 2'000'000;
    Result<int> n = backend.wait(2'000'000, deadline);  // arms the timer, ends at once
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(n.value(), 1);
    EXPECT_EQ(backend.event(0).tag, 5u);
    testing::drain(p.read_end.get());
    if (reopen) {
      ASSERT_FALSE(backend.reopen());
      change = InterestChange{p.read_end.get(), Events(), Readable, 6};
      backend.apply(std::span<InterestChange>(&change, 1));
      ASSERT_FALSE(change.error);
    }
    // Polls until well past the deadline: the timer's expiry must never show.
    int polls = 0;
    while (monotonic_ns() < deadline + 1'000'000) {
      n = backend.wait(0, 0);
      ASSERT_TRUE(n.ok());
      ASSERT_EQ(n.value(), 0) << "the expiry of the backend's own timer reached the loop (reopen: " << reopen << ")";
      ++polls;
    }
    // The descriptor's own reports are untouched.
    ASSERT_TRUE(write_byte(p.write_end.get()));
    n = backend.wait(0, 0);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(n.value(), 1);
    EXPECT_EQ(backend.event(0).fd, p.read_end.get());
    EXPECT_GT(polls, 0);
  }
}
#endif

TYPED_TEST(BackendContract, ReportsEveryReadyDescriptorBeyondTheInitialBuffer) {
  std::vector<testing::Pipe> pipes(300);
  for (size_t i = 0; i < pipes.size(); ++i) {
    pipes[i] = make_pipe();
    ASSERT_FALSE(this->apply_one(pipes[i].read_end.get(), Events(), Readable, static_cast<uint32_t>(i)));
    ASSERT_TRUE(write_byte(pipes[i].write_end.get()));
  }
  // Level-triggered: waiting repeatedly must eventually show every descriptor; with the
  // buffer growing after a full wait, a few waits suffice.
  std::vector<bool> seen(pipes.size());
  size_t distinct = 0;
  for (int round = 0; round < 64 && distinct < pipes.size(); ++round) {
    for (const ReadyEvent& e : this->poll_expecting_events()) {
      if (!seen[e.tag]) {
        seen[e.tag] = true;
        ++distinct;
        testing::drain(pipes[e.tag].read_end.get());
      }
    }
  }
  EXPECT_EQ(distinct, pipes.size());
}

TYPED_TEST(BackendContract, ReopenStartsEmptyAndStillWakes) {
  auto p = make_pipe();
  ASSERT_FALSE(this->apply_one(p.read_end.get(), Events(), Readable, 1));
  ASSERT_TRUE(write_byte(p.write_end.get()));
  const int old_handle = this->backend.native_handle();
  ASSERT_FALSE(this->backend.reopen());
  EXPECT_GE(this->backend.native_handle(), 0);
  EXPECT_TRUE(this->poll().empty()) << "a reopened backend has no registrations";
  (void)old_handle;
  this->backend.wake();
  Result<int> n = this->backend.wait(-1, kNoDeadlineForTest);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 1);
}

TYPED_TEST(BackendContract, CloseIsIdempotentAndReleasesDescriptors) {
  const int handle = this->backend.native_handle();
  ASSERT_GE(handle, 0);
  this->backend.close();
  this->backend.close();
  EXPECT_EQ(this->backend.native_handle(), -1);
#if defined(_WIN32)
  DWORD flags = 0;
  EXPECT_FALSE(GetHandleInformation(reinterpret_cast<HANDLE>(static_cast<intptr_t>(handle)), &flags))
      << "the completion port must be closed";
#else
  EXPECT_EQ(::fcntl(handle, F_GETFD), -1) << "the kernel object must be closed";
#endif
}

}  // namespace
}  // namespace evflow::detail
