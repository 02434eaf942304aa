#if defined(_WIN32)

#include "console_events.hpp"

#include <atomic>

#include "win_sys.hpp"

namespace evflow::detail::win {

namespace {

std::atomic<void (*)(int) noexcept> g_deliver{nullptr};
std::atomic<bool (*)(int) noexcept> g_watched{nullptr};

BOOL WINAPI on_console_event(DWORD ctrl_type) {
  if (!dispatch_console_event(ctrl_type)) return FALSE;
  // Note in the header: returning from a close event ends the process at once.
  if (ctrl_type == CTRL_CLOSE_EVENT) Sleep(INFINITE);
  return TRUE;
}

}  // namespace

int signal_of_console_event(unsigned long ctrl_type) noexcept {
  switch (ctrl_type) {
    case CTRL_C_EVENT:
      return kSigInt;
    case CTRL_BREAK_EVENT:
      return kSigBreak;
    case CTRL_CLOSE_EVENT:
      return kSigHup;
    default:  // CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT: services only
      return 0;
  }
}

bool dispatch_console_event(unsigned long ctrl_type) noexcept {
  const int signo = signal_of_console_event(ctrl_type);
  auto deliver = g_deliver.load();
  auto watched = g_watched.load();
  if (signo == 0 || deliver == nullptr || watched == nullptr || !watched(signo)) return false;
  deliver(signo);
  return true;
}

Error install_console_handler(ConsoleSink sink) noexcept {
  g_watched.store(sink.watched);
  g_deliver.store(sink.deliver);
  if (!SetConsoleCtrlHandler(on_console_event, TRUE)) return win_abi::last_error();
  return Error();
}

}  // namespace evflow::detail::win

#endif
