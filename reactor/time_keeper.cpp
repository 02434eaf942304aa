#include "time_keeper.hpp"

#include <new>

#include "../platform/checked_math.hpp"

#include "io.hpp"
#include "periodic.hpp"
#include "timer.hpp"

namespace evflow::detail {

TimeKeeper::TimeKeeper(LoopCore& core) noexcept : core_(core) {}

TimeKeeper::~TimeKeeper() = default;

void TimeKeeper::open() noexcept {
  now_ns_ = read_monotonic();
  timers_.rebase(now_ns_);
  periodics_.rebase(read_realtime());
}

Error TimeKeeper::set_clock(const ClockSource* source) noexcept {
  if (!timers_.empty() || !periodics_.empty()) return Error(EBUSY);
  clock_ = source;
  open();
  return Error();
}

int64_t TimeKeeper::next_deadline() noexcept {
  int64_t deadline = timers_.next_deadline();
  if (!periodics_.empty()) {
    // A wall-clock instant, converted to the monotonic clock at the current offset.
    const int64_t wall = periodics_.next_deadline();
    int64_t until = kNoDeadline;
    if (wall != kNoDeadline && detail::sub_overflows(wall, read_realtime(), until)) until = kNoDeadline;
    const int64_t converted = saturating_add(read_monotonic(), until < 0 ? 0 : until);
    if (converted < deadline) deadline = converted;
  }
  return deadline;
}

void TimeKeeper::expire_due() noexcept {
  if (!timers_.empty()) {
    timers_.expire(now_ns_, [this](TimerNode& node) {
      Timer& timer = static_cast<Timer&>(node);
      // Rescheduled before the callback, which may stop or destroy it (timer.cpp decides when).
      if (const int64_t next = timer.next_deadline_after(now_ns_); next != Timer::kNoRepeat)
        timers_.insert(timer, next);
      ++core_.dispatched;
      timer.notify();
    });
  }
  if (!periodic_list_.empty()) {  // the list: on a hot line
    const int64_t wall = read_realtime();
    periodics_.expire(wall, [this, wall](TimerNode& node) {
      Periodic& periodic = static_cast<Periodic&>(node);
      const int64_t next = periodic.next_instant(wall, true);  // the rule: periodic.cpp
      if (next != kNoDeadline) {
        periodics_.insert(periodic, next);
      } else {
        periodic_list_.remove(periodic);
      }
      ++core_.dispatched;
      periodic.notify();
    });
  }
}

int TimeKeeper::internal_active() const noexcept { return wall_clock_io_ && wall_clock_io_->active(); }

Error TimeKeeper::start(Periodic& periodic, int64_t at) noexcept {
  if (WallClockWatch::kAvailable && !wall_clock_io_) {
    // The first Periodic: watch for the wall clock being set. The internal watcher is
    // not counted as active, so it never keeps run() going on its own.
    if (Error err = wall_clock_watch_.open()) return err;
    wall_clock_io_.reset(new (std::nothrow) Io(core_.loop()));
    if (!wall_clock_io_) return Error(ENOMEM);
    if (Error err = wall_clock_io_->start(wall_clock_watch_.fd(), Readable, [this] {
          if (wall_clock_watch_.acknowledge()) wall_clock_changed();
        })) {
      wall_clock_io_.reset();
      return err;
    }
  }
  if (!periodic.linked()) {
    if (!periodics_.make_room()) return Error(ENOMEM);
    periodic_list_.push_back(periodic);
  }
  periodics_.insert(periodic, at);
  return Error();
}

void TimeKeeper::stop(Periodic& periodic) noexcept {
  if (!periodic.linked()) return;
  periodics_.remove(periodic);
  periodic_list_.remove(periodic);
}

void TimeKeeper::wall_clock_changed() noexcept {
  const int64_t wall = read_realtime();
  periodics_.rebase(wall);
  periodic_list_.for_each([this, wall](Periodic& periodic) {
    // An instant the jump moved into the past stays due and fires once (the grid is
    // kept); one the jump moved away is recomputed against the new time.
    const int64_t next = periodic.deadline() <= wall ? periodic.deadline() : periodic.next_instant(wall, false);
    if (next == kNoDeadline) {
      stop(periodic);
    } else {
      periodics_.insert(periodic, next);
    }
  });
}

Error TimeKeeper::after_fork() noexcept {
  if (!wall_clock_io_) return Error();
  return wall_clock_watch_.after_fork();
}

void TimeKeeper::detach_all() noexcept {
  wall_clock_io_.reset();
  timers_.clear([](TimerNode& node) { static_cast<Timer&>(node).detach(); });
  periodics_.clear([](TimerNode&) {});
  detach_each(periodic_list_, [](Periodic&) {});
}

}  // namespace evflow::detail
