// evflow — detail::LoopCore: what a Loop and its components share.
//
// A Loop is made of components, each with its own state, that it calls one way: the
// descriptor table (Io watchers), the time keeper (Timer and Periodic), the signal sources
// (Signal), the child reaper (Child), and the lists of Async watchers and hooks. What they
// all need is here: the backend, the loop's state flags and counters, the registration
// tags, and the fork and thread checks. Components hold a reference to it; none holds one
// to another component unless it calls it (README, "How it fits together").
#pragma once

#include <atomic>
#include <cstdint>

#include "../platform/backend.hpp"
#include "../platform/fork_generation.hpp"
#include "thread_check.hpp"

namespace evflow {

class Loop;

namespace detail {

// For tags from a wrapping 32-bit counter: true when `tag` lies in [mark, next), i.e.
// was issued after `mark` was taken and before `next`. Correct across the wrap.
constexpr bool issued_since(uint32_t tag, uint32_t mark, uint32_t next) noexcept {
  return static_cast<uint32_t>(tag - mark) < static_cast<uint32_t>(next - mark);
}

class LoopCore {
 public:
  explicit LoopCore(Loop& loop) noexcept : loop_(loop) {}
  LoopCore(const LoopCore&) = delete;
  LoopCore& operator=(const LoopCore&) = delete;

  Loop& loop() const noexcept { return loop_; }

  // A new tag for a registration; every event of it carries the tag back.
  uint32_t take_tag() noexcept { return next_tag++; }
  // True when `tag` was handed out after the last wait began.
  bool tag_is_recent(uint32_t tag) const noexcept { return issued_since(tag, tag_mark, next_tag); }
  // True in a forked child until the loop rebuilt itself: its kernel objects are still
  // the parent's, and nothing may touch them.
  bool forked() const noexcept { return fork_generation() != fork_generation_seen.load(std::memory_order_relaxed); }
  // In a forked child, rebuilds the loop first; the error when that fails (nothing may
  // touch a kernel object then). (loop.cpp)
  Error check_fork() noexcept;
  // Inline so that a release build (no thread checks) pays nothing, not even a call.
  void assert_owner_thread() const noexcept {
    if constexpr (kThreadChecks) check_owner_thread();
  }
  void check_owner_thread() const noexcept;  // loop.cpp
  // For a change made outside run() to a loop embedded in another (Loop::native_handle).
  void changed_outside_run() noexcept {
    if (embedded && !running) keep_handle_ready();
  }
  void keep_handle_ready() noexcept;  // loop.cpp

  // What every iteration reads or writes comes first: after each system call the caches
  // are cold, and the loop's cost per event is mostly the lines it touches.
  bool open = false;
  bool running = false;
  bool embedded = false;        // native_handle() was asked for
  bool rebuild_needed = false;  // replace the kernel object at once, before the next wait
  int active = 0;               // active watchers, the loop's internal ones included
  int kernel_watchers = 0;      // of them, those the kernel reports for: Io (internal ones too), Signal, Child
  int dispatched = 0;           // callbacks run in the current iteration's step 5
  uint32_t next_tag = 1;
  uint32_t tag_mark = 1;  // next_tag when the last wait began
  const void* owner = nullptr;
  uint64_t rebuilds = 0;  // kernel objects replaced (LoopStats::backend_rebuilds)
  // The process generation the kernel objects belong to; read by Loop::wake() from any thread.
  std::atomic<uint64_t> fork_generation_seen{0};
  Backend backend;

 private:
  Loop& loop_;
};

}  // namespace detail
}  // namespace evflow
