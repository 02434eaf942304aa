// evflow — the types a backend and the loop exchange (the contract is in backend.hpp).
#pragma once

#include <cstdint>
#include <span>

#include "platform/events.hpp"
#include "platform/result.hpp"

namespace evflow {

// One descriptor's transition from the interest the kernel has to the one wanted.
// `from` empty means "not registered"; `to` empty means "remove".
struct InterestChange {
  int fd;
  Events from;
  Events to;
  uint32_t tag;   // returned with every event of this registration
  Error error{};  // written by apply()
};

// One readiness report. fd == kWakeDescriptor reports a wake() instead.
struct ReadyEvent {
  int fd;
  uint32_t tag;
  Events events;
};
inline constexpr int kWakeDescriptor = -1;

// How wait() sleeps for a finite timeout.
enum class SleepPath : uint8_t {
  Nanoseconds,   // the kernel takes a nanosecond timeout (epoll_pwait2, kevent)
  Milliseconds,  // the timeout is rounded up to whole milliseconds (epoll_pwait)
};

}  // namespace evflow
