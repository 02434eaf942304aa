// evflow — Io: a callback when a file descriptor becomes readable or writable.
//
// Level-triggered: the callback runs in every iteration in which the descriptor is
// ready for something the watcher asked for, until the watcher is stopped or the
// condition is consumed. Error and hang-up conditions are reported as whatever the
// watcher asked for (Readable and/or Writable), so its next read or write sees them.
// Spurious readiness is possible (another reader drained the socket): use
// non-blocking descriptors and treat EAGAIN as "not yet".
//
// Costs: start() on a descriptor the kernel does not watch yet makes one system call,
// so that a bad descriptor is reported at once. Every other start, stop or interest
// change is recorded and applied once per iteration: a watcher stopped and started
// again with the same descriptor and interest before the loop waits costs nothing.
//
// Decisions (README, "Semantics"):
// - Several Io watchers may watch one descriptor in one loop; each gets the readiness
//   it asked for, in the order the watchers were started.
// - start() on an active watcher restarts it with the new parameters.
// - Closing a descriptor: close() stops the watcher, takes the registration out of the
//   kernel and closes, so that nothing of it outlives the close; or stop the watchers
//   (destroying a watcher stops it) and close it yourself.
// - Closing a descriptor under an active watcher is misuse (as in libev). What holds
//   then: no memory is touched wrongly; if the number is not reused, the watcher is
//   stopped and called once with `Invalid` when its interest is next re-registered;
//   readiness reported for a closed descriptor whose duplicate lives on is dropped,
//   never delivered to a watcher of a new descriptor with the same number (on epoll the
//   loop replaces its kernel set for that, a batch of registrations per iteration); once
//   the stale watchers are stopped, a watcher started on the reused number is served.
//   Until then, watchers of a reused number may be served the new file, or nothing.
// - Handing a registration over: a fresh watcher started on a descriptor whose watcher
//   stopped in this iteration is verified with the kernel (one system call), since the
//   number may now name another file. A coroutine awaiter has a fresh watcher per await:
//   hand_over() on the old one and start(handover, ...) on the new one vouch that it is the
//   same open file, and then neither the stop nor the start costs a system call.
// - After a plain close, the one case evflow cannot see without a system call: within
//   one iteration, stop a watcher, close its descriptor, and start *the same* watcher on
//   a new descriptor that got the same number. Call forget() between close and start to
//   make it safe (close() needs none).
//
// Errors from start(): EBADF for a negative or closed descriptor; EPERM for a
// descriptor epoll cannot watch (a regular file or a directory: always ready);
// EINVAL for an empty interest or bits other than Readable|Writable, for a watcher
// without a callback (a null function pointer is none), and after its loop was
// destroyed; ENOMEM when the loop's descriptor table cannot grow, and ENOMEM/ENOSPC from
// the kernel. A start() that fails leaves the watcher inactive, even one that was active.
//
// Windows: the descriptor is a SOCKET converted to int (`static_cast<int>(s)`; Windows
// keeps handle values within 32 bits, platform/win/iocp_backend.hpp, note l). Only
// sockets can be watched: any other handle is ENOTSOCK. A socket closed under an active
// watcher is noticed at once when that was its last handle (AFD reports the close): the
// watcher is stopped and called once with `Invalid`. A handle inherited by a child
// process or duplicated keeps the socket open, and then no close is seen.
#pragma once

#include "../platform/events.hpp"
#include "../platform/result.hpp"
#include "callback.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

class Io : public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Io&, Events)>;

  // What a stopped watcher leaves of its kernel registration for another watcher of the
  // same open file (hand_over()). Plain data: keep it beside the descriptor.
  struct Handover {
    int fd = -1;
    uint32_t stamp = 0;  // the watcher's stop stamp: 0 vouches for nothing
  };

  explicit Io(Loop& loop) noexcept : WatcherBase(loop) {}
  ~Io();
  Io(const Io&) = delete;
  Io& operator=(const Io&) = delete;

  // Watches `fd` for `interest` and calls `callback(io, ready)` when ready; `callback`
  // may also take no arguments. Replacing the callback from inside itself destroys the
  // running callable: like `delete this`, it must not touch its captures afterwards.
  template <class F>
  Error start(int fd, Events interest, F&& callback) noexcept {
    if (active_) stop();
    callback_.emplace(std::forward<F>(callback));
    return start(fd, interest);
  }
  // Same, keeping the callback set before.
  Error start(int fd, Events interest) noexcept;
  // Sets the callback without starting the watcher (libev's ev_init): start() without a
  // callback argument then uses it. On an active watcher it replaces the callback in place;
  // a null function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }
  // Restarts with the descriptor, interest and callback of the last start.
  Error start() noexcept { return start(fd_, interest_); }

  // Starts on the descriptor of a handover (see the header comment): while the kernel
  // still has the registration the handing watcher left (until the loop next applies
  // changes), an unchanged interest costs no system call. The caller vouches that the
  // descriptor was not closed since; a handover taken after close() has no descriptor
  // (EBADF). Errors and the rest as for start(fd, interest, callback).
  template <class F>
  Error start(const Handover& from, Events interest, F&& callback) noexcept {
    if (active_) stop();
    callback_.emplace(std::forward<F>(callback));
    return start(from, interest);
  }
  // Same, keeping the callback set before.
  Error start(const Handover& from, Events interest) noexcept;
  // Stops the watcher and gives its registration away for another watcher of the same
  // open file; this one then vouches for nothing (its next start is verified).
  Handover hand_over() noexcept;

  // Changes what the watcher asks for, active or not; applied at the next iteration.
  Error set_interest(Events interest) noexcept;

  // Stops the watcher; no callback runs after this returns. Idempotent.
  void stop() noexcept;

  // Stops the watcher and closes its descriptor, taking the registration out of the
  // kernel first (at most one system call besides close(2)): the safe way to close a
  // watched descriptor. Nothing of it outlives the close, even while a duplicate keeps
  // the file open elsewhere (a forked child, an SCM_RIGHTS hand-off), and the number may
  // be reused at once, by this watcher or another. Other watchers of this loop on the same
  // descriptor are called once with `Invalid` in the next iteration (stopped before it,
  // as for any Invalid callback). Afterwards fd() is -1.
  // Returns what close(2) answered (the descriptor is released either way); EBADF when
  // the watcher has no descriptor.
  Error close() noexcept;

  // Tells the loop that this watcher's descriptor was closed and its number may be
  // reused (see the header comment). Precondition: the watcher is stopped.
  void forget() noexcept;

  bool active() const noexcept { return active_; }
  int fd() const noexcept { return fd_; }
  Events interest() const noexcept { return interest_; }

 private:
  friend class detail::DescriptorTable;

  void notify(Events ready) noexcept { callback_(*this, ready); }

  Io* next_ = nullptr;  // next watcher of the same descriptor
  int fd_ = -1;
  // Stamp of this watcher's last stop as the last watcher of its descriptor; equal to the
  // descriptor's entry while the kernel keeps that registration for a restart. Cleared by
  // every start. A watcher destroyed and re-created at the same address starts at 0, so
  // it can never be mistaken for the one that stopped.
  uint32_t stop_stamp_ = 0;
  Events interest_;
  bool active_ = false;
  bool failed_ = false;  // linked in the loop's failed list, awaiting its Invalid callback
  Callback callback_;
};

namespace detail {

inline void DescriptorTable::dispatch(const ReadyEvent& event) noexcept {
  const auto index = static_cast<size_t>(event.fd);
  if (index < fds_.size()) {
    const Entry& e = fds_[index];
    Io* const head = e.head;
    if (e.tag == event.tag && !e.registered.empty() && !event.events.invalid() && head != nullptr &&
        head->next_ == nullptr) {
      const Events wanted = event.events & head->interest_;
      if (!wanted.empty()) {
        ++core_.dispatched;
        head->notify(wanted);
      }
      return;
    }
  }
  dispatch_other(event);
}

}  // namespace detail
}  // namespace evflow
