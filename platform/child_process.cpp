// ChildProcess on POSIX systems (platform/child_process.hpp); Windows has its own, in
// platform/win/process.cpp. waitid/waitpid through libc: not hot paths, and libc's wrappers
// handle the siginfo layout.
#if !defined(_WIN32)

#include "child_process.hpp"

#include <sys/wait.h>

#include <cerrno>

#include "descriptor.hpp"
#if defined(__linux__)
#include "linux/sys.hpp"
#endif

namespace evflow::detail {

namespace {

#if defined(__linux__)
// The wait status waitpid() would have given, from waitid()'s siginfo.
int wait_status_from(const siginfo_t& info) noexcept {
  switch (info.si_code) {
    case CLD_EXITED:
      return (info.si_status & 0xff) << 8;
    case CLD_DUMPED:
      return (info.si_status & 0x7f) | 0x80;
    default:  // CLD_KILLED
      return info.si_status & 0x7f;
  }
}

constexpr idtype_t kWaitByPidfd = static_cast<idtype_t>(3);  // P_PIDFD, Linux >= 5.4
#endif

}  // namespace

Error ChildProcess::attach(int64_t pid) noexcept {
  close();
  // An unreaped child of ours? Asked without reaping it (WNOWAIT).
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return Error(errno);
  pid_ = pid;
  return Error();
}

Error ChildProcess::open_descriptor() noexcept {
#if defined(__linux__)
  Result<int> fd = linux_abi::pidfd_open(static_cast<int>(pid_));
  if (!fd) return fd.error().code() == ESRCH ? Error(ECHILD) : fd.error();
  descriptor_ = fd.value();
  return Error();
#else
  return Error(ENOSYS);
#endif
}

ChildProcess::Outcome ChildProcess::try_reap() noexcept {
#if defined(__linux__)
  if (descriptor_ >= 0) {
    // By pidfd: exact even if the pid was reaped elsewhere and reused meanwhile.
    siginfo_t info{};
    int result;
    do {
      result = ::waitid(kWaitByPidfd, static_cast<id_t>(descriptor_), &info, WEXITED | WNOHANG);
    } while (result < 0 && errno == EINTR);
    if (result == 0) {
      if (info.si_pid == 0) return {State::Running, 0};
      return {State::Exited, wait_status_from(info)};
    }
    if (errno != EINVAL) return {State::ReapedElsewhere, 0};  // ECHILD
    // EINVAL: a kernel without P_PIDFD (5.3): by pid, below.
  }
#endif
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(static_cast<pid_t>(pid_), &status, WNOHANG);  // this pid only: never another's child
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return {State::Running, 0};  // a spurious readiness, or another child's SIGCHLD
  if (reaped == static_cast<pid_t>(pid_)) return {State::Exited, status};
  return {State::ReapedElsewhere, 0};
}

void ChildProcess::close() noexcept {
  if (descriptor_ >= 0) (void)close_descriptor(descriptor_);
  descriptor_ = -1;
}

bool ChildProcess::exited(int status) noexcept { return WIFEXITED(status); }
int ChildProcess::code(int status) noexcept { return WEXITSTATUS(status); }
bool ChildProcess::signaled(int status) noexcept { return WIFSIGNALED(status); }
int ChildProcess::signal_number(int status) noexcept { return WTERMSIG(status); }
bool ChildProcess::core_dumped(int status) noexcept { return WIFSIGNALED(status) && WCOREDUMP(status); }

}  // namespace evflow::detail

#endif
