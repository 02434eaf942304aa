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
// - Flags: EV_ADD (re-adding modifies udata and flags), EV_DELETE (ENOENT when absent),
//   EV_ENABLE, EV_DISABLE, EV_ONESHOT (deleted once reported), EV_CLEAR (for READ/WRITE:
//   reported again only after the condition was seen false, or more data arrived),
//   EV_DISPATCH (disabled once reported), EV_RECEIPT (every change answered with
//   EV_ERROR and data 0 or an errno, in changelist order, while room lasts; without room
//   an error fails the whole call with that errno).
// - Timeouts: nullptr waits forever, otherwise the timespec, slept in epoll_wait's
//   milliseconds rounded up (never early; precision is not what these tests check).
// Not emulated (yet): EVFILT_SIGNAL, EVFILT_PROC, EVFILT_TIMER.
#pragma once

#include <cerrno>
#include <cstdint>

#include "platform/bsd/kqueue_abi.hpp"

namespace evflow::testing {

namespace kqueue_emulation {
int create() noexcept;  // a new emulated kqueue: an epoll descriptor, or -1 with errno
// kevent(2) for either layout (`macos_layout`: the 32-byte struct kevent).
int kevent(int kq, const void* changes, int nchanges, void* events, int nevents, const kqueue_abi::Timespec* timeout,
           int16_t user_filter, bool macos_layout) noexcept;
int close(int kq) noexcept;    // closes an emulated kqueue (or any other descriptor)
int refusal(int fd) noexcept;  // EPERM for a regular file or directory, as NativeKqueue::refusal
}  // namespace kqueue_emulation

// The kernel of BasicKqueueBackend for tests: the emulation, in one ABI flavour.
template <class Flavour>
struct EmulatedKqueue {
  using Kevent = typename Flavour::Kevent;
  static constexpr int16_t kEvfiltUser = Flavour::kEvfiltUser;
  static constexpr bool kMacos = sizeof(Kevent) == sizeof(kqueue_abi::macos::Kevent);

  static int kqueue() noexcept { return kqueue_emulation::create(); }
  static int kevent(int kq, const Kevent* changes, int nchanges, Kevent* events, int nevents,
                    const kqueue_abi::Timespec* timeout) noexcept {
    return kqueue_emulation::kevent(kq, changes, nchanges, events, nevents, timeout, kEvfiltUser, kMacos);
  }
  static int close(int fd) noexcept { return kqueue_emulation::close(fd); }
  static int set_cloexec(int) noexcept { return 0; }  // created close-on-exec
  static int refusal(int fd) noexcept { return kqueue_emulation::refusal(fd); }
  static int last_error() noexcept { return errno; }
};

struct FreeBsdAbi {
  using Kevent = kqueue_abi::freebsd::Kevent;
  static constexpr int16_t kEvfiltUser = kqueue_abi::freebsd::kEvfiltUser;
};
struct MacosAbi {
  using Kevent = kqueue_abi::macos::Kevent;
  static constexpr int16_t kEvfiltUser = kqueue_abi::macos::kEvfiltUser;
};

}  // namespace evflow::testing
