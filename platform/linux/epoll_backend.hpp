// evflow — the epoll readiness backend (Linux). The contract is in platform/backend.hpp.
//
// Notes on epoll, the kernel behaviours this backend and the loop above it handle:
//
// a) A registration belongs to the open file description *and* the descriptor number
//    used to add it. Closing that number does not remove it while a duplicate (dup,
//    fork, SCM_RIGHTS) keeps the file open, and it goes on reporting with its old data
//    even after the number is reused (epoll(7), Q&A 6). Each registration therefore
//    carries a tag in the upper half of its 64-bit data; the loop drops events whose
//    tag it no longer knows and rebuilds the set if such reports persist.
// b) Regular files and directories are refused with EPERM: they are always ready
//    (epoll_ctl(2), ERRORS). The error goes back to the caller of Io::start.
// c) EPOLLERR and EPOLLHUP are reported whether asked for or not (epoll_ctl(2)). They
//    are passed on as Readable|Writable, masked by what the watcher asked for, so that
//    its next read or write sees the error or end of file.
// d) epoll_pwait2 (nanosecond timeout) exists since Linux 5.11. Older kernels answer
//    ENOSYS; seccomp filters and emulators (qemu-user 7.2) answer ENOSYS or EPERM. The
//    first such answer switches this backend to an absolute CLOCK_MONOTONIC timerfd in
//    the epoll set (Linux >= 2.6.25), and where timerfds do not exist at all (ENOSYS,
//    EINVAL, or EPERM from a filter, when open() tries to make one), to epoll_pwait with
//    the timeout rounded up to whole milliseconds, so it never wakes early.
// h) The timerfd is made by open(), with the epoll instance: running out of descriptors
//    is then open()'s EMFILE, never a silent fall back to milliseconds at the first timed
//    sleep. It is re-armed only when the deadline changes; arming resets its expiration
//    count, which also clears a stale readiness (timerfd_settime(2)). Its own events are
//    removed from the results before the loop sees them.
// i) epoll_pwait2's timeout is subject to the thread's timer slack (50 us by default,
//    prctl(2) PR_SET_TIMERSLACK); a timerfd is not. So the automatic choice, made at open()
//    and whenever set_timer_slack() changes the slack, is epoll_pwait2 when the slack is
//    at most 1 us and the timerfd otherwise (measured: bench/timer_bench, BM_TimerLateness).
// e) EPOLL_CTL_MOD answers ENOENT when the descriptor was closed and reopened behind the
//    loop's back (the kernel dropped the old registration): the change is retried as an
//    ADD. EPOLL_CTL_ADD answers EEXIST when a registration survived that the loop
//    believed gone: retried as a MOD.
// f) A forked child shares the parent's epoll instance; EPOLL_CTL_DEL from the child
//    would edit the parent's set. after_fork() only closes the child's descriptors and
//    creates new objects; so do reopen() and renew(), which also create the new object
//    before letting go of the old one, so that a failure leaves the backend as it was.
// g) The wake-up channel is an eventfd: write(2) of 1 is async-signal-safe. It is in the
//    set edge-triggered: every write(2) queues a new report even while the counter is
//    non-zero (eventfd(2) wakes its waiters on each write; epoll(7) re-queues an
//    edge-triggered item on each wake-up), so a woken loop need not read it, which
//    saves a system call per cross-thread wake-up. It is read once every 65536
//    acknowledgements so the counter stays far from its limit (2^64 - 2), where writes
//    would fail with EAGAIN. reopen() keeps the eventfd (another thread may be writing
//    to it) and so its count: adding it to the new set reports it once, possibly for a
//    wake-up already acknowledged. Spurious, never lost; the loop re-scans after a
//    rebuild anyway.
// j) A registration orphaned by note a cannot be removed: only a new epoll instance is
//    rid of it. Registering thousands of descriptors in a new instance at once stalls the
//    loop for milliseconds (bench/io_bench.cpp, BM_StaleRegistrationPause), so renew()
//    replaces the instance gradually: a new, empty instance is added to the current one
//    (an epoll descriptor is itself pollable, epoll(7) Q&A 3); the loop moves its
//    registrations into it a batch at a time (apply() adds to the new instance and
//    deletes from the old), and a wait on the old instance still ends when a descriptor
//    of the new one is ready, whose events are then read from it with a zero timeout.
//    retire() moves the wake-up and the timer across and closes the old instance, the
//    orphan with it. Nesting the new instance in the old, not the other way round, keeps
//    the kernel from walking every registration of the old one (the loop check of
//    EPOLL_CTL_ADD for an epoll descriptor, epoll_ctl(2), ELOOP), which took 2.5 ms at
//    9,000 descriptors here. The handle (native_handle()) changes at retire(), as at
//    every replacement of the instance.
// k) An embedded loop is not waited for by its own wait(): another loop polls its
//    epoll descriptor. keep_ready_at() arms the timerfd for the loop's next deadline so
//    that the descriptor becomes readable then, timers included (the timerfd is in the
//    set, and a ready item makes an epoll descriptor readable, epoll(7) Q&A 3).
// l) A loop with nothing in the set but the wake-up (no descriptor, signal or process
//    watched) and no deadline need not ask epoll at all: wait_for_wake() sleeps on a
//    futex word instead (Linux >= 2.6.22), which the next wake() changes and wakes, or
//    polls by reading that word, with no system call. A futex hand-over is the cheaper
//    one (a thread that takes work from the loop and answers, on one CPU: 3 system calls
//    and 2 context switches per round trip either way, each lighter). The word tells
//    wake() which way the loop sleeps: parked on the futex, or not (the eventfd, as
//    before). A wake-up sent through the eventfd while the loop polled the word leaves
//    the eventfd's edge queued: the next epoll wait reports it once more, spurious.
// m) The eventfd is written only when the loop waits in epoll (libev's pipe_write_wanted):
//    before a wait that may block, the loop changes the word from idle to polling, and
//    back after. A wake-up finding it idle (the loop runs its callbacks) or sent changes
//    the word only, with no system call; the loop, which looks at the word before it
//    waits (a wake-up found there turns the wait into a poll) and after, reports it as
//    the eventfd would. A loop polled by another (note k, keep_ready_at) has the eventfd
//    written at every wake-up, since it is not the one that waits.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "../backend_contract.hpp"
#include "../readiness.hpp"
#include "sys.hpp"
#include "wake_word.hpp"

namespace evflow::detail {

class EpollBackend {
 public:
  EpollBackend() noexcept = default;
  ~EpollBackend() { close(); }
  EpollBackend(const EpollBackend&) = delete;
  EpollBackend& operator=(const EpollBackend&) = delete;

  // Only descriptors: signals and children reach the loop through signalfd and pidfd.
  static constexpr bool kReportsSignals = false;
  static constexpr bool kReportsProcesses = false;
  // Orphaned registrations exist here (note a): renew() and retire() replace the
  // instance gradually (note j).
  static constexpr bool kRenewsGradually = true;

  Error open() noexcept;
  void close() noexcept;
  Error reopen() noexcept;
  Error after_fork() noexcept;
  Error renew() noexcept;
  Error retire() noexcept;
  bool renewing() const noexcept { return new_epoll_fd_ >= 0; }

  void apply(std::span<InterestChange> changes) noexcept;
  // Inline for a poll (timeout 0), the busy path: it has nothing to announce (note m).
  Result<int> wait(int64_t timeout_ns, int64_t deadline_ns) noexcept {
    if (timeout_ns != 0) return wait_blocking(timeout_ns, deadline_ns);
    Result<int> count = poll();
    if (!count) return count;
    return reported(count.value());
  }
  void keep_ready_at(int64_t timeout_ns, int64_t deadline_ns) noexcept;

  ReadyEvent event(int i) const noexcept {
    const linux_abi::EpollEvent& raw = events_[i];
    const uint64_t data = raw.data;
    return ReadyEvent{static_cast<int>(static_cast<uint32_t>(data)), static_cast<uint32_t>(data >> 32),
                      translate(raw.events)};
  }

  // Note l: waits for a wake-up alone (block) or looks for one (!block), reported as
  // wait() reports it. For a loop with nothing in the set but the wake-up, and no deadline.
  Result<int> wait_for_wake(bool block) noexcept;
  // wait() with a timeout: announced on the word (note m).
  Result<int> wait_blocking(int64_t timeout_ns, int64_t deadline_ns) noexcept;
  // The `count` events a wait returned, as the loop should see them.
  int reported(int count) noexcept {
    if (renewing() || timer_may_fire_ || count == capacity_) count = tidy_events(count);
    if (wake_word_.sent()) count = report_wake(count);
    return count;
  }
  // A wait that may block, on the sleep path; wait() brackets it with the word (note m).
  Result<int> wait_on_path(int64_t timeout_ns, int64_t deadline_ns) noexcept;
  Result<int> poll() noexcept { return linux_abi::epoll_poll(epoll_fd_, events_.get(), capacity_); }
  // After a wait that may have reported what is not the loop's (the nested instance, the
  // timerfd) or filled the buffer: the events as the loop should see them.
  int tidy_events(int count) noexcept;
  // Adds the wake-up to the `count` events reported, unless there already (note m).
  int report_wake(int count) noexcept;
  // Writes 1 to the wake-up eventfd (note g); any thread, or a signal handler.
  void signal_wake_fd() noexcept;
  void wake() noexcept;
  void acknowledge_wake() noexcept;

  int native_handle() const noexcept { return epoll_fd_; }
  SleepPath sleep_path() const noexcept { return sleep_path_; }
  // The calling thread's timer slack, and the automatic path it implies (note i).
  Error set_timer_slack(int64_t ns) noexcept;
  // This path instead of the automatic choice, or the best the kernel accepted if worse.
  void request_sleep_path(SleepPath path) noexcept {
    requested_path_ = path;
    path_requested_ = true;
    choose_sleep_path();
  }
  BackendKind kind() const noexcept { return BackendKind::Epoll; }
  uint64_t interest_syscalls() const noexcept { return interest_syscalls_; }

  // The epoll event mask for an interest. poll(2)'s bits are the same numbers (POLLIN 0x1,
  // POLLOUT 0x4, POLLERR 0x8, POLLHUP 0x10): io_uring's polls use both functions too.
  static constexpr uint32_t interest_mask(Events interest) noexcept {
    uint32_t mask = 0;
    if (interest.readable()) mask |= linux_abi::kEpollIn;
    if (interest.writable()) mask |= linux_abi::kEpollOut;
    return mask;
  }
  // Readiness bits for an epoll event mask (note c).
  // An error or hang-up makes both Readable and Writable: the next call reports it.
  // (Without branches: EPOLLIN is Readable's bit, EPOLLOUT two places from Writable's.)
  static constexpr Events translate(uint32_t mask) noexcept {
    static_assert(linux_abi::kEpollIn == 1 && linux_abi::kEpollOut == 4 && Readable.bits() == 1 &&
                  Writable.bits() == 2);
    const uint32_t both = (mask & (linux_abi::kEpollErr | linux_abi::kEpollHup)) != 0 ? 3u : 0u;
    return Events(static_cast<uint8_t>((mask & linux_abi::kEpollIn) | ((mask & linux_abi::kEpollOut) >> 1) | both));
  }

 private:
  // A new epoll instance watching wake_fd_ and timer_fd_.
  Result<int> create_instance() noexcept;
  Error make_timer() noexcept;  // timer_fd_, or the millisecond floor where timerfds do not exist
  void close_instances() noexcept;
  void choose_sleep_path() noexcept;
  Result<int> wait_with_timerfd(int64_t deadline_ns) noexcept;
  Result<int> wait_milliseconds(int64_t timeout_ns) noexcept;
  Error arm_timer(int64_t deadline_ns) noexcept;
  int collect_nested(int count) noexcept;  // replaces the nested instance's report by its events (note j)
  int remove_timer_events(int count) noexcept;
  Error control(int op, int fd, Events interest, uint32_t tag) noexcept;
  void grow_event_buffer() noexcept;

  int epoll_fd_ = -1;
  int new_epoll_fd_ = -1;  // renewing: the instance replacing epoll_fd_, nested in it (note j)
  int wake_fd_ = -1;
  int timer_fd_ = -1;            // -1 only on the millisecond floor (note h)
  int64_t armed_deadline_ = -1;  // what timer_fd_ is armed for; -1: disarmed or fired
  // timer_fd_ was armed and its expiry not read since: only then may a wait report it
  // (a wait of the busy path scans its events for it only then).
  bool timer_may_fire_ = false;
  int capacity_ = 0;
  std::unique_ptr<linux_abi::EpollEvent[]> events_;
  SleepPath sleep_path_ = SleepPath::Nanoseconds;
  SleepPath kernel_floor_ = SleepPath::Nanoseconds;  // the best path this kernel accepted
  SleepPath requested_path_ = SleepPath::Nanoseconds;
  bool path_requested_ = false;
  uint64_t interest_syscalls_ = 0;
  static constexpr uint32_t kWakesBetweenReads = 65536;  // note g
  uint32_t unread_wakes_ = 0;
  WakeWord wake_word_;  // notes l and m
};

static_assert(ReadinessBackend<EpollBackend>);

}  // namespace evflow::detail
