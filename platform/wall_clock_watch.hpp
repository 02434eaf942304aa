// evflow — WallClockWatch for this platform: a descriptor that becomes readable when
// the wall clock is set. See the platform's file for the mechanism.
//
// Only Linux has one (a timerfd with TFD_TIMER_CANCEL_ON_SET). Elsewhere the class below
// says so, and Periodic watchers follow a clock step when Loop::wall_clock_changed() is
// called, or at their next expiry:
// - FreeBSD and macOS: neither kqueue(2) manual documents an event for a step of
//   CLOCK_REALTIME (macOS has no such filter; FreeBSD 14's timerfd with
//   TFD_TIMER_CANCEL_ON_SET is not relied on here).
// - Windows: a change of the system time is announced with WM_TIMECHANGE, a message to
//   top-level windows; a loop has no window, and one per loop is not worth it.
#pragma once

#if defined(__linux__)
#include "linux/wall_clock_watch.hpp"
#else

#include "result.hpp"

namespace evflow::detail {

class WallClockWatch {
 public:
  // False: the loop calls none of the members below.
  static constexpr bool kAvailable = false;

  Error open() noexcept { return Error(ENOTSUP); }
  void close() noexcept {}
  int fd() const noexcept { return -1; }
  bool acknowledge() noexcept { return false; }
  Error after_fork() noexcept { return Error(); }
};

}  // namespace evflow::detail

#endif
