// evflow — catching calls into a loop from a thread that does not own it.
//
// One loop belongs to one thread at a time (DESIGN.md, "Memory and threads"). Debug
// builds (NDEBUG not defined, or EVFLOW_THREAD_CHECKS defined) abort with a message
// when a loop-thread-only member is called from another thread; release builds pay
// nothing. A thread's identity is the address of a thread-local byte: free to read,
// and unchanged in a forked child, whose only thread continues the forking one.
#pragma once

namespace evflow::detail {

#if !defined(NDEBUG) || defined(EVFLOW_THREAD_CHECKS)
inline constexpr bool kThreadChecks = true;
#else
inline constexpr bool kThreadChecks = false;
#endif

inline const void* this_thread_identity() noexcept {
  static thread_local char marker;
  return &marker;
}

}  // namespace evflow::detail
