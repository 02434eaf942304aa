#include "timer.hpp"

#include "../platform/checked_math.hpp"

namespace evflow {

namespace {

// A negative timeout is zero.
int64_t timeout_of(Timer::Duration after) noexcept { return after.count() < 0 ? 0 : after.count(); }

// What a start keeps for again() (interval_ns_, timer.hpp): the repeat interval negated,
// or the timeout of a one-shot timer.
int64_t interval_for(Timer::Duration repeat, int64_t timeout) noexcept {
  return repeat.count() > 0 ? -repeat.count() : timeout;
}

}  // namespace

// The loop of the timer this thread started last: a hint for the next restart. A timer
// of that loop (its loop_ equal to the hint) has the loop's fields, its time and its
// wheel, read through the hint, which is in a register at once, rather than through
// loop_, which is in the timer: a timer cold in the cache then holds up only the few
// instructions that need its own fields, and the processor goes on to the next
// restarts while it waits. A timer of another loop takes the full path, which makes its
// loop the hint.
thread_local Loop* restart_hint = nullptr;

// The common restart, an active timer re-armed (the idle-timeout idiom) on a loop no other
// loop polls, calls nothing when the wheel can leave it in its slot: a restart of a timer
// cold in the cache waits for it with every instruction that depends on it, so they are
// few. The callback is not tested: the wheel moves only a timer waiting in a slot, and no
// timer without a callback is there (start() refuses it, set_callback() of none stops
// it). False, with nothing done, in every other case.
[[gnu::always_inline]] inline bool Timer::restart_in_place(int64_t timeout) noexcept {
  Loop* loop = restart_hint;
  if (loop_ == loop && loop != nullptr) [[likely]] {
#if defined(__GNUC__)
    __asm__("" : "+r"(loop));  // equal to loop_, but read through the hint (above)
#endif
    if (loop->is_open() && !loop->core().embedded) [[likely]] {
      loop->core().assert_owner_thread();
      detail::TimeKeeper& time = loop->time();
      // Not embedded: nothing to tell (changed_outside_run).
      if (time.restart_in_place(*this, detail::saturating_add(time.now(), timeout))) return true;
    }
  }
  if (loop_ != nullptr) restart_hint = loop_;
  return false;
}

Error Timer::start(Duration after, Duration repeat) noexcept {
  // start_other() does everything restart_in_place() does not, in the same order.
  const int64_t timeout = timeout_of(after);
  if (repeat.count() >= 0 && restart_in_place(timeout)) [[likely]] {
    interval_ns_ = interval_for(repeat, timeout);
    return Error();
  }
  return start_other(after, repeat);
}

Error Timer::start_other(Duration after, Duration repeat) noexcept {
  if (Error err = check_loop()) return err;
  if (!callback_ || repeat < Duration::zero()) {
    stop();  // a start that fails leaves the timer inactive
    return Error(EINVAL);
  }
  detail::TimeKeeper& time = loop_->time();
  const int64_t timeout = timeout_of(after);
  if (Error err = time.start_timer(*this, detail::saturating_add(time.now(), timeout))) return err;
  interval_ns_ = interval_for(repeat, timeout);
  loop_->core().changed_outside_run();
  return Error();
}

Error Timer::again() noexcept {
  // A timer waiting in a slot was started, has a callback and a loop: restart_in_place()
  // needs none of the checks below.
  const int64_t timeout = interval_ns_ < 0 ? -interval_ns_ : interval_ns_;
  if (restart_in_place(timeout)) [[likely]]
    return Error();
  if (detached() || !callback_ || never_started()) return Error(EINVAL);
  if (Error err = check_loop()) return err;
  return arm(timeout);
}

Error Timer::start_at(MonotonicClock::time_point deadline) noexcept {
  if (Error err = check_loop()) return err;
  if (!callback_) {
    stop();  // a start that fails leaves the timer inactive
    return Error(EINVAL);
  }
  detail::TimeKeeper& time = loop_->time();
  const int64_t at = deadline.time_since_epoch().count();
  if (Error err = time.start_timer(*this, at)) return err;
  int64_t timeout = 0;
  if (at > time.now() && detail::sub_overflows(at, time.now(), timeout)) timeout = detail::kNoDeadline;
  interval_ns_ = timeout;
  loop_->core().changed_outside_run();
  return Error();
}

Error Timer::again(Duration timeout) noexcept {
  const int64_t ns = timeout_of(timeout);
  if (!restart_in_place(ns)) {
    if (detached() || !callback_) return Error(EINVAL);
    if (Error err = check_loop()) return err;
    if (Error err = arm(ns)) return err;
  }
  if (interval_ns_ >= 0) interval_ns_ = ns;  // a repeating timer keeps its interval
  return Error();
}

Error Timer::arm(int64_t timeout_ns) noexcept {
  detail::TimeKeeper& time = loop_->time();
  if (Error err = time.start_timer(*this, detail::saturating_add(time.now(), timeout_ns))) return err;
  loop_->core().changed_outside_run();
  return Error();
}

int64_t Timer::next_deadline_after(int64_t now) const noexcept {
  const int64_t repeat = repeat_ns();
  if (repeat <= 0) return kNoRepeat;
  // Keep the phase: previous deadline + interval, skipping whole periods missed: the first
  // point of the deadline's grid after now. Exact however far apart the two are (a fake
  // clock may span more than 2^63 ns), saturated at kNoDeadline.
  return detail::next_grid_point(deadline(), repeat, now, true);
}

void Timer::stop() noexcept {
  if (!linked()) return;
  loop_->core().assert_owner_thread();
  loop_->time().stop_timer(*this);
}

Error Timer::set_repeat(Duration repeat) noexcept {
  if (repeat < Duration::zero()) return Error(EINVAL);
  if (repeat.count() > 0) {
    interval_ns_ = -repeat.count();
  } else if (interval_ns_ < 0) {
    interval_ns_ = -interval_ns_;  // one-shot from now on; again() keeps the last interval
  }
  return Error();
}

Timer::Duration Timer::remaining() const noexcept {
  if (!linked()) return Duration::zero();
  const int64_t now = loop_->time().now();
  int64_t left = 0;
  if (deadline() > now && detail::sub_overflows(deadline(), now, left)) left = detail::kNoDeadline;
  return Duration(left);
}

}  // namespace evflow
