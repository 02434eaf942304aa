// evflow — the intrusive list that links watchers of one kind into their loop.
//
// A node lives inside the watcher, so linking costs no allocation. Iteration is safe
// against the callbacks it runs: a callback may unlink (stop or destroy) any watcher,
// including the one being visited and the next one, and may link new ones or re-link
// itself; a traversal visits only the items present when it began, each at most once.
#pragma once

namespace evflow::detail {

template <class T>
class ListNode {
 protected:
  ListNode() noexcept = default;
  ListNode(const ListNode&) = delete;
  ListNode& operator=(const ListNode&) = delete;

 private:
  template <class>
  friend class IntrusiveList;
  ListNode* prev_ = nullptr;
  ListNode* next_ = nullptr;
};

template <class T>
class IntrusiveList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }

  // O(1). Precondition: `item` is in no list.
  void push_back(T& item) noexcept {
    ListNode<T>* node = &item;
    node->prev_ = tail_;
    node->next_ = nullptr;
    if (tail_)
      tail_->next_ = node;
    else
      head_ = node;
    tail_ = node;
  }

  // O(1). Precondition: `item` is in this list.
  void remove(T& item) noexcept {
    ListNode<T>* node = &item;
    // Keep a traversal's bounds valid: if the last item to visit goes, the one before it
    // becomes the last, unless the removed one was next in line (then nothing is left).
    if (end_ == node) end_ = cursor_ == node ? nullptr : node->prev_;
    if (cursor_ == node) cursor_ = node->next_;
    if (node->prev_)
      node->prev_->next_ = node->next_;
    else
      head_ = node->next_;
    if (node->next_)
      node->next_->prev_ = node->prev_;
    else
      tail_ = node->prev_;
    node->prev_ = node->next_ = nullptr;
  }

  // Calls visit(T&) for each item present now, in list order; see the header comment
  // for what `visit` may do. Not reentrant: one traversal per list at a time.
  template <class Visit>
  void for_each(Visit&& visit) {
    cursor_ = head_;
    end_ = tail_;
    while (cursor_ != nullptr && end_ != nullptr) {
      ListNode<T>* node = cursor_;
      cursor_ = node->next_;
      const bool last = node == end_;
      visit(*static_cast<T*>(node));
      if (last) break;
    }
    cursor_ = end_ = nullptr;
  }

  // Calls visit(T&) for each item, in list order: a plain walk for a `visit` that links
  // and unlinks nothing. Usable inside for_each.
  template <class Visit>
  void visit(Visit&& fn) const {
    for (ListNode<T>* node = head_; node != nullptr; node = node->next_)
      fn(*static_cast<T*>(node));
  }

  T* front() const noexcept { return static_cast<T*>(head_); }

 private:
  ListNode<T>* head_ = nullptr;
  ListNode<T>* tail_ = nullptr;
  ListNode<T>* cursor_ = nullptr;  // next item of the traversal in progress
  ListNode<T>* end_ = nullptr;     // last item it will visit
};

}  // namespace evflow::detail
