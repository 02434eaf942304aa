#include "cancellation.hpp"

namespace evflow {

Error CancellationScope::enter(detail::TaskRoot& root) noexcept {
  if (root_ != nullptr) return Error(EBUSY);
  root_ = &root;
  node_.parent = root.innermost_scope;
  root.innermost_scope = &node_;
  if (deadline_kind_ == DeadlineKind::AfterStart) deadline_ = root.scheduler->loop().now() + timeout_;
  if (Error error = arm()) {
    root.innermost_scope = node_.parent;
    root_ = nullptr;
    return error;
  }
  return Error();
}

ScopeOutcome CancellationScope::leave() noexcept {
  detail::TaskRoot& root = *root_;
  // Whether a cancellation reached the body: this scope is the innermost now.
  const bool reached = root.cancelled();
  if (timer_) timer_->stop();
  root.innermost_scope = node_.parent;
  node_.parent = nullptr;
  root_ = nullptr;
  if (!reached) return ScopeOutcome::Completed;
  return node_.cancelled ? reason_ : ScopeOutcome::Cancelled;
}

void CancellationScope::cancel_for(ScopeOutcome reason) noexcept {
  if (node_.cancelled) return;
  node_.cancelled = true;
  reason_ = reason;
  if (timer_) timer_->stop();
  if (root_ != nullptr) root_->scheduler->deliver_cancellation(*root_);
}

Error CancellationScope::arm() noexcept {
  if (root_ == nullptr || node_.cancelled || deadline_kind_ == DeadlineKind::None) return Error();
  Loop& loop = root_->scheduler->loop();
  if (deadline_ <= loop.now()) {  // already past: cancelled now, not an iteration later
    cancel_for(ScopeOutcome::TimedOut);
    return Error();
  }
  if (timer_ && &timer_->loop() != &loop) timer_.reset();  // run before by a task of another loop
  if (!timer_) timer_.emplace(loop);
  return timer_->start_at(deadline_, [this] { cancel_for(ScopeOutcome::TimedOut); });
}

Error CancellationScope::set_deadline(MonotonicClock::time_point deadline) noexcept {
  deadline_kind_ = DeadlineKind::Absolute;
  deadline_ = deadline;
  return arm();
}

Error CancellationScope::set_timeout(Duration timeout) noexcept {
  deadline_kind_ = DeadlineKind::AfterStart;
  timeout_ = timeout;
  if (root_ == nullptr) return Error();
  deadline_ = root_->scheduler->loop().now() + timeout;
  return arm();
}

void CancellationScope::clear_deadline() noexcept {
  deadline_kind_ = DeadlineKind::None;
  if (timer_) timer_->stop();
}

void CancellationScope::set_shield(bool on) noexcept {
  node_.shield = on;
  if (!on && root_ != nullptr) root_->scheduler->deliver_cancellation(*root_);
}

}  // namespace evflow
