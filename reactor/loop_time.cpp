// Loop: the parts that deal with time — Timer and Periodic expiry, the wake-up
// deadline, clocks, timer slack and the choice of sleep path.
#include "platform/timer_slack.hpp"
#include "reactor/io.hpp"
#include "reactor/loop.hpp"
#include "reactor/periodic.hpp"
#include "reactor/timer.hpp"

namespace evflow {

int64_t Loop::next_wake_deadline() noexcept {
  int64_t deadline = timers_.next_deadline();
  if (!periodics_.empty()) {
    // A wall-clock instant, converted to the monotonic clock at the current offset.
    const int64_t wall = periodics_.next_deadline();
    int64_t until = kNoDeadline;
    if (wall != kNoDeadline && __builtin_sub_overflow(wall, read_realtime(), &until)) until = kNoDeadline;
    const int64_t converted = saturating_add(read_monotonic(), until < 0 ? 0 : until);
    if (converted < deadline) deadline = converted;
  }
  return deadline;
}

void Loop::expire_timers() noexcept {
  timers_.expire(now_ns_, [this](TimerNode& node) {
    Timer& timer = static_cast<Timer&>(node);
    if (timer.repeat_ns_ > 0) {
      // Keep the phase: previous deadline + interval, skipping whole periods missed. In
      // 128 bits: a clock may span more than 2^63 ns between the two (a fake one can).
      const __int128 interval = timer.repeat_ns_;
      const __int128 behind = static_cast<__int128>(now_ns_) - timer.deadline();  // >= 0: it is due
      const __int128 next = timer.deadline() + (behind / interval + 1) * interval;
      timers_.insert(timer, next >= kNoDeadline ? kNoDeadline : static_cast<int64_t>(next));  // before the callback,
                                                                                              // which may stop it
    }
    ++dispatched_;
    timer.callback_(timer);
  });
}

void Loop::expire_periodics() noexcept {
  const int64_t wall = read_realtime();
  periodics_.expire(wall, [this, wall](TimerNode& node) {
    Periodic& periodic = static_cast<Periodic&>(node);
    const int64_t next = periodic.next_instant(wall, true);
    if (next != kNoDeadline) {
      periodics_.insert(periodic, next);
    } else {
      periodic_list_.remove(periodic);
    }
    ++dispatched_;
    periodic.callback_(periodic);
  });
}

Error Loop::start_periodic(Periodic& watcher, int64_t at) noexcept {
  if (WallClockWatch::kAvailable && !wall_clock_io_) {
    // The first Periodic: watch for the wall clock being set. The internal watcher is
    // not counted as active, so it never keeps run() going on its own.
    if (Error err = wall_clock_watch_.open()) return err;
    wall_clock_io_.reset(new (std::nothrow) Io(*this));
    if (!wall_clock_io_) return Error(ENOMEM);
    if (Error err = wall_clock_io_->start(wall_clock_watch_.fd(), Readable, [this] {
          if (wall_clock_watch_.acknowledge()) wall_clock_changed();
        })) {
      wall_clock_io_.reset();
      return err;
    }
  }
  if (!watcher.linked()) {
    if (!periodics_.make_room()) return Error(ENOMEM);
    periodic_list_.push_back(watcher);
  }
  periodics_.insert(watcher, at);
  changed_outside_run();
  return Error();
}

void Loop::stop_periodic(Periodic& watcher) noexcept {
  if (!watcher.linked()) return;
  periodics_.remove(watcher);
  periodic_list_.remove(watcher);
}

void Loop::wall_clock_changed() noexcept {
  assert_owner_thread();
  const int64_t wall = read_realtime();
  periodics_.rebase(wall);
  periodic_list_.for_each([this, wall](Periodic& periodic) {
    // An instant the jump moved into the past stays due and fires once (the grid is
    // kept); one the jump moved away is recomputed against the new time.
    const int64_t next = periodic.deadline() <= wall ? periodic.deadline() : periodic.next_instant(wall, false);
    if (next == kNoDeadline) {
      stop_periodic(periodic);
    } else {
      periodics_.insert(periodic, next);
    }
  });
}

Error Loop::set_clock(const ClockSource* source) noexcept {
  assert_owner_thread();
  if (!timers_.empty() || !periodics_.empty()) return Error(EBUSY);
  clock_ = source;
  now_ns_ = read_monotonic();
  timers_.rebase(now_ns_);
  periodics_.rebase(read_realtime());
  return Error();
}

Error Loop::set_timer_slack(std::chrono::nanoseconds slack) noexcept {
  assert_owner_thread();
  if (slack.count() <= 0) return Error(EINVAL);    // bad input is EINVAL on every backend
  return backend_.set_timer_slack(slack.count());  // the backend re-chooses its sleep path
}

void Loop::request_sleep_path(SleepPath path) noexcept { backend_.request_sleep_path(path); }

std::chrono::nanoseconds Loop::timer_slack() noexcept { return std::chrono::nanoseconds(thread_timer_slack()); }

}  // namespace evflow
