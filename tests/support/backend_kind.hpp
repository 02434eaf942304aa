// Test support: which backend the loop runs on, for the tests that check one kernel's own
// behaviour (epoll's dup quirk, its timerfd sleep path, io_uring's queued changes).
#pragma once

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "platform/backend.hpp"
#include "reactor/loop.hpp"
#if defined(__linux__)
#include "platform/linux/linux_backend.hpp"
#endif

namespace evflow::testing {

// Whether a loop opened with the default backend asks for io_uring: the whole suite runs
// on it when the environment says EVFLOW_BACKEND=io_uring (Makefile, test-io-uring).
inline bool default_backend_is_io_uring() noexcept {
  const char* name = std::getenv("EVFLOW_BACKEND");
  return name != nullptr && std::strcmp(name, "io_uring") == 0;
}

#if defined(__linux__)
inline constexpr bool kLinuxSlot = std::is_same_v<detail::Backend, detail::LinuxBackend>;
#else
inline constexpr bool kLinuxSlot = false;
#endif

// True when the loops of this run are on io_uring (as asked, where the kernel allows it:
// a kernel that refuses it gives epoll, and these tests then check epoll). Asked once, by
// opening a loop, and only by the tests that need to know.
inline bool loop_uses_io_uring() noexcept {
  static const bool answer = [] {
    if (!kLinuxSlot || !default_backend_is_io_uring()) return false;
    Loop probe;
    return !probe.open() && probe.backend_kind() == BackendKind::IoUring;
  }();
  return answer;
}

// True when they are on epoll. False in the kqueue-freebsd and kqueue-macos builds
// (Makefile), where the loop runs on the kqueue backend over the emulation, on Windows
// (IOCP), and on io_uring.
inline bool loop_uses_epoll() noexcept { return kLinuxSlot && !loop_uses_io_uring(); }

// True on Windows: the IOCP backend, whose interest changes cost a cancel and a new poll
// (iocp_backend.hpp, note b) and whose only sleep path is milliseconds (note h).
#if defined(_WIN32)
inline constexpr bool kLoopUsesIocp = true;
#else
inline constexpr bool kLoopUsesIocp = false;
#endif

}  // namespace evflow::testing
