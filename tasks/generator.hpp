// evflow — Generator<T>: a coroutine that produces a sequence of values for a task, and may
// await anything a task awaits between them.
//
//   evflow::Generator<std::string> lines(int fd) {
//     for (;;) {
//       auto ready = co_await evflow::readable(fd);
//       if (!ready) co_yield evflow::fail_with(ready.error());   // the sequence ends with it
//       ... co_yield std::move(line); ...                       // a value for the consumer
//     }                                  // co_return (or the end of the body): the end
//   }
//   evflow::Task<> consumer(int fd) {
//     auto source = lines(fd);
//     while (auto line = co_await source.next()) use(*line);   // Yielded<std::string>
//   }
//
// The bet: a generator is a Task that stops at each co_yield instead of only at its end.
// Its frame runs inside the task that awaits next() (the consumer's task, as an awaited
// Task does): the producer's awaits suspend that task, a cancellation of that task
// reaches them, and producer and consumer hand over to each other by symmetric transfer
// through the scheduler's bounded transfer (scheduler.hpp): a sequence of any length runs
// in bounded stack, and a value goes through the ready queue only when a run of 64 inline
// transfers ends, never round the loop's poll unless the task phase's budget is spent.
//
// - Lazy: nothing of the body runs before the first next() is awaited.
// - next() runs the body to its next co_yield, its end or its failure, and gives a
//   Yielded<T>: a value; the end (no value, no error); or an error. A co_yield of an
//   rvalue moves it into the Yielded, of an lvalue copies it (a type that cannot be copied
//   must be yielded as an rvalue: an lvalue does not compile).
// - A producer fails with `co_yield evflow::fail_with(error)`: it does not resume; next()
//   gives the error. With exceptions on, an exception leaving the body is rethrown by the
//   next() that was waiting. Either way, and at the end, the producer's frame is destroyed
//   (its locals unwound) before next() returns; every later next() gives the end.
// - Cancellation: next() is not a cancellation point of its own (as a co_await of a Task
//   is not); the producer's awaits are. A cancellation that reaches the consumer's task
//   while the producer waits in an await ends that await with ECANCELED (level-triggered:
//   every later await too), as for any await of the task; the producer decides what to
//   yield or return then.
// - Destroying the Generator destroys the producer at the co_yield where it stopped, its
//   locals unwound. The consumer's frame destroyed while it waits in next() (its loop went)
//   destroys the producer at the await where it waits. Destroying or moving a Generator
//   otherwise while a next() of it waits ends the process with a message.
// - Errors of next() itself, without running anything: EINVAL for a moved-from or
//   default-constructed Generator; ENOMEM when its frame could not be allocated; EBUSY when
//   another task's next() of it waits now.
//
// Frames come from the loop's frame pool (frame_pool.hpp), as a Task's do: in steady state
// a value costs no allocation.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "task.hpp"

namespace evflow {

template <class T>
class Generator;

// What `co_yield evflow::fail_with(error)` ends a generator with (see the header comment).
struct GeneratorFailure {
  Error error;
};
// Ends the generator's sequence with `error` (success: the plain end, as a co_return).
inline GeneratorFailure fail_with(Error error) noexcept { return GeneratorFailure{error}; }

// What Generator::next() gives: a value, the end of the sequence, or an error.
template <class T>
class [[nodiscard]] Yielded {
 public:
  // A value is there (the loop condition of `while (auto v = co_await g.next())`).
  explicit operator bool() const noexcept { return value_.has_value(); }
  bool has_value() const noexcept { return value_.has_value(); }
  // The sequence ended without an error: no value, no error.
  bool ended() const noexcept { return !value_ && !error_; }
  // The failure (fail_with, or next()'s own EINVAL, ENOMEM, EBUSY); success otherwise.
  Error error() const noexcept { return error_; }
  // The value. Precondition: has_value(); otherwise the process ends with a message.
  T& value() noexcept {
    if (!value_) detail::fatal("evflow: Yielded::value() without a value (the end, or an error)");
    return *value_;
  }
  const T& value() const noexcept {
    if (!value_) detail::fatal("evflow: Yielded::value() without a value (the end, or an error)");
    return *value_;
  }
  T& operator*() noexcept { return value(); }
  const T& operator*() const noexcept { return value(); }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }

  // Internal (next()).
  template <class U>
  Yielded(std::in_place_t, U&& value) : value_(std::in_place, std::forward<U>(value)) {}
  explicit Yielded(Error error) noexcept : error_(error) {}

 private:
  std::optional<T> value_;
  Error error_;
};

namespace detail {

template <class T>
class NextAwaiter;

// A co_yield or the end of the body: back to the consumer's frame, through the
// scheduler's bounded transfer.
struct GeneratorSuspend {
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> producer) noexcept {
    PromiseBase& promise = producer.promise();
    TaskRoot& root = *promise.root;
    return root.scheduler->transfer(root, promise.continuation);
  }
  void await_resume() const noexcept {}
};

template <class T>
struct GeneratorPromise : PromiseBase {
  // Where the value of the co_yield the producer stopped at is (one of the two).
  T* move_from = nullptr;
  const T* copy_from = nullptr;
  Error failure;       // fail_with's
  bool ended = false;  // returned, failed or an exception left it: it never resumes

  Generator<T> get_return_object() noexcept;
  static Generator<T> get_return_object_on_allocation_failure() noexcept;
  GeneratorSuspend final_suspend() noexcept {
    ended = true;
    return {};
  }
  void return_void() const noexcept {}
  GeneratorSuspend yield_value(T&& value) noexcept {
    move_from = &value;
    return {};
  }
  GeneratorSuspend yield_value(const T& value) noexcept requires std::is_copy_constructible_v<T> {
    copy_from = &value;
    return {};
  }
  GeneratorSuspend yield_value(GeneratorFailure failed) noexcept {
    failure = failed.error;
    ended = true;
    return {};
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Generator {
  static_assert(!std::is_reference_v<T> && !std::is_void_v<T>, "a Generator yields objects");

 public:
  using promise_type = detail::GeneratorPromise<T>;
  using value_type = T;

  // Empty: next() gives EINVAL (a place to move a Generator into).
  Generator() noexcept = default;
  // Moving a Generator while a next() of it waits ends the process with a message.
  Generator(Generator&& other) noexcept
      : frame_(std::exchange(other.taken().frame_, nullptr)),
        no_frame_(std::exchange(other.no_frame_, Error(EINVAL))) {}
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      reset();
      frame_ = std::exchange(other.taken().frame_, nullptr);
      no_frame_ = std::exchange(other.no_frame_, Error(EINVAL));
    }
    return *this;
  }
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  ~Generator() { reset(); }

  // Awaitable from a task: runs the producer to its next co_yield, its end or its failure
  // (inside the awaiting task) and gives a Yielded<T>; see the header comment.
  detail::NextAwaiter<T> next() noexcept { return detail::NextAwaiter<T>(*this); }

  // False when the frame could not be allocated, or the Generator was moved from.
  bool valid() const noexcept { return frame_ || !no_frame_; }
  // The sequence has ended (its end, a failure or an exception was given by next()).
  bool done() const noexcept { return !frame_ && !no_frame_; }

 private:
  friend promise_type;
  friend class detail::NextAwaiter<T>;
  explicit Generator(std::coroutine_handle<promise_type> frame, Error no_frame) noexcept
      : frame_(frame), no_frame_(no_frame) {}

  void reset() noexcept {
    if (waiting_) detail::fatal("evflow: a Generator destroyed while a next() of it waits");
    if (frame_) std::exchange(frame_, nullptr).destroy();
  }
  // This Generator, about to be moved from: not while a next() of it waits (that next()
  // refers to this object).
  Generator& taken() noexcept {
    if (waiting_) detail::fatal("evflow: a Generator moved while a next() of it waits");
    return *this;
  }
  // The producer has stopped: what it gave. At its end, its frame goes first.
  Yielded<T> take() {
    promise_type& promise = frame_.promise();
    if (!promise.ended) {
      if (promise.move_from != nullptr) return Yielded<T>(std::in_place, std::move(*promise.move_from));
      if constexpr (std::is_copy_constructible_v<T>) {
        return Yielded<T>(std::in_place, *promise.copy_from);
      } else {
        detail::fatal("evflow: a Generator stopped without a value");  // not reached
      }
    }
    const Error failure = promise.failure;
#if defined(__cpp_exceptions)
    std::exception_ptr exception = std::exchange(promise.exception, nullptr);
#endif
    std::exchange(frame_, nullptr).destroy();
    no_frame_ = Error();
#if defined(__cpp_exceptions)
    if (exception) std::rethrow_exception(exception);
#endif
    return Yielded<T>(failure);
  }
  // The consumer's frame went while the producer ran: the producer goes with it.
  void abandon() noexcept {
    waiting_ = false;
    std::exchange(frame_, nullptr).destroy();
    no_frame_ = Error(ECANCELED);
  }

  std::coroutine_handle<promise_type> frame_;
  Error no_frame_{EINVAL};  // without a frame: success once ended, else why there is none
  bool waiting_ = false;    // a next() runs the producer now
};

namespace detail {

template <class T>
Generator<T> GeneratorPromise<T>::get_return_object() noexcept {
  return Generator<T>(std::coroutine_handle<GeneratorPromise<T>>::from_promise(*this), Error());
}
template <class T>
Generator<T> GeneratorPromise<T>::get_return_object_on_allocation_failure() noexcept {
  return Generator<T>(std::coroutine_handle<GeneratorPromise<T>>(), Error(ENOMEM));
}

// next(): the producer continues in the awaiting frame's task, and comes back to it at
// its next co_yield or its end.
template <class T>
class NextAwaiter {
 public:
  explicit NextAwaiter(Generator<T>& generator) noexcept : generator_(&generator) {}
  NextAwaiter(const NextAwaiter&) = delete;
  NextAwaiter& operator=(const NextAwaiter&) = delete;
  ~NextAwaiter() {
    if (running_) generator_->abandon();  // destroyed while waiting: the loop went
  }

  bool await_ready() noexcept {
    if (!generator_->frame_) {
      refused_ = generator_->no_frame_;
      return true;
    }
    if (generator_->waiting_) {
      refused_ = Error(EBUSY);
      return true;
    }
    return false;
  }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    TaskRoot& root = root_of(awaiting);
    GeneratorPromise<T>& producer = generator_->frame_.promise();
    producer.root = &root;
    producer.continuation = awaiting;
    producer.move_from = nullptr;
    producer.copy_from = nullptr;
    generator_->waiting_ = true;
    running_ = true;
    return root.scheduler->transfer(root, generator_->frame_);
  }
  Yielded<T> await_resume() {
    if (!running_) return Yielded<T>(refused_);
    running_ = false;
    generator_->waiting_ = false;
    return generator_->take();
  }

 private:
  Generator<T>* generator_;
  Error refused_;
  bool running_ = false;
};

}  // namespace detail
}  // namespace evflow
