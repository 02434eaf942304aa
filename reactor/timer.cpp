#include "reactor/timer.hpp"

namespace evflow {

Error Timer::start(Duration after, Duration repeat) noexcept {
  if (loop_ == nullptr || !loop_->open_) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (!callback_ || repeat < Duration::zero()) {
    stop();  // a start that fails leaves the timer inactive
    return Error(EINVAL);
  }
  if (!linked() && !loop_->timers_.make_room()) return Error(ENOMEM);
  timeout_ns_ = after.count() < 0 ? 0 : after.count();
  repeat_ns_ = repeat.count();
  loop_->timers_.insert(*this, saturating_add(loop_->now_ns_, timeout_ns_));
  loop_->changed_outside_run();
  return Error();
}

Error Timer::again() noexcept {
  if (loop_ == nullptr || !loop_->open_ || !callback_ || timeout_ns_ < 0) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (!linked() && !loop_->timers_.make_room()) return Error(ENOMEM);
  const int64_t interval = repeat_ns_ > 0 ? repeat_ns_ : timeout_ns_;
  loop_->timers_.insert(*this, saturating_add(loop_->now_ns_, interval));
  loop_->changed_outside_run();
  return Error();
}

void Timer::stop() noexcept {
  if (!linked()) return;
  loop_->assert_owner_thread();
  loop_->timers_.remove(*this);
}

Error Timer::set_repeat(Duration repeat) noexcept {
  if (repeat < Duration::zero()) return Error(EINVAL);
  repeat_ns_ = repeat.count();
  return Error();
}

Timer::Duration Timer::remaining() const noexcept {
  if (!linked()) return Duration::zero();
  int64_t left = 0;
  if (deadline() > loop_->now_ns_ && __builtin_sub_overflow(deadline(), loop_->now_ns_, &left)) left = kNoDeadline;
  return Duration(left);
}

}  // namespace evflow
