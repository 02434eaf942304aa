// evflow — SignalFd for this platform: a descriptor from which signals blocked in the
// process are read. See the platform's file for the mechanism.
//
// Only Linux has one (signalfd(2)). Elsewhere the class below says so: the signal layer
// never chooses its signalfd mode there (signals/signal_registry.hpp), and the loop calls
// none of the members.
#pragma once

#if defined(__linux__)
#include "linux/signal_fd.hpp"
#else

#include <cstdint>

#include "result.hpp"

namespace evflow::detail {

class SignalFd {
 public:
  static constexpr bool kAvailable = false;

  Error set_mask(uint64_t) noexcept { return Error(ENOTSUP); }
  int fd() const noexcept { return -1; }
  uint64_t mask() const noexcept { return 0; }
  void forget() noexcept {}
  void close() noexcept {}
  Error after_fork() noexcept { return Error(); }
  uint64_t take() noexcept { return 0; }
};

}  // namespace evflow::detail

#endif
