// evflow — noticing that the wall clock was set (Linux: timerfd TFD_TIMER_CANCEL_ON_SET).
//
// A CLOCK_REALTIME timerfd armed with TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET for a
// time far in the future never expires; instead, when the realtime clock is set
// discontinuously (settimeofday, clock_settime, a stepping NTP client), the kernel
// cancels it: the descriptor becomes readable and read(2) fails with ECANCELED
// (timerfd_create(2), Linux >= 3.0). Gradual NTP slewing does not trigger it.
#pragma once

#include "../result.hpp"

namespace evflow::detail {

class WallClockWatch {
 public:
  static constexpr bool kAvailable = true;

  WallClockWatch() noexcept = default;
  ~WallClockWatch() { close(); }
  WallClockWatch(const WallClockWatch&) = delete;
  WallClockWatch& operator=(const WallClockWatch&) = delete;

  // Creates and arms the descriptor. Errors: EMFILE, ENFILE, ENOMEM, ENODEV.
  Error open() noexcept;
  void close() noexcept;
  // Readable once the wall clock was set after the last open() or acknowledge().
  int fd() const noexcept { return fd_; }
  // Consumes a notification and re-arms; true if the clock was set meanwhile.
  bool acknowledge() noexcept;
  // In a forked child: a new timer under the same descriptor number (the inherited one
  // is shared with the parent, and arming it would re-arm the parent's).
  Error after_fork() noexcept;

 private:
  Error arm() noexcept;
  int fd_ = -1;
};

}  // namespace evflow::detail
