// Test support: a signal-layer Waker that writes 8 bytes to a descriptor, as a loop's
// eventfd wake-up does, so a test can count the wake-ups in a pipe.
#pragma once

#include <unistd.h>

#include <cstdint>

#include "signals/signal_registry.hpp"

namespace evflow::detail::signals {

// `fd` must outlive the slot the waker is given to.
inline Waker pipe_waker(const int* fd) noexcept {
  return Waker{[](void* context) noexcept {
                 const uint64_t one = 1;
                 (void)!::write(*static_cast<const int*>(context), &one, sizeof one);
               },
               const_cast<int*>(fd)};
}

}  // namespace evflow::detail::signals
