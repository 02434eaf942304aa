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
  // The first offset + k * interval at or after `now` (strictly after, when rescheduling
  // after a callback), computed without overflow for any offset and interval.
  if (offset_ns_ > now) return offset_ns_;
  const int64_t behind = now - offset_ns_;
  int64_t periods = behind / interval_ns_;
  if (behind % interval_ns_ != 0 || strictly_after) ++periods;
  const int64_t span = periods > kNoDeadline / interval_ns_ ? kNoDeadline : periods * interval_ns_;
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
