// evflow — cache hints: a line fetched before it is used, where the order of use is known
// ahead (events in report order, timers in deadline order, a sort's write places).
// Hints only: nothing is read or written, and a compiler without them drops them.
#pragma once

namespace evflow::detail {

inline void prefetch(const void* at) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(at);
#else
  (void)at;
#endif
}

// The same, for a line about to be written.
inline void prefetch_for_write(const void* at) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(at, 1);
#else
  (void)at;
#endif
}

}  // namespace evflow::detail
