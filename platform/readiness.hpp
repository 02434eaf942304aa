// evflow — the types a backend and the loop exchange (the contract is in backend.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "events.hpp"
#include "result.hpp"

namespace evflow {
namespace detail {

// What a registration watches. Descriptors on every backend; signals only on a backend
// whose kernel reports them itself (Backend::kReportsSignals: kqueue's EVFILT_SIGNAL), and
// processes only on one that reports their exits (Backend::kReportsProcesses: kqueue's
// EVFILT_PROC, IOCP's process waits). Elsewhere the loop watches them through descriptors
// (signalfd, pidfd) or the signal layer.
enum class Source : uint8_t {
  Descriptor,  // `fd` is a file descriptor
  Signal,      // `fd` is a signal number; reported each time it is raised
  Process,     // `fd` is a child's pid; reported once when it exits (to is Readable)
};

// One registration's transition from the interest the kernel has to the one wanted.
// `from` empty means "not registered"; `to` empty means "remove".
struct InterestChange {
  int fd;  // the descriptor, signal number or pid (see `source`)
  Events from;
  Events to;
  uint32_t tag;   // returned with every event of this registration
  Error error{};  // written by apply()
  Source source = Source::Descriptor;
};

// The most changes the loop gives one apply() call: it gathers them in a fixed array.
inline constexpr std::size_t kMaxChangesPerApply = 64;

// One readiness report. fd == kWakeDescriptor reports a wake() instead.
struct ReadyEvent {
  int fd;  // the descriptor, signal number or pid (see `source`)
  uint32_t tag;
  Events events;
  Source source = Source::Descriptor;
};
inline constexpr int kWakeDescriptor = -1;

}  // namespace detail

// Which kernel mechanism a backend is (Loop::backend_kind()).
enum class BackendKind : uint8_t {
  Epoll,    // Linux
  IoUring,  // Linux >= 5.13, where the kernel allows it; asked for, never the default
  Kqueue,   // FreeBSD, macOS
  Iocp,     // Windows
  Default,  // asked for at Loop::open(): the platform's own (Linux: epoll, or EVFLOW_BACKEND)
};

// How wait() sleeps until a deadline, best first. A backend starts with the best its
// kernel offers and falls back when the kernel refuses; a caller may ask for a worse one.
enum class SleepPath : uint8_t {
  Nanoseconds,   // the wait takes a nanosecond timeout (epoll_pwait2, kevent)
  TimerFd,       // an absolute CLOCK_MONOTONIC timerfd in the set wakes the wait
  Milliseconds,  // the timeout is rounded up to whole milliseconds (epoll_pwait)
};

}  // namespace evflow
