// evflow — detail::ThreadReturnPath: how work done on a pool's thread comes back to the
// loop that submitted it.
//
// One per loop, made by the first to_thread() on it. A thread that finishes a piece of
// work pushes it onto the path's list (one atomic exchange: no lock the loop could ever
// wait for) and, when the list was empty, wakes the loop through the path's Async
// watcher, under a lock that only that wake-up and the path's closing take. The Async
// callback takes the whole list, puts it back in the order the work finished, and hands
// each piece to the await that waits for it, or destroys it when that await was
// abandoned (a cancelled or destroyed task): results are destroyed on the loop's thread.
//
// The Async watcher is active only while work is out, so a loop whose work has all come
// back is not kept running by it; abandoned work still out keeps it running until it
// arrives (nothing is left behind).
//
// Lifetime: the loop holds one reference, each piece of work out another, and a wake-up
// under way a third. When the loop goes (after its tasks are destroyed) the path closes:
// its list is marked closed, work that finishes later is destroyed on its thread, and the
// last reference frees the path.
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

  // How hand_back() left a piece of work.
  enum class Handed : uint8_t {
    First,   // on a list that was empty: the caller wakes the loop
    Queued,  // behind others: their wake-up is on its way
    Closed,  // the loop is gone: the caller destroys it
  };
  // A pool's thread: `work` is done (or lost in a fork: work.error says so). The pool calls
  // it under its own mutex, so that fork() finds each piece of work either in the pool's
  // lists or on this one. From here on the loop may take the record: `work` is not to be
  // touched again unless the answer is Closed.
  Handed hand_back(ThreadWork& work) noexcept;
  // The same thread, with no lock held: wakes the loop, or destroys the work.
  void finish_hand_back(ThreadWork& work, Handed handed) noexcept;
  // Both, one after the other.
  void deliver(ThreadWork& work) noexcept { finish_hand_back(work, hand_back(work)); }
  // Whether finished work waits on the list for the loop.
  bool has_arrivals() const noexcept {
    ThreadWork* head = done.load(std::memory_order_acquire);
    return head != nullptr && head != closed_mark();
  }

  void retain() noexcept { references.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  std::atomic<uint32_t> references{1};
  std::atomic<ThreadWork*> done{nullptr};  // finished work, the latest first; closed_mark(): the loop is gone
  std::mutex wake_lock;                    // a wake-up of the loop against its closing; made anew in a forked child
  bool awake = true;                       // under wake_lock: the loop is there to wake
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
  static ThreadWork* closed_mark() noexcept { return reinterpret_cast<ThreadWork*>(alignof(ThreadWork)); }
  friend struct ThreadForkHandlers;
};

}  // namespace evflow::detail
