// evflow — detail::AsyncSet: the loop's Async watchers and its wake-up channel.
//
// Loop::wake() writes to the backend's wake-up channel at most once until the loop has
// looked (wake_pending_, written from any thread, on a cache line of its own). When the
// loop sees the wake-up it clears the flag and scans the Async watchers for pending sends,
// in start order. A rebuilt kernel object may have swallowed a wake-up: every Async is
// looked at once more then.
#pragma once

#include <atomic>

#include "intrusive_list.hpp"
#include "loop_core.hpp"

namespace evflow {

class Async;

namespace detail {

class AsyncSet {
 public:
  explicit AsyncSet(LoopCore& core) noexcept : core_(core) {}
  AsyncSet(const AsyncSet&) = delete;
  AsyncSet& operator=(const AsyncSet&) = delete;

  // Any thread, or a signal handler. Coalesced: one system call until the loop looks.
  void wake() noexcept {
    // In a forked child not rebuilt yet the channel is the parent's: the flag alone is
    // enough, since the rebuild looks at every Async.
    if (!wake_pending_.exchange(true) && !core_.forked()) core_.backend.wake();
  }
  // The Async watcher's verbs (async.cpp).
  void start(Async& watcher) noexcept;
  void stop(Async& watcher) noexcept;

  // At open(): a send before open() found no channel and left the flag set, which would
  // swallow every later wake-up.
  void forget_wake() noexcept { wake_pending_.store(false); }
  // The backend reported the wake-up: drained, then every Async is looked at.
  void woken() noexcept {
    core_.backend.acknowledge_wake();
    wake_pending_.store(false);  // after draining, before the scan: a later send wakes again
    scan_ = true;
  }
  // A new kernel object (rebuild, fork): a wake-up may have gone with the old one.
  void rescan() noexcept {
    wake_pending_.store(false);
    scan_ = true;
  }
  bool scan_due() const noexcept { return scan_; }
  // Calls every Async with a pending send, in start order. Inline: most iterations have
  // no scan due.
  void dispatch() noexcept {
    if (scan_) dispatch_scan();
  }
  void detach_all() noexcept;

 private:
  void dispatch_scan() noexcept;

  LoopCore& core_;
  bool scan_ = false;  // an Async may have a send pending
  IntrusiveList<Async> asyncs_;
  alignas(64) std::atomic<bool> wake_pending_{false};  // written by other threads: own line
};

}  // namespace detail
}  // namespace evflow
