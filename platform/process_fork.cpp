// ProcessFork (platform/process_fork.hpp): libc's fork, _exit, kill and waitpid on POSIX
// (fork through libc so that pthread_atfork handlers run: the loops mark themselves there);
// ENOTSUP on Windows.
#include "process_fork.hpp"

#if defined(_WIN32)
#include <cstdlib>
#else
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#endif

namespace evflow::detail {

#if defined(_WIN32)

Result<int> ProcessFork::fork() noexcept { return Error(ENOTSUP); }
int ProcessFork::self_id() noexcept { return 0; }
int ProcessFork::parent_id() noexcept { return 0; }
void ProcessFork::exit_now(int code) noexcept { std::_Exit(code); }
void ProcessFork::unblock_signals() noexcept {}
Error ProcessFork::send_signal(int, int) noexcept { return Error(ENOTSUP); }
Error ProcessFork::reap_blocking(int) noexcept { return Error(ENOTSUP); }
unsigned long long ProcessFork::file_identity(int) noexcept { return 0; }
int ProcessFork::terminate_signal() noexcept { return 15; }
int ProcessFork::kill_signal() noexcept { return 9; }

#else

Result<int> ProcessFork::fork() noexcept {
  const pid_t pid = ::fork();
  if (pid < 0) return Error(errno);
  return static_cast<int>(pid);
}
int ProcessFork::self_id() noexcept { return static_cast<int>(::getpid()); }
int ProcessFork::parent_id() noexcept { return static_cast<int>(::getppid()); }
void ProcessFork::exit_now(int code) noexcept { ::_exit(code); }
void ProcessFork::unblock_signals() noexcept {
  sigset_t none;
  sigemptyset(&none);
  (void)::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}
Error ProcessFork::send_signal(int pid, int signal) noexcept {
  if (::kill(static_cast<pid_t>(pid), signal) != 0) return Error(errno);
  return Error();
}
Error ProcessFork::reap_blocking(int pid) noexcept {
  int status = 0;
  for (;;) {
    if (::waitpid(static_cast<pid_t>(pid), &status, 0) >= 0) return Error();
    if (errno != EINTR) return Error(errno);
  }
}
unsigned long long ProcessFork::file_identity(int fd) noexcept {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return 0;
  return static_cast<unsigned long long>(info.st_ino);
}
int ProcessFork::terminate_signal() noexcept { return SIGTERM; }
int ProcessFork::kill_signal() noexcept { return SIGKILL; }

#endif

}  // namespace evflow::detail
