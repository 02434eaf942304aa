// evflow — Timer: a callback after a duration on the monotonic clock, once or repeating.
//
// Timers live in the loop's TimerWheel (timers/timer_wheel.hpp): start, stop and
// again() are O(1) and allocate nothing. The loop sleeps until the earliest deadline
// with nanosecond precision (Loop::sleep_path()), so a timer fires within microseconds
// of its deadline, and never before it.
//
// Decisions (README, "Semantics"):
// - The base of a relative timeout is the loop's cached now() (the time the current
//   iteration's callbacks started), like libev and libuv: timers started together with
//   the same duration fire together, in start order. After a long computation, call
//   Loop::update_now() first if the timeout must count from the present instant.
// - Timers due in the same iteration fire in deadline order; equal deadlines in start
//   order (a restart counts as a new start).
// - Repeating timers keep their phase: the next deadline is the previous deadline plus
//   the interval, not "now plus the interval", so a slow callback causes no drift. If
//   the loop fell behind by whole periods, the missed periods are coalesced into one
//   callback and the timer stays on its original phase.
// - again() restarts the countdown from now(): with the repeat interval if one is set,
//   otherwise with the timeout of the last start(). It works on an active timer (the
//   idle-timeout idiom: push the deadline back in O(1)) and on a stopped one that was
//   started before; on a timer never started it returns EINVAL.
// - start() on an active timer restarts it with the new parameters.
// - A negative timeout is treated as zero: the timer is due at once. Started from an Io,
//   Async, Signal or Child callback, it fires in the same iteration (timers run after
//   those in step 5); started anywhere else, in the next iteration.
//
// Errors: EINVAL for a negative repeat interval, for a timer without a callback, when
// the loop is not open or was destroyed; ENOMEM when the loop's timer wheel needs more
// room and the memory is not there. A start() that fails leaves the timer inactive, even
// one that was active (the rule of every watcher kind: README, "Watchers").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../platform/result.hpp"
#include "../timers/timer_wheel.hpp"
#include "callback.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

// The room a Timer has for its callback's captures: one pointer (`[this]` or `[conn]`),
// as libev's data pointer. A Timer is then 64 bytes, wheel links and callback included:
// servers keep one per connection, often several. For larger captures,
// WithCapacity<Timer, Bytes> (with_capacity.hpp).
inline constexpr std::size_t kTimerCallbackCapacity = sizeof(void*);

class Timer : private detail::TimerNode, public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Timer&), kTimerCallbackCapacity>;
  using Duration = std::chrono::nanoseconds;

  explicit Timer(Loop& loop) noexcept : WatcherBase(loop) {}
  ~Timer() { stop(); }

  // Fires `callback(timer)` (or `callback()`) once, `after` from now(). (A duration in
  // the second place is the repeat interval of the form below.)
  template <class F>
  requires(!std::is_convertible_v<F, Duration>) Error start(Duration after, F&& callback)
  noexcept { return start(after, Duration::zero(), std::forward<F>(callback)); }
  // Fires after `after`, then every `repeat` (zero: once).
  template <class F>
  Error start(Duration after, Duration repeat, F&& callback) noexcept {
    stop();
    callback_.emplace(std::forward<F>(callback));
    return start(after, repeat);
  }
  // Same, keeping the callback set before.
  Error start(Duration after, Duration repeat = Duration::zero()) noexcept;
  // Sets the callback without starting the watcher (libev's ev_init): start() without a
  // callback argument then uses it. On an active watcher it replaces the callback in place;
  // a null function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }

  // Fires once at `deadline` on the loop's monotonic clock (now() and when() are on it);
  // a deadline already past is due at once, like a negative timeout (above). again() then counts the time
  // from now() to `deadline` (at least zero).
  template <class F>
  Error start_at(MonotonicClock::time_point deadline, F&& callback) noexcept {
    stop();
    callback_.emplace(std::forward<F>(callback));
    return start_at(deadline);
  }
  // Same, keeping the callback set before.
  Error start_at(MonotonicClock::time_point deadline) noexcept;

  // Restarts the countdown from now() (see the header comment). O(1).
  Error again() noexcept;
  // Restarts the countdown from now() with `timeout`, which again() uses from then on;
  // the repeat interval stays as it is (zero: the timer stays one-shot). A negative
  // timeout is zero. O(1).
  Error again(Duration timeout) noexcept;

  // No callback runs after this returns. Idempotent.
  void stop() noexcept;

  // Sets the interval used by the next reschedule and by again(); zero: one-shot. A
  // repeating timer's next deadline is already scheduled when its callback runs, so
  // set_repeat(0) there ends the repetition after one more period; call stop() to end
  // it at once. The timer keeps one interval for again(), not two: after set_repeat(0),
  // again() counts the last repeat interval, not the timeout of the start before it.
  Error set_repeat(Duration repeat) noexcept;
  Duration repeat() const noexcept { return Duration(repeat_ns()); }

  // Time left until the deadline, measured from now(); zero if due or inactive.
  Duration remaining() const noexcept;

  bool active() const noexcept { return linked(); }
  // The deadline of the current or last run, on the loop's monotonic clock.
  MonotonicClock::time_point when() const noexcept {
    return MonotonicClock::time_point(MonotonicClock::duration(deadline()));
  }

 private:
  friend class detail::TimeKeeper;

  // The repeat policy, asked by the time keeper when the timer fires (before its
  // callback, which may stop or destroy it): the next deadline, or kNoRepeat.
  static constexpr int64_t kNoRepeat = INT64_MIN;
  int64_t next_deadline_after(int64_t now) const noexcept;
  void notify() noexcept { callback_(*this); }
  Error arm(int64_t timeout_ns) noexcept;
  bool restart_in_place(int64_t timeout) noexcept;              // start()'s and again()'s fast path (timer.cpp)
  Error start_other(Duration after, Duration repeat) noexcept;  // start() but for a restart in place

  // The interval again() uses, one field for two: the timeout of the last start (>= 0)
  // on a one-shot timer, the repeat interval, negated (< 0), on a repeating one (whose
  // again() uses that). A timer never started has start sequence zero (TimerNode).
  int64_t repeat_ns() const noexcept { return interval_ns_ < 0 ? -interval_ns_ : 0; }
  bool never_started() const noexcept { return sequence() == 0; }
  int64_t interval_ns_ = 0;
  Callback callback_;
};

}  // namespace evflow
