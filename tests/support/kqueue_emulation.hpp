// Test-only: kqueue(2)/kevent(2) emulated on Linux, with FreeBSD's documented semantics,
// in either ABI flavour, so that the kqueue backend runs here against a kernel that
// behaves like the one it was written for. Never part of the library.
//
// An emulated kqueue is a real epoll descriptor (so it can be closed, polled and embedded
// like a kqueue) plus a table of knotes keyed by (ident, filter), as kqueue(2) describes:
// - EVFILT_READ / EVFILT_WRITE on a descriptor: level-triggered, evaluated with poll(2)
//   when events are collected; `data` is the bytes readable (FIONREAD) for READ; EV_EOF
//   when the peer hung up (POLLHUP/POLLRDHUP) or, for WRITE, the reader is gone (POLLERR).
//   A descriptor closed (or whose number now names another file) loses its knotes, as
//   close(2) removes them on FreeBSD.
// - EVFILT_USER: fired by NOTE_TRIGGER, from any thread; with EV_CLEAR it resets when
//   reported.
// The knotes of the next three filters each own a descriptor (an eventfd, a pidfd, a
// timerfd) in a second, edge-triggered epoll set nested in the first.
// - EVFILT_SIGNAL (ident 1..64, else EINVAL): every attempt to deliver the signal is
//   counted, even while ignored, except SIGCHLD while ignored; `data` is the count since
//   the last report; EV_CLEAR implied; every kqueue watching the signal hears of it. Linux
//   drops an ignored signal unseen, so while a knote watches it a process-wide tap is the
//   real handler: it counts (atomics and an eventfd per knote, no lock), then acts out the
//   disposition it found (SIG_IGN: nothing; a handler: calls it, so handlers still run).
//   The last knote gone puts that disposition back, unless someone has set another since.
//   Default actions are not acted out: under the tap a SIG_DFL signal terminates nothing.
//   A wait ends with EINTR only for a signal that reached a handler and with nothing ready.
// - EVFILT_PROC with NOTE_EXIT (ident: pid; ESRCH if none; a zombie is found on FreeBSD,
//   its exit reported at once, and ESRCH on macOS, as xnu finds no exited process): a pidfd;
//   the exit is reported once with EV_EOF | EV_ONESHOT, and the knote is deleted. `data`
//   is the wait(2) status, read with WNOWAIT (never reaped): on FreeBSD always, on macOS
//   with NOTE_EXITSTATUS (also returned in fflags); 0 when it cannot be read (not a child,
//   or reaped already). Without NOTE_EXIT the knote goes unreported at the exit. Where
//   pidfd_open is refused (ENOSYS under valgrind 3.19, EPERM under seccomp) the exit is
//   polled instead, every 10 ms, with waitid(P_PID, WNOWAIT) and kill(pid, 0).
// - EVFILT_TIMER: a timerfd; `data` is the period in the unit fflags choose in that
//   flavour (the same bits mean different units: 0x2 is NOTE_MSECONDS on FreeBSD and
//   NOTE_USECONDS on macOS; milliseconds when none, EINVAL for two or for a negative
//   period). Periodic unless EV_ONESHOT; `data` reports the expirations since the last
//   report; EV_CLEAR implied; re-adding restarts it. NOTE_ABSTIME / NOTE_ABSOLUTE: a
//   one-time wall-clock deadline (CLOCK_REALTIME); FreeBSD implies no EV_CLEAR for it,
//   macOS makes it EV_ONESHOT.
// - Flags: EV_ADD (re-adding modifies udata and flags), EV_DELETE (ENOENT when absent),
//   EV_ENABLE, EV_DISABLE, EV_ONESHOT (deleted once reported), EV_CLEAR (for READ/WRITE:
//   reported again only after the condition was seen false, or more data arrived),
//   EV_DISPATCH (disabled once reported), EV_RECEIPT (every change answered with
//   EV_ERROR and data 0 or an errno, in changelist order, while room lasts; without room
//   an error fails the whole call with that errno).
// - Timeouts: nullptr waits forever, otherwise the timespec, slept in epoll_wait's
//   milliseconds rounded up (never early; precision is not what these tests check), in
//   several sleeps past INT_MAX ms; a deadline beyond 2^63 ns is taken as that.
// - fork(2): the child has no kqueue of its parent's (kevent() on the number is EBADF);
//   their descriptors are closed there and their signal knotes forgotten, the tap giving
//   back the dispositions it stood in for (pthread_atfork).
// Not emulated: other filters (EVFILT_VNODE, EVFILT_AIO, ...), NOTE_* process events
// other than NOTE_EXIT (accepted, never reported), NOTE_TRACK, timer leeway flags,
// EVFILT_USER's fflags operations, the default actions of signals under the tap, and
// SIGKILL, SIGSTOP and glibc's two internal signals (their knotes are accepted, never fire).
// Where it differs from FreeBSD:
// - Under the tap an ignored (or SIG_DFL) signal still interrupts, outside the emulation,
//   the system calls that never restart (poll, nanosleep, epoll_wait: signal(7)), with
//   EINTR; FreeBSD does not interrupt anything for it.
// - SA_RESETHAND changes only the emulation's record: the tap stays installed, and later
//   deliveries act out SIG_DFL, which is nothing.
// - A blocked signal is counted when it is delivered, after it is unblocked; FreeBSD counts
//   the attempt.
// - kevent() takes a mutex: calling it from a signal handler (a NOTE_TRIGGER, say) is not
//   async-signal-safe here, as it is with the kernel.
#pragma once

#include <cerrno>
#include <cstdint>

#include "platform/bsd/kqueue_abi.hpp"
#include "platform/bsd/kqueue_backend.hpp"

namespace evflow::testing {

namespace kqueue_emulation {
int create() noexcept;  // a new emulated kqueue: an epoll descriptor, or -1 with errno
// kevent(2) for either layout (`macos_layout`: the 32-byte struct kevent).
int kevent(int kq, const void* changes, int nchanges, void* events, int nevents,
           const detail::kqueue_abi::Timespec* timeout, int16_t user_filter, bool macos_layout) noexcept;
int close(int kq) noexcept;  // closes an emulated kqueue (or any other descriptor)
}  // namespace kqueue_emulation

// The kernel of BasicKqueueBackend for tests: the emulation, in one ABI flavour.
template <class Flavour>
struct EmulatedKqueue {
  using Kevent = typename Flavour::Kevent;
  static constexpr int16_t kEvfiltUser = Flavour::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = Flavour::kNoteNanoseconds;
  static constexpr bool kMacos = sizeof(Kevent) == sizeof(detail::kqueue_abi::macos::Kevent);

  static int kqueue() noexcept { return kqueue_emulation::create(); }
  static int kevent(int kq, const Kevent* changes, int nchanges, Kevent* events, int nevents,
                    const detail::kqueue_abi::Timespec* timeout) noexcept {
    return kqueue_emulation::kevent(kq, changes, nchanges, events, nevents, timeout, kEvfiltUser, kMacos);
  }
  static int close(int fd) noexcept { return kqueue_emulation::close(fd); }
  static int set_cloexec(int) noexcept { return 0; }  // created close-on-exec
  static int refusal(int fd) noexcept { return detail::refusal_by_file_type(fd); }
  static int last_error() noexcept { return errno; }
};

struct FreeBsdAbi {
  using Kevent = detail::kqueue_abi::freebsd::Kevent;
  static constexpr int16_t kEvfiltUser = detail::kqueue_abi::freebsd::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = detail::kqueue_abi::freebsd::kNoteNanoseconds;
};
struct MacosAbi {
  using Kevent = detail::kqueue_abi::macos::Kevent;
  static constexpr int16_t kEvfiltUser = detail::kqueue_abi::macos::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = detail::kqueue_abi::macos::kNoteNanoseconds;
};

}  // namespace evflow::testing
