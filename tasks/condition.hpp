// evflow — Condition: tasks holding a Lock wait until another task notifies them.
//
//   evflow::Lock lock;
//   evflow::Condition changed(lock);
//   // a consumer, holding `lock`:           // a producer, holding `lock`:
//   while (queue.empty()) {                  queue.push_back(item);
//     if (evflow::Error e = co_await changed.wait()) ...   changed.notify();
//   }
//
// wait() releases the lock, waits for a notify(), and takes the lock again before the
// task goes on: it returns holding the lock, whatever ended the wait (a notification, a
// cancellation: ECANCELED, the condition destroyed: EIDRM). A cancellation that arrives
// while the task waits to take the lock back does not interrupt that: the task gets the
// lock first, then ECANCELED. wait() without the lock held is EPERM (nothing waits).
// Waits can end without a notify() meant for this task (another woken task changed the
// state first): check the condition in a loop, as above.
//
// Fairness: notify() wakes the task that has waited longest. A notified task queues for
// the lock behind the tasks already waiting for it (or takes it at once if it is free).
// wait() is a cancellation point: in a cancelled task it gives ECANCELED at once, and the
// lock stays held throughout.
#pragma once

#include <coroutine>
#include <cstddef>

#include "lock.hpp"
#include "wait_queue.hpp"

namespace evflow {

namespace detail {

class ConditionAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting on a condition";
  ConditionAwait(Condition& condition, Lock& lock) noexcept : condition_(&condition), lock_(&lock) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // None: notified, and the lock is held again. ECANCELED, EIDRM (the lock is held
  // again); EPERM (the lock was not held).
  Error await_resume() const noexcept { return ended_ ? ended_ : error_; }

 private:
  friend class evflow::Condition;
  // Notified, cancelled or the condition gone: takes the lock (true: it was free, the
  // task may go on, woken now when `wake`) or queues for it (false).
  bool retake(WaitQueue& from, bool wake = true) noexcept {
    if (lock_->try_lock()) {
      if (wake) {
        from.grant(*this);
      } else {
        from.remove(*this);
      }
      return true;
    }
    from.transfer(*this, lock_->waiters_);
    retaking_ = true;
    return false;
  }

  Condition* condition_;
  Lock* lock_;
  Error ended_;  // why the wait ended, when not a notification (ECANCELED, EIDRM)
  bool retaking_ = false;
};

}  // namespace detail

class Condition {
 public:
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  // Tasks still waiting go on to take the lock back, and their wait gives EIDRM.
  ~Condition() {
    while (detail::QueuedWaiter* waiter = waiters_.front()) {
      auto& await = static_cast<detail::ConditionAwait&>(*waiter);
      await.ended_ = Error(EIDRM);
      (void)await.retake(waiters_);
    }
  }

  [[nodiscard]] detail::ConditionAwait wait() noexcept { return detail::ConditionAwait(*this, *lock_); }
  // Wakes the task that has waited longest, if any.
  void notify() noexcept { notify(1); }
  // Wakes up to `count` tasks, longest waiting first.
  void notify(std::size_t count) noexcept {
    for (; count > 0; --count) {
      detail::QueuedWaiter* waiter = waiters_.front();
      if (waiter == nullptr) return;
      (void)static_cast<detail::ConditionAwait&>(*waiter).retake(waiters_);
    }
  }
  void notify_all() noexcept {
    while (detail::QueuedWaiter* waiter = waiters_.front())
      (void)static_cast<detail::ConditionAwait&>(*waiter).retake(waiters_);
  }
  Lock& lock() const noexcept { return *lock_; }

 private:
  friend class detail::ConditionAwait;
  Lock* lock_;
  detail::WaitQueue waiters_;
};

namespace detail {

template <class Promise>
bool ConditionAwait::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<ConditionAwait>(awaiting)) return false;  // ECANCELED; the lock stays held
  if (!lock_->locked()) {
    error_ = Error(EPERM);
    return done_at_once();
  }
  // A cancellation ends the wait for a notification, not the one for the lock.
  interrupt = [](Suspension& self) noexcept {
    auto& await = static_cast<ConditionAwait&>(static_cast<CancellableAwait&>(self));
    if (await.retaking_) return false;  // the lock first; the task sees ECANCELED then
    await.ended_ = Error(ECANCELED);
    // Lock free: the task goes on at once, holding it (the scheduler wakes it on true).
    return await.retake(await.condition_->waiters_, false);
  };
  (void)wait_in(condition_->waiters_);
  (void)lock_->unlock();
  return true;
}

}  // namespace detail
}  // namespace evflow
