// evflow — spawn(): a task owned by its loop; TaskHandle<T>: its state and its result.
//
//   auto handle = evflow::spawn(loop, fetch, url, 3);   // fetch(std::string, int) -> Task<Reply>
//   ... co_await handle.join() ...                      // in another task
//   auto reply = evflow::run_until_complete(loop, fetch, url, 3);   // from plain code
//
// spawn(loop, fn, args...) copies `fn` and each argument (decayed, by value) into the
// task's record and calls fn(args...) on those copies: a parameter taken by value is moved
// from its copy, a `const&` or `&&` parameter refers to the copy, which lives until the
// task ends (a non-const `&` parameter does not compile: take it by value). spawn() is
// noexcept: an argument whose copy throws ends the process. Passing a reference to a coroutine yourself (calling a
// coroutine with `const std::string&` of a temporary and awaiting it later) leaves it dangling after its first
// suspension: spawn is the safe way. fn is called inside spawn(), but a coroutine does
// nothing before its first step.
//
// The loop owns a spawned task until it finishes: dropping the handle neither destroys
// nor stops it. The task's first step runs in the loop's task phase (scheduler.hpp), never
// inside spawn(). A loop destroyed with tasks still running destroys them (their frames,
// and the watchers awaited in them); their handles then report Cancelled.
//
// Errors: spawn gives an empty handle (valid() false, error() ENOMEM) when the task's
// record or first frame cannot be allocated, EINVAL when the loop is not open.
#pragma once

#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "await_base.hpp"
#include "context.hpp"

namespace evflow {

template <class T>
class TaskHandle;
namespace detail {
template <class T>
class JoinAwaiter;
}  // namespace detail

namespace detail {

// A spawned task's record with the copies of its callable and arguments, which its
// frames refer to: they live until the task ends.
template <class T, class Fn, class... Args>
struct SpawnRecord final : TaskRecord<T> {
  struct Call {
    Fn fn;
    std::tuple<Args...> args;
  };
  std::optional<Call> call;

  template <class F, class... A>
  explicit SpawnRecord(F&& f, A&&... a)
      : call(Call{Fn(std::forward<F>(f)), std::tuple<Args...>(std::forward<A>(a)...)}) {
    this->destroy_record = &destroy;
    this->end_call = [](TaskRoot* root) noexcept { static_cast<SpawnRecord*>(root)->call.reset(); };
  }
  // fn(args...): the callable as the lvalue it is in the record (a lambda's frame refers
  // to it), each argument as an rvalue: a parameter by value is moved from the record's
  // copy, a reference parameter refers to the copy itself.
  Task<T> start() {
    return std::apply([this](Args&... a) { return std::invoke(call->fn, std::move(a)...); }, call->args);
  }
  static void destroy(TaskRoot* root) noexcept {
    SpawnRecord* record = static_cast<SpawnRecord*>(root);
    record->~SpawnRecord();
    FramePool::deallocate(record);
  }
};

}  // namespace detail

template <class T>
class TaskHandle {
 public:
  TaskHandle() noexcept = default;
  TaskHandle(TaskHandle&& other) noexcept
      : record_(std::exchange(other.record_, nullptr)), error_(std::exchange(other.error_, Error())) {}
  TaskHandle& operator=(TaskHandle&& other) noexcept {
    if (this != &other) {
      reset();
      record_ = std::exchange(other.record_, nullptr);
      error_ = std::exchange(other.error_, Error());
    }
    return *this;
  }
  TaskHandle(const TaskHandle&) = delete;
  TaskHandle& operator=(const TaskHandle&) = delete;
  ~TaskHandle() { reset(); }

  // False when spawn() failed (error() says why) or the handle was moved from.
  bool valid() const noexcept { return record_ != nullptr; }
  Error error() const noexcept { return error_; }
  TaskState state() const noexcept { return record_ ? record_->state : TaskState::Cancelled; }
  // Finished: completed, failed or cancelled.
  bool done() const noexcept {
    const TaskState s = state();
    return s != TaskState::Pending && s != TaskState::Running;
  }

  // Awaitable from another task of the same loop: suspends until this task has finished,
  // then gives its value: Result<T> (an Error for void, and for an Error the task's own),
  // ECANCELED if the loop destroyed it; rethrows its exception (builds with exceptions).
  auto join() const noexcept { return detail::JoinAwaiter<T>(record_); }

  // Requests the task's cancellation. A task that has not started never runs (Cancelled);
  // otherwise the await pending now ends with ECANCELED, and every later one at once
  // (await_base.hpp), until the task returns (Completed). No effect on a finished task.
  void cancel() noexcept {
    if (record_ != nullptr && record_->scheduler != nullptr) record_->scheduler->cancel(*record_);
  }

  // The loop the task runs on; null for an empty handle or once its loop is destroyed.
  Loop* loop() const noexcept { return record_ && record_->scheduler ? &record_->scheduler->loop() : nullptr; }

  // The value of a finished task (as join() gives it); EAGAIN while it runs.
  auto result() { return outcome(record_); }

  // Internal (spawn, join).
  static auto outcome(detail::TaskRecord<T>* record);
  explicit TaskHandle(Error error) noexcept : error_(error) {}
  explicit TaskHandle(detail::TaskRecord<T>* record) noexcept : record_(record) {}

 private:
  void reset() noexcept {
    if (record_) std::exchange(record_, nullptr)->release();
  }
  detail::TaskRecord<T>* record_ = nullptr;
  Error error_;
};

template <class T>
auto TaskHandle<T>::outcome(detail::TaskRecord<T>* record) {
  const Error error = record == nullptr                                                              ? Error(EINVAL)
                      : record->state == TaskState::Cancelled                                        ? Error(ECANCELED)
                      : (record->state == TaskState::Pending || record->state == TaskState::Running) ? Error(EAGAIN)
                                                                                                     : Error();
#if defined(__cpp_exceptions)
  if (!error && record->exception) std::rethrow_exception(record->exception);
#endif
  if constexpr (std::is_void_v<T>) {
    return error;
  } else if constexpr (std::is_same_v<T, Error>) {  // the task's own Error, or the join's
    return error ? error : *record->value;
  } else {
    if (error) return Result<T>(error);
    // Every reader gets the value: a copy, or, for a type that cannot be copied, the
    // value itself, moved out by the first reader.
    if constexpr (std::is_copy_constructible_v<T>) {
      return Result<T>(*record->value);
    } else {
      return Result<T>(std::move(*record->value));
    }
  }
}

namespace detail {

// join(): suspends until the joined task has finished. A cancellation of the joining
// task ends the wait (ECANCELED), or refuses it at once, even when the joined task has
// finished; the joined task goes on.
template <class T>
class JoinAwaiter : public CancellableAwait {
 public:
  static constexpr const char* kActivity = "waiting on the end of another task";
  // The awaiter holds a reference to the record: the handle may go while it waits.
  explicit JoinAwaiter(TaskRecord<T>* record) noexcept : record_(record) {
    if (record_ != nullptr) ++record_->references;
  }
  ~JoinAwaiter() {
    if (record_ != nullptr) record_->release();
  }
  bool await_ready() const noexcept { return record_ == nullptr; }  // an empty handle: EINVAL
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    // Cancellation first (level-triggered, even when the joined task has finished).
    if (!enter<JoinAwaiter>(awaiting)) return false;
    if (record_->state != TaskState::Pending && record_->state != TaskState::Running) return refuse(Error());
    waiter_.awaiter = this;
    waiter_.joined = [](JoinWaiter& self) noexcept { static_cast<JoinAwaiter*>(self.awaiter)->complete(); };
    waiter_.next = record_->joiners;
    record_->joiners = &waiter_;
    return true;
  }
  auto await_resume() {
    if (error_) return decltype(TaskHandle<T>::outcome(record_))(error_);
    return TaskHandle<T>::outcome(record_);
  }
  void stop_waiting() noexcept {
    JoinWaiter** link = &record_->joiners;
    while (*link != &waiter_)
      link = &(*link)->next;
    *link = waiter_.next;
  }

 private:
  TaskRecord<T>* record_;
  JoinWaiter waiter_;
};

template <class Fn, class... Args>
using SpawnedValue = typename std::invoke_result_t<std::decay_t<Fn>&, std::decay_t<Args>...>::value_type;
}  // namespace detail

namespace detail {
// spawn(), with `prepare(record)` called on the new task's record before the loop adopts it
// (a task group links its children there).
template <class Prepare, class Fn, class... Args>
TaskHandle<SpawnedValue<Fn, Args...>> spawn_with(Loop& loop, SourceLocation where, Prepare&& prepare, Fn&& fn,
                                                 Args&&... args) noexcept {
  using T = SpawnedValue<Fn, Args...>;
  if (!loop.is_open()) return TaskHandle<T>(Error(EINVAL));
  TaskScheduler* scheduler = TaskScheduler::of(loop);
  if (scheduler == nullptr) return TaskHandle<T>(Error(ENOMEM));
  FramePool::Scope frames(&scheduler->frames());
  using Record = SpawnRecord<T, std::decay_t<Fn>, std::decay_t<Args>...>;
  void* memory = FramePool::allocate(sizeof(Record));
  if (memory == nullptr) return TaskHandle<T>(Error(ENOMEM));
  auto* record = ::new (memory) Record(std::forward<Fn>(fn), std::forward<Args>(args)...);
  auto frame = record->start().release_frame();
  if (!frame) {
    Record::destroy(record);
    return TaskHandle<T>(Error(ENOMEM));
  }
  frame.promise().root = record;
  record->frame = frame;
  record->resume_point = frame;
  record->spawned_at = where;
  record->context = retain_context(current_context());  // a snapshot of the spawner's values
  ++record->references;                                 // the handle's
  prepare(static_cast<TaskRecord<T>&>(*record));
  scheduler->adopt(*record);
  return TaskHandle<T>(record);
}
}  // namespace detail

// Starts fn(args...) (a callable giving a Task) as a task of `loop`; see the header
// comment for what is copied, who owns the task and the errors.
// (`site` is the loop, converted: it records where the spawn is, for the task observer.)
template <class Fn, class... Args>
TaskHandle<detail::SpawnedValue<Fn, Args...>> spawn(SpawnSite site, Fn&& fn, Args&&... args) noexcept {
  return detail::spawn_with(
      site.loop, site.location, [](auto&) noexcept {}, std::forward<Fn>(fn), std::forward<Args>(args)...);
}

// Runs `loop` until the task of `handle` has finished (from plain code, not from a
// callback of `loop`: EBUSY), then gives its value as join() does: the join of plain code.
// EINVAL for an empty handle or a task of another loop.
template <class T>
auto run_until_done(Loop& loop, TaskHandle<T>& handle) {
  using Outcome = decltype(handle.result());
  if (!handle.valid() || (!handle.done() && handle.loop() != &loop)) return Outcome(Error(EINVAL));
  while (!handle.done()) {
    if (Error err = loop.run(RunMode::Once)) return Outcome(err);
  }
  return handle.result();
}

// Runs fn(args...) as a task of `loop` and runs the loop until it has finished; gives its
// value as join() does. From plain code (not from a callback of `loop`: EBUSY).
template <class Fn, class... Args>
auto run_until_complete(SpawnSite site, Fn&& fn, Args&&... args) {
  auto handle = spawn(site, std::forward<Fn>(fn), std::forward<Args>(args)...);
  if (!handle.valid()) return decltype(handle.result())(handle.error());
  return run_until_done(site.loop, handle);
}

// The tasks `loop` owns now (spawned and not finished), and the most bytes of task frames
// it has had live at once (the frame pool's high-water mark).
inline std::size_t live_tasks(Loop& loop) noexcept {
  auto* scheduler = detail::TaskScheduler::existing(loop);
  return scheduler ? scheduler->live_tasks() : 0;
}
inline std::size_t task_frames_high_water(Loop& loop) noexcept {
  auto* scheduler = detail::TaskScheduler::existing(loop);
  return scheduler ? scheduler->frames().high_water_bytes() : 0;
}

}  // namespace evflow
