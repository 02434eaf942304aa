// evflow — the kqueue readiness backend (FreeBSD, macOS). The contract is in
// platform/backend.hpp; the ABI in platform/bsd/kqueue_abi.hpp.
//
// The backend is a template over its kernel: `NativeKqueue` (kqueue_sys.hpp) calls the
// real kqueue(2)/kevent(2) on FreeBSD and macOS; tests instantiate it over an emulation of
// either flavour on Linux. Nothing else in it depends on the operating system.
//
// Notes on kqueue, the kernel behaviours this backend handles:
//
// a) A kevent is identified by (ident, filter): readability and writability of one
//    descriptor are two kevents, EVFILT_READ and EVFILT_WRITE, reported separately
//    (kqueue(2), DESCRIPTION). wait() merges the reports of one descriptor into one
//    event, so a watcher asking for both is called once per iteration.
// b) Changes are submitted in the changelist of one kevent() call, each flagged
//    EV_RECEIPT so that every change gets its own result (EV_ERROR with `data` = 0 or an
//    errno), and the eventlist is exactly as long as the changelist, so that no pending
//    event is drained by it (kqueue(2), EV_RECEIPT).
// c) close(2) removes every kevent of the descriptor from every kqueue (kqueue(2),
//    DESCRIPTION): unlike epoll, no registration outlives its descriptor. A removal that
//    answers ENOENT or EBADF therefore means "already gone" (the loop treats it so).
// d) EV_EOF on EVFILT_READ means the peer shut down writing or the descriptor hung up;
//    on EVFILT_WRITE, that the reader is gone. Both are passed on as the filter's own
//    readiness, so the watcher's next read or write sees the end of file or the error
//    (kqueue(2), EVFILT_READ / EVFILT_WRITE).
// e) The wake-up is an EVFILT_USER event with EV_CLEAR, fired by NOTE_TRIGGER: EV_CLEAR
//    resets it as it is reported, so nothing needs reading (kqueue(2), EVFILT_USER).
//    EVFILT_USER is -11 on FreeBSD and -10 on macOS (kqueue_abi.hpp).
// f) A kqueue is not inherited by a child created with fork(2) (kqueue(2), DESCRIPTION;
//    macOS's manual says the same): in the child its number names nothing, or by now
//    something else. after_fork() therefore never closes it; it creates a new kqueue and
//    the loop re-registers every watcher. close() and reopen() in a child that has not
//    called after_fork() yet leave the number alone too (the fork generation tells).
//    wake() saves and restores errno: it may run in a signal handler.
// g) kevent()'s timeout is a timespec: the sleep is asked for in nanoseconds (kevent(2)).
// h) kqueue() takes no close-on-exec flag on macOS: FD_CLOEXEC is set with fcntl(2) on both
//    systems, so that exec behaves alike.
// i) Receipts and events carry the registration's udata: the tag of its InterestChange in
//    the upper 32 bits and the descriptor in the lower, like the epoll backend's data.
//    kevent() answers changes in changelist order, so receipts are matched by position.
// j) kqueue accepts regular files and directories (always readable); epoll refuses them
//    with EPERM, and evflow's contract follows epoll, so that a watcher behaves alike
//    everywhere: a new registration asks the kernel policy (fstat(2)) first.
// k) The two filters of one change can fail apart: FreeBSD's pipe_kqfilter
//    (sys/kern/sys_pipe.c) answers EPIPE for EVFILT_WRITE on a pipe whose reader is gone,
//    while EVFILT_READ succeeds (read from the source, not checked on a FreeBSD system
//    here). The half that succeeded is deleted again, so the kernel holds all of a change
//    or none of it, as with epoll, and the loop's record of it stays true.
// l) Signals and child processes are kevents too (kReportsSignals, kReportsProcesses): EVFILT_SIGNAL
//    (ident: the signal number) records every attempt to deliver the signal, even while
//    its disposition is SIG_IGN, except SIGCHLD when ignored; it reports a count and
//    clears itself. Every kqueue watching a signal is told, so each loop sees it without
//    a handler fanning it out. EVFILT_PROC with NOTE_EXIT (ident: the pid) reports the
//    exit once, with EV_EOF | EV_ONESHOT, and is then removed by the kernel; a later
//    EV_DELETE may answer ENOENT (or ESRCH), meaning already gone. The process is not
//    reaped: the loop calls waitpid for that pid. A process that already exited is
//    reported at once by FreeBSD and refused with ESRCH by macOS (xnu's filt_procattach
//    finds no zombie); the loop treats ESRCH as "exited". The signal layer still sets a
//    handler while a signal is watched (signals/signal_registry.hpp), so that the
//    default action does not end the process. (kqueue(2), EVFILT_SIGNAL, EVFILT_PROC.)
// m) An embedded loop's kqueue is polled by another loop, not waited for by its own
//    wait(): keep_ready_at() adds a one-shot EVFILT_TIMER (NOTE_NSECONDS, relative:
//    FreeBSD and macOS both have it; their absolute flags differ) so that the kqueue
//    becomes readable at the loop's next deadline. A kqueue with a pending event is
//    readable (kqueue(2): "the queue ... can be used with select"); the timer's own
//    reports are dropped by wait(). Re-adding a timer restarts it with the new period.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <span>

#include "../backend_contract.hpp"
#include "../growable_array.hpp"
#include "../readiness.hpp"
#include "../timer_slack.hpp"
#include "kqueue_abi.hpp"

namespace evflow::detail {

// Note j: EPERM for a regular file or a directory, else 0 (when fstat(2) itself fails,
// kevent() reports the descriptor's own error). A kernel's `refusal` answers with this.
inline int refusal_by_file_type(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? EPERM : 0;
}

template <class Kernel>
class BasicKqueueBackend {
 public:
  using Kevent = typename Kernel::Kevent;

  // Signals and processes are registered here as well (note l).
  static constexpr bool kReportsSignals = true;
  static constexpr bool kReportsProcesses = true;
  // close(2) removes a descriptor's kevents (note c): no registration outlives it, so
  // there is never a need to replace the kqueue gradually (never called).
  static constexpr bool kRenewsGradually = false;
  Error renew() noexcept { return Error(ENOTSUP); }
  Error retire() noexcept { return Error(); }
  bool renewing() const noexcept { return false; }

  BasicKqueueBackend() noexcept = default;
  ~BasicKqueueBackend() { close(); }
  BasicKqueueBackend(const BasicKqueueBackend&) = delete;
  BasicKqueueBackend& operator=(const BasicKqueueBackend&) = delete;

  Error open() noexcept;
  void close() noexcept;
  Error reopen() noexcept;
  Error after_fork() noexcept;
  void apply(std::span<InterestChange> changes) noexcept;
  Result<int> wait(int64_t timeout_ns, int64_t deadline_ns) noexcept;
  ReadyEvent event(int i) const noexcept { return ready_[i]; }
  void keep_ready_at(int64_t timeout_ns, int64_t deadline_ns) noexcept;  // note m
  void wake() noexcept;
  void acknowledge_wake() noexcept {}  // EV_CLEAR already reset it (note e)
  int native_handle() const noexcept { return kqueue_fd_.load(std::memory_order_relaxed); }
  SleepPath sleep_path() const noexcept { return sleep_path_; }
  // kevent() always takes nanoseconds; Milliseconds may be asked for (tests force it) and
  // rounds timeouts up; TimerFd does not exist here and means Nanoseconds.
  void request_sleep_path(SleepPath preferred) noexcept {
    sleep_path_ = preferred == SleepPath::Milliseconds ? SleepPath::Milliseconds : SleepPath::Nanoseconds;
  }
  // kevent() has no slack of its own to work around: the thread's slack, where there is one.
  Error set_timer_slack(int64_t ns) noexcept { return set_thread_timer_slack(ns); }
  BackendKind kind() const noexcept { return BackendKind::Kqueue; }
  uint64_t interest_syscalls() const noexcept { return interest_syscalls_; }

  // The registration's user data: tag in the upper half, descriptor in the lower.
  static void* pack(int fd, uint32_t tag) noexcept {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(tag) << 32 | static_cast<uint32_t>(fd));
  }

 private:
  static constexpr uintptr_t kWakeIdent = 0;   // EVFILT_USER ident of the wake-up
  static constexpr uintptr_t kTimerIdent = 0;  // EVFILT_TIMER ident of keep_ready_at (note m)
  Error create_instance() noexcept;            // a new kqueue with the wake-up event in it
  void release(int kq) noexcept;               // closes kq unless it predates a fork
  void grow(int capacity) noexcept;

  std::atomic<int> kqueue_fd_{-1};  // read by wake() from any thread
  uint64_t generation_ = 0;         // fork_generation() when kqueue_fd_ was created
  int capacity_ = 0;
  std::unique_ptr<Kevent[]> events_;     // raw results of the last wait
  std::unique_ptr<ReadyEvent[]> ready_;  // the same, merged per descriptor (note a)
  // Changelist, receipts and undo list of apply(): two kevents per change (note a), for
  // the kMaxChangesPerApply changes the loop gives one call; made by open().
  static constexpr int kChangeCapacity = 2 * static_cast<int>(kMaxChangesPerApply);
  std::unique_ptr<Kevent[]> changes_;
  bool grow_before_next_wait_ = false;
  // Per descriptor: the wait that last reported it, and where (merging, note a).
  struct Seen {
    uint32_t stamp = 0;
    int index = 0;
  };
  detail::GrowableArray<Seen> seen_;  // grown by apply() to cover every registered descriptor
  uint32_t wait_stamp_ = 0;
  int64_t armed_deadline_ = -1;  // of the keep_ready_at timer; -1: none or fired
  SleepPath sleep_path_ = SleepPath::Nanoseconds;
  uint64_t interest_syscalls_ = 0;
};

}  // namespace evflow::detail

#include "kqueue_backend_impl.hpp"
