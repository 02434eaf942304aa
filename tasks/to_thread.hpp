// evflow — to_thread(fn): a task runs blocking work on a thread of a pool and continues
// on its own loop with the result.
//
//   evflow::Result<std::size_t> size = co_await evflow::to_thread([&] { return parse(blob); });
//   evflow::Error done = co_await evflow::to_thread(pool, [&] { fsync(fd); });   // void: an Error
//
// fn is moved into a record with room for its result, queued on the pool (the default
// pool: one thread per CPU), called there as `std::move(fn)()`, and destroyed on that
// thread right after the call; the result comes back to the loop (thread_return_path.hpp)
// and is moved out to the task, as a Result<R> (Error when fn returns void).
//
// Cancellation (level-triggered, as every await of a task):
// - before the work begins: it is withdrawn and never runs; the await gives ECANCELED;
// - while it runs: the thread is not interrupted; the await gives ECANCELED at once, and
//   the result, when it arrives, is destroyed on the loop's thread (or on the pool's thread
//   when the loop is gone by then);
// - after it finished: the result is delivered; the next await sees the cancellation.
// A task destroyed while it waits (its loop goes) abandons the work the same way.
//
// Context variables: fn sees the values the task had at the await (ContextVar::get on the
// pool's thread), a snapshot; what fn sets there stays there.
//
// Limits: to_thread(limiter, pool, fn) first takes a permit of `limiter` (a Semaphore of
// the caller's loop), so that no more than its count of one caller's works are out at once.
//
// Costs: the hand-over takes the pool's mutex and wakes a thread that waits (none when the
// pool's threads are busy); the answer is one atomic push onto the loop's return path,
// which wakes the loop once for all the works finished by then. The pool's thread takes
// its mutex once per piece of work: to hand the finished one back and take the next.
// The record comes from a per-loop cache (up to 512 bytes): no allocation in steady state.
//
// Errors: ECANCELED; ENOMEM; EAGAIN when the pool could start no thread; EOWNERDEAD in a
// forked child for work that was queued or running at the fork (thread_pool.hpp).
// g++ 12: name a callable whose captures point into themselves (a std::string in its short
// form) before the co_await, `auto fn = [s] {...}; co_await to_thread(std::move(fn));`:
// g++ 12 relocates class temporaries of a co_await's operand bitwise (README, "Portability").
// Exceptions: fn is called where no exception can pass; one that leaves it ends the
// process (std::terminate).
#pragma once

#include <functional>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "await_base.hpp"
#include "context.hpp"
#include "semaphore.hpp"
#include "task.hpp"
#include "thread_pool.hpp"
#include "thread_return_path.hpp"

namespace evflow {

namespace detail {

// What fn returns, as the await gives it: Result<R>, or Error for void.
template <class F>
using ThreadCallResult = std::invoke_result_t<F>;
template <class R>
using ToThreadValue = std::conditional_t<std::is_void_v<R>, Error, Result<R>>;

template <class F>
struct ThreadWorkOf final : ThreadWork {
  using R = ThreadCallResult<F>;
  using Stored = std::conditional_t<std::is_void_v<R>, bool, R>;

  explicit ThreadWorkOf(F&& f) noexcept(std::is_nothrow_move_constructible_v<F>) : fn(std::move(f)) {
    run = [](ThreadWork& self) noexcept { static_cast<ThreadWorkOf&>(self).call(); };
    destroy = [](ThreadWork& self) noexcept { static_cast<ThreadWorkOf&>(self).~ThreadWorkOf(); };
  }
  ~ThreadWorkOf() { release_context(context); }

  // On the pool's thread, with the submitting task's context variables.
  void call() noexcept {
    Context*& slot = thread_context();
    Context* const saved = slot;
    slot = context;
    if constexpr (std::is_void_v<R>) {
      std::invoke(std::move(*fn));
      result.emplace(true);
    } else {
      result.emplace(std::invoke(std::move(*fn)));
    }
    fn.reset();
    if (slot != context) {
      // fn set a variable: the copy is its own, and the copy-on-write released the
      // reference this record held.
      release_context(slot);
      context = nullptr;
    }
    slot = saved;
  }

  std::optional<F> fn;
  std::optional<Stored> result;
};

template <class F>
class ToThreadAwait final : public CancellableAwait, private Waiter {
 public:
  static constexpr const char* kActivity = "waiting for work on a thread";
  using R = ThreadCallResult<F>;

  ToThreadAwait(ThreadPool& pool, F&& fn) noexcept(std::is_nothrow_move_constructible_v<F>)
      : pool_(pool), fn_(std::move(fn)) {}
  ToThreadAwait(const ToThreadAwait&) = delete;
  ToThreadAwait& operator=(const ToThreadAwait&) = delete;
  ~ToThreadAwait() { abandon(); }

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    if (!enter<ToThreadAwait>(awaiting)) return false;
    path_ = ThreadReturnPath::of(*root_->scheduler);
    if (path_ == nullptr) return refuse(Error(ENOMEM));
    uint8_t size_class = 0;
    void* block = path_->allocate(sizeof(ThreadWorkOf<F>), size_class);
    if (block == nullptr) return refuse(Error(ENOMEM));
    auto* work = ::new (block) ThreadWorkOf<F>(std::move(*fn_));
    work->size_class = size_class;
    work->path = path_;
    work->context = retain_context(root_->context);
    work->waiter = this;
    arrived = [](Waiter& self) noexcept { static_cast<ToThreadAwait&>(self).on_arrival(); };
    path_->sent();
    if (Error error = pool_.submit(*work)) {
      path_->discard(*work);
      return refuse(error);
    }
    work_ = work;
    return true;
  }

  ToThreadValue<R> await_resume() noexcept {
    if (error_) {
      abandon();
      return error_;
    }
    ThreadWorkOf<F>* work = work_;
    work_ = nullptr;
    if constexpr (std::is_void_v<R>) {
      path_->recycle(*work);
      return Error();
    } else {
      Result<R> value(std::move(*work->result));
      path_->recycle(*work);
      return value;
    }
  }

  // Cancellation: withdraws the work, or leaves it to be destroyed when it arrives.
  void stop_waiting() noexcept { abandon(); }

 private:
  void on_arrival() noexcept {
    arrived_ = true;
    complete(work_->error);
  }
  void abandon() noexcept {
    ThreadWorkOf<F>* work = work_;
    if (work == nullptr) return;
    work_ = nullptr;
    if (arrived_) {
      path_->recycle(*work);  // back already: this await was its last owner
    } else if (pool_.withdraw(*work)) {
      path_->discard(*work);  // never ran
    } else {
      work->waiter = nullptr;  // running: the return path destroys it when it arrives
    }
  }

  ThreadPool& pool_;
  std::optional<F> fn_;
  ThreadReturnPath* path_ = nullptr;
  ThreadWorkOf<F>* work_ = nullptr;
  bool arrived_ = false;
};

template <class F>
Task<ToThreadValue<ThreadCallResult<F>>> to_thread_limited(Semaphore& limiter, ThreadPool& pool, F fn) {
  const Error permit = co_await limiter.acquire();
  if (permit) co_return permit;
  auto value = co_await ToThreadAwait<F>(pool, std::move(fn));
  limiter.release();
  co_return value;
}

}  // namespace detail

// Runs `fn()` on a thread of `pool` and gives its result to the awaiting task.
template <class F>
[[nodiscard]] detail::ToThreadAwait<std::decay_t<F>> to_thread(ThreadPool& pool, F&& fn) noexcept(
    std::is_nothrow_constructible_v<std::decay_t<F>, F>) {
  return detail::ToThreadAwait<std::decay_t<F>>(pool, std::decay_t<F>(std::forward<F>(fn)));
}
// The same on the default pool.
template <class F>
[[nodiscard]] detail::ToThreadAwait<std::decay_t<F>> to_thread(F&& fn) noexcept(
    std::is_nothrow_constructible_v<std::decay_t<F>, F>) {
  return to_thread(ThreadPool::default_pool(), std::forward<F>(fn));
}
// The same after taking a permit of `limiter` (held until the work is back or abandoned):
// at most the limiter's count of works of its callers are out at once.
template <class F>
[[nodiscard]] auto to_thread(Semaphore& limiter, ThreadPool& pool, F&& fn) {
  return detail::to_thread_limited(limiter, pool, std::decay_t<F>(std::forward<F>(fn)));
}

}  // namespace evflow
