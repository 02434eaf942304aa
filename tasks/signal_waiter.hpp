// evflow — SignalWaiter: a task waits for a signal (a console event on Windows).
//
//   evflow::SignalWaiter interrupted(loop);
//   if (auto err = interrupted.start(SIGINT)) ...   // watched from here on
//   co_await interrupted.next();                      // Error: 0, ECANCELED, ...
//
// Built on a Signal watcher (README, "Signal"), which stays active from start() to stop()
// or destruction, so that the disposition stays evflow's between two waits and no signal
// raised between them is lost: one raised while no task waits completes the next wait
// at once. Signals raised several times before the loop notices them coalesce, as for
// Signal. One task waits at a time.
#pragma once

#include "../reactor/signal.hpp"
#include "await_base.hpp"

namespace evflow {

class SignalWaiter;

namespace detail {

class SignalAwaiter : public CancellableAwait {
 public:
  static constexpr const char* kActivity = "waiting on a signal";
  explicit SignalAwaiter(SignalWaiter& waiter) noexcept : waiter_(&waiter) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // 0 once the signal was raised; ECANCELED; EINVAL when the waiter is not started;
  // EBUSY when another task is already waiting.
  Error await_resume() const noexcept { return error_; }
  void stop_waiting() noexcept;
  void raised() noexcept { complete(); }

 private:
  SignalWaiter* waiter_;
};

}  // namespace detail

class SignalWaiter {
 public:
  explicit SignalWaiter(Loop& loop) noexcept : signal_(loop) {}

  // Starts watching `signo`. Errors as for Signal::start.
  Error start(int signo) noexcept {
    pending_ = false;
    return signal_.start(signo, [this] {
      if (detail::SignalAwaiter* waiting = std::exchange(waiting_, nullptr)) {
        waiting->raised();
      } else {
        pending_ = true;
      }
    });
  }
  // Stops watching; a task waiting now goes on waiting until the next start().
  void stop() noexcept { signal_.stop(); }
  // Suspends the calling task until the signal is raised (at once if it was raised since
  // the last wait completed).
  detail::SignalAwaiter next() noexcept { return detail::SignalAwaiter(*this); }

 private:
  friend class detail::SignalAwaiter;
  Signal signal_;
  bool pending_ = false;
  detail::SignalAwaiter* waiting_ = nullptr;
};

namespace detail {

template <class Promise>
bool SignalAwaiter::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  // Cancellation first: a cancelled task's wait leaves a signal already caught to the
  // next wait.
  if (!enter<SignalAwaiter>(awaiting)) return false;
  if (std::exchange(waiter_->pending_, false)) return refuse(Error());
  if (!waiter_->signal_.active()) return refuse(Error(EINVAL));
  if (waiter_->waiting_ != nullptr) return refuse(Error(EBUSY));
  waiter_->waiting_ = this;
  return true;
}

inline void SignalAwaiter::stop_waiting() noexcept { waiter_->waiting_ = nullptr; }

}  // namespace detail
}  // namespace evflow
