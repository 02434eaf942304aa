// evflow — Periodic: a callback at absolute wall-clock times (libev's ev_periodic).
//
// Where a Timer counts a duration on the monotonic clock, a Periodic names instants on
// the wall clock (WallClock, CLOCK_REALTIME): "every hour on the hour", "at 03:00".
// Two ways to say when:
// - an offset and an interval: fires on the grid offset + k * interval (k any whole
//   number: the offset sets the phase), at the first grid point not before now;
//   interval zero fires once, at offset itself.
// - a reschedule function: called as `reschedule(periodic, now)` at start and after each
//   callback, and returns the next instant. At start, an instant not after `now` fires
//   in the next iteration; after a callback, one not after `now` stops the watcher
//   (return a future instant to keep it going). WallClock::time_point::max() means "no
//   instant, ever": after a callback the watcher stops; at start() it is left inactive,
//   and start() still succeeds (the rule is valid; it has nothing to fire).
//
// When the wall clock is set (Linux: timerfd TFD_TIMER_CANCEL_ON_SET), every active
// Periodic is rescheduled against the new time before the next wait: an hourly periodic
// still fires on the hour of the new clock. Missed instants (the loop was blocked, or
// the clock jumped forward) are coalesced into one callback; the phase is kept.
//
// Periodic callbacks run after Timer callbacks in an iteration, in time order, ties in
// start order. start() on an active Periodic restarts it with the new rule.
//
// Errors: EINVAL for a negative interval, without a callback, when the loop is not open
// or was destroyed; EMFILE/ENFILE if the first Periodic cannot create the descriptor
// that notices clock changes; ENOMEM. A start() that fails leaves the watcher inactive,
// even one that was active (README, "Watchers").
#pragma once

#include <chrono>
#include <cstdint>

#include "../platform/clock.hpp"
#include "../platform/result.hpp"
#include "../timers/timer_wheel.hpp"
#include "callback.hpp"
#include "intrusive_list.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

class Periodic : private detail::TimerNode, public detail::ListNode<Periodic>, public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Periodic&)>;
  using Reschedule = detail::InlineCallback<WallClock::time_point(Periodic&, WallClock::time_point)>;
  using Duration = std::chrono::nanoseconds;

  explicit Periodic(Loop& loop) noexcept : WatcherBase(loop) {}
  ~Periodic() { stop(); }

  // Fires at offset + k * interval (see the header comment).
  template <class F>
  Error start(WallClock::time_point offset, Duration interval, F&& callback) noexcept {
    stop();  // a start that fails leaves the watcher inactive
    if (interval < Duration::zero()) return Error(EINVAL);
    callback_.emplace(std::forward<F>(callback));
    return start(offset, interval);
  }
  // Same, keeping the callback set before.
  Error start(WallClock::time_point offset, Duration interval) noexcept {
    stop();
    if (interval < Duration::zero()) return Error(EINVAL);
    reschedule_.reset();
    offset_ns_ = offset.time_since_epoch().count();
    interval_ns_ = interval.count();
    return arm();
  }

  // Fires at the instants `reschedule(periodic, now)` returns.
  template <class R, class F>
  Error start_with(R&& reschedule, F&& callback) noexcept {
    stop();
    reschedule_.emplace(std::forward<R>(reschedule));
    callback_.emplace(std::forward<F>(callback));
    return arm();
  }

  // Sets the callback without starting the watcher (libev's ev_init): start(offset,
  // interval) then uses it. On an active watcher it replaces the callback in place; a null
  // function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }
  // Recomputes the next instant from the rule and the current wall time. EINVAL on a
  // Periodic never started (it has no rule yet), as Timer::again().
  Error again() noexcept {
    if (interval_ns_ == kNoRule && !reschedule_) return Error(EINVAL);
    return arm();
  }

  // No callback runs after this returns. Idempotent.
  void stop() noexcept;

  bool active() const noexcept { return linked(); }
  // The next (or last) instant it fires at.
  WallClock::time_point at() const noexcept { return WallClock::time_point(WallClock::duration(deadline())); }

 private:
  friend class detail::TimeKeeper;

  void notify() noexcept { callback_(*this); }
  Error arm() noexcept;
  // The first instant of the rule strictly after `after` (or, at start, not before
  // `after`); kNoDeadline when the rule has no more.
  int64_t next_instant(int64_t now, bool strictly_after) noexcept;

  static constexpr int64_t kNoRule = -1;  // interval_ns_ before the first start()
  int64_t offset_ns_ = 0;
  int64_t interval_ns_ = kNoRule;
  Callback callback_;
  Reschedule reschedule_;
};

}  // namespace evflow
