// evflow — detail::WaitQueue: the tasks waiting on a synchronisation primitive of one loop
// (Lock, Semaphore, Event, Condition, Channel), first come first served.
//
// A waiter is the awaiter itself (a QueuedWaiter, in the awaiting frame), linked into the
// primitive's queue: waiting allocates nothing. The primitive hands what was waited for
// (the lock, a permit, an item) to the waiter at the front and wakes it: grant() takes it
// out of the queue before the task runs, so that nothing is handed to it twice. A waiter
// that a cancellation reaches while queued unlinks itself (its await gives ECANCELED) and
// is never handed anything; one already granted keeps what it was given (the grant ended
// the wait; the next await sees the cancellation).
//
// A primitive destroyed while tasks wait on it wakes them with EIDRM (what they waited on
// is gone); a waiting frame destroyed first (its loop destroyed) unlinks itself.
#pragma once

#include <coroutine>

#include "../reactor/intrusive_list.hpp"
#include "await_base.hpp"

namespace evflow::detail {

class WaitQueue;

class QueuedWaiter : public CancellableAwait, public ListNode<QueuedWaiter> {
 public:
  // In a queue: suspended and not yet granted or cancelled.
  bool queued() const noexcept { return queue_ != nullptr; }
  // What a cancellation of the waiting task does: out of the queue (CancellableAwait).
  void stop_waiting() noexcept;

 protected:
  QueuedWaiter() noexcept = default;
  ~QueuedWaiter();

  // The start of every await_suspend: false when the task is cancelled (error_ is
  // ECANCELED: resume at once, nothing taken), as every wait is a cancellation point.
  template <class Derived, class Promise>
  bool begin(std::coroutine_handle<Promise> awaiting) noexcept {
    return enter<Derived>(awaiting);
  }
  // After begin(): what was waited for is there; the await completes without suspending.
  bool done_at_once() noexcept {
    root_->suspended = nullptr;
    return false;
  }
  // After begin(): the task suspends at the back of `queue`.
  bool wait_in(WaitQueue& queue) noexcept;

 private:
  friend class WaitQueue;
  void woken(Error error) noexcept { complete(error); }
  WaitQueue* queue_ = nullptr;
};

class WaitQueue {
 public:
  WaitQueue() noexcept = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  ~WaitQueue() { release_all(Error(EIDRM)); }

  bool empty() const noexcept { return waiters_.empty(); }
  // The waiter that has waited longest, or null.
  QueuedWaiter* front() const noexcept { return waiters_.front(); }

  void push(QueuedWaiter& waiter) noexcept {
    waiter.queue_ = this;
    waiters_.push_back(waiter);
  }
  void remove(QueuedWaiter& waiter) noexcept {
    waiters_.remove(waiter);
    waiter.queue_ = nullptr;
  }
  // Takes `waiter` out of the queue and wakes its task, whose await completes with
  // `error` (none: it got what it waited for). It runs in this iteration's task phase.
  void grant(QueuedWaiter& waiter, Error error = Error()) noexcept {
    remove(waiter);
    waiter.woken(error);
  }
  // Moves `waiter` to the back of `to`, still waiting (a Condition's waiter going on to
  // wait for its lock).
  void transfer(QueuedWaiter& waiter, WaitQueue& to) noexcept {
    remove(waiter);
    to.push(waiter);
  }
  // Grants every waiter, oldest first, with `error`.
  void release_all(Error error = Error()) noexcept {
    while (QueuedWaiter* waiter = front())
      grant(*waiter, error);
  }

 private:
  IntrusiveList<QueuedWaiter> waiters_;
};

inline QueuedWaiter::~QueuedWaiter() {
  if (queue_ != nullptr) queue_->remove(*this);
}

inline void QueuedWaiter::stop_waiting() noexcept {
  if (queue_ != nullptr) queue_->remove(*this);
}

inline bool QueuedWaiter::wait_in(WaitQueue& queue) noexcept {
  queue.push(*this);
  return true;
}

}  // namespace evflow::detail
