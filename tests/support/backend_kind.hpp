// Test support: which backend the loop runs on in this build, for the few tests that
// check one kernel's own behaviour (epoll's dup quirk, its timerfd sleep path).
#pragma once

#include <type_traits>

#include "platform/backend.hpp"
#include "platform/linux/epoll_backend.hpp"

namespace evflow::testing {

// False in the kqueue-freebsd and kqueue-macos builds (Makefile), where the loop runs on
// the kqueue backend over the emulation.
inline constexpr bool kLoopUsesEpoll = std::is_same_v<Backend, EpollBackend>;

}  // namespace evflow::testing
