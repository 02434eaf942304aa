// evflow — child_exit(pid): a task waits for a child process to end.
//
//   Result<ExitStatus> status = co_await evflow::child_exit(pid);
//
// The await embeds a Child watcher in the awaiting frame (README, "Child": how the loop
// learns of exits, which children it reaps). A child that has already exited and not
// been reaped is reported at the first iteration. Errors: ECHILD for a pid that is not a
// child of this process, ECANCELED, and what Child::start refused.
#pragma once

#include <optional>

#include "../reactor/child.hpp"
#include "await_base.hpp"

namespace evflow {

namespace detail {

class ChildExitAwaiter : public CancellableAwait {
 public:
  static constexpr const char* kActivity = "waiting on a child process";
  explicit ChildExitAwaiter(pid_t pid) noexcept : pid_(pid) {}

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    if (!enter<ChildExitAwaiter>(awaiting)) return false;
    child_.emplace(root_->scheduler->loop());
    const Error error = child_->start(pid_, [this](Child&, ExitStatus status) {
      status_ = status;
      complete();
    });
    return error ? refuse(error) : true;
  }
  Result<ExitStatus> await_resume() const noexcept {
    if (error_) return error_;
    return status_;
  }
  void stop_waiting() noexcept { child_->stop(); }

 private:
  pid_t pid_;
  ExitStatus status_{};
  std::optional<Child> child_;
};

}  // namespace detail

// Suspends the task until the child `pid` exits; gives its status.
inline detail::ChildExitAwaiter child_exit(pid_t pid) noexcept { return detail::ChildExitAwaiter(pid); }

}  // namespace evflow
