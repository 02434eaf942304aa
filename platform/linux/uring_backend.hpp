// evflow — the io_uring readiness backend (Linux >= 5.13). The contract is in
// platform/backend.hpp; the ring itself is detail::Uring (uring.hpp).
//
// Each watched descriptor has one one-shot IORING_OP_POLL_ADD in the ring, armed again after
// each report; a wait is one io_uring_enter that also submits whatever was queued since the
// last one. Notes on what this backend relies on and handles:
//
// a) What it needs: multishot polls (5.13, told by kIoringFeatRsrcTags, which came with
//    them) and a timed wait (kIoringFeatExtArg, 5.11). open() refuses an older kernel with
//    ENOSYS, so that the loop falls back to epoll (linux_backend.hpp).
// b) A poll's user_data is its registration: the descriptor in the low 30 bits, the tag
//    in the high 32, as epoll's data. The backend keeps, per descriptor, the tag of the
//    poll it armed last; a completion under any other tag belongs to a poll already
//    removed or replaced, still in flight or in the ring, and is dropped here. A poll
//    holds a reference to its file, so there is no registration the backend cannot
//    remove (unlike epoll's, note a there): nothing for the loop to renew.
// c) Interest changes: a removal is a POLL_REMOVE of the old user_data; a change of
//    events removes the old poll and adds a new one under the new tag (two entries, no
//    system call). They wait in the submission ring for the next wait, which submits them
//    (or for flush(), which the loop calls before it closes a descriptor: the poll's
//    reference would keep the file open until then). A new registration is submitted at
//    once, because a bad descriptor must be refused at Io::start: the kernel completes a
//    poll that cannot arm before io_uring_enter returns, with -EBADF. A file without a
//    wait queue (a regular file, a directory) cannot be waited for; epoll refuses it with
//    EPERM, and so does this backend. A poll on it completes at once with a mask, as a
//    ready socket's does, but a poll for no events at all fails with EINVAL on it (the
//    kernel finds no wait queue and nothing to report), and on a pollable descriptor
//    waits (or reports an error or hang-up). So a new registration is such a one-shot
//    "probe", removed by the next entry, and then its real poll, all in one io_uring_enter.
// d) Multishot polls report a descriptor each time its wait queue is woken, not while it
//    stays ready: a callback that leaves data unread would never hear of it again. The
//    loop promises level-triggered readiness, so polls are one-shot, and a reported one
//    is armed again by the next wait, once the loop has served it: the kernel then checks the
//    descriptor while arming it and completes the poll at once if it is still ready, as
//    epoll re-checks a level-triggered item. A poll that ends with an error is reported
//    once as Invalid (backend.hpp, "Failures after the fact").
// e) Completions read while the loop dispatches the last wait's events (apply() reads
//    them to find its errors) are kept after those events and reported by the next wait,
//    which then does not block.
// f) A zero-timeout wait still enters the kernel (with GETEVENTS): poll completions of
//    readiness that another thread caused are posted by task work, which only a kernel
//    entry of this thread runs. A timed wait passes the timeout through EXT_ARG; the
//    kernel's wait takes no timer slack.
// g) Wake-ups: an eventfd with a multishot poll of its own. Every write(2) wakes the
//    eventfd's waiters, so every write not yet reported posts a completion (several
//    pending ones coalesce): as epoll's edge-triggered registration, no read is needed,
//    and the counter is read once every 65536 acknowledgements. The eventfd is written
//    only when the ring's thread waits in the kernel, as epoll's (epoll_backend.hpp,
//    note m): the word says whether it does, and a wake-up sent while it runs callbacks
//    changes the word alone, which the next wait finds (then a poll) and reports.
// h) An embedded loop's ring descriptor is readable while completions wait in its ring.
//    keep_ready_at() arms an IORING_OP_TIMEOUT at the deadline, whose completion (never
//    shown to the loop) makes it readable then. That one is submitted at once.
// i) Fork: the child shares the parent's ring (uring.hpp, note h). after_fork() forgets
//    it without touching it and opens a new ring, with a new eventfd under the wake-up's
//    number; the loop then registers everything again.
// j) Closing a ring leaves its teardown to a kernel worker: requests still in it are
//    cancelled then, and they keep their files open until that happens. close() and
//    reopen() therefore cancel every request first, in one IORING_OP_ASYNC_CANCEL (Linux
//    >= 5.19) that they wait for, so that the descriptors the loop watched are let go
//    when it closes. The teardown still ends with task work sent to each thread that
//    used the ring, which interrupts a blocking system call that thread is in at that
//    moment: an epoll_wait elsewhere may end early with EINTR (the loop's waits take an
//    interruption as a spurious wake-up).
// k) A poll's completion tells that the descriptor was ready when it was posted. One that
//    waited in the ring while the process ran (a write by this thread completes the
//    poll of its peer at once) may be stale by the time of the next wait: something read
//    the data in between. epoll checks each ready item again at the wait; so does this
//    backend, by arming again each poll whose completion was already there when the
//    wait began, instead of reporting it: the kernel completes the new poll at once,
//    in the same io_uring_enter, if the descriptor is still ready. Only the completions
//    posted during the wait itself are reported as they are.
// l) Operations (operation.hpp): a request's user_data is its slot in a table, in the
//    high 32 bits, with kOperationData below. It is queued like an interest change and
//    goes to the kernel with the next wait; its completion puts it on the list of
//    completed requests, which the loop empties after the wait's readiness events, and
//    a wait does not block while that list holds any. A socket operation on a socket
//    with nothing to give arms an internal poll and completes when it can (Linux
//    >= 5.7); one that the kernel answers EAGAIN to anyway is the caller's to submit
//    again. cancel() is an IORING_OP_ASYNC_CANCEL of that user_data; the request then
//    completes with ECANCELED, or with its result if the kernel finished first. For a
//    socket operation waiting on its internal poll, the cancellation takes effect at
//    once, in the io_uring_enter that submits it. abandon() cancels and waits for the
//    completion there and then, so that the owner may free the buffer. A rebuild
//    (reopen()) cancels everything, delivers what had completed, and submits the
//    cancelled requests again on the new ring; a forked child submits every request
//    it has again on its own ring (its buffers are copies; the parent's ring goes on
//    with the parent's).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "../backend_contract.hpp"
#include "../growable_array.hpp"
#include "../operation.hpp"
#include "../readiness.hpp"
#include "uring.hpp"
#include "wake_word.hpp"

namespace evflow::detail {

class UringBackend {
 public:
  UringBackend() noexcept = default;
  ~UringBackend() { close(); }
  UringBackend(const UringBackend&) = delete;
  UringBackend& operator=(const UringBackend&) = delete;

  static constexpr bool kReportsSignals = false;
  static constexpr bool kReportsProcesses = false;
  static constexpr bool kRenewsGradually = false;  // note b

  // Errors: ENOSYS where io_uring, or what this backend needs of it, is missing (note a);
  // EPERM where it is refused; ENOMEM; EMFILE/ENFILE.
  Error open() noexcept;
  void close() noexcept;
  Error reopen() noexcept;
  Error after_fork() noexcept;
  Error renew() noexcept { return Error(EOPNOTSUPP); }  // never asked for (note b)
  Error retire() noexcept { return Error(); }
  bool renewing() const noexcept { return false; }

  void apply(std::span<InterestChange> changes) noexcept;
  // Submits the interest changes queued so far (note c).
  void flush() noexcept;
  Result<int> wait(int64_t timeout_ns, int64_t deadline_ns) noexcept;
  ReadyEvent event(int i) const noexcept { return events_[i]; }
  void keep_ready_at(int64_t timeout_ns, int64_t deadline_ns) noexcept;

  void wake() noexcept;
  void acknowledge_wake() noexcept;

  int native_handle() const noexcept { return ring_.fd(); }
  BackendKind kind() const noexcept { return BackendKind::IoUring; }
  SleepPath sleep_path() const noexcept { return sleep_path_; }
  // Milliseconds rounds timeouts up; TimerFd means Nanoseconds (the wait is already exact).
  void request_sleep_path(SleepPath path) noexcept {
    sleep_path_ = path == SleepPath::Milliseconds ? path : SleepPath::Nanoseconds;
  }
  Error set_timer_slack(int64_t ns) noexcept;
  uint64_t interest_syscalls() const noexcept { return interest_syscalls_; }

  // Operations the kernel performs (note l, operation.hpp).
  bool performs_operations() const noexcept { return true; }
  Error submit(OperationRequest& request) noexcept;
  void cancel(OperationRequest& request) noexcept;
  void abandon(OperationRequest& request) noexcept;
  OperationRequest* take_completed() noexcept;

  // The ring, for tests that look at what the kernel consumed and posted.
  const Uring& ring() const noexcept { return ring_; }

 private:
  struct Poll {
    uint32_t tag;  // of the poll armed last (note b)
    uint8_t bits;  // its events
    bool armed;    // a poll under `tag` is in the ring or queued
  };

  Error open_ring() noexcept;                  // a new ring with the wake-up's poll
  void cancel_all() noexcept;                  // note j
  linux_abi::IoUringSqe* next_sqe() noexcept;  // submits when the ring is full
  void queue_poll(int fd, Events interest, uint64_t user_data, bool multishot) noexcept;
  void queue_remove(uint64_t user_data) noexcept;
  static bool harmless(Error err) noexcept;  // an io_uring_enter error that is no failure
  Result<int> enter(unsigned wait_nr, const linux_abi::KernelTimespec* timeout) noexcept;
  // Reads completions into events_ after the `count_` already there (note e); `added`
  // are this apply()'s new registrations, whose refusals go to their `error`.
  void reap(std::span<InterestChange> added) noexcept;
  void on_poll(const linux_abi::IoUringCqe& cqe, std::span<InterestChange> added) noexcept;
  void rearm_reported() noexcept;
  void recheck_pending() noexcept;                            // note k
  void report_wake() noexcept;                                // a wake-up in the word, unless reported (note g)
  void signal_wake_fd() noexcept;                             // writes 1 to the eventfd
  Error queue_operation(OperationRequest& request) noexcept;  // into the submission ring
  void on_operation(const linux_abi::IoUringCqe& cqe) noexcept;
  void unlink_completed(OperationRequest& request) noexcept;
  void forget_operation(OperationRequest& request) noexcept;  // frees its slot
  void resubmit_operations() noexcept;                        // every request in the table, on a new ring (note l)

  Uring ring_;
  int wake_fd_ = -1;
  GrowableArray<Poll> polls_;  // by descriptor
  std::unique_ptr<ReadyEvent[]> events_;
  int capacity_ = 0;
  int reported_ = 0;                          // events the last wait returned, being dispatched
  int count_ = 0;                             // events in events_: those, then the ones kept for the next wait
  int64_t timer_deadline_ = -1;               // the embedded loop's timeout in the ring (note h); -1: none
  linux_abi::KernelTimespec timer_at_{0, 0};  // its instant, read by the kernel at submission
  SleepPath sleep_path_ = SleepPath::Nanoseconds;
  uint64_t interest_syscalls_ = 0;
  static constexpr uint32_t kWakesBetweenReads = 65536;  // note g
  uint32_t unread_wakes_ = 0;
  WakeWord wake_word_;                           // note g
  uint64_t ring_generation_ = 0;                 // fork_generation() when the ring was made (note i)
  GrowableArray<OperationRequest*> operations_;  // by slot, null when free (note l)
  GrowableArray<uint32_t> free_slots_;
  OperationRequest* completed_head_ = nullptr;
  OperationRequest* completed_tail_ = nullptr;
  bool reopening_ = false;  // cancelled requests are kept for the new ring (note l)
};
static_assert(PerformsOperations<UringBackend>);

static_assert(ReadinessBackend<UringBackend>);

}  // namespace evflow::detail
