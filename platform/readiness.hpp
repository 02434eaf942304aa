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

// How wait() sleeps until a deadline, best first. A backend starts with the best its
// kernel offers and falls back when the kernel refuses; a caller may ask for a worse one.
enum class SleepPath : uint8_t {
  Nanoseconds,   // the wait takes a nanosecond timeout (epoll_pwait2, kevent)
  TimerFd,       // an absolute CLOCK_MONOTONIC timerfd in the set wakes the wait
  Milliseconds,  // the timeout is rounded up to whole milliseconds (epoll_pwait)
};

}  // namespace evflow
