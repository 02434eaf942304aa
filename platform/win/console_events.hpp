// evflow — console control events as signals (Windows).
//
// Windows has no POSIX signals between processes. What a console program gets instead
// are control events, delivered by a thread the system starts in the process for each
// one, to the handlers installed with SetConsoleCtrlHandler. The signal layer
// (signals/signal_registry.cpp) installs one handler when a Signal watcher first watches
// one of the numbers below, and keeps it; the handler hands the event to the loops
// through deliver(), which wakes them with PostQueuedCompletionStatus, so callbacks run
// in the loops.
//
//   CTRL_C_EVENT      SIGINT    Ctrl+C, or GenerateConsoleCtrlEvent
//   CTRL_BREAK_EVENT  SIGBREAK  Ctrl+Break, or GenerateConsoleCtrlEvent
//   CTRL_CLOSE_EVENT  SIGHUP    the console window is closing. Windows ends the process
//                               once the handler returns, or after a grace period of a
//                               few seconds (5 s; "HandlerRoutine callback function",
//                               Microsoft Learn): the handler therefore does not return,
//                               so that the loops get that grace period for their
//                               callbacks.
// An event no loop watches is left to the next handler (the default one ends the
// process), as if evflow were not there.
#pragma once

#include "../result.hpp"

namespace evflow::detail::win {

// The signal numbers of the console events. SIGINT and SIGBREAK are the C runtime's
// (<signal.h>); the C runtime has no SIGHUP, and 1 is its number everywhere else.
inline constexpr int kSigHup = 1;
inline constexpr int kSigInt = 2;
inline constexpr int kSigBreak = 21;

// The signal number for a console control event, or 0 for one evflow does not map.
int signal_of_console_event(unsigned long ctrl_type) noexcept;

// What the handler calls: `deliver(signo)` marks the signal for every loop watching it
// and wakes them; `watched(signo)` tells whether any loop does.
struct ConsoleSink {
  void (*deliver)(int signo) noexcept;
  bool (*watched)(int signo) noexcept;
};

// Installs the process's console control handler, for good. It is never removed:
// SetConsoleCtrlHandler waits for the console lock that a running handler holds (wine's
// kernelbase/console.c), and the handler of a close event never returns. Errors: what
// SetConsoleCtrlHandler reports.
Error install_console_handler(ConsoleSink sink) noexcept;

// The handler's work for one event, without the wait a close event adds: true when a
// loop watches its signal (it was delivered), false when it was left to the next handler.
// Tests call it to raise an event that no console can send them.
bool dispatch_console_event(unsigned long ctrl_type) noexcept;

}  // namespace evflow::detail::win
