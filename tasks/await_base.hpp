// evflow — detail::CancellableAwait: what every await of a task that waits for a watcher
// shares.
//
// An awaiter embeds its watcher and derives from this class, and names what it waits for
// (kActivity, shown in the task tree). await_suspend calls enter():
// a task whose cancellation was requested does not suspend, and the await completes at
// once with ECANCELED (level-triggered: every later await too). Otherwise the task is
// suspended and the await registered as the task's pending suspension; the watcher's
// callback calls complete(), which wakes the task. A cancellation that arrives first
// calls the awaiter's interrupt() (stop the watcher) and the await completes with
// ECANCELED; one that arrives after complete() finds nothing pending: the result is
// delivered and the next await sees the cancellation.
#pragma once

#include <coroutine>

#include "task.hpp"

namespace evflow::detail {

class CancellableAwait : public Suspension {
 public:
  bool await_ready() const noexcept { return false; }

 protected:
  CancellableAwait() noexcept = default;
  CancellableAwait(const CancellableAwait&) = delete;
  CancellableAwait& operator=(const CancellableAwait&) = delete;
  ~CancellableAwait() = default;

  // True when the task suspends; false when it was cancelled (error_ is ECANCELED).
  template <class Derived, class Promise>
  bool enter(std::coroutine_handle<Promise> awaiting) noexcept {
    root_ = &root_of(awaiting);
    if (root_->cancelled()) {
      error_ = Error(ECANCELED);
      return false;
    }
    root_->resume_point = awaiting;
    activity = Derived::kActivity;
    interrupt = &stop_and_cancel<Derived>;
    root_->suspended = this;
    return true;
  }
  // The interrupt of a watcher's await: stop the watcher, and the await ends with ECANCELED.
  template <class Derived>
  static bool stop_and_cancel(Suspension& self) noexcept {
    Derived& awaiter = static_cast<Derived&>(static_cast<CancellableAwait&>(self));
    awaiter.error_ = Error(ECANCELED);
    awaiter.stop_waiting();
    return true;
  }
  // What the task waited for happened (or failed with `error`): it runs in this
  // iteration's task phase.
  void complete(Error error = Error()) noexcept {
    error_ = error;
    root_->suspended = nullptr;
    root_->scheduler->wake(*root_);
  }
  // A suspension that could not begin (the watcher refused to start): no wake needed.
  bool refuse(Error error) noexcept {
    error_ = error;
    root_->suspended = nullptr;
    return false;
  }

  TaskRoot* root_ = nullptr;
  Error error_;
};

}  // namespace evflow::detail
