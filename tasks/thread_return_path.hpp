// evflow — detail::ThreadReturnPath: how work done on a pool's thread comes back to the
// loop that submitted it.
//
// One per loop, made by the first to_thread() on it. A thread that finishes a piece of
// work appends it to the path's list under the path's mutex and, when the list was empty,
// wakes the loop through the path's Async watcher (under a second lock, which only that
// wake-up and the path's closing take: no lock of the path is held while the loop is
// woken, so a wake-up that takes a lock of its own cannot deadlock against fork()); the Async callback takes the whole
// list and hands each piece to the await that waits for it, or destroys it when that await was abandoned (a cancelled
// or destroyed task): results are destroyed on the loop's thread.
//
// The Async watcher is active only while work is out, so a loop whose work has all come
// back is not kept running by it; abandoned work still out keeps it running until it
// arrives (nothing is left behind).
//
// Lifetime: the loop holds one reference, each piece of work out another. When the loop
// goes (after its tasks are destroyed) the path closes: work that finishes later is
// destroyed on its thread, and the last reference frees the path.
//
// Memory: work records come from a cache of blocks by size class (64 to 512 bytes) used on
// the loop's thread only, so that in steady state to_thread() allocates nothing; larger
// records, and records freed on another thread once the loop is gone, use the heap.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "../reactor/async.hpp"
#include "scheduler.hpp"
#include "thread_pool.hpp"

namespace evflow::detail {

struct ThreadReturnPath : LoopEndHook {
  static constexpr std::size_t kClasses = 4;  // blocks of 64, 128, 256, 512 bytes
  static constexpr uint8_t kHeapClass = kClasses;

  // The loop's path, made on first use; null when the memory is not there.
  static ThreadReturnPath* of(TaskScheduler& scheduler) noexcept;

  // Loop thread: a block of `size` bytes for a work record, and its class; null: ENOMEM.
  void* allocate(std::size_t size, uint8_t& size_class) noexcept;
  // Loop thread: `work` goes out (keeps the Async watcher active until it is back).
  void sent() noexcept;
  // Loop thread: `work` will not come back through the list (withdrawn, or it could not be
  // submitted); destroys it.
  void discard(ThreadWork& work) noexcept;
  // Loop thread: destroys a record that came back, keeping its block.
  void recycle(ThreadWork& work) noexcept;

  // A pool's thread: `work` is done (or lost in a fork: work.error says so).
  void deliver(ThreadWork& work) noexcept;

  void retain() noexcept { references.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  std::atomic<uint32_t> references{1};
  std::mutex mutex;                 // held across fork() (thread_pool.cpp)
  ThreadWork* done_head = nullptr;  // under mutex
  ThreadWork** done_tail = &done_head;
  bool closed = false;   // under mutex: the loop is gone
  std::mutex wake_lock;  // a wake-up of the loop against its closing; made anew in a forked child
  bool awake = true;     // under wake_lock: the loop is there to wake
  Async arrivals;
  std::size_t out = 0;  // loop thread: works sent and not yet back or discarded
  void* free_[kClasses] = {};
  ThreadReturnPath* next_path = nullptr;  // in the process's list of paths (fork handling)
  ThreadReturnPath* prev_path = nullptr;

 private:
  explicit ThreadReturnPath(Loop& loop) noexcept;
  ~ThreadReturnPath();
  void take_arrivals() noexcept;
  void close() noexcept;
  static void free_record(ThreadWork& work) noexcept;  // destroys it; its block to the heap
  friend struct ThreadForkHandlers;
};

}  // namespace evflow::detail
