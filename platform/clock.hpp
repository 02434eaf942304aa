// evflow — the monotonic clock every loop reads.
//
// Linux path: libc's clock_gettime(CLOCK_MONOTONIC), which the vDSO answers in user
// space. This is the one call on the hot path that deliberately goes through libc: the
// raw system call costs several times more (bench/io_bench.cpp measures both side by
// side: BM_ClockVdso and BM_ClockRawSyscall).
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>

namespace evflow {
namespace detail {

// Nanoseconds since an unspecified start (boot, on Linux). Never goes backwards.
inline int64_t monotonic_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Nanoseconds since the Unix epoch on the wall clock (CLOCK_REALTIME, also a vDSO
// call). Jumps when the administrator or NTP sets the time.
inline int64_t realtime_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace detail

// A std::chrono clock over monotonic_ns(), so durations and time points type-check.
struct MonotonicClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<MonotonicClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(duration(detail::monotonic_ns())); }
};

// A std::chrono clock over realtime_ns(): what Periodic watchers are scheduled on.
// Nanoseconds on every platform (std::chrono::system_clock is not, everywhere).
struct WallClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<WallClock>;
  static constexpr bool is_steady = false;
  static time_point now() noexcept { return time_point(duration(detail::realtime_ns())); }
  static time_point from_sys(std::chrono::system_clock::time_point t) noexcept {
    return time_point(std::chrono::duration_cast<duration>(t.time_since_epoch()));
  }
};

}  // namespace evflow
