#include "reactor/periodic.hpp"

namespace evflow {

int64_t Periodic::next_instant(int64_t now, bool strictly_after) noexcept {
  if (reschedule_) {
    const int64_t next = reschedule_(*this, WallClock::time_point(WallClock::duration(now))).time_since_epoch().count();
    return next > now ? next : (strictly_after ? kNoDeadline : now);
  }
  if (interval_ns_ == 0) {  // once, at offset
    return strictly_after ? kNoDeadline : offset_ns_;
  }
  // The first grid point offset + k * interval (k any whole number: the offset only
  // sets the phase) at or after `now`, or strictly after it when rescheduling after a
  // callback. Computed without overflow for any offset and interval.
  // 128-bit arithmetic: exact for any offset, interval and time; only the result is
  // clamped to the int64 range.
  const __int128 diff = static_cast<__int128>(now) - offset_ns_;
  __int128 periods = diff / interval_ns_;  // truncated towards zero
  const __int128 rest = diff % interval_ns_;
  if (rest > 0 || (rest == 0 && strictly_after)) ++periods;  // round up to a point after now
  const __int128 next = static_cast<__int128>(offset_ns_) + periods * interval_ns_;
  return next >= kNoDeadline ? kNoDeadline : static_cast<int64_t>(next);
}

Error Periodic::arm() noexcept {
  if (Error err = check_loop()) return err;
  if (!callback_) return Error(EINVAL);
  const int64_t next = next_instant(loop_->time().read_realtime(), false);
  if (next == kNoDeadline) {
    stop();
    return Error();
  }
  if (Error err = loop_->time().start(*this, next)) return err;
  loop_->core().changed_outside_run();
  return Error();
}

void Periodic::stop() noexcept {
  if (!linked()) return;
  loop_->core().assert_owner_thread();
  loop_->time().stop(*this);
}

}  // namespace evflow
