// Test support: which backend the loop runs on in this build, for the few tests that
// check one kernel's own behaviour (epoll's dup quirk, its timerfd sleep path).
#pragma once

#include <type_traits>

#include "platform/backend.hpp"
#if defined(__linux__)
#include "platform/linux/linux_backend.hpp"
#endif

namespace evflow::testing {

// False in the kqueue-freebsd and kqueue-macos builds (Makefile), where the loop runs on
// the kqueue backend over the emulation, and on Windows (IOCP).
#if defined(__linux__)
inline constexpr bool kLoopUsesEpoll =
    std::is_same_v<detail::Backend, detail::LinuxBackend>;  // epoll its only occupant
#else
inline constexpr bool kLoopUsesEpoll = false;
#endif

// True on Windows: the IOCP backend, whose interest changes cost a cancel and a new poll
// (iocp_backend.hpp, note b) and whose only sleep path is milliseconds (note h).
#if defined(_WIN32)
inline constexpr bool kLoopUsesIocp = true;
#else
inline constexpr bool kLoopUsesIocp = false;
#endif

}  // namespace evflow::testing
