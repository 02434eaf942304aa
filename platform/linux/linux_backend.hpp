// evflow — the Linux backend slot: the loop's backend on Linux, chosen at run time.
//
// Linux offers more than one readiness mechanism: epoll everywhere, and io_uring where the
// kernel (and its configuration: the kernel.io_uring_disabled sysctl, seccomp filters,
// locked-memory limits) allows it. A loop asks for one at open(); the slot probes it and
// falls back to epoll when the kernel answers ENOSYS or EPERM, and Loop::backend_kind()
// says which it got. Today epoll is the only occupant and every call goes straight to it;
// io_uring joins as a second occupant, chosen by a switch on a byte (never a virtual call).
#pragma once

#include "../backend_contract.hpp"
#include "epoll_backend.hpp"

namespace evflow::detail {

class LinuxBackend {
 public:
  // What an occupant may do, as far as the loop is concerned: the strongest of them.
  static constexpr bool kReportsSignals = EpollBackend::kReportsSignals;
  static constexpr bool kReportsProcesses = EpollBackend::kReportsProcesses;
  static constexpr bool kRenewsGradually = EpollBackend::kRenewsGradually;

  // Opens `wanted` if this kernel allows it, otherwise epoll. Errors: those of opening epoll.
  Error open(BackendKind wanted = BackendKind::Epoll) noexcept {
    (void)wanted;  // io_uring: probed here, falling back on ENOSYS/EPERM
    occupant_ = BackendKind::Epoll;
    return epoll_.open();
  }
  void close() noexcept { epoll_.close(); }
  Error reopen() noexcept { return epoll_.reopen(); }
  Error after_fork() noexcept { return epoll_.after_fork(); }
  Error renew() noexcept { return epoll_.renew(); }
  Error retire() noexcept { return epoll_.retire(); }
  bool renewing() const noexcept { return epoll_.renewing(); }
  void apply(std::span<InterestChange> changes) noexcept { epoll_.apply(changes); }
  Result<int> wait(int64_t timeout_ns, int64_t deadline_ns) noexcept { return epoll_.wait(timeout_ns, deadline_ns); }
  ReadyEvent event(int i) const noexcept { return epoll_.event(i); }
  void keep_ready_at(int64_t timeout_ns, int64_t deadline_ns) noexcept {
    epoll_.keep_ready_at(timeout_ns, deadline_ns);
  }
  Result<int> wait_for_wake(bool block) noexcept { return epoll_.wait_for_wake(block); }
  void wake() noexcept { epoll_.wake(); }
  void acknowledge_wake() noexcept { epoll_.acknowledge_wake(); }
  int native_handle() const noexcept { return epoll_.native_handle(); }
  BackendKind kind() const noexcept { return occupant_; }
  SleepPath sleep_path() const noexcept { return epoll_.sleep_path(); }
  void request_sleep_path(SleepPath path) noexcept { epoll_.request_sleep_path(path); }
  Error set_timer_slack(int64_t ns) noexcept { return epoll_.set_timer_slack(ns); }
  uint64_t interest_syscalls() const noexcept { return epoll_.interest_syscalls(); }

 private:
  BackendKind occupant_ = BackendKind::Epoll;
  EpollBackend epoll_;
};

static_assert(ReadinessBackend<LinuxBackend>);

}  // namespace evflow::detail
