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
  int64_t diff;
  if (__builtin_sub_overflow(now, offset_ns_, &diff)) return now > offset_ns_ ? kNoDeadline : offset_ns_;
  int64_t periods = diff / interval_ns_;  // truncated towards zero
  const int64_t rest = diff % interval_ns_;
  if (rest > 0 || (rest == 0 && strictly_after)) ++periods;  // round up to a point after now
  int64_t span;
  if (__builtin_mul_overflow(periods, interval_ns_, &span)) return periods > 0 ? kNoDeadline : now;
  return saturating_add(offset_ns_, span);
}

Error Periodic::arm() noexcept {
  if (loop_ == nullptr || !loop_->open_ || !callback_) return Error(EINVAL);
  loop_->assert_owner_thread();
  const int64_t next = next_instant(loop_->read_realtime(), false);
  if (next == kNoDeadline) {
    stop();
    return Error();
  }
  return loop_->start_periodic(*this, next);
}

void Periodic::stop() noexcept {
  if (!linked()) return;
  loop_->assert_owner_thread();
  loop_->stop_periodic(*this);
}

}  // namespace evflow
