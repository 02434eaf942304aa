// evflow — Event: a flag the tasks of one loop wait to see set.
//
//   evflow::Event ready;
//   // one task:                       // others:
//   ready.set();                       if (evflow::Error e = co_await ready.wait()) ...
//
// set() wakes every task waiting, in the order they began to wait, and the flag stays set:
// a wait() on a set event completes without suspending, until clear(). A task woken by
// set() completes its wait even if clear() comes before it runs.
//
// wait() is a cancellation point: in a cancelled task or scope it gives ECANCELED even when
// the event is set. A waiter cancelled while waiting just leaves. An event destroyed while
// tasks wait wakes them with EIDRM.
#pragma once

#include <coroutine>

#include "wait_queue.hpp"

namespace evflow {

class Event;

namespace detail {

class EventAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting on an event";
  explicit EventAwait(Event& event) noexcept : event_(&event) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // None: the event was set. ECANCELED; EIDRM.
  Error await_resume() const noexcept { return error_; }

 private:
  Event* event_;
};

}  // namespace detail

class Event {
 public:
  Event() noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  [[nodiscard]] detail::EventAwait wait() noexcept { return detail::EventAwait(*this); }
  void set() noexcept {
    set_ = true;
    waiters_.release_all();
  }
  void clear() noexcept { set_ = false; }
  bool is_set() const noexcept { return set_; }

 private:
  friend class detail::EventAwait;
  bool set_ = false;
  detail::WaitQueue waiters_;
};

namespace detail {

template <class Promise>
bool EventAwait::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<EventAwait>(awaiting)) return false;
  if (event_->is_set()) return done_at_once();
  return wait_in(event_->waiters_);
}

}  // namespace detail
}  // namespace evflow
