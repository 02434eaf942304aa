#if defined(_WIN32)

#include "platform/win/process.hpp"

#include "platform/win/win_sys.hpp"

namespace evflow::win {

Result<void*> open_process(int64_t pid) noexcept {
  if (pid <= 0 || pid > 0xffffffff) return Error(ECHILD);
  HANDLE process = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid));
  if (process != nullptr) return static_cast<void*>(process);
  const DWORD code = GetLastError();
  return code == ERROR_INVALID_PARAMETER ? Error(ECHILD) : win_abi::error_from_win32(code);
}

Result<uint32_t> exit_code(void* process) noexcept {
  // STILL_ACTIVE (259) is also a code a process may exit with: ask the handle itself.
  if (WaitForSingleObject(static_cast<HANDLE>(process), 0) != WAIT_OBJECT_0) return Error(EAGAIN);
  DWORD code = 0;
  if (!GetExitCodeProcess(static_cast<HANDLE>(process), &code)) return win_abi::last_error();
  return static_cast<uint32_t>(code);
}

void close_process(void* process) noexcept {
  if (process != nullptr) CloseHandle(static_cast<HANDLE>(process));
}

}  // namespace evflow::win

#endif
