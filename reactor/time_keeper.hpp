// evflow — detail::TimeKeeper: the loop's clocks and its Timer and Periodic watchers.
//
// Two timer wheels (timers/timer_wheel.hpp): Timer watchers on the monotonic clock,
// Periodic watchers on the wall clock; the clock source (the kernel's clocks, or one a
// test installs); the cached now() of the iteration; and, where the platform has one, the
// watch that notices the wall clock being set (platform/wall_clock_watch.hpp), which
// reschedules every Periodic. The loop asks it for the next deadline before it waits and
// has it fire what is due after; the watchers' own behaviour (a Timer's repeat policy, a
// Periodic's rule) is in their files, called from expire().
#pragma once

#include <cstdint>
#include <memory>

#include "../platform/clock.hpp"
#include "../platform/wall_clock_watch.hpp"
#include "../timers/timer_wheel.hpp"
#include "intrusive_list.hpp"
#include "loop_core.hpp"

namespace evflow {

class Io;
class Timer;
class Periodic;

// Where a Loop reads time. The default reads the kernel's clocks; tests and simulations
// install their own (a fake clock). A blocking wait still sleeps in real time: the
// timeout to the next deadline of the fake clock.
struct ClockSource {
  int64_t (*monotonic)(void* context);  // nanoseconds, never decreasing
  int64_t (*realtime)(void* context);   // nanoseconds since the Unix epoch
  void* context;
};

namespace detail {

class TimeKeeper {
 public:
  explicit TimeKeeper(LoopCore& core) noexcept;
  ~TimeKeeper();
  TimeKeeper(const TimeKeeper&) = delete;
  TimeKeeper& operator=(const TimeKeeper&) = delete;

  // Reads the clocks and starts both wheels at their time.
  void open() noexcept;

  int64_t now() const noexcept { return now_ns_; }
  void update_now() noexcept { now_ns_ = read_monotonic(); }
  int64_t read_monotonic() const noexcept {
    return clock_ == nullptr ? monotonic_ns() : clock_->monotonic(clock_->context);
  }
  int64_t read_realtime() const noexcept {
    return clock_ == nullptr ? realtime_ns() : clock_->realtime(clock_->context);
  }
  // Errors: EBUSY while timers or periodics are active.
  Error set_clock(const ClockSource* source) noexcept;
  bool fake_clock() const noexcept { return clock_ != nullptr; }

  // The earliest deadline of both wheels on the monotonic clock; kNoDeadline if none.
  int64_t next_deadline() noexcept;
  // Fires the Timer watchers due at now(), then the Periodic watchers due at the wall
  // time, each in (deadline, start order).
  // Inline: an iteration with no timer and no periodic pays two tests, not a call.
  void expire() noexcept {
    if (!timers_.empty() || !periodic_list_.empty()) expire_due();
  }
  // Linked timers and periodics (each keeps run() going).
  int active() const noexcept { return static_cast<int>(timers_.size() + periodics_.size()); }
  // The loop's own watchers among the active ones (the wall-clock watch).
  int internal_active() const noexcept;

  // The Timer watcher's verbs (timer.cpp). Errors: ENOMEM (the wheel needs room).
  // Room for `count` Timer watchers linked at once, mapped now (Loop::reserve_timers).
  Error reserve_timers(std::size_t count) noexcept {
    if (!timers_.reserve(count)) return Error(ENOMEM);
    timers_.prefault();
    return Error();
  }
  // Inline, on the Timer's node: a restart that leaves the timer in its slot (the
  // idle-timeout idiom, see TimerWheel::insert) is a handful of instructions and no call.
  Error start_timer(TimerNode& timer, int64_t deadline) noexcept {
    if (!timer.linked() && !timers_.make_room()) return Error(ENOMEM);
    timers_.insert(timer, deadline);
    return Error();
  }
  // start_timer() of an active timer that stays where it is in the wheel (the common
  // restart); false, and nothing done, otherwise.
  bool restart_in_place(TimerNode& timer, int64_t deadline) noexcept { return timers_.move_in_place(timer, deadline); }
  void stop_timer(TimerNode& timer) noexcept { timers_.remove(timer); }

  // The Periodic watcher's verbs (periodic.cpp). Errors: EMFILE/ENFILE (the wall-clock
  // watch), ENOMEM.
  Error start(Periodic& periodic, int64_t at) noexcept;
  void stop(Periodic& periodic) noexcept;
  // Reschedules every Periodic against the current wall time.
  void wall_clock_changed() noexcept;

  // In a forked child: a new wall-clock watch (the inherited one is the parent's too).
  Error after_fork() noexcept;
  // In a forked child whose running thread is gone: timers taken out for firing go back.
  void abandon_expiry() noexcept {
    timers_.abandon_expiry();
    periodics_.abandon_expiry();
  }
  // The loop goes away: every watcher becomes inactive and forgets it.
  void detach_all() noexcept;

 private:
  void expire_due() noexcept;  // expire()'s work

  LoopCore& core_;
  int64_t now_ns_ = 0;
  const ClockSource* clock_ = nullptr;
  TimerWheel timers_;                      // Timer watchers, on the monotonic clock
  IntrusiveList<Periodic> periodic_list_;  // active Periodic watchers
  WallClockWatch wall_clock_watch_;
  std::unique_ptr<Io> wall_clock_io_;  // internal: does not count as an active watcher
  TimerWheel periodics_;               // Periodic watchers, on the wall clock
};

}  // namespace detail
}  // namespace evflow
