// evflow — SignalFd (Linux): signalfd(2), a descriptor that becomes readable when one of
// the signals of its mask is pending for the process (or the reading thread), and from
// which they are then read, and so taken, as records (Linux >= 2.6.27). The signals must be
// blocked, or their handler or default action takes them first.
#pragma once

#include <cstdint>

#include "../result.hpp"

namespace evflow::detail {

class SignalFd {
 public:
  static constexpr bool kAvailable = true;

  SignalFd() noexcept = default;
  ~SignalFd() { close(); }
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;

  // Reads the signals of `mask` (bit signo - 1), creating the descriptor on first use
  // (close-on-exec, non-blocking). Errors: EMFILE, ENFILE, ENOMEM (nothing changes).
  Error set_mask(uint64_t mask) noexcept;
  int fd() const noexcept { return fd_; }
  uint64_t mask() const noexcept { return mask_; }
  // Lets go of the descriptor without closing it: its watcher closed it (Io::close).
  void forget() noexcept {
    fd_ = -1;
    mask_ = 0;
  }
  void close() noexcept;
  // In a forked child: a new signalfd with the same mask under the same number (the
  // inherited one shares its mask with the parent's). Errors: EMFILE, ENFILE, ENOMEM.
  Error after_fork() noexcept;
  // Reads every pending signal of the mask; returns them as a set (bit signo - 1).
  uint64_t take() noexcept;

 private:
  int fd_ = -1;
  uint64_t mask_ = 0;
};

}  // namespace evflow::detail
