#include "reactor/post_queue.hpp"

#include <new>

#include "reactor/loop.hpp"

namespace evflow::detail {

PostQueue::~PostQueue() {
  take_remote_posts();
  destroy(head_);
  destroy(local_free_);
  destroy(remote_free_);
}

void PostQueue::destroy(Node* list) noexcept {
  while (list != nullptr) {
    Node* next = list->next;
    delete list;  // destroys the callable of work never run
    list = next;
  }
}

PostQueue::Node* PostQueue::take(Node*& free, bool remote) noexcept {
  Node* node = free;
  if (node != nullptr) {
    free = node->next;
    return node;
  }
  node = new (std::nothrow) Node;  // the pool grows to the most work pending at once
  if (node != nullptr) node->remote = remote;
  return node;
}

PostQueue::Node* PostQueue::take_remote() noexcept {
  std::lock_guard<std::mutex> guard(remote_free_lock_);
  return take(remote_free_, true);
}

void PostQueue::give_back_remote(Node* node) noexcept {
  std::lock_guard<std::mutex> guard(remote_free_lock_);
  node->next = remote_free_;
  remote_free_ = node;
}

void PostQueue::push_remote(Node* node) noexcept {
  Node* head = remote_.load(std::memory_order_relaxed);
  do {
    node->next = head;
  } while (!remote_.compare_exchange_weak(head, node, std::memory_order_release, std::memory_order_relaxed));
  // The first post since the loop last looked wakes it; later ones find it awake (and
  // Loop::wake() coalesces anyway). The loop reads remote_ again before it blocks.
  if (head == nullptr) core_.loop().wake();
}

void PostQueue::take_remote_posts() noexcept {
  Node* taken = remote_.exchange(nullptr, std::memory_order_acquire);
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
  Node* node = head_;
  head_ = nullptr;
  tail_ = &head_;
  while (node != nullptr) {
    Node* next = node->next;
    ++core_.dispatched;
    node->fn();
    recycle(node);
    node = next;
  }
}

}  // namespace evflow::detail
