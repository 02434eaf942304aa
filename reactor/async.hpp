// evflow — Async: wake a loop from any thread (or a signal handler) and run a callback
// in the loop's thread.
//
// send() may be called from any thread, any number of times, and from a signal
// handler (it is two atomic exchanges and at most one write(2)). Sends coalesce: any
// number of sends before the loop notices them give one callback. None is lost: a send
// that happens after the callback started gives another callback later.
//
// Decisions (README, "Semantics"):
// - A send while the watcher is stopped stays pending and is delivered once after the
//   next start().
// - The Async and its loop must outlive every thread that may still call send().
//
// Errors from start(): EINVAL when no callback was ever given (a null function pointer
// is none: an active Async is then stopped, as every failed start leaves a watcher),
// when the loop is not open, or after the loop was destroyed.
#pragma once

#include <atomic>

#include "../platform/result.hpp"
#include "callback.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

class Async : public detail::ListNode<Async>, public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Async&)>;

  explicit Async(Loop& loop) noexcept : WatcherBase(loop) {}
  ~Async() { stop(); }

  // Sets the callback (called as `callback(async)` or `callback()`) and starts.
  template <class F>
  Error start(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    return start();
  }
  // Starts with the callback given before; no-op when already active.
  Error start() noexcept;
  // Sets the callback without starting the watcher (libev's ev_init): start() without a
  // callback argument then uses it. On an active watcher it replaces the callback in place;
  // a null function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }
  // No callback runs after this returns (a send still pending stays pending). Idempotent.
  void stop() noexcept;

  // Requests a callback in the loop's thread. Thread-safe and async-signal-safe.
  void send() noexcept {
    if (!pending_.exchange(true)) {
      if (Loop* loop = loop_) loop->wake();
    }
  }

  bool active() const noexcept { return active_; }
  // True while a send has not been delivered yet.
  bool pending() const noexcept { return pending_.load(); }

 private:
  friend class detail::AsyncSet;

  void notify() noexcept { callback_(*this); }

  std::atomic<bool> pending_{false};
  bool active_ = false;
  Callback callback_;
};

}  // namespace evflow
