// evflow — Signal: a callback in the loop's thread when a POSIX signal arrives.
//
// Built on the process-wide signal layer (signals/signal_registry.hpp): any number of
// loops, in any threads, may watch the same signal, and each of their watchers is
// called, always in the loop, never in a signal handler. How it is caught (a handler
// that records it and wakes the loops, a signalfd, or on kqueue the kernel's own
// EVFILT_SIGNAL) and which signals are refused is explained there.
//
// Decisions (README, "Semantics"):
// - A signal raised k times before the loop looks gives at least one callback and at
//   most k; evflow's pending set makes it exactly one per loop (standard signals are
//   also merged by the kernel). A signal raised after the callback started gives
//   another callback later: none is lost.
// - The previous disposition of the signal is restored when the last watcher in the
//   process stops (handler and kernel-filter modes; signalfd mode changes none).
// - Signal callbacks run after Io and Async callbacks and before Timer callbacks;
//   several watchers of one signal in one loop run in start order.
// - start() on an active watcher restarts it with the new signal and callback, in place:
//   the new signal is watched before the old one is let go, so no signal meets its
//   default disposition in between and one caught but not dispatched stays pending.
// - In a forked child, signals caught before the fork but not yet dispatched are
//   dropped (the parent dispatches them); signals caught in the child before its loop
//   rebuilt are dispatched; watchers stay active.
//
// Windows has no POSIX signals: SIGINT, SIGBREAK and SIGHUP (1) stand for the console
// control events Ctrl+C, Ctrl+Break and the console window closing
// (platform/win/console_events.hpp); every other number is EINVAL there.
//
// - A loop takes a mailbox of the signal layer with its first Signal watcher and gives it
//   back with its last (its internal SIGCHLD watcher counts as one).
// - No watched signal ever meets its default action, whichever thread the kernel gives
//   it to: a handler is installed in every mode (signals/signal_registry.hpp).
//
// Errors from start(): EINVAL for a number that cannot be watched (0, > 64, SIGKILL,
// SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, or one the C library reserves), for a
// watcher without a callback (a null function pointer is none), when the loop is not
// open or was destroyed; EAGAIN when 256 loops watch signals at that moment; EMFILE when
// the signalfd cannot be created (Linux); on kqueue, what kevent() answers for the
// EVFILT_SIGNAL registration (e.g. ENOMEM). A start() that fails leaves the watcher
// inactive, even one that was active on another signal.
#pragma once

#include "../platform/result.hpp"
#include "callback.hpp"
#include "intrusive_list.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

class Signal : public detail::ListNode<Signal>, public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Signal&)>;

  explicit Signal(Loop& loop) noexcept : WatcherBase(loop) {}
  ~Signal() { stop(); }

  // Calls `callback(signal)` (or `callback()`) when `signo` arrives.
  template <class F>
  Error start(int signo, F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    return start(signo);
  }
  // Same, keeping the callback set before.
  Error start(int signo) noexcept;
  // Sets the callback without starting the watcher (libev's ev_init): start() without a
  // callback argument then uses it. On an active watcher it replaces the callback in place;
  // a null function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }

  // No callback runs after this returns. Idempotent.
  void stop() noexcept;

  bool active() const noexcept { return active_; }
  int signal_number() const noexcept { return signo_; }

 private:
  friend class detail::SignalSources;

  void notify() noexcept { callback_(*this); }

  int signo_ = 0;
  bool active_ = false;
  Callback callback_;
};

}  // namespace evflow
