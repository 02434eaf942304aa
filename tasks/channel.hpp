// evflow — Channel<T>: values passed from tasks to tasks of one loop, oldest first.
//
//   evflow::Channel<int> numbers(16);                        // at most 16 buffered
//   if (!numbers.valid()) ...                                // its buffer could not be allocated
//   // a producer:                                           // a consumer:
//   if (evflow::Error e = co_await numbers.send(42)) ...     for (;;) {
//   numbers.close();                                           auto v = co_await numbers.receive();
//                                                              if (!v) break;   // EPIPE: closed and drained
//                                                              ... v.value() ...
//                                                            }
//
// Capacity: Channel(n) buffers at most n values in a ring allocated once by the constructor;
// send() and receive() allocate nothing. Channel(0) buffers nothing: a send completes only
// when a receiver takes its value (rendezvous). Channel(Channel::kUnbounded) never makes a
// sender wait: its ring starts empty and doubles when full (8 values first), so it stops
// allocating once it has grown to the largest backlog. Allocation failure is never fatal:
// a fixed-capacity channel whose ring could not be allocated is created closed, with
// valid() false (every send gives EPIPE, every receive EPIPE); an unbounded channel whose
// ring cannot grow gives ENOMEM from that send (the value is not accepted).
//
// send(value) completes with no error when the value is accepted: handed to a waiting
// receiver, put in the buffer, or (rendezvous) taken by a receiver. It waits while the
// buffer is full. receive() gives the oldest value, waiting while there is none.
//
// Fairness and order: first come, first served, with hand-off. A send while receivers wait
// hands its value to the one that has waited longest before any other task runs; a receive
// from a full buffer with senders waiting takes the oldest buffered value and moves the
// value of the longest-waiting sender into the buffer, completing that send; with capacity
// 0 a receive takes the value of the longest-waiting sender. Values come out in the order
// they were accepted, and the values of waiting senders after every buffered value.
//
// send() and receive() are cancellation points: in a cancelled task or scope they give
// ECANCELED even when they could complete at once (the value is neither sent nor taken).
// A waiter cancelled while queued leaves the queue: nothing is handed to it and its value
// is never taken. A value that send() did not accept (ECANCELED, EPIPE, ENOMEM, EIDRM) is
// destroyed with the awaiter.
//
// close() (idempotent) ends the channel: later sends give EPIPE, waiting senders wake with
// EPIPE; receives go on delivering the buffered values, then give EPIPE (closed and
// drained), and waiting receivers (there is nothing buffered when receivers wait) wake
// with EPIPE. A channel destroyed while tasks wait wakes them with EIDRM; its buffered
// values are destroyed with it. A Channel serves the tasks of one loop (no threads).
//
// T needs a move constructor that does not fail; it may be move-only. receive() and
// try_receive() give a Result<T>, which needs T to be default-constructible.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <utility>

#include "ring_memory.hpp"
#include "wait_queue.hpp"

namespace evflow {

template <class T>
class Channel;

namespace detail {

template <class T>
class ChannelSendAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting to send on a channel";
  ChannelSendAwait(Channel<T>& channel, T&& value) noexcept : channel_(&channel), value_(std::move(value)) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // None: the value was accepted. ECANCELED; EPIPE (closed); ENOMEM (an unbounded
  // channel could not grow); EIDRM (the channel was destroyed).
  Error await_resume() const noexcept { return error_; }

 private:
  friend class Channel<T>;
  Channel<T>* channel_;
  T value_;  // until a receiver or the buffer takes it
};

template <class T>
class ChannelReceiveAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting to receive from a channel";
  explicit ChannelReceiveAwait(Channel<T>& channel) noexcept : channel_(&channel) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // The oldest value. ECANCELED; EPIPE (closed and drained); EIDRM (the channel was
  // destroyed).
  Result<T> await_resume() noexcept {
    if (error_) return error_;
    return Result<T>(std::move(*value_));
  }

 private:
  friend class Channel<T>;
  Channel<T>* channel_;
  std::optional<T> value_;  // what a sender or the buffer handed over
};

}  // namespace detail

template <class T>
class Channel {
 public:
  // The capacity of a channel whose buffer grows as needed.
  static constexpr std::size_t kUnbounded = SIZE_MAX;

  // A channel buffering at most `capacity` values, or growing when kUnbounded (see the
  // header comment). When the ring cannot be allocated, valid() is false and the channel
  // is closed.
  explicit Channel(std::size_t capacity) noexcept : limit_(capacity) {
    if (capacity == 0 || capacity == kUnbounded) return;
    slots_ = allocate(capacity);
    if (slots_ == nullptr) {
      valid_ = false;
      closed_ = true;
      return;
    }
    ring_size_ = capacity;
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel() {
    while (count_ > 0)
      drop_front();
    deallocate(slots_);
    // senders_ and receivers_ then wake their waiters with EIDRM.
  }

  // Sends `value` (see the header comment): none, ECANCELED, EPIPE, ENOMEM or EIDRM.
  [[nodiscard]] detail::ChannelSendAwait<T> send(T value) noexcept {
    return detail::ChannelSendAwait<T>(*this, std::move(value));
  }
  // Receives the oldest value (see the header comment): ECANCELED, EPIPE or EIDRM when none.
  [[nodiscard]] detail::ChannelReceiveAwait<T> receive() noexcept { return detail::ChannelReceiveAwait<T>(*this); }

  // Sends without waiting: EAGAIN when full (or, with capacity 0, no receiver waits), EPIPE
  // when closed, ENOMEM when an unbounded channel cannot grow. `value` is left untouched
  // (still the caller's) unless the result is none.
  Error try_send(T&& value) noexcept { return offer(value); }
  // Receives without waiting: EAGAIN when there is nothing to take, EPIPE when closed and
  // drained.
  Result<T> try_receive() noexcept {
    std::optional<T> taken;
    if (Error error = take(taken)) return error;
    return Result<T>(std::move(*taken));
  }

  // Ends the channel (see the header comment); closing a closed channel does nothing.
  void close() noexcept {
    closed_ = true;
    senders_.release_all(Error(EPIPE));
    receivers_.release_all(Error(EPIPE));
  }

  bool closed() const noexcept { return closed_; }
  // False when the constructor could not allocate the ring (the channel is then closed).
  bool valid() const noexcept { return valid_; }
  // Values buffered (not counting those of waiting senders).
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // The most values buffered: the constructor's argument (kUnbounded for a growing channel).
  std::size_t capacity() const noexcept { return limit_; }
  bool senders_waiting() const noexcept { return !senders_.empty(); }
  bool receivers_waiting() const noexcept { return !receivers_.empty(); }

 private:
  friend class detail::ChannelSendAwait<T>;
  friend class detail::ChannelReceiveAwait<T>;
  using SendAwait = detail::ChannelSendAwait<T>;
  using ReceiveAwait = detail::ChannelReceiveAwait<T>;

  // Receivers wait only while nothing is buffered and no sender waits; senders wait only
  // while the buffer holds `limit_` values and no receiver waits.

  // Accepts `value` (moving from it) or gives why not: EAGAIN (the sender may wait), EPIPE,
  // ENOMEM.
  Error offer(T& value) noexcept {
    if (closed_) return Error(EPIPE);
    if (detail::QueuedWaiter* front = receivers_.front()) {
      auto& receiver = static_cast<ReceiveAwait&>(*front);
      receiver.value_.emplace(std::move(value));
      receivers_.grant(receiver);
      return Error();
    }
    if (count_ >= limit_) return Error(EAGAIN);
    if (count_ == ring_size_ && !grow()) return Error(ENOMEM);
    push_back(value);
    return Error();
  }

  // Moves the oldest value into `out` or gives why not: EAGAIN (the receiver may wait),
  // EPIPE (closed and drained).
  Error take(std::optional<T>& out) noexcept {
    if (count_ > 0) {
      out.emplace(std::move(slots_[head_]));
      drop_front();
      if (detail::QueuedWaiter* front = senders_.front()) {  // the buffer was full
        auto& sender = static_cast<SendAwait&>(*front);
        push_back(sender.value_);
        senders_.grant(sender);
      }
      return Error();
    }
    if (detail::QueuedWaiter* front = senders_.front()) {  // capacity 0
      auto& sender = static_cast<SendAwait&>(*front);
      out.emplace(std::move(sender.value_));
      senders_.grant(sender);
      return Error();
    }
    if (closed_) return Error(EPIPE);
    return Error(EAGAIN);
  }

  void push_back(T& value) noexcept {
    std::size_t at = head_ + count_;
    if (at >= ring_size_) at -= ring_size_;
    ::new (static_cast<void*>(slots_ + at)) T(std::move(value));
    ++count_;
  }
  void drop_front() noexcept {
    slots_[head_].~T();
    if (++head_ == ring_size_) head_ = 0;
    --count_;
  }

  // Doubles the ring of an unbounded channel, keeping the order; false when out of memory.
  bool grow() noexcept {
    std::size_t size = ring_size_ == 0 ? 8 : ring_size_ * 2;
    if (size < ring_size_) return false;
    T* slots = allocate(size);
    if (slots == nullptr) return false;
    for (std::size_t i = 0; i < count_; ++i) {
      std::size_t from = head_ + i;
      if (from >= ring_size_) from -= ring_size_;
      ::new (static_cast<void*>(slots + i)) T(std::move(slots_[from]));
      slots_[from].~T();
    }
    deallocate(slots_);
    slots_ = slots;
    ring_size_ = size;
    head_ = 0;
    return true;
  }

  static T* allocate(std::size_t size) noexcept { return detail::RingMemory<T>::allocate(size); }
  static void deallocate(T* slots) noexcept { detail::RingMemory<T>::deallocate(slots); }

  std::size_t limit_;
  T* slots_ = nullptr;  // ring_size_ places, count_ of them in use from head_ on
  std::size_t ring_size_ = 0;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
  bool valid_ = true;
  detail::WaitQueue senders_;
  detail::WaitQueue receivers_;
};

namespace detail {

template <class T>
template <class Promise>
bool ChannelSendAwait<T>::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<ChannelSendAwait>(awaiting)) return false;
  Error error = channel_->offer(value_);
  if (!error) return done_at_once();
  if (error == Error(EAGAIN)) return wait_in(channel_->senders_);
  return refuse(error);
}

template <class T>
template <class Promise>
bool ChannelReceiveAwait<T>::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<ChannelReceiveAwait>(awaiting)) return false;
  Error error = channel_->take(value_);
  if (!error) return done_at_once();
  if (error == Error(EAGAIN)) return wait_in(channel_->receivers_);
  return refuse(error);
}

}  // namespace detail
}  // namespace evflow
