// evflow — the Linux backend slot: the loop's backend on Linux, chosen at run time.
//
// Linux offers more than one readiness mechanism: epoll everywhere, and io_uring where the
// kernel (and its configuration: the kernel.io_uring_disabled sysctl, seccomp filters,
// locked-memory limits) allows it. A loop asks for one at open(); the slot tries it and
// falls back to epoll when io_uring cannot be had (uring_backend.hpp, note a: ENOSYS,
// EPERM, ENOMEM, or a kernel older than 5.13), and kind() says which it got. Every call
// is a switch on a byte, never a virtual call; only the occupant holds kernel objects.
#pragma once

#include "../backend_contract.hpp"
#include "epoll_backend.hpp"
#include "uring_backend.hpp"

namespace evflow::detail {

class LinuxBackend {
 public:
  // What an occupant may do, as far as the loop is concerned: the strongest of them.
  static constexpr bool kReportsSignals = false;
  static constexpr bool kReportsProcesses = false;
  static constexpr bool kRenewsGradually = EpollBackend::kRenewsGradually;

  // Opens the mechanism the loop asked for (BackendKind::Default: epoll, or what the
  // EVFLOW_BACKEND environment variable names), or epoll when io_uring cannot be had.
  // Errors: EBUSY when open; EMFILE/ENFILE and ENOMEM, as epoll's.
  Error open(BackendKind wanted = BackendKind::Default) noexcept;
  void close() noexcept {
    uring_.close();
    epoll_.close();
  }
  Error reopen() noexcept { return uring() ? uring_.reopen() : epoll_.reopen(); }
  Error after_fork() noexcept { return uring() ? uring_.after_fork() : epoll_.after_fork(); }
  Error renew() noexcept { return uring() ? uring_.renew() : epoll_.renew(); }
  Error retire() noexcept { return uring() ? uring_.retire() : epoll_.retire(); }
  bool renewing() const noexcept { return uring() ? uring_.renewing() : epoll_.renewing(); }
  void apply(std::span<InterestChange> changes) noexcept {
    if (uring()) {
      uring_.apply(changes);
    } else {
      epoll_.apply(changes);
    }
  }
  void flush() noexcept {
    if (uring()) uring_.flush();
  }
  Result<int> wait(int64_t timeout_ns, int64_t deadline_ns) noexcept {
    return uring() ? uring_.wait(timeout_ns, deadline_ns) : epoll_.wait(timeout_ns, deadline_ns);
  }
  ReadyEvent event(int i) const noexcept { return uring() ? uring_.event(i) : epoll_.event(i); }
  void keep_ready_at(int64_t timeout_ns, int64_t deadline_ns) noexcept {
    if (uring()) {
      uring_.keep_ready_at(timeout_ns, deadline_ns);
    } else {
      epoll_.keep_ready_at(timeout_ns, deadline_ns);
    }
  }
  // io_uring's own wait is as cheap for a wake-up alone: it waits there.
  Result<int> wait_for_wake(bool block) noexcept {
    return uring() ? uring_.wait(block ? -1 : 0, kNoWaitDeadline) : epoll_.wait_for_wake(block);
  }
  void wake() noexcept {
    if (uring()) {
      uring_.wake();
    } else {
      epoll_.wake();
    }
  }
  void acknowledge_wake() noexcept {
    if (uring()) {
      uring_.acknowledge_wake();
    } else {
      epoll_.acknowledge_wake();
    }
  }
  int native_handle() const noexcept { return uring() ? uring_.native_handle() : epoll_.native_handle(); }
  BackendKind kind() const noexcept { return occupant_; }
  SleepPath sleep_path() const noexcept { return uring() ? uring_.sleep_path() : epoll_.sleep_path(); }
  void request_sleep_path(SleepPath path) noexcept {
    if (uring()) {
      uring_.request_sleep_path(path);
    } else {
      epoll_.request_sleep_path(path);
    }
  }
  Error set_timer_slack(int64_t ns) noexcept {
    return uring() ? uring_.set_timer_slack(ns) : epoll_.set_timer_slack(ns);
  }
  uint64_t interest_syscalls() const noexcept {
    return uring() ? uring_.interest_syscalls() : epoll_.interest_syscalls();
  }

  // Operations the kernel performs (operation.hpp): on io_uring only.
  bool performs_operations() const noexcept { return uring(); }
  Error submit(OperationRequest& request) noexcept { return uring() ? uring_.submit(request) : Error(EOPNOTSUPP); }
  void cancel(OperationRequest& request) noexcept {
    if (uring()) uring_.cancel(request);
  }
  void abandon(OperationRequest& request) noexcept {
    if (uring()) uring_.abandon(request);
  }
  OperationRequest* take_completed() noexcept { return uring() ? uring_.take_completed() : nullptr; }

  // The io_uring occupant, for tests.
  const UringBackend& uring_backend() const noexcept { return uring_; }

 private:
  static constexpr int64_t kNoWaitDeadline = INT64_MAX;
  bool uring() const noexcept { return occupant_ == BackendKind::IoUring; }

  BackendKind occupant_ = BackendKind::Epoll;
  EpollBackend epoll_;
  UringBackend uring_;
};

static_assert(ReadinessBackend<LinuxBackend>);
static_assert(PerformsOperations<LinuxBackend>);

}  // namespace evflow::detail
