// evflow — the process handles Child watchers hold on Windows.
//
// A Windows process has no parent that must reap it: its exit code stays readable for as
// long as someone holds a handle to it. A Child watcher opens one when it starts, by
// process id (a pid is not reused while any handle to its process is open, so the
// creator's own handle from CreateProcess keeps it stable), and reads the exit code once
// the backend reports the exit (platform/win/iocp_backend.hpp, note i).
#pragma once

#include <cstdint>

#include "platform/result.hpp"

namespace evflow::win {

// A handle to process `pid` for waiting and reading its exit code. Errors: ECHILD when no
// such process exists, EACCES when it may not be opened.
Result<void*> open_process(int64_t pid) noexcept;
// The exit code of an ended process; EAGAIN while it still runs.
Result<uint32_t> exit_code(void* process) noexcept;
void close_process(void* process) noexcept;

}  // namespace evflow::win
