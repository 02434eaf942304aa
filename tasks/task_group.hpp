// evflow — TaskGroup and SupervisorGroup: tasks that live and end together.
//
//   evflow::TaskGroup group;
//   auto ended = co_await group.run([&]() -> evflow::Task<> {     // the body
//     group.spawn(fetch, url1);                                    // children, running
//     group.spawn(fetch, url2);                                    // beside the body
//     co_return;
//   }());
//   if (ended.failed()) for (evflow::Error e : ended.failures()) ...
//
// co_await group.run(body) runs the body in the awaiting task and gives a GroupResult once
// the body has returned AND every child spawned into the group has finished: nothing the
// group started is running afterwards. Children run inside the group's scope: a
// cancellation that reaches the group (the task's, an enclosing scope's or group's, or
// group.cancel()) reaches the body and every child, grandchildren included, each at its
// pending await (level-triggered, as for a CancellationScope).
//
// A failure is a task ending with an Error that is set and not ECANCELED: a Task<Error>
// returning one, a Task<Result<U>> returning a failed Result, or (built with exceptions)
// an exception leaving it. In a TaskGroup, the first failure of a child or of the body
// cancels the group: the body and every other child; the group then reports every
// failure, in the order they happened (failures()), and with exceptions on, run() throws
// one TaskGroupError holding every exception after everything has finished. A spawn into a
// group that is cancelled gives ECANCELED, into a group that is not running EINVAL. In a
// SupervisorGroup a child's failure is reported but cancels nothing.
//
// A group is a local of the task that runs it, and runs one body at a time (EBUSY).
// Memory: no allocation per child beyond its spawn (its record and frame, from the frame
// pool); a failure's Error is kept in a vector (allocated on the first failure).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "spawn.hpp"

namespace evflow {

class TaskGroup;
namespace detail {
template <class T>
class GroupRun;
template <class Start>
class GroupStartAndWait;
template <class T>
struct GatherChild;
}  // namespace detail

#if defined(__cpp_exceptions)
// What TaskGroup::run throws when tasks of the group threw: every exception, in the order
// the tasks ended, and the Error failures beside them.
class TaskGroupError : public std::exception {
 public:
  TaskGroupError(std::vector<std::exception_ptr> exceptions, std::vector<Error> errors)
      : exceptions_(std::move(exceptions)), errors_(std::move(errors)) {}
  const char* what() const noexcept override { return "evflow: tasks of a group failed"; }
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  const std::vector<Error>& errors() const noexcept { return errors_; }

 private:
  std::vector<std::exception_ptr> exceptions_;
  std::vector<Error> errors_;
};
#endif

// The outcome of TaskGroup::run.
template <class T>
class [[nodiscard]] GroupResult {
 public:
  // Why the body did not run (EBUSY, ENOMEM); success when it ran.
  Error error() const noexcept { return error_; }
  // Every failure of the body and the children, in the order they ended.
  std::span<const Error> failures() const noexcept { return failures_; }
  bool failed() const noexcept { return !failures_.empty(); }
  // A cancellation from outside the group, or group.cancel(), reached it.
  bool cancelled() const noexcept { return cancelled_; }
  // What the body returned (not for GroupResult<void>). Precondition: !error().
  template <class U = T>
  requires(!std::is_void_v<U>) U& value() noexcept {
    if (!value_) detail::fatal("evflow: GroupResult::value() of a body that did not run");
    return *value_;
  }

 private:
  friend class TaskGroup;
  template <class U>
  friend class detail::GroupRun;
  template <class Start>
  friend class detail::GroupStartAndWait;
  Error error_;
  std::vector<Error> failures_;
  bool cancelled_ = false;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value_;
};

namespace detail {

// The failure a task's value stands for: a set Error other than ECANCELED, or a failed
// Result; anything else is a success.
template <class T>
Error failure_of(const T& value) noexcept {
  if constexpr (std::is_same_v<T, Error>) {
    return value.code() == ECANCELED ? Error() : value;
  } else if constexpr (requires {
                         value.ok();
                         value.error();
                       }) {
    return !value.ok() && value.error().code() != ECANCELED ? value.error() : Error();
  } else {
    return Error();
  }
}

template <class T>
class GroupRun;

}  // namespace detail

class TaskGroup : private detail::GroupNode {
 public:
  // `where`: recorded as the place of the spawn of every child (for the task observer).
  explicit TaskGroup(SourceLocation where = SourceLocation::current()) noexcept : where_(where) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() = default;

  // Awaitable: runs `body` in the awaiting task, then waits for every child; see the
  // header comment.
  template <class T>
  detail::GroupRun<T> run(Task<T> body) noexcept;

  // Starts fn(args...) as a child, on the loop of the task running the group (as spawn()
  // does: copies, ownership, errors), inside the group's scope. EINVAL when the group is
  // not running; ECANCELED when it is cancelled.
  template <class Fn, class... Args>
  TaskHandle<detail::SpawnedValue<Fn, Args...>> spawn(Fn&& fn, Args&&... args) noexcept {
    return spawn_reporting(&TaskGroup::child_ended<detail::SpawnedValue<Fn, Args...>>, std::forward<Fn>(fn),
                           std::forward<Args>(args)...);
  }

  // Cancels the group: the body and every child (for good). Idempotent.
  void cancel() noexcept {
    cancelled_by_hand_ = true;
    if (scope.cancelled) return;
    scope.cancelled = true;
    if (owner != nullptr) owner->scheduler->deliver_cancellation(*owner);
  }
  // Children not finished yet.
  std::size_t size() const noexcept { return live; }
  // Whether a body runs in the group now, or its children are being waited for.
  bool running() const noexcept { return owner != nullptr; }

 protected:
  TaskGroup(bool supervisor, SourceLocation where) noexcept : supervisor_(supervisor), where_(where) {}

 private:
  template <class T>
  friend class detail::GroupRun;
  template <class Start>
  friend class detail::GroupStartAndWait;
  template <class T>
  friend struct detail::GatherChild;

  // spawn(), with `report` called when the child has finished (instead of child_ended).
  template <class Fn, class... Args>
  TaskHandle<detail::SpawnedValue<Fn, Args...>> spawn_reporting(void (*report)(detail::TaskRoot&,
                                                                               detail::GroupNode&) noexcept,
                                                                Fn&& fn, Args&&... args) noexcept {
    using T = detail::SpawnedValue<Fn, Args...>;
    if (owner == nullptr) return TaskHandle<T>(Error(EINVAL));
    if (owner->cancelled_from(&scope)) return TaskHandle<T>(Error(ECANCELED));
    auto link = [this, report](detail::TaskRecord<T>& child) noexcept {
      child.parent = owner;
      child.spawned_in = &scope;
      child.group = this;
      child.prev_in_group = nullptr;
      child.next_in_group = children;
      if (children != nullptr) children->prev_in_group = &child;
      children = &child;
      ++live;
      child.report_to_group = report;
    };
    return detail::spawn_with(owner->scheduler->loop(), where_, link, std::forward<Fn>(fn),
                              std::forward<Args>(args)...);
  }

  // A child (or the body) ended with `failure` (success: nothing to note).
  void note_end(Error failure) noexcept {
    if (!failure) return;
    failures_.push_back(failure);
    if (!supervisor_ && !scope.cancelled) {
      scope.cancelled = true;  // the first failure cancels the others
      if (owner != nullptr) owner->scheduler->deliver_cancellation(*owner);
    }
  }
#if defined(__cpp_exceptions)
  void note_exception(std::exception_ptr exception) noexcept {
    exceptions_.push_back(std::move(exception));
    note_end(Error(EIO));
    failures_.pop_back();  // counted as an exception, not as an Error
  }
#endif
  template <class T>
  static void child_ended(detail::TaskRoot& root, detail::GroupNode& node) noexcept {
    auto& child = static_cast<detail::TaskRecord<T>&>(root);
    TaskGroup& group = static_cast<TaskGroup&>(node);
#if defined(__cpp_exceptions)
    if (child.exception) {
      group.note_exception(child.exception);
    } else
#endif
        if constexpr (!std::is_void_v<T>) {
      if (child.value) group.note_end(detail::failure_of(*child.value));
    }
    group.child_left();
  }
  // A child has finished: the owner, waiting for the children, goes on after the last.
  void child_left() noexcept {
    if (live == 0 && waiting_ != nullptr) {
      detail::TaskRoot& root = *owner;
      root.suspended = nullptr;
      waiting_ = nullptr;
      root.scheduler->wake(root);
    }
  }

  Error enter(detail::TaskRoot& root) noexcept {
    if (owner != nullptr) return Error(EBUSY);
    owner = &root;
    scope.parent = root.innermost_scope;
    root.innermost_scope = &scope;
    outer = root.groups;
    root.groups = this;
    return Error();
  }
  // Gives the result its failures and whether a cancellation from outside the group (or
  // cancel()) reached it; returns whether one from outside did.
  template <class T>
  bool leave(GroupResult<T>& result) noexcept {
    detail::TaskRoot& root = *owner;
    const bool from_outside = root.cancelled_from(scope.parent);
    root.innermost_scope = scope.parent;
    root.groups = outer;
    owner = nullptr;
    result.failures_ = std::move(failures_);
    failures_.clear();
    result.cancelled_ = from_outside || cancelled_by_hand_;
    return from_outside;
  }

  // The owner waits for the children after the body: a suspension that a cancellation
  // does not end (it reaches the children instead, which then finish).
  struct ChildrenDone : detail::Suspension {
    explicit ChildrenDone(TaskGroup* waiting_group) noexcept : group(waiting_group) {}
    TaskGroup* group;
    bool await_ready() const noexcept { return group->live == 0; }
    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
      detail::TaskRoot& root = detail::root_of(awaiting);
      root.resume_point = awaiting;
      interrupt = [](detail::Suspension&) noexcept { return false; };
      activity = "waiting on the children of its group";
      root.suspended = this;
      group->waiting_ = this;
    }
    void await_resume() const noexcept {}
  };

  template <class T, class V>
  static Task<> body_then_children(TaskGroup* group, Task<T> body, std::optional<V>* value);

  bool supervisor_ = false;
  bool cancelled_by_hand_ = false;
  SourceLocation where_;
  ChildrenDone* waiting_ = nullptr;
  std::vector<Error> failures_;
#if defined(__cpp_exceptions)
  std::vector<std::exception_ptr> exceptions_;
#endif
};

// A group whose children's failures are reported but cancel nothing.
class SupervisorGroup : public TaskGroup {
 public:
  explicit SupervisorGroup(SourceLocation where = SourceLocation::current()) noexcept : TaskGroup(true, where) {}
};

namespace detail {

template <class T>
class GroupRun {
 public:
  GroupRun(TaskGroup& group, Task<T>&& body) noexcept : group_(group), body_(std::move(body)) {}
  GroupRun(const GroupRun&) = delete;
  GroupRun& operator=(const GroupRun&) = delete;
  ~GroupRun() {
    if (frame_) frame_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    TaskRoot& root = root_of(awaiting);
    if (!body_.valid()) return refuse(ENOMEM, awaiting);
    if (Error error = group_.enter(root)) return refuse(error.code(), awaiting);
    {
      FramePool::Scope frames(&root.scheduler->frames());
      frame_ = TaskGroup::body_then_children(&group_, std::move(body_), &value_).release_frame();
    }
    if (!frame_) {
      GroupResult<T> discard;
      group_.leave(discard);
      return refuse(ENOMEM, awaiting);
    }
    entered_ = true;
    frame_.promise().root = &root;
    frame_.promise().continuation = awaiting;
    return root.scheduler->transfer(root, frame_);
  }
  GroupResult<T> await_resume() {
    GroupResult<T> result;
    if (!entered_) {
      result.error_ = refused_;
      return result;
    }
    group_.leave(result);
#if defined(__cpp_exceptions)
    if (!group_.exceptions_.empty()) {
      throw TaskGroupError(std::exchange(group_.exceptions_, {}),
                           std::vector<Error>(result.failures_.begin(), result.failures_.end()));
    }
#endif
    frame_.promise().take();
    result.value_ = std::move(value_);
    return result;
  }

 private:
  std::coroutine_handle<> refuse(int code, std::coroutine_handle<> awaiting) noexcept {
    refused_ = Error(code);
    return awaiting;
  }

  TaskGroup& group_;
  Task<T> body_;
  std::coroutine_handle<TaskPromise<void>> frame_;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value_;
  Error refused_;
  bool entered_ = false;
};

}  // namespace detail

namespace detail {

// Internal (gather): a group run whose body is start(), called in the awaiting task once
// the group is entered, without a frame of its own: it spawns the children, then the
// awaiting task waits for them as after a body. Gives a GroupResult<void>.
template <class Start>
class GroupStartAndWait {
 public:
  GroupStartAndWait(TaskGroup& group, Start start) noexcept : group_(group), start_(start), done_(&group) {}
  GroupStartAndWait(const GroupStartAndWait&) = delete;
  GroupStartAndWait& operator=(const GroupStartAndWait&) = delete;

  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    if (Error error = group_.enter(root_of(awaiting))) {
      refused_ = error;
      return false;
    }
    entered_ = true;
    start_();
    if (done_.await_ready()) return false;
    done_.await_suspend(awaiting);
    return true;
  }
  // Why the group could not be entered; whether a cancellation from outside the group
  // reached it (a cancel() of the group's own does not count).
  struct Ended {
    Error error;
    bool cancelled_from_outside = false;
  };
  Ended await_resume() noexcept {
    if (!entered_) return Ended{refused_, false};
    GroupResult<void> result;
    return Ended{Error(), group_.leave(result)};
  }

 private:
  TaskGroup& group_;
  Start start_;
  TaskGroup::ChildrenDone done_;
  Error refused_;
  bool entered_ = false;
};

}  // namespace detail

template <class T>
detail::GroupRun<T> TaskGroup::run(Task<T> body) noexcept {
  return detail::GroupRun<T>(*this, std::move(body));
}

// The body, then the wait for the children; the body's failure (or exception) counts as
// the group's, and cancels it. The body's value goes to `*value`.
template <class T, class V>
Task<> TaskGroup::body_then_children(TaskGroup* group, Task<T> body, std::optional<V>* value) {
#if defined(__cpp_exceptions)
  try {
#endif
    if constexpr (std::is_void_v<T>) {
      co_await std::move(body);
      value->emplace(true);
    } else {
      value->emplace(co_await std::move(body));
      group->note_end(detail::failure_of(**value));
    }
#if defined(__cpp_exceptions)
  } catch (...) {
    group->note_exception(std::current_exception());
  }
#endif
  co_await ChildrenDone(group);
}

}  // namespace evflow
