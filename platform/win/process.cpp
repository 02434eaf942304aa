// ChildProcess on Windows (platform/child_process.hpp): a handle to the process, opened by
// id, which keeps the exit code readable and the id from being reused for as long as it is
// open. Windows has no reaping and no parent-child tie: any process this one may open
// (SYNCHRONIZE and PROCESS_QUERY_LIMITED_INFORMATION) can be watched.
#if defined(_WIN32)

#include "../child_process.hpp"

#include "win_sys.hpp"

namespace evflow::detail {

Error ChildProcess::attach(int64_t pid) noexcept {
  close();
  if (pid <= 0 || pid > 0xffffffff) return Error(ECHILD);
  HANDLE process = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid));
  if (process == nullptr) {
    const DWORD code = GetLastError();
    return code == ERROR_INVALID_PARAMETER ? Error(ECHILD) : win_abi::error_from_win32(code);
  }
  pid_ = pid;
  handle_ = process;
  return Error();
}

Error ChildProcess::open_descriptor() noexcept { return Error(ENOSYS); }

ChildProcess::Outcome ChildProcess::try_reap() noexcept {
  // STILL_ACTIVE (259) is also a code a process may exit with: ask the handle itself.
  if (WaitForSingleObject(static_cast<HANDLE>(handle_), 0) != WAIT_OBJECT_0) return {State::Running, 0};
  DWORD code = 0;
  if (!GetExitCodeProcess(static_cast<HANDLE>(handle_), &code)) return {State::ReapedElsewhere, 0};
  return {State::Exited, static_cast<int>(code)};
}

void ChildProcess::close() noexcept {
  if (handle_ != nullptr) CloseHandle(static_cast<HANDLE>(handle_));
  handle_ = nullptr;
}

// A Windows process always ends with an exit code (TerminateProcess sets one too).
bool ChildProcess::exited(int) noexcept { return true; }
int ChildProcess::code(int status) noexcept { return status; }
bool ChildProcess::signaled(int) noexcept { return false; }
int ChildProcess::signal_number(int) noexcept { return 0; }
bool ChildProcess::core_dumped(int) noexcept { return false; }

}  // namespace evflow::detail

#endif
