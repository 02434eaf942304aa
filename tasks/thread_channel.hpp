// evflow — ThreadChannel<T>: values handed by other threads to the tasks of one loop,
// bounded, oldest first.
//
//   evflow::ThreadChannel<Job> jobs(loop, 64);              // on the loop's thread
//   if (!jobs.valid()) ...                                  // jobs.error(): EINVAL or ENOMEM
//   // any other thread:                                    // a task on the loop:
//   if (evflow::Error e = jobs.send(std::move(job))) ...    for (;;) {
//   jobs.close();                                             auto job = co_await jobs.receive();
//                                                             if (!job) break;  // EPIPE: closed, drained
//                                                             ... job.value() ...
//                                                           }
//
// Loop::post_from_any_thread runs work on the loop, unbounded; a ThreadChannel is its
// bounded, typed companion: a producer that runs ahead of the loop is held back
// (back-pressure) instead of growing a queue without limit.
//
// Shape: a ring of `capacity` values, allocated once by the constructor, behind one
// mutex held for a few instructions by each operation. Nothing is allocated per value.
// Any number of producer threads; the consumers are the tasks of the loop.
//
// Producers (any thread, not a signal handler): try_send() never waits (EAGAIN when
// full). send() blocks the calling thread while the ring is full, until a slot frees or
// the channel is closed; send_for()/send_until() give up with ETIMEDOUT. A value that is
// not accepted is not moved from: it stays the caller's. Blocked producers are woken one
// per freed slot; among threads the order of service is the operating system's (not first
// come, first served), but the values of one producer arrive in the order it sent them.
// A waiting send from the thread that receives (the loop's) could never end: it gives
// EDEADLK instead (try_send is fine there).
//
// Consumers (the loop's thread): receive() suspends a task until a value arrives or the
// channel is closed and drained (EPIPE); waiting receivers are served first come, first
// served. try_receive() takes a value without waiting. Taking a value frees a slot and
// wakes one blocked producer.
//
// Waking the loop: the channel owns an Async watcher, started only while a task waits in
// receive(). A send into a channel no task waits on makes no system call; the first send
// after a receiver began to wait wakes the loop once (later sends before the loop ran
// coalesce into that wake-up), and the loop hands the queued values to the waiting tasks.
// While a receiver waits, its loop's run() does not return for lack of work.
//
// Cancellation: receive() is a cancellation point, as Channel's is: in a cancelled task or
// scope it gives ECANCELED even when a value is there, and takes nothing. A receiver
// cancelled while waiting leaves the queue and is never handed a value; one already handed
// a value keeps it (the next await sees the cancellation).
//
// close() (any thread, idempotent): later sends give EPIPE, blocked producers wake with
// EPIPE; receivers go on getting the queued values, then EPIPE.
//
// Lifetime: construct, receive, try_receive and destroy on the loop's thread. The channel
// (and its loop) must outlive every producer's call into it: join the producer threads, or
// otherwise know their calls have returned, before destroying it. Tasks still waiting in
// receive() when it is destroyed wake with EIDRM; queued values are destroyed with it.
//
// Fork: the behaviour in a forked child is not defined (the mutex may have been held by a
// thread that does not exist there); a child makes its own channel.
//
// T needs a move constructor that does not fail; it may be move-only. receive() and
// try_receive() give a Result<T>, which needs T to be default-constructible.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "../reactor/async.hpp"
#include "../reactor/thread_check.hpp"
#include "ring_memory.hpp"
#include "wait_queue.hpp"

namespace evflow {

template <class T>
class ThreadChannel;

namespace detail {

template <class T>
class ThreadChannelReceiveAwait : public QueuedWaiter {
 public:
  static constexpr const char* kActivity = "waiting to receive from another thread";
  explicit ThreadChannelReceiveAwait(ThreadChannel<T>& channel) noexcept : channel_(&channel) {}
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  // The oldest value. ECANCELED; EPIPE (closed and drained); EIDRM (the channel was
  // destroyed); what starting the channel's Async refused.
  Result<T> await_resume() noexcept {
    if (error_) return error_;
    return Result<T>(std::move(*value_));
  }
  // A cancellation reached the waiting task: out of the queue; the channel stops listening
  // for producers when no receiver is left.
  void stop_waiting() noexcept;

 private:
  friend class ThreadChannel<T>;
  ThreadChannel<T>* channel_;
  std::optional<T> value_;  // what the ring handed over
};

}  // namespace detail

template <class T>
class ThreadChannel {
  static_assert(std::is_nothrow_move_constructible_v<T>, "ThreadChannel<T> needs a move constructor that cannot fail");

 public:
  using Clock = std::chrono::steady_clock;

  // A channel of `capacity` (>= 1) values into the tasks of `loop`; on the loop's thread.
  // When capacity is 0 (EINVAL) or the ring cannot be allocated (ENOMEM), valid() is false,
  // error() says why and the channel is closed.
  ThreadChannel(Loop& loop, std::size_t capacity) noexcept
      : capacity_(capacity), consumer_thread_(loop.core().owner), async_(loop) {
    async_.set_callback([this] { deliver(); });
    if (capacity == 0) {
      error_ = Error(EINVAL);
    } else if ((slots_ = allocate(capacity)) == nullptr) {
      error_ = Error(ENOMEM);
    }
    if (error_) {
      capacity_ = 0;
      closed_ = true;
    }
  }
  ThreadChannel(const ThreadChannel&) = delete;
  ThreadChannel& operator=(const ThreadChannel&) = delete;
  ~ThreadChannel() {
    async_.stop();
    while (count_ > 0)
      drop_front();
    deallocate(slots_);
    // receivers_ then wakes its waiters with EIDRM.
  }

  // Producers, any thread.

  // Queues `value` without waiting: none, EAGAIN when full, EPIPE when closed. `value` is
  // moved from only when the result is none.
  Error try_send(T&& value) noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) return Error(EPIPE);
    if (count_ == capacity_) return Error(EAGAIN);
    push(lock, value);
    return Error();
  }
  // Queues `value`, blocking the calling thread while the ring is full: none, EPIPE when
  // closed (before or while blocked), EDEADLK on the loop's thread when full. `value` is
  // moved from only when the result is none.
  Error send(T&& value) noexcept {
    return send_waiting(value, [this](std::unique_lock<std::mutex>& lock) {
      room_.wait(lock);
      return true;
    });
  }
  // As send(), giving ETIMEDOUT when no slot freed within `timeout`.
  template <class Rep, class Period>
  Error send_for(T&& value, std::chrono::duration<Rep, Period> timeout) noexcept {
    return send_until(std::move(value), Clock::now() + std::chrono::ceil<Clock::duration>(timeout));
  }
  // As send(), giving ETIMEDOUT when no slot freed by `deadline`.
  template <class Duration>
  Error send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline) noexcept {
    return send_waiting(
        value, [this, &deadline](std::unique_lock<std::mutex>& lock) { return room_wait_until(lock, deadline); });
  }

  // Ends the channel, from any thread (see the header comment); closing it again does
  // nothing.
  void close() noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_ = true;
    const bool wake_loop = std::exchange(listening_, false);
    lock.unlock();
    room_.notify_all();
    if (wake_loop) async_.send();
  }

  // Consumers, the loop's thread.

  // Suspends the task until the oldest value is there (see the header comment): ECANCELED,
  // EPIPE (closed and drained) or EIDRM when none.
  [[nodiscard]] detail::ThreadChannelReceiveAwait<T> receive() noexcept {
    return detail::ThreadChannelReceiveAwait<T>(*this);
  }
  // Takes the oldest value without waiting: EAGAIN when there is none, EPIPE when closed
  // and drained.
  Result<T> try_receive() noexcept {
    std::optional<T> taken;
    if (Error error = take(taken)) return error;
    return Result<T>(std::move(*taken));
  }
  // Tasks waiting in receive().
  bool receivers_waiting() const noexcept { return !receivers_.empty(); }

  // Snapshots, any thread.

  bool closed() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }
  // False when the constructor refused the capacity or could not allocate the ring.
  bool valid() const noexcept { return !error_; }
  // Why the channel is not valid: EINVAL (capacity 0), ENOMEM; none when valid.
  Error error() const noexcept { return error_; }
  // Values queued.
  std::size_t size() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }
  // The most values queued: the constructor's argument (0 when not valid).
  std::size_t capacity() const noexcept { return capacity_; }
  // Threads blocked in send(), send_for() or send_until().
  std::size_t senders_waiting() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return blocked_;
  }

 private:
  friend class detail::ThreadChannelReceiveAwait<T>;
  using ReceiveAwait = detail::ThreadChannelReceiveAwait<T>;

  // Under `lock`: queues `value` and, when the loop listens, tells it (after unlocking).
  void push(std::unique_lock<std::mutex>& lock, T& value) noexcept {
    std::size_t at = head_ + count_;
    if (at >= capacity_) at -= capacity_;
    ::new (static_cast<void*>(slots_ + at)) T(std::move(value));
    ++count_;
    const bool wake_loop = std::exchange(listening_, false);
    lock.unlock();
    if (wake_loop) async_.send();
  }

  template <class Wait>
  Error send_waiting(T& value, Wait wait) noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!closed_ && count_ == capacity_) {
      if (detail::this_thread_identity() == consumer_thread_.load(std::memory_order_relaxed)) return Error(EDEADLK);
      ++blocked_;
      const bool in_time = wait(lock);
      --blocked_;
      if (!in_time && !closed_ && count_ == capacity_) return Error(ETIMEDOUT);
    }
    if (closed_) return Error(EPIPE);
    push(lock, value);
    return Error();
  }
  template <class Duration>
  bool room_wait_until(std::unique_lock<std::mutex>& lock, std::chrono::time_point<Clock, Duration> deadline) noexcept {
    return room_.wait_until(lock, deadline) == std::cv_status::no_timeout;
  }

  // The loop's thread. Records it, for the EDEADLK check of a waiting send.
  void note_consumer_thread() noexcept {
    const void* self = detail::this_thread_identity();
    if (consumer_thread_.load(std::memory_order_relaxed) != self)
      consumer_thread_.store(self, std::memory_order_relaxed);
  }

  // The loop's thread: moves the oldest value into `out` or gives why not: EAGAIN, EPIPE
  // (closed and drained).
  Error take(std::optional<T>& out) noexcept {
    note_consumer_thread();
    std::unique_lock<std::mutex> lock(mutex_);
    if (count_ == 0) return Error(closed_ ? EPIPE : EAGAIN);
    take_front(lock, out);
    return Error();
  }
  // Under `lock`, with a value queued: moves it into `out`, unlocks, and wakes one blocked
  // producer for the slot it freed.
  void take_front(std::unique_lock<std::mutex>& lock, std::optional<T>& out) noexcept {
    out.emplace(std::move(slots_[head_]));
    drop_front();
    const bool wake_producer = blocked_ > 0;
    lock.unlock();
    if (wake_producer) room_.notify_one();
  }

  // The start of a receive(): `waits` when the task is to wait (the loop listens);
  // otherwise the value went into `out` (none), or EPIPE, or why the Async could not start.
  // Receivers already waiting come first: a new one queues behind them.
  Error take_or_listen(std::optional<T>& out, bool& waits) noexcept {
    waits = false;
    note_consumer_thread();
    if (!receivers_.empty()) {
      waits = true;  // served by the wake-up already due (see deliver())
      return Error();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (count_ > 0) {
      take_front(lock, out);
      return Error();
    }
    if (closed_) return Error(EPIPE);
    listening_ = true;  // a send from now on is pending until the Async starts
    lock.unlock();
    if (Error error = async_.start()) {
      lock.lock();
      listening_ = false;
      return error;
    }
    waits = true;
    return Error();
  }

  // The Async's callback, on the loop's thread: hands queued values to the waiting
  // receivers, oldest first; when closed and drained, EPIPE to the rest. Listens again while
  // receivers are left, stops the Async when none is. The mutex is not held while a task
  // is woken.
  void deliver() noexcept {
    note_consumer_thread();
    while (detail::QueuedWaiter* front = receivers_.front()) {
      auto& receiver = static_cast<ReceiveAwait&>(*front);
      std::unique_lock<std::mutex> lock(mutex_);
      if (count_ > 0) {
        take_front(lock, receiver.value_);
        receivers_.grant(receiver);
      } else if (closed_) {
        lock.unlock();
        receivers_.grant(receiver, Error(EPIPE));
      } else {
        listening_ = true;  // the ring is empty: the next push wakes the loop
        return;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      listening_ = false;
    }
    async_.stop();
  }

  // A waiting receiver was cancelled: when none is left, stop listening.
  void receiver_left() noexcept {
    if (!receivers_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      listening_ = false;
    }
    async_.stop();  // a send already made stays pending, delivered (to nobody) at the next start
  }

  void drop_front() noexcept {
    slots_[head_].~T();
    if (++head_ == capacity_) head_ = 0;
    --count_;
  }

  static T* allocate(std::size_t size) noexcept { return detail::RingMemory<T>::allocate(size); }
  static void deallocate(T* slots) noexcept { detail::RingMemory<T>::deallocate(slots); }

  // Shared with the producers, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable room_;  // a slot freed, or the channel closed
  T* slots_ = nullptr;            // capacity_ places, count_ of them in use from head_ on
  std::size_t capacity_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t blocked_ = 0;  // producers waiting on room_
  bool closed_ = false;
  bool listening_ = false;  // a receiver waits on an empty ring: the next push sends the Async
  Error error_;             // set by the constructor only

  // The thread that receives (the loop's), read by producers for the EDEADLK check.
  std::atomic<const void*> consumer_thread_;

  // The loop's thread only.
  detail::WaitQueue receivers_;
  Async async_;
};

namespace detail {

template <class T>
template <class Promise>
bool ThreadChannelReceiveAwait<T>::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  if (!begin<ThreadChannelReceiveAwait>(awaiting)) return false;
  bool waits = false;
  Error error = channel_->take_or_listen(value_, waits);
  if (waits) return wait_in(channel_->receivers_);
  if (!error) return done_at_once();
  return refuse(error);
}

template <class T>
void ThreadChannelReceiveAwait<T>::stop_waiting() noexcept {
  QueuedWaiter::stop_waiting();
  channel_->receiver_left();
}

}  // namespace detail
}  // namespace evflow
