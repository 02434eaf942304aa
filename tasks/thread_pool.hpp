// evflow — ThreadPool: a fixed set of threads that run blocking work for the loops.
//
// A task hands blocking work (a read of a file, a name lookup, a CPU-heavy parse) to a
// pool with to_thread() (to_thread.hpp); a thread of the pool runs it and the task
// continues on its own loop with the result. This file is the pool itself: a FIFO of work
// records behind one mutex, and threads that take from it.
//
// The bet: work handed to threads costs microseconds (the hand-over wakes a thread, the
// answer wakes the loop), so one mutex and a condition variable per pool are cheap beside
// it, and they keep the pool simple enough to be right under fork and cancellation.
//
// Rules:
// - The threads start with the first work submitted (threads() of them), not before.
// - Work runs in submission order, as threads free up; nothing interrupts work that has
//   begun. Work still queued can be withdrawn (a cancelled to_thread: it never runs).
// - Destroying a pool runs the work still queued, then joins the threads (nothing is
//   lost); the default pool is never destroyed (its threads may be blocked in a system
//   call when the process exits).
// - fork(): the child has none of the pool's threads. Every pool starts afresh there
//   with its next submission, and the work that was queued or running at the fork is
//   reported to its tasks in the child with EOWNERDEAD (the thread that owned it is gone),
//   never silently lost. The parent's pool is untouched. Not on Windows (no fork).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "../platform/result.hpp"
#include "../reactor/intrusive_list.hpp"

namespace evflow {

namespace detail {

struct Context;
struct ThreadReturnPath;
struct ThreadForkHandlers;

// One piece of work on its way to a thread and back: a header that the pool and the
// return path know, followed (thread_work.hpp) by the callable and room for its result.
struct ThreadWork : ListNode<ThreadWork> {
  enum class Stage : uint8_t { Queued, Running, Done };

  void (*run)(ThreadWork& self) noexcept = nullptr;      // on a pool thread: runs the callable, keeps the result
  void (*destroy)(ThreadWork& self) noexcept = nullptr;  // what it holds (its memory: the path's)
  ThreadReturnPath* path = nullptr;                      // where it goes when done (one reference)
  Context* context = nullptr;                            // the submitting task's context variables
  struct Waiter* waiter = nullptr;                       // the await that wants it (loop thread only); null: abandoned
  ThreadWork* next_done = nullptr;                       // in its path's list of finished work
  Error error;                                           // EOWNERDEAD: its thread vanished in a fork
  Stage stage = Stage::Queued;                           // under the pool's mutex
  uint8_t size_class = 0;                                // for the path's block cache
};

// The await a piece of work reports to (to_thread.hpp), on the loop's thread.
struct Waiter {
  void (*arrived)(Waiter& self) noexcept = nullptr;
};

}  // namespace detail

class ThreadPool {
 public:
  static constexpr std::size_t kMaxThreads = 256;

  // A pool of `threads` threads (0: one per CPU; at most kMaxThreads). No thread starts
  // until the first submission.
  explicit ThreadPool(std::size_t threads = 0) noexcept;
  // Runs the work still queued, then joins the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The pool to_thread() uses when given none: one per CPU, made on first use, never
  // destroyed.
  static ThreadPool& default_pool() noexcept;

  // How many threads the pool runs once started.
  std::size_t threads() const noexcept { return size_; }
  // How many have been started (0 before the first submission, and in a forked child).
  std::size_t started_threads() const noexcept;

  // Internal (to_thread.hpp). Queues `work`; starts the threads first when none runs.
  // Errors: EAGAIN when no thread could be started (nothing queued).
  Error submit(detail::ThreadWork& work) noexcept;
  // Takes back `work` if it has not begun: true when it was queued (it will never run).
  bool withdraw(detail::ThreadWork& work) noexcept;

 private:
  friend struct detail::ThreadForkHandlers;

  struct Worker;
  Error start_threads() noexcept;  // under mutex_
  static void* thread_main(void* pool) noexcept;
  void work_loop() noexcept;
  detail::ThreadWork* start_next() noexcept;  // under mutex_: the first queued work, now running; or null
  void after_fork_in_child() noexcept;

  std::size_t size_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  detail::IntrusiveList<detail::ThreadWork> queue_;    // waiting for a thread
  detail::IntrusiveList<detail::ThreadWork> running_;  // taken by a thread
  Worker* workers_ = nullptr;                          // size_ of them, once started
  std::size_t started_ = 0;
  bool stopping_ = false;
  ThreadPool* next_pool_ = nullptr;  // in the process's list of pools (fork handling)
  ThreadPool* prev_pool_ = nullptr;
};

}  // namespace evflow
