// evflow — Notification: another thread (or a signal handler) wakes a task.
//
//   evflow::Notification work_ready(loop);
//   // any thread:                 // a task of `loop`:
//   work_ready.notify();           co_await work_ready.wait();
//
// Built on an Async watcher (README, "Async"): notify() may be called from any thread and
// from a signal handler; notifications made before the loop notices them coalesce into
// one wake-up, and none is lost: a notify() while no task waits is delivered to the next
// wait(), which then completes in the next iteration. One task waits at a time. The
// Notification and its loop must outlive every thread that may still notify.
#pragma once

#include "../reactor/async.hpp"
#include "await_base.hpp"

namespace evflow {

class Notification;

namespace detail {

class NotificationAwaiter : public CancellableAwait {
 public:
  static constexpr const char* kActivity = "waiting on a notification";
  explicit NotificationAwaiter(Notification& notification) noexcept : notification_(&notification) {}

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // 0 once notified; ECANCELED; EBUSY when another task is already waiting; what
  // Async::start refused (EINVAL on a loop not open).
  Error await_resume() const noexcept { return error_; }
  void stop_waiting() noexcept;

 private:
  Notification* notification_;
};

}  // namespace detail

class Notification {
 public:
  explicit Notification(Loop& loop) noexcept : async_(loop) {}

  // Any thread, any number of times; async-signal-safe.
  void notify() noexcept { async_.send(); }
  // Suspends the calling task until a notify() it has not seen yet.
  detail::NotificationAwaiter wait() noexcept { return detail::NotificationAwaiter(*this); }

 private:
  friend class detail::NotificationAwaiter;
  Async async_;  // active only while a task waits: it keeps run() going then, not otherwise
};

namespace detail {

template <class Promise>
bool NotificationAwaiter::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!enter<NotificationAwaiter>(awaiting)) return false;
  Async& async = notification_->async_;
  if (async.active()) return refuse(Error(EBUSY));
  const Error error = async.start([this](Async& self) {
    self.stop();
    complete();
  });
  return error ? refuse(error) : true;
}

inline void NotificationAwaiter::stop_waiting() noexcept { notification_->async_.stop(); }

}  // namespace detail
}  // namespace evflow
