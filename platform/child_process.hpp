// evflow — ChildProcess: one child process watched for its exit, as the operating system
// lets a process wait for its children. The reactor's Child watcher is built on it and
// names no operating system.
//
// POSIX (platform/child_process.cpp): a child is checked without being reaped
// (waitid(WNOWAIT)), and reaped by its pid only (waitpid(pid, WNOHANG)), never another's.
// Linux adds a pidfd (pidfd_open, Linux >= 5.3): a descriptor readable when the child
// exits, and a reap by that descriptor (waitid(P_PIDFD), Linux >= 5.4), exact even if the
// pid was reaped elsewhere and reused meanwhile. Windows (platform/win/process.cpp): a
// handle to the process, opened by id (which keeps the id from being reused); its exit
// code is read from it; there is no reaping.
#pragma once

#include <cstdint>

#include "result.hpp"

#if !defined(_WIN32)
#include <signal.h>
#endif

namespace evflow::detail {

class ChildProcess {
 public:
  // A descriptor readable when the child exits (Linux's pidfd).
#if defined(__linux__)
  static constexpr bool kHasDescriptor = true;
#else
  static constexpr bool kHasDescriptor = false;
#endif
  // Exits announced by a signal (SIGCHLD, POSIX); Windows has only the process handle.
#if defined(_WIN32)
  static constexpr bool kHasSigChld = false;
  static constexpr int kSigChld = 0;
#else
  static constexpr bool kHasSigChld = true;
  static constexpr int kSigChld = SIGCHLD;
#endif

  ChildProcess() noexcept = default;
  ~ChildProcess() { close(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Takes `pid` to watch. POSIX: checks, without reaping it, that it is an unreaped child
  // of this process; Windows: opens a handle to it. Errors: ECHILD (POSIX: not an
  // unreaped child of ours; Windows: no such process), EACCES (Windows: may not be opened).
  Error attach(int64_t pid) noexcept;
  // Opens the descriptor (kHasDescriptor). ENOSYS or EPERM: this kernel, or a filter,
  // has none; ECHILD: the process is gone; EMFILE, ENFILE.
  Error open_descriptor() noexcept;
  int descriptor() const noexcept { return descriptor_; }
  // Forgets the descriptor without closing it: its watcher closed it (Io::close).
  void forget_descriptor() noexcept { descriptor_ = -1; }
  // Windows: the process handle, for the backend's wait; null elsewhere.
  void* handle() const noexcept { return handle_; }

  enum class State : uint8_t { Running, Exited, ReapedElsewhere };
  struct Outcome {
    State state;
    int status;  // Exited: the wait status (POSIX) or the exit code (Windows)
  };
  // Collects the exit if there is one: reaps the child (POSIX), reads its exit code
  // (Windows). Running: not yet; ReapedElsewhere: other code reaped it first.
  Outcome try_reap() noexcept;

  // Closes the descriptor and the handle. Idempotent.
  void close() noexcept;

  // What a status of try_reap() says (waitpid(2)'s macros, or a Windows exit code).
  static bool exited(int status) noexcept;
  static int code(int status) noexcept;
  static bool signaled(int status) noexcept;
  static int signal_number(int status) noexcept;
  static bool core_dumped(int status) noexcept;

 private:
  int64_t pid_ = 0;
  int descriptor_ = -1;
  void* handle_ = nullptr;
};

}  // namespace evflow::detail
