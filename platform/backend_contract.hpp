// evflow — the backend contract as a C++20 concept: what platform/backend.hpp describes in
// words, checked by the compiler. Each backend header asserts its class against it, and
// platform/backend.hpp asserts the backend chosen for the build.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>

#include "readiness.hpp"

namespace evflow::detail {

template <class B>
concept ReadinessBackend = requires(B& b, const B& cb, std::span<InterestChange> changes, int64_t ns, SleepPath path) {
  { B::kReportsSignals } -> std::convertible_to<bool>;
  { B::kReportsProcesses } -> std::convertible_to<bool>;
  { B::kRenewsGradually } -> std::convertible_to<bool>;
  { b.open() }
  noexcept->std::same_as<Error>;
  { b.close() }
  noexcept->std::same_as<void>;
  { b.reopen() }
  noexcept->std::same_as<Error>;
  { b.after_fork() }
  noexcept->std::same_as<Error>;
  { b.renew() }
  noexcept->std::same_as<Error>;
  { b.retire() }
  noexcept->std::same_as<Error>;
  { cb.renewing() }
  noexcept->std::same_as<bool>;
  { b.apply(changes) }
  noexcept->std::same_as<void>;
  { b.wait(ns, ns) }
  noexcept->std::same_as<Result<int>>;
  { cb.event(0) }
  noexcept->std::same_as<ReadyEvent>;
  { b.keep_ready_at(ns, ns) }
  noexcept->std::same_as<void>;
  { b.wake() }
  noexcept->std::same_as<void>;
  { b.acknowledge_wake() }
  noexcept->std::same_as<void>;
  { cb.native_handle() }
  noexcept->std::same_as<int>;
  { cb.kind() }
  noexcept->std::same_as<BackendKind>;
  { cb.sleep_path() }
  noexcept->std::same_as<SleepPath>;
  { b.request_sleep_path(path) }
  noexcept->std::same_as<void>;
  { b.set_timer_slack(ns) }
  noexcept->std::same_as<Error>;
  { cb.interest_syscalls() }
  noexcept->std::same_as<uint64_t>;
};

// The optional choice of mechanism at open() (the Linux slot: epoll or io_uring).
template <class B>
concept OpensByKind = requires(B& b, BackendKind kind) {
  { b.open(kind) }
  noexcept->std::same_as<Error>;
};

// The optional flush of queued interest changes (io_uring), before a descriptor closes.
template <class B>
concept FlushesChanges = requires(B& b) {
  { b.flush() }
  noexcept->std::same_as<void>;
};

// b.flush() where the backend has it; nothing where it has not. (A template, so that the
// call is not checked for a backend without the member.)
template <class B>
void flush_if_any(B& b) noexcept {
  if constexpr (FlushesChanges<B>) {
    b.flush();
  } else {
    (void)b;
  }
}

// The optional wait for a wake-up alone (platform/backend.hpp).
template <class B>
concept WaitsForWake = requires(B& b) {
  { b.wait_for_wake(true) }
  noexcept->std::same_as<Result<int>>;
};

// b.wait_for_wake(block) where the backend has it; 0 (nothing reported) where it has not.
template <class B>
Result<int> wait_for_wake_if_any(B& b, bool block) noexcept {
  if constexpr (WaitsForWake<B>) {
    return b.wait_for_wake(block);
  } else {
    (void)b;
    (void)block;
    return 0;
  }
}

}  // namespace evflow::detail
