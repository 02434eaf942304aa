// evflow — Task<T>: a coroutine that runs on a loop, started by spawn() or by co_await.
//
//   evflow::Task<int> answer() { co_await evflow::sleep(10ms); co_return 42; }
//   evflow::Task<> main_task() { int v = co_await answer(); ... }
//
// A Task is lazy (it does nothing until awaited or spawned), move-only, and owns its
// frame: destroying a Task that was never awaited destroys the frame. `co_await task`
// runs it to its end and gives its co_return value; the awaiting coroutine continues by
// symmetric transfer, without going back to the loop when the task completes at once (up
// to a bound, see scheduler.hpp: a chain of any length runs in bounded stack).
//
// Frames come from the loop's frame pool (frame_pool.hpp). A frame that cannot be
// allocated makes an empty Task: spawn() reports it as ENOMEM, and a co_await of it ends
// the process with a message. With exceptions on, an exception leaving a task goes to whoever
// awaits it (rethrown by co_await and by TaskHandle::join); with -fno-exceptions an
// exception cannot happen.
#pragma once

#include <coroutine>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "../platform/fatal.hpp"
#include "scheduler.hpp"

namespace evflow {

template <class T = void>
class Task;

namespace detail {

// What every promise of a task's frames shares: the task it runs in and the frame that
// awaits it.
struct PromiseBase {
  TaskRoot* root = nullptr;
  std::coroutine_handle<> continuation;
#if defined(__cpp_exceptions)
  std::exception_ptr exception;
  void unhandled_exception() noexcept { exception = std::current_exception(); }
  void rethrow_if_failed() {
    if (exception) std::rethrow_exception(std::exchange(exception, nullptr));
  }
#else
  void unhandled_exception() noexcept { fatal("evflow: an exception left a task in a build without exceptions"); }
  void rethrow_if_failed() noexcept {}
#endif

  // Null when the pool has no memory: the Task is then empty (get_return_object_on_
  // allocation_failure).
  static void* operator new(std::size_t size) noexcept { return FramePool::allocate(size); }
  static void operator delete(void* frame) noexcept { FramePool::deallocate(frame); }

  std::suspend_always initial_suspend() const noexcept { return {}; }
};

template <class T>
struct TaskPromise;

// The record of a spawned task with its result, apart from its frames (a handle may
// outlive them). The outermost frame of the task stores its result here when it ends.
template <class T>
struct TaskRecord : TaskRoot {
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
#if defined(__cpp_exceptions)
  std::exception_ptr exception;
#endif
  void take_result(TaskPromise<T>& promise) noexcept;
};

// The end of a frame: back to the awaiting frame, through the scheduler's bounded
// transfer; the end of a task's outermost frame: its result to the record, the frame
// destroyed, the task finished.
template <class T>
struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<TaskPromise<T>> frame) noexcept {
    TaskPromise<T>& promise = frame.promise();
    TaskRoot& root = *promise.root;
    if (promise.continuation) return root.scheduler->transfer(root, promise.continuation);
    static_cast<TaskRecord<T>&>(root).take_result(promise);
    frame.destroy();
    root.scheduler->finished(root);
    return std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

template <class T>
struct TaskPromise : PromiseBase {
  Task<T> get_return_object() noexcept;
  static Task<T> get_return_object_on_allocation_failure() noexcept;
  FinalAwaiter<T> final_suspend() const noexcept { return {}; }
  template <class U>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    ::new (static_cast<void*>(&value_)) T(std::forward<U>(value));
    has_value_ = true;
  }
  T take() {
    rethrow_if_failed();
    return std::move(*std::launder(reinterpret_cast<T*>(&value_)));
  }
  ~TaskPromise() {
    if (has_value_) std::launder(reinterpret_cast<T*>(&value_))->~T();
  }

 private:
  alignas(T) unsigned char value_[sizeof(T)];
  bool has_value_ = false;
};

template <>
struct TaskPromise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  static Task<void> get_return_object_on_allocation_failure() noexcept;
  FinalAwaiter<void> final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void take() { rethrow_if_failed(); }
};

// The task that the frame `awaiting` runs in (every promise of a task derives from
// PromiseBase).
template <class Promise>
TaskRoot& root_of(std::coroutine_handle<Promise> awaiting) noexcept {
  return *static_cast<PromiseBase&>(awaiting.promise()).root;
}

// co_await of a Task: the awaited frame continues in the awaiting one's task. The awaiter
// owns the frame from then on (the Task is empty) and destroys it with the full
// expression of the co_await.
template <class T>
struct TaskAwaiter {
  explicit TaskAwaiter(std::coroutine_handle<TaskPromise<T>> awaited) noexcept : frame(awaited) {}
  TaskAwaiter(const TaskAwaiter&) = delete;
  TaskAwaiter& operator=(const TaskAwaiter&) = delete;
  ~TaskAwaiter() { frame.destroy(); }

  std::coroutine_handle<TaskPromise<T>> frame;
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    TaskRoot& root = root_of(awaiting);
    frame.promise().root = &root;
    frame.promise().continuation = awaiting;
    return root.scheduler->transfer(root, frame);
  }
  T await_resume() { return frame.promise().take(); }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task(Task&& other) noexcept : frame_(std::exchange(other.frame_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (frame_) frame_.destroy();
      frame_ = std::exchange(other.frame_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (frame_) frame_.destroy();
  }

  // Runs the task to its end inside the awaiting task; gives its value (rethrows its
  // exception). A Task can be awaited once.
  auto operator co_await() && noexcept {
    if (!frame_)
      detail::fatal("evflow: co_await of an empty Task (moved from, awaited already, or no memory for its frame)");
    return detail::TaskAwaiter<T>(std::exchange(frame_, nullptr));
  }

  // False when the frame could not be allocated (or the Task was moved from or awaited).
  bool valid() const noexcept { return static_cast<bool>(frame_); }

  // Internal (spawn): the frame, which the caller now owns.
  std::coroutine_handle<promise_type> release_frame() noexcept { return std::exchange(frame_, nullptr); }

 private:
  friend promise_type;
  explicit Task(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}

  std::coroutine_handle<promise_type> frame_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
template <class T>
Task<T> TaskPromise<T>::get_return_object_on_allocation_failure() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>());
}
inline Task<void> TaskPromise<void>::get_return_object_on_allocation_failure() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>());
}

template <class T>
void TaskRecord<T>::take_result(TaskPromise<T>& promise) noexcept {
  state = TaskState::Completed;
#if defined(__cpp_exceptions)
  if (promise.exception) {
    exception = std::exchange(promise.exception, nullptr);
    state = TaskState::Failed;
    return;
  }
#endif
  if constexpr (std::is_void_v<T>) {
    value.emplace(true);
  } else {
    value.emplace(promise.take());
  }
}
}  // namespace detail

}  // namespace evflow
