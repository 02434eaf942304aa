#include "periodic.hpp"

#include "../platform/checked_math.hpp"

namespace evflow {

int64_t Periodic::next_instant(int64_t now, bool strictly_after) noexcept {
  if (reschedule_) {
    const int64_t next = reschedule_(*this, WallClock::time_point(WallClock::duration(now))).time_since_epoch().count();
    return next > now ? next : (strictly_after ? detail::kNoDeadline : now);
  }
  if (interval_ns_ == 0) {  // once, at offset
    return strictly_after ? detail::kNoDeadline : offset_ns_;
  }
  // The first grid point offset + k * interval (k any whole number: the offset only sets
  // the phase) at or after `now`, or strictly after it when rescheduling after a callback;
  // exact for any offset, interval and time, kNoDeadline beyond int64_t.
  return detail::next_grid_point(offset_ns_, interval_ns_, now, strictly_after);
}

Error Periodic::arm() noexcept {
  if (Error err = check_loop()) return err;
  if (!callback_) return Error(EINVAL);
  const int64_t next = next_instant(loop_->time().read_realtime(), false);
  if (next == detail::kNoDeadline) {
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
