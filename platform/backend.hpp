// evflow — the backend contract, written once, and the backend chosen for this build.
//
// A backend reports readiness of file descriptors (and, where kReportsSignals or
// kReportsProcesses is set, signals or process exits too); it never reads, writes or
// accepts. There is one backend class per OS family, picked at compile time by the alias
// at the bottom of this file, so the loop calls it without any virtual dispatch; on Linux
// that class is a slot (linux/linux_backend.hpp) that holds the mechanism chosen at run
// time. The members below are checked by the compiler: the ReadinessBackend concept
// (backend_contract.hpp) is asserted for every backend.
//
// Every backend provides exactly these members:
//
//   Error open()                       create the kernel object (epoll fd, kqueue, IOCP)
//                                      and the wake-up channel. Precondition: not open.
//   void close()                       destroy them. Idempotent.
//   Error reopen()                     drop the kernel object without touching its
//                                      registrations (they may belong to a parent process
//                                      after fork) and create a fresh, empty one. The
//                                      caller re-applies every registration afterwards.
//                                      The wake-up channel survives: wake() may run
//                                      concurrently with reopen(), and no wake-up is
//                                      lost; the first wait after it may report one
//                                      already acknowledged (a spurious wake-up).
//   Error after_fork()                 reopen() in a forked child, with a new wake-up
//                                      channel under the same descriptor number (the
//                                      inherited one is shared with the parent).
//   void apply(std::span<InterestChange>)
//                                      bring the kernel's interest set in line with each
//                                      change (at most kMaxChangesPerApply), in one batch
//                                      where the kernel allows; each change's `error`
//                                      receives its own outcome. Allocates nothing.
//   Result<int> wait(int64_t timeout_ns, int64_t deadline_ns)
//                                      block until readiness, a wake(), or the timeout
//                                      (< 0: forever, 0: poll); `deadline_ns` is the same
//                                      instant on the monotonic clock, for backends that
//                                      arm an absolute timer. Never returns before the
//                                      timeout unless an event or wake-up arrived. Returns
//                                      how many entries event(i) may be asked for. An
//                                      interrupted wait returns 0.
//   ReadyEvent event(int i) const      the i-th result of the last wait; unchanged until
//                                      the next wait (the loop reads ahead of dispatch).
//   void keep_ready_at(int64_t timeout_ns, int64_t deadline_ns)
//                                      for a loop embedded in another (whose wait() is not
//                                      called): make native_handle() readable once the
//                                      deadline passes (the same instant twice, as for
//                                      wait(); INT64_MAX: none), as it is when a
//                                      registered descriptor is ready. A no-op where the
//                                      handle cannot be waited for.
//   Result<int> wait_for_wake(bool block)
//                                      optional: wait() for a loop with nothing
//                                      registered and no deadline, where only a wake()
//                                      can end the wait (block) or be found (!block);
//                                      reports it as wait() does. A backend offers it when
//                                      it has a cheaper way to wait for a wake-up alone
//                                      (epoll: a futex word, with no system call to poll).
//   void wake()                        make a wait return soon. Thread-safe and
//                                      async-signal-safe; may be called many times.
//   void acknowledge_wake()            consume the wake-ups reported by the last wait.
//   int native_handle() const         the kernel object, to embed this loop in another;
//                                      -1 when closed.
//   BackendKind kind() const           which mechanism it is (readiness.hpp).
//   SleepPath sleep_path() const       how wait() turns a timeout into a sleep: the
//                                      backend's own choice (epoll chooses by the thread's
//                                      timer slack), true from open() on.
//   void request_sleep_path(SleepPath) use this path instead, or the best the kernel
//                                      accepted if that is worse; a path the backend does
//                                      not have (kqueue: TimerFd) means Nanoseconds, and a
//                                      backend with one path (IOCP: Milliseconds) keeps it.
//   Error set_timer_slack(int64_t ns)  set the calling thread's timer slack (ENOTSUP
//                                      where there is no such notion) and choose the sleep
//                                      path again.
//   uint64_t interest_syscalls() const how many system calls apply() has made in total
//                                      (IOCP: with the one-shot polls wait() submits
//                                      again, iocp_backend.hpp note m).
//   static constexpr bool kRenewsGradually
//                                      true when registrations the loop can no longer remove
//                                      may outlive their descriptor (epoll, note a), and
//                                      the backend then offers, besides reopen():
//   Error renew()                        a fresh kernel object that still reports what the
//                                        old one watches, until retire(); apply() works on
//                                        the fresh one only (`from` says what it has there).
//                                        The caller moves its registrations across a batch
//                                        at a time, so that no iteration pays for them all.
//   Error retire()                       closes the old object, and what only it still had;
//                                        on an error the old object stays, and so does the
//                                        renewal (retire() may be called again).
//   bool renewing() const                between renew() and retire().
//   static constexpr bool kReportsSignals
//                                      true when apply() also takes Source::Signal
//                                      registrations (kqueue's EVFILT_SIGNAL).
//   static constexpr bool kReportsProcesses
//                                      true when apply() also takes Source::Process
//                                      registrations (kqueue's EVFILT_PROC, IOCP's process
//                                      waits); otherwise every change names a descriptor.
//
// Failures after the fact: a registration apply() accepted may still end later; the
// backend then reports it once as an event with `Invalid` (IOCP when a socket is closed;
// io_uring when a multishot poll ends with an error), and the loop stops the watchers of
// that descriptor and calls them once with Invalid, as for a registration refused at once.
//
// Completions: this contract is readiness only. A backend that can also perform I/O
// itself (io_uring) will offer it through a separate, optional interface beside this one,
// for net/ to use when the loop's backend has it; the loop and its watchers keep to the
// readiness contract, whichever backend runs them.
//
// Stale events: every registration carries the 32-bit `tag` of its InterestChange and
// event(i) returns it, so the loop can tell a report for a descriptor it re-registered
// since (or never registered: a closed descriptor whose duplicate is still open keeps
// its old registration alive) from a current one.
#pragma once

#include "readiness.hpp"

#if defined(EVFLOW_BACKEND_HEADER)
// A test build may put another backend under the loop (the kqueue backend over the
// kqueue emulation in tests/support, on Linux): that header declares `Backend`.
#include EVFLOW_BACKEND_HEADER
#elif defined(__linux__)
#include "linux/linux_backend.hpp"
namespace evflow::detail {
using Backend = LinuxBackend;
}
#elif defined(__FreeBSD__) || defined(__APPLE__)
#include "bsd/kqueue_sys.hpp"
namespace evflow::detail {
using Backend = KqueueBackend;
}
#elif defined(_WIN32)
#include "win/iocp_backend.hpp"
namespace evflow::detail {
using Backend = IocpBackend;
}
#else
#error "evflow: no backend for this platform yet"
#endif
