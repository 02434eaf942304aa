// evflow — CancellationScope: cancel a part of a task, by hand or at a deadline, and
// shield cleanup code from cancellation.
//
//   evflow::CancellationScope scope(50ms);              // deadline: 50 ms after the body starts
//   auto fetched = co_await scope.run(fetch(url));      // ScopeResult<Reply>
//   if (fetched.timed_out()) ...                        // fetch() has already unwound
//
//   auto fetched = co_await evflow::with_timeout(50ms, fetch(url));   // the same, shorter
//   co_await evflow::shielded(flush(log));              // runs to its end even in a cancelled task
//   std::optional<Reply> r = co_await evflow::move_on_after(50ms, fetch(url));   // nothing if too slow
//   Result<Reply> r = co_await evflow::fail_after(50ms, fetch(url));             // ETIMEDOUT if too slow
//
// scope.run(body) runs the task `body` inside the scope, in the awaiting task, and gives
// a ScopeResult once the body has returned. The scope is cancelled by cancel() or by its
// deadline; cancellation is level-triggered: from then on every suspension of the body
// (sleep, readiness, join, a notification, a signal, a child's exit, yield) completes at
// once with ECANCELED, the one pending at that moment included (its watcher is stopped
// before the task resumes). The body sees errors from its awaits and returns; only then
// does the awaiting code continue, with the outcome:
//   Completed   no cancellation reached the body;
//   TimedOut    the scope's deadline cancelled it;
//   Cancelled   the scope's cancel(), or a cancellation from outside the scope (the task's
//               own, TaskHandle::cancel, or an enclosing scope's) reached it.
// Cancelled and TimedOut are outcomes of the scope, distinct from the body's errors: the
// body's value (what it returned, often an ECANCELED it passed on) is there as well.
//
// Scopes nest. A cancellation reaches the suspensions inside the scope that was cancelled;
// a shield scope (CancellationScope(evflow::shield)) stops cancellations from outside it,
// though its own cancel() and deadline still work: cleanup code that must finish runs in
// one. When the shield ends, an outer cancellation applies again, at the next suspension.
//
// The deadline is re-schedulable: set_deadline / set_timeout / clear_deadline, also while
// the body runs. A deadline already past when the body starts (or set in the past while it
// runs) cancels the scope at once. A scope's cancellation is permanent: running the scope
// again runs the body cancelled. A scope runs one body at a time: run() of a scope that is
// running gives EBUSY without running the body.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <utility>

#include "../reactor/timer.hpp"
#include "task.hpp"

namespace evflow {

// How the body of a cancellation scope ended (see the header comment).
enum class ScopeOutcome : uint8_t { Completed, Cancelled, TimedOut };

namespace detail {
// What every ScopeResult has: the outcome, or the error that kept the body from running.
class ScopeResultBase {
 public:
  ScopeOutcome outcome() const noexcept { return outcome_; }
  bool completed() const noexcept { return !error_ && outcome_ == ScopeOutcome::Completed; }
  bool cancelled() const noexcept { return !error_ && outcome_ == ScopeOutcome::Cancelled; }
  bool timed_out() const noexcept { return !error_ && outcome_ == ScopeOutcome::TimedOut; }
  // EBUSY when the scope was already running another body (which then did not run);
  // ENOMEM when the body is an empty Task (its frame could not be allocated); what arming
  // the deadline's timer refused.
  Error error() const noexcept { return error_; }

 protected:
  explicit ScopeResultBase(ScopeOutcome outcome) noexcept : outcome_(outcome) {}
  explicit ScopeResultBase(Error error) noexcept : error_(error) {}

 private:
  ScopeOutcome outcome_ = ScopeOutcome::Completed;
  Error error_;
};
}  // namespace detail

// The outcome of CancellationScope::run: a ScopeOutcome and what the body returned, or an
// error (EBUSY) when the body did not run.
template <class T>
class [[nodiscard]] ScopeResult : public detail::ScopeResultBase {
 public:
  ScopeResult(ScopeOutcome outcome, T value) noexcept(std::is_nothrow_move_constructible_v<T>)
      : ScopeResultBase(outcome), value_(std::move(value)) {}
  explicit ScopeResult(Error error) noexcept : ScopeResultBase(error) {}

  // What the body returned, whatever the outcome. Precondition: !error().
  T& value() noexcept {
    if (!value_) detail::fatal("evflow: ScopeResult::value() of a body that did not run");
    return *value_;
  }

 private:
  std::optional<T> value_;
};

template <>
class [[nodiscard]] ScopeResult<void> : public detail::ScopeResultBase {
 public:
  explicit ScopeResult(ScopeOutcome outcome) noexcept : ScopeResultBase(outcome) {}
  explicit ScopeResult(Error error) noexcept : ScopeResultBase(error) {}
};

// The tag of a shield scope: CancellationScope(evflow::shield).
struct Shield {};
inline constexpr Shield shield{};

class CancellationScope;

namespace detail {

// co_await scope.run(body): enters the scope, runs the body in the awaiting task, leaves.
template <class T>
class ScopeRun {
 public:
  ScopeRun(CancellationScope& scope, Task<T>&& body) noexcept : scope_(scope), frame_(body.release_frame()) {}
  ScopeRun(const ScopeRun&) = delete;
  ScopeRun& operator=(const ScopeRun&) = delete;
  ~ScopeRun() {
    if (frame_) frame_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept;
  ScopeResult<T> await_resume();

 private:
  CancellationScope& scope_;
  std::coroutine_handle<TaskPromise<T>> frame_;
  Error refused_;
  bool entered_ = false;
};

// with_timeout / with_deadline / shielded: a scope of the await's own.
template <class T>
class OwnScopeRun;

}  // namespace detail

class CancellationScope {
 public:
  using Duration = Timer::Duration;

  // No deadline.
  CancellationScope() noexcept = default;
  // A deadline `timeout` after the body starts (after set_timeout, below).
  explicit CancellationScope(Duration timeout) noexcept { (void)set_timeout(timeout); }
  // A deadline on the loop's monotonic clock.
  explicit CancellationScope(MonotonicClock::time_point deadline) noexcept { (void)set_deadline(deadline); }
  // A shield: cancellations from outside do not reach inside.
  explicit CancellationScope(Shield) noexcept { node_.shield = true; }
  CancellationScope(const CancellationScope&) = delete;
  CancellationScope& operator=(const CancellationScope&) = delete;
  ~CancellationScope() = default;  // the deadline's Timer stops itself

  // Awaitable: runs `body` inside the scope; see the header comment.
  template <class T>
  detail::ScopeRun<T> run(Task<T> body) noexcept {
    return detail::ScopeRun<T>(*this, std::move(body));
  }

  // Cancels the scope (for good): the body's pending await ends with ECANCELED, and every
  // later one at once. From the loop's thread: a task, a callback. Idempotent.
  void cancel() noexcept { cancel_for(ScopeOutcome::Cancelled); }
  // Whether cancel() was called or the deadline passed.
  bool cancel_called() const noexcept { return node_.cancelled; }

  // Sets the deadline (on the loop's monotonic clock); while the body runs, re-arms it,
  // and a deadline already past cancels the scope at once. Errors: what Timer::start_at
  // refused while re-arming.
  Error set_deadline(MonotonicClock::time_point deadline) noexcept;
  // A deadline `timeout` after the start of each later run; while a body runs, also `timeout`
  // from now for this run.
  Error set_timeout(Duration timeout) noexcept;
  // No deadline any more.
  void clear_deadline() noexcept;
  // Makes the scope a shield or not; lifting a shield while the body waits lets an outer
  // cancellation reach it at once.
  void set_shield(bool on) noexcept;
  bool is_shield() const noexcept { return node_.shield; }
  // Whether a body runs inside the scope now.
  bool running() const noexcept { return root_ != nullptr; }

  // Internal (ScopeRun).
  Error enter(detail::TaskRoot& root) noexcept;
  ScopeOutcome leave() noexcept;

 private:
  enum class DeadlineKind : uint8_t { None, Absolute, AfterStart };

  void cancel_for(ScopeOutcome reason) noexcept;
  Error arm() noexcept;

  detail::ScopeNode node_;
  detail::TaskRoot* root_ = nullptr;  // while a body runs
  ScopeOutcome reason_ = ScopeOutcome::Completed;
  DeadlineKind deadline_kind_ = DeadlineKind::None;
  MonotonicClock::time_point deadline_{};
  Duration timeout_{};
  std::optional<Timer> timer_;
};

namespace detail {

template <class T>
template <class Promise>
std::coroutine_handle<> ScopeRun<T>::await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
  TaskRoot& root = root_of(awaiting);
  if (!frame_) {  // an empty Task: its frame could not be allocated (or it was moved from)
    refused_ = Error(ENOMEM);
    return awaiting;
  }
  if (Error error = scope_.enter(root)) {
    refused_ = error;
    return awaiting;
  }
  entered_ = true;
  frame_.promise().root = &root;
  frame_.promise().continuation = awaiting;
  return root.scheduler->transfer(root, frame_);
}

template <class T>
ScopeResult<T> ScopeRun<T>::await_resume() {
  if (!entered_) return ScopeResult<T>(refused_);
  const ScopeOutcome outcome = scope_.leave();
  if constexpr (std::is_void_v<T>) {
    frame_.promise().take();
    return ScopeResult<void>(outcome);
  } else {
    return ScopeResult<T>(outcome, frame_.promise().take());
  }
}

template <class T>
class OwnScopeRun {
 public:
  template <class... ScopeArgs>
  explicit OwnScopeRun(Task<T>&& body, ScopeArgs... scope_args) noexcept
      : scope_(scope_args...), run_(scope_, std::move(body)) {}
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    return run_.await_suspend(awaiting);
  }
  ScopeResult<T> await_resume() { return run_.await_resume(); }

 private:
  CancellationScope scope_;
  ScopeRun<T> run_;
};

// shielded(): gives the body's value itself (nothing outside can cancel the scope).
template <class T>
class ShieldedRun : public OwnScopeRun<T> {
 public:
  explicit ShieldedRun(Task<T>&& body) noexcept : OwnScopeRun<T>(std::move(body), shield) {}
  T await_resume() {
    if constexpr (std::is_void_v<T>) {
      (void)OwnScopeRun<T>::await_resume();
    } else {
      return std::move(OwnScopeRun<T>::await_resume().value());
    }
  }
};

// move_on_after / move_on_at: the body's value, or nothing when the deadline cancelled it.
template <class T>
class MoveOnRun : public OwnScopeRun<T> {
 public:
  using OwnScopeRun<T>::OwnScopeRun;
  auto await_resume() {
    ScopeResult<T> ended = OwnScopeRun<T>::await_resume();
    const bool gave = !ended.error() && !ended.timed_out();
    if constexpr (std::is_void_v<T>) {
      return gave;
    } else {
      return gave ? std::optional<T>(std::move(ended.value())) : std::optional<T>();
    }
  }
};

// What fail_after gives for a body of type T: Result<T>, or T itself when it already
// carries an Error (Error, Result<U>); Error for void.
template <class T>
struct FailAfterValue {
  using type = Result<T>;
};
template <>
struct FailAfterValue<void> {
  using type = Error;
};
template <>
struct FailAfterValue<Error> {
  using type = Error;
};
template <class U>
struct FailAfterValue<Result<U>> {
  using type = Result<U>;
};

// fail_after / fail_at: the body's value, or ETIMEDOUT when the deadline cancelled it.
template <class T>
class FailAfterRun : public OwnScopeRun<T> {
 public:
  using OwnScopeRun<T>::OwnScopeRun;
  typename FailAfterValue<T>::type await_resume() {
    ScopeResult<T> ended = OwnScopeRun<T>::await_resume();
    if (ended.error()) return ended.error();
    if (ended.timed_out()) return Error(ETIMEDOUT);
    if constexpr (std::is_void_v<T>) {
      return Error();
    } else {
      return std::move(ended.value());
    }
  }
};

}  // namespace detail

// Runs `body` in a scope whose deadline is `timeout` after the body starts.
template <class T, class Rep, class Period>
detail::OwnScopeRun<T> with_timeout(std::chrono::duration<Rep, Period> timeout, Task<T> body) noexcept {
  return detail::OwnScopeRun<T>(std::move(body), std::chrono::duration_cast<CancellationScope::Duration>(timeout));
}
// Runs `body` in a scope with the deadline `deadline`.
template <class T>
detail::OwnScopeRun<T> with_deadline(MonotonicClock::time_point deadline, Task<T> body) noexcept {
  return detail::OwnScopeRun<T>(std::move(body), deadline);
}
// Runs `body` with a deadline `timeout` after it starts, and gives its value, or nothing
// once the deadline has cancelled it and it has unwound: std::optional<T> (bool for a Task<>:
// whether it finished before the deadline). Nothing either when the body could not run (an
// empty Task: use with_timeout to tell the cases apart).
template <class T, class Rep, class Period>
detail::MoveOnRun<T> move_on_after(std::chrono::duration<Rep, Period> timeout, Task<T> body) noexcept {
  return detail::MoveOnRun<T>(std::move(body), std::chrono::duration_cast<CancellationScope::Duration>(timeout));
}
// move_on_after with the deadline `deadline` on the loop's monotonic clock.
template <class T>
detail::MoveOnRun<T> move_on_at(MonotonicClock::time_point deadline, Task<T> body) noexcept {
  return detail::MoveOnRun<T>(std::move(body), deadline);
}
// Runs `body` with a deadline `timeout` after it starts, and gives its value, or
// ETIMEDOUT once the deadline has cancelled it and it has unwound: Result<T>, Error for a
// Task<> or a Task<Error>, Result<U> for a Task<Result<U>> (the body's own errors pass
// through); ENOMEM when the body is an empty Task.
template <class T, class Rep, class Period>
detail::FailAfterRun<T> fail_after(std::chrono::duration<Rep, Period> timeout, Task<T> body) noexcept {
  return detail::FailAfterRun<T>(std::move(body), std::chrono::duration_cast<CancellationScope::Duration>(timeout));
}
// fail_after with the deadline `deadline` on the loop's monotonic clock.
template <class T>
detail::FailAfterRun<T> fail_at(MonotonicClock::time_point deadline, Task<T> body) noexcept {
  return detail::FailAfterRun<T>(std::move(body), deadline);
}

// Runs `body` in a shield scope and gives its value: it runs to its end, its awaits
// uncancelled, even in a task that was cancelled.
template <class T>
detail::ShieldedRun<T> shielded(Task<T> body) noexcept {
  return detail::ShieldedRun<T>(std::move(body));
}

}  // namespace evflow
