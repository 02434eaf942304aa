// evflow — noticing that the wall clock was set: not available on FreeBSD and macOS.
//
// Neither kqueue(2) manual documents an event for a step of CLOCK_REALTIME (macOS has no
// such filter; FreeBSD 14's timerfd with TFD_TIMER_CANCEL_ON_SET is not relied on here).
// Periodic watchers therefore follow a clock step when Loop::wall_clock_changed() is
// called, or at their next expiry; the loop starts no watch.
#pragma once

#include "platform/result.hpp"

namespace evflow {

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

}  // namespace evflow
