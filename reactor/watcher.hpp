// evflow — detail::WatcherBase: what every watcher kind shares.
//
// A watcher refers to its loop until the loop goes away (the loop then detaches it: it
// becomes inactive and forgets the loop). Every verb that needs the loop starts with the
// same guard, check_loop(): EINVAL when the loop is not open or was destroyed, and the
// debug-build owner-thread check. A watcher kind is a class deriving from this base, with
// its state and behaviour in its own header and source file; the loop component that
// keeps its kind (descriptor table, time keeper, signal sources, child reaper, Async set,
// hook lists) is its friend and calls its private notify(), never the other way round
// except through the component's verbs (README, "How it fits together").
#pragma once

#include "../platform/result.hpp"
#include "loop.hpp"

namespace evflow::detail {

class WatcherBase {
 public:
  Loop& loop() const noexcept { return *loop_; }

 protected:
  explicit WatcherBase(Loop& loop) noexcept : loop_(&loop) {}
  WatcherBase(const WatcherBase&) = delete;
  WatcherBase& operator=(const WatcherBase&) = delete;
  ~WatcherBase() = default;

  // The start guard: the loop exists and is open, and the caller is its thread.
  Error check_loop() const noexcept {
    if (loop_ == nullptr || !loop_->is_open()) return Error(EINVAL);
    loop_->core().assert_owner_thread();
    return Error();
  }
  // The loop is going away: this watcher forgets it (every later start is EINVAL).
  void detach() noexcept { loop_ = nullptr; }
  bool detached() const noexcept { return loop_ == nullptr; }

  Loop* loop_;

  template <class List, class Forget>
  friend void detach_each(List& list, Forget&& forget) noexcept;
};

// The loop is going away: empties `list` (an IntrusiveList of one watcher kind) without a
// system call; each watcher is unlinked, `forget(watcher)` clears its kind's own state,
// and the watcher forgets the loop. The one way every component lets its watchers go.
template <class List, class Forget>
void detach_each(List& list, Forget&& forget) noexcept {
  while (auto* watcher = list.front()) {
    list.remove(*watcher);
    forget(*watcher);
    watcher->detach();
  }
}

}  // namespace evflow::detail
