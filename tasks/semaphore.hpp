// evflow — Semaphore: a count of permits shared by the tasks of one loop.
//
//   evflow::Semaphore slots(8);                              // at most 8 at a time
//   if (evflow::Error e = co_await slots.acquire()) co_return e;
//   ...
//   slots.release();
//
// Fairness: first come, first served, with hand-off. release() with tasks waiting gives
// the permit to the one that has waited longest (the count stays 0), so that no task can
// take it in between; acquire() with a permit available and nobody waiting takes it
// without suspending.
//
// acquire() is a cancellation point: in a cancelled task or scope it gives ECANCELED even
// with permits available. A waiter cancelled while queued leaves the queue and is never
// handed a permit. A semaphore destroyed while tasks wait wakes them with EIDRM.
#pragma once

#include <coroutine>
#include <cstddef>

#include "wait_queue.hpp"

namespace evflow {

class Semaphore;

namespace detail {

class SemaphoreAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting on a semaphore";
  explicit SemaphoreAwait(Semaphore& semaphore) noexcept : semaphore_(&semaphore) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // None: a permit is taken. ECANCELED; EIDRM.
  Error await_resume() const noexcept { return error_; }

 private:
  Semaphore* semaphore_;
};

}  // namespace detail

class Semaphore {
 public:
  explicit Semaphore(std::size_t permits) noexcept : available_(permits) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Waits for a permit and takes it (see the header comment).
  [[nodiscard]] detail::SemaphoreAwait acquire() noexcept { return detail::SemaphoreAwait(*this); }
  // Takes a permit if one is available; never suspends.
  bool try_acquire() noexcept {
    if (available_ == 0) return false;
    --available_;
    return true;
  }
  // Gives a permit back: to the task that has waited longest, or to the count.
  void release() noexcept {
    if (detail::QueuedWaiter* next = waiters_.front()) {
      waiters_.grant(*next);
    } else {
      ++available_;
    }
  }
  std::size_t available() const noexcept { return available_; }
  bool contended() const noexcept { return !waiters_.empty(); }

 private:
  friend class detail::SemaphoreAwait;
  std::size_t available_;
  detail::WaitQueue waiters_;
};

namespace detail {

template <class Promise>
bool SemaphoreAwait::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<SemaphoreAwait>(awaiting)) return false;
  if (semaphore_->try_acquire()) return done_at_once();
  return wait_in(semaphore_->waiters_);
}

}  // namespace detail
}  // namespace evflow
