// Test support (Windows): a process started with CreateProcessW for Child watchers and
// the IOCP backend's process waits to watch.
#pragma once

#if defined(_WIN32)

#include <sys/types.h>
#include <windows.h>

#include <string>

namespace evflow::testing {

// Bounds a wait that only a failing test would see last.
constexpr DWORD kCapMilliseconds = 60'000;

// A process a test created, with its creator's handle.
class Spawned {
 public:
  // Runs `command` (found on the PATH), with CreateProcessW's `flags`.
  //
  // wine 8 (Debian 12): about one CreateProcessW in two thousand fails with
  // ERROR_INTERNAL_ERROR, the new process having ended before it reported its start
  // (NtCreateUserProcess, dlls/ntdll/unix/process.c, turns that into STATUS_INTERNAL_ERROR).
  // Seen with "cmd.exe /c exit 3" and suspended cmd.exe alike, the first spawn of a run
  // included. Another attempt starts it; no test here is about CreateProcessW.
  explicit Spawned(std::wstring command, DWORD flags = 0) {
    STARTUPINFOW startup{};
    startup.cb = sizeof startup;
    PROCESS_INFORMATION info{};
    for (int attempt = 0; attempt < 3; ++attempt) {
      error_ = 0;
      if (CreateProcessW(nullptr, command.data(), nullptr, nullptr, FALSE, flags, nullptr, nullptr, &startup, &info))
        break;
      error_ = GetLastError();
      if (error_ != ERROR_INTERNAL_ERROR) break;
    }
    if (error_ != 0) return;
    CloseHandle(info.hThread);
    handle_ = info.hProcess;
    pid_ = static_cast<pid_t>(info.dwProcessId);
  }
  ~Spawned() {
    if (handle_ == nullptr) return;
    (void)TerminateProcess(handle_, 1);  // one a failing test left running; nothing after its exit
    release();
  }
  Spawned(const Spawned&) = delete;
  Spawned& operator=(const Spawned&) = delete;

  pid_t pid() const { return pid_; }
  HANDLE handle() const { return handle_; }
  DWORD error() const { return error_; }  // CreateProcessW's, when pid() is 0
  bool terminate(UINT code) const { return TerminateProcess(handle_, code) != 0; }
  bool ended() const { return WaitForSingleObject(handle_, kCapMilliseconds) == WAIT_OBJECT_0; }
  // Closes the creator's handle: from then on only the watcher's keeps the process.
  void release() {
    CloseHandle(handle_);
    handle_ = nullptr;
  }

 private:
  HANDLE handle_ = nullptr;
  pid_t pid_ = 0;
  DWORD error_ = 0;
};

}  // namespace evflow::testing

#endif
