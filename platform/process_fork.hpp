// evflow — detail::ProcessFork: fork(2) and the few calls around a forked worker process
// (platform/process_fork.cpp).
//
// POSIX has them all. Windows has no fork(): kAvailable is false there, and every member
// answers ENOTSUP (or does nothing), so that the code above compiles unchanged.
#pragma once

#include <cstdint>

#include "result.hpp"

namespace evflow::detail {

class ProcessFork {
 public:
#if defined(_WIN32)
  static constexpr bool kAvailable = false;
#else
  static constexpr bool kAvailable = true;
#endif

  // fork(): 0 in the child, the child's id in the parent. ENOTSUP on Windows; EAGAIN,
  // ENOMEM when the kernel refuses.
  static Result<int> fork() noexcept;
  // This process's id, and its parent's (getppid(): 1 or a subreaper once the parent died).
  static int self_id() noexcept;
  static int parent_id() noexcept;
  // _exit(code): ends a forked child without running the parent's atexit handlers or
  // static destructors, and without flushing the parent's stdio buffers a second time.
  [[noreturn]] static void exit_now(int code) noexcept;
  // Unblocks every signal in the calling thread (a forked worker starts with none blocked,
  // whatever its parent blocked for a signalfd). Nothing on Windows.
  static void unblock_signals() noexcept;
  // kill(pid, signal). ESRCH: no such process; ENOTSUP on Windows.
  static Error send_signal(int pid, int signal) noexcept;
  // waitpid(pid, 0): blocks until `pid` has exited and reaps it; ECHILD if it is not an
  // unreaped child of this process (reaped elsewhere). For a child already sent SIGKILL.
  static Error reap_blocking(int pid) noexcept;
  // What tells an open file from another under the same descriptor number (its inode,
  // st_ino of fstat(2)); 0 when it cannot be read (a closed descriptor; Windows).
  static unsigned long long file_identity(int fd) noexcept;
  // SIGTERM and SIGKILL (their POSIX numbers on Windows, where nothing sends them).
  static int terminate_signal() noexcept;
  static int kill_signal() noexcept;
};

}  // namespace evflow::detail
