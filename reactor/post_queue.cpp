#include "post_queue.hpp"

#include <new>

#include "loop.hpp"

namespace evflow::detail {

PostQueue::~PostQueue() {
  drop_pending();
  destroy(local_free_);
  destroy(remote_free_);
}

void PostQueue::drop_pending() noexcept {
  // A destructor may post again: until nothing is left.
  while (due()) {
    take_remote_posts();
    Node* node = head_;
    head_ = nullptr;
    tail_ = &head_;
    while (node != nullptr) {
      Node* next = node->next;
      recycle(node);  // destroys the callable
      node = next;
    }
  }
}

void PostQueue::lock() noexcept {
  while (remote_free_lock_.test_and_set(std::memory_order_acquire)) {
    // held for a pointer's push or pop: spin
  }
}

void PostQueue::after_fork() noexcept {
  remote_free_lock_.clear(std::memory_order_relaxed);
  if (running_ == nullptr) return;
  Node** last = &running_;
  while (*last != nullptr)
    last = &(*last)->next;
  *last = head_;
  if (head_ == nullptr) tail_ = last;
  head_ = running_;
  running_ = nullptr;
}

void PostQueue::destroy(Node* list) noexcept {
  while (list != nullptr) {
    Node* next = list->next;
    delete list;  // destroys the callable of work never run
    list = next;
  }
}

PostQueue::Node* PostQueue::allocate(bool remote) noexcept {
  if (remote) lock();
  Node*& free = remote ? remote_free_ : local_free_;
  Node* node = free;
  if (node != nullptr) free = node->next;
  if (remote) unlock();
  if (node != nullptr) return node;
  node = new (std::nothrow) Node;  // outside the lock
  if (node != nullptr) node->remote = remote;
  return node;
}

void PostQueue::give_back_remote(Node* node) noexcept {
  lock();
  node->next = remote_free_;
  remote_free_ = node;
  unlock();
}

void PostQueue::push_remote(Node* node) noexcept {
  Node* head = remote_.load(std::memory_order_relaxed);
  do {
    node->next = head;
  } while (!remote_.compare_exchange_weak(head, node, std::memory_order_seq_cst, std::memory_order_relaxed));
  // The first post since the loop last looked wakes it; later ones find it awake (and
  // Loop::wake() coalesces anyway). The loop reads remote_ again before it blocks.
  if (head == nullptr) core_.loop().wake();
}

void PostQueue::take_remote_posts() noexcept {
  Node* taken = remote_.exchange(nullptr, std::memory_order_seq_cst);
  // Newest first: reversed, then appended, so that one thread's posts run in its order.
  Node* oldest_first = nullptr;
  while (taken != nullptr) {
    Node* next = taken->next;
    taken->next = oldest_first;
    oldest_first = taken;
    taken = next;
  }
  if (oldest_first == nullptr) return;
  *tail_ = oldest_first;
  while (*tail_ != nullptr)
    tail_ = &(*tail_)->next;
}

void PostQueue::recycle(Node* node) noexcept {
  node->fn.reset();
  if (node->remote) {
    give_back_remote(node);
  } else {
    node->next = local_free_;
    local_free_ = node;
  }
}

void PostQueue::run() noexcept {
  if (remote_.load(std::memory_order_relaxed) != nullptr) take_remote_posts();
  // The work present now; what it posts goes to a fresh queue, for the next iteration.
  running_ = head_;
  head_ = nullptr;
  tail_ = &head_;
  while (Node* node = running_) {
    running_ = node->next;
    ++core_.dispatched;
    node->fn();
    recycle(node);
  }
}

}  // namespace evflow::detail
