// evflow — detail::PostQueue: work posted to the loop (Loop::post, Loop::post_from_any_thread).
//
// Each piece of work is a callable stored inline in a node; nodes are reused, so posting
// allocates only until the pool has grown to the most work ever pending at once (ENOMEM
// then, nothing posted). The loop thread appends to a plain FIFO. Other threads push onto
// a lock-free stack (one compare-and-swap) and wake the loop; the loop takes the whole
// stack at once at its posted-work phase and appends it, oldest first, to its FIFO. The
// phase runs the work present when it began, in post order; work posted meanwhile waits
// for the next iteration, which does not block. Nodes used by other threads come back to a
// pool of their own, behind a spin lock held for a few instructions by those posts and the
// phase only.
//
// The hand-over to a sleeping loop is a Dekker-style handshake: a post pushes, then
// (Loop::wake) sets the wake-up flag; the loop clears the flag when it wakes, then reads
// the stack before it blocks again. Both sides use sequentially consistent operations, so
// at least one sees the other's write: the post writes to the wake-up channel, or the loop
// finds the work.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

#include "../platform/result.hpp"
#include "callback.hpp"
#include "loop_core.hpp"

namespace evflow {

// Bytes available for the captures of posted work: four pointers.
inline constexpr std::size_t kPostCapacity = 4 * sizeof(void*);

namespace detail {

class PostQueue {
 public:
  explicit PostQueue(LoopCore& core) noexcept : core_(core) {}
  ~PostQueue();  // work never run is dropped: its callable destroyed, its node freed
  PostQueue(const PostQueue&) = delete;
  PostQueue& operator=(const PostQueue&) = delete;

  // The loop thread. Errors: EINVAL for a null function pointer, ENOMEM.
  template <class F>
  Error post(F&& fn) noexcept {
    Node* node = allocate(false);
    if (node == nullptr) return Error(ENOMEM);
    node->fn.emplace(std::forward<F>(fn));
    if (!node->fn) {
      recycle(node);
      return Error(EINVAL);
    }
    node->next = nullptr;
    *tail_ = node;
    tail_ = &node->next;
    return Error();
  }
  // Any thread. Errors: EINVAL for a null function pointer, ENOMEM.
  template <class F>
  Error post_from_any_thread(F&& fn) noexcept {
    Node* node = allocate(true);
    if (node == nullptr) return Error(ENOMEM);
    node->fn.emplace(std::forward<F>(fn));
    if (!node->fn) {
      give_back_remote(node);
      return Error(EINVAL);
    }
    push_remote(node);
    return Error();
  }

  // Work is waiting (the loop must not block).
  bool due() const noexcept { return head_ != nullptr || remote_.load(std::memory_order_seq_cst) != nullptr; }
  // The posted-work phase: runs the work present now, in post order.
  void run() noexcept;
  // Destroys the work never run (the loop goes away): before the rest of the loop, so that
  // the callables' destructors may still use it.
  void drop_pending() noexcept;
  // In a forked child: the other threads are gone (a spin lock one of them held is free),
  // and if the loop's thread was running the phase, the rest of its work goes back to the
  // front of the queue, to run in the child.
  void after_fork() noexcept;

 private:
  struct Node {
    Node* next = nullptr;
    bool remote = false;  // from the pool of other threads' posts
    InlineCallback<void(), kPostCapacity> fn;
  };

  // A node from the loop thread's pool (no lock) or other threads' (under the spin
  // lock), or a new one: the pools grow to the most work pending at once.
  Node* allocate(bool remote) noexcept;
  void give_back_remote(Node* node) noexcept;
  void push_remote(Node* node) noexcept;
  void take_remote_posts() noexcept;
  void recycle(Node* node) noexcept;
  static void destroy(Node* list) noexcept;

  void lock() noexcept;
  void unlock() noexcept { remote_free_lock_.clear(std::memory_order_release); }

  LoopCore& core_;
  Node* head_ = nullptr;  // the loop thread's FIFO
  Node** tail_ = &head_;
  Node* running_ = nullptr;  // the rest of the work the phase under way took
  Node* local_free_ = nullptr;
  std::atomic<Node*> remote_{nullptr};  // other threads' posts, newest first
  std::atomic_flag remote_free_lock_;   // clear: free
  Node* remote_free_ = nullptr;         // nodes for other threads' posts (under the lock)
};

}  // namespace detail
}  // namespace evflow
