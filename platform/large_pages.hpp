// evflow — large pages for large arrays.
//
// A page fault costs microseconds, and far more in some virtual machines (measured here:
// ~14 us each under a paravirtualised guest). An array of tens of megabytes first written
// all at once, like the timer wheel's expiry batch in a first burst of a million due
// timers, then spends more time taking faults than doing its work. Where the kernel
// offers transparent huge pages on request (Linux's "madvise" mode, a common default),
// an array of at least kLargePageArray bytes is placed on 2 MB boundaries and marked for
// them: one fault per 2 MB instead of one per 4 KB. Memory stays unmapped until written,
// as before; elsewhere the advice is a no-op.
#pragma once

#include <cstddef>

#if defined(__linux__)
#include "linux/sys.hpp"
#endif

namespace evflow::detail {

inline constexpr std::size_t kLargePage = std::size_t{2} << 20;
inline constexpr std::size_t kLargePageArray = 2 * kLargePage;

// Asks for large pages over [at, at + bytes); `at` is kLargePage-aligned. A hint only.
inline void advise_large_pages(void* at, std::size_t bytes) noexcept {
#if defined(__linux__)
  (void)linux_abi::madvise(at, bytes & ~(kLargePage - 1), linux_abi::kAdviseHugePage);
#else
  (void)at;
  (void)bytes;
#endif
}

}  // namespace evflow::detail
