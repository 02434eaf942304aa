// evflow — Lock: mutual exclusion between the tasks of one loop.
//
//   evflow::Lock lock;
//   if (evflow::Error e = co_await lock.lock()) co_return e;   // ECANCELED: not taken
//   ... the critical section, awaits included ...
//   lock.unlock();
//
//   evflow::Result<evflow::LockGuard> held = co_await lock.scoped();   // unlocks when it goes
//
// Fairness: first come, first served, with hand-off. unlock() with tasks waiting gives the
// lock to the one that has waited longest before any other task runs, so a task that
// unlocks and locks again at once queues behind the waiters (no barging). lock() of a
// free lock takes it without suspending.
//
// lock() is a cancellation point: in a cancelled task or scope it gives ECANCELED even
// when the lock is free. A waiter cancelled while queued leaves the queue and is never
// handed the lock. A lock destroyed while tasks wait wakes them with EIDRM.
//
// The lock belongs to no task: unlock() may come from another task than the lock();
// unlock() of a lock not held is EPERM. A Lock serves the tasks of one loop (no threads).
#pragma once

#include <coroutine>
#include <utility>

#include "wait_queue.hpp"

namespace evflow {

class Lock;
class Condition;

// Holds a Lock, unlocking it when destroyed (or by unlock()).
class LockGuard {
 public:
  LockGuard() noexcept = default;
  explicit LockGuard(Lock& locked) noexcept : lock_(&locked) {}
  LockGuard(LockGuard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
  LockGuard& operator=(LockGuard&& other) noexcept {
    if (this != &other) {
      unlock();
      lock_ = std::exchange(other.lock_, nullptr);
    }
    return *this;
  }
  ~LockGuard() { unlock(); }

  bool owns_lock() const noexcept { return lock_ != nullptr; }
  void unlock() noexcept;

 private:
  Lock* lock_ = nullptr;
};

namespace detail {

class ConditionAwait;

class LockAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting for a lock";
  explicit LockAwait(Lock& lock) noexcept : lock_(&lock) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // None: the lock is held. ECANCELED; EIDRM.
  Error await_resume() const noexcept { return error_; }

 protected:
  Lock* lock_;
};

class ScopedLockAwait : public LockAwait {
 public:
  using LockAwait::LockAwait;
  Result<LockGuard> await_resume() const noexcept {
    if (error_) return error_;
    return LockGuard(*lock_);
  }
};

}  // namespace detail

class Lock {
 public:
  Lock() noexcept = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Waits for the lock and takes it (see the header comment).
  [[nodiscard]] detail::LockAwait lock() noexcept { return detail::LockAwait(*this); }
  // The same, giving a guard that unlocks.
  [[nodiscard]] detail::ScopedLockAwait scoped() noexcept { return detail::ScopedLockAwait(*this); }
  // Takes the lock if it is free; never suspends.
  bool try_lock() noexcept {
    if (held_) return false;
    held_ = true;
    return true;
  }
  // Gives the lock to the task that has waited longest, or frees it. EPERM when not held.
  Error unlock() noexcept {
    if (!held_) return Error(EPERM);
    if (detail::QueuedWaiter* next = waiters_.front()) {
      waiters_.grant(*next);  // it holds the lock now
    } else {
      held_ = false;
    }
    return Error();
  }
  bool locked() const noexcept { return held_; }
  // Tasks waiting for it.
  bool contended() const noexcept { return !waiters_.empty(); }

 private:
  friend class detail::LockAwait;
  friend class Condition;
  friend class detail::ConditionAwait;
  bool held_ = false;
  detail::WaitQueue waiters_;
};

inline void LockGuard::unlock() noexcept {
  if (lock_ != nullptr) (void)std::exchange(lock_, nullptr)->unlock();
}

namespace detail {

template <class Promise>
bool LockAwait::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<LockAwait>(awaiting)) return false;
  if (lock_->try_lock()) return done_at_once();
  return wait_in(lock_->waiters_);
}

}  // namespace detail
}  // namespace evflow
