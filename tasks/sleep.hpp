// evflow — the time awaitables of a task: sleep(d), sleep_until(t), yield().
//
//   co_await evflow::sleep(5ms);          // Error: 0, or what Timer::start refused
//   co_await evflow::yield();             // let the other ready tasks run first
//
// Each await embeds its Timer in the awaiting frame: no allocation, and the Timer is
// stopped (by its destructor) if the frame is destroyed while it waits. The task is woken
// by the timer's callback and runs in the loop's task phase of that iteration, in wake
// order (scheduler.hpp). Durations and instants are on the loop's monotonic clock (a fake
// one too: Loop::set_clock).
//
// yield() puts the task at the tail of the ready queue: it runs again after every task
// queued before it, in the same task phase unless the phase's budget of resumptions is
// spent (then in the next iteration, after the loop has polled for I/O and fired due
// timers; scheduler.hpp). It arms no timer and makes no system call.
#pragma once

#include <chrono>
#include <optional>

#include "../reactor/timer.hpp"
#include "await_base.hpp"

namespace evflow {

namespace detail {

class SleepAwaiter : public CancellableAwait {
 public:
  static constexpr const char* kActivity = "waiting on a timer";
  explicit SleepAwaiter(MonotonicClock::time_point deadline) noexcept : deadline_(deadline), absolute_(true) {}
  explicit SleepAwaiter(Timer::Duration duration) noexcept : duration_(duration) {}

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    if (!enter<SleepAwaiter>(awaiting)) return false;
    timer_.emplace(root_->scheduler->loop());
    auto fired = [this] { complete(); };
    const Error error = absolute_ ? timer_->start_at(deadline_, fired) : timer_->start(duration_, fired);
    return error ? refuse(error) : true;
  }
  // 0 when the time has come; ECANCELED when the task was cancelled; what Timer::start
  // refused (EINVAL on a loop not open, ENOMEM).
  Error await_resume() const noexcept { return error_; }
  void stop_waiting() noexcept { timer_->stop(); }

 private:
  MonotonicClock::time_point deadline_{};
  Timer::Duration duration_{};
  bool absolute_ = false;
  std::optional<Timer> timer_;
};

class YieldAwaiter {
 public:
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    TaskRoot& root = root_of(awaiting);
    if (root.cancelled()) {
      error_ = Error(ECANCELED);
      return false;
    }
    root.resume_point = awaiting;
    root.scheduler->wake(root);
    return true;
  }
  // 0, or ECANCELED (at once, without going round the loop) when the task was cancelled.
  Error await_resume() const noexcept { return error_; }

 private:
  Error error_;
};

}  // namespace detail

// Suspends the task until `deadline` on its loop's monotonic clock.
inline detail::SleepAwaiter sleep_until(MonotonicClock::time_point deadline) noexcept {
  return detail::SleepAwaiter(deadline);
}

// Suspends the task for `duration` from the loop's now(); a duration of zero or less is
// due at once (the task still goes round the loop: use yield() for that, which is cheaper).
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> duration) noexcept {
  return detail::SleepAwaiter(std::chrono::duration_cast<Timer::Duration>(duration));
}

// Suspends the task behind the tasks already woken (the tail of the ready queue).
inline detail::YieldAwaiter yield() noexcept { return {}; }

}  // namespace evflow
