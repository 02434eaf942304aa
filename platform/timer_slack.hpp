// evflow — the calling thread's timer slack: how late the kernel may end a timed sleep
// so that it can batch wake-ups. Linux: prctl(2) PR_SET_TIMERSLACK / PR_GET_TIMERSLACK
// (default 50 us for normal threads; not applied to realtime-policy threads).
#pragma once

#include <cstdint>

#include "result.hpp"

#if defined(__linux__)
#include "linux/sys.hpp"
#endif

namespace evflow::detail {

// Sets the calling thread's slack to `ns` (> 0). Errors: EINVAL; ENOTSUP elsewhere.
inline Error set_thread_timer_slack(int64_t ns) noexcept {
  if (ns <= 0) return Error(EINVAL);  // Linux reads 0 as "restore the default"
#if defined(__linux__)
  return linux_abi::prctl(linux_abi::kSetTimerSlack, static_cast<unsigned long>(ns)).error();
#else
  return Error(ENOTSUP);
#endif
}

// The calling thread's slack in nanoseconds; 0 where the platform has no such notion.
inline int64_t thread_timer_slack() noexcept {
#if defined(__linux__)
  return linux_abi::prctl(linux_abi::kGetTimerSlack, 0).value_or(0);
#else
  return 0;
#endif
}

}  // namespace evflow::detail
