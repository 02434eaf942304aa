// evflow — Prepare, Check and Idle: callbacks tied to the phases of a loop iteration.
//
// - Prepare runs in every iteration just before the loop waits for events: the place
//   to flush buffered output or batch work gathered by the previous callbacks.
// - Check runs in every iteration right after the events were dispatched: the place to
//   act on what they produced (libev's prepare/check pairing, e.g. to embed another
//   library's event processing).
// - Idle runs only in iterations in which no other callback ran (Io, Async, Signal,
//   Timer or Periodic; loop.hpp, step 5), and while any Idle watcher is active the loop
//   never blocks: background work that yields to I/O and to due timers.
//
// All three keep run(RunMode::Default) going while active. Within a phase, watchers run
// in start order; one started during its own phase first runs in the next iteration.
// start() on an active watcher keeps it active and in place (a new callback replaces
// the old one; see Io::start for replacing it from inside itself).
//
// Errors from start(): EINVAL when no callback was ever given (a null function pointer
// is none: an active hook is then stopped, as every failed start leaves a watcher), when
// the loop is not open, or after the loop was destroyed.
#pragma once

#include "../platform/result.hpp"
#include "callback.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

template <detail::HookKind Kind>
class Hook : public detail::ListNode<Hook<Kind>>, public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Hook&)>;

  explicit Hook(Loop& loop) noexcept : WatcherBase(loop) {}
  ~Hook() { stop(); }

  // Sets the callback (called as `callback(hook)` or `callback()`) and starts.
  template <class F>
  Error start(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    return start();
  }

  // Sets the callback without starting the watcher (libev's ev_init): start() without a
  // callback argument then uses it. On an active watcher it replaces the callback in place;
  // a null function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }
  // Starts with the callback given before. No-op when already active.
  Error start() noexcept {
    if (Error err = check_loop()) return err;
    if (!callback_) {
      stop();  // a start that fails leaves the watcher inactive
      return Error(EINVAL);
    }
    if (active_) return Error();
    active_ = true;
    loop_->hooks().start(*this);
    loop_->core().changed_outside_run();
    return Error();
  }

  // No callback runs after this returns. Idempotent.
  void stop() noexcept {
    if (!active_) return;
    loop_->core().assert_owner_thread();
    loop_->hooks().stop(*this);
    active_ = false;
  }

  bool active() const noexcept { return active_; }

 private:
  friend class detail::HookLists;

  void notify() noexcept { callback_(*this); }

  bool active_ = false;
  Callback callback_;
};

using Prepare = Hook<detail::HookKind::Prepare>;
using Check = Hook<detail::HookKind::Check>;
using Idle = Hook<detail::HookKind::Idle>;

}  // namespace evflow
