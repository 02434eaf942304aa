#include "reactor/child.hpp"

#include <cerrno>

#include "platform/descriptor.hpp"
#if defined(__linux__)
#include "platform/linux/sys.hpp"
#endif
#if defined(_WIN32)
#include "platform/win/process.hpp"
#else
#include <sys/wait.h>
#endif

namespace evflow {

#if defined(_WIN32)
// A Windows process always ends with an exit code (TerminateProcess sets one too).
bool ExitStatus::exited() const noexcept { return known_; }
int ExitStatus::code() const noexcept { return status_; }
bool ExitStatus::signaled() const noexcept { return false; }
int ExitStatus::signal_number() const noexcept { return 0; }
bool ExitStatus::core_dumped() const noexcept { return false; }
#else
bool ExitStatus::exited() const noexcept { return known_ && WIFEXITED(status_); }
int ExitStatus::code() const noexcept { return WEXITSTATUS(status_); }
bool ExitStatus::signaled() const noexcept { return known_ && WIFSIGNALED(status_); }
int ExitStatus::signal_number() const noexcept { return WTERMSIG(status_); }
bool ExitStatus::core_dumped() const noexcept { return known_ && WIFSIGNALED(status_) && WCOREDUMP(status_); }
#endif

Error Child::start(pid_t pid) noexcept {
  if (loop_ == nullptr || !loop_->open_ || !callback_) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (Error err = loop_->check_fork())
    return err;  // in a forked child, rebuild first (it drops inherited Child watchers)
  if (active_) stop();
  if (pid <= 0) return Error(EINVAL);
#if defined(_WIN32)
  // A handle keeps the exit code readable and the pid from being reused (process.hpp).
  Result<void*> process = win::open_process(pid);
  if (!process) return process.error();
  process_ = process.value();
#else
  // Is it an unreaped child of ours? Ask without reaping (WNOWAIT). waitid through libc:
  // not a hot path, and libc's wrapper handles the siginfo layout.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return Error(errno);
#endif
  pid_ = pid;
  status_ = ExitStatus();
  status_shared_ = false;
  path_ = loop_->child_path_;
  process_registered_ = false;
  if (path_ == ChildPath::Pidfd) {
    if (Error err = start_pidfd()) return err;
  } else if (path_ == ChildPath::ProcessEvent) {
    if (Error err = loop_->watch_process(*this)) {
      release_handles();
      return err;
    }
  }
  if (path_ == ChildPath::SigChld) {
    if (Error err = loop_->start_sigchld_child()) return err;
  }
  loop_->children_.push_back(*this);
  active_ = true;
  loop_->changed_outside_run();
  return Error();
}

Error Child::start_pidfd() noexcept {
#if defined(__linux__)
  Result<int> fd = linux_abi::pidfd_open(pid_);
  if (!fd && (fd.error().code() == ENOSYS || fd.error().code() == EPERM)) {
    loop_->child_path_ = path_ = ChildPath::SigChld;  // this kernel has no pidfd: SIGCHLD from now on
    return Error();
  }
  if (!fd) return fd.error().code() == ESRCH ? Error(ECHILD) : fd.error();
  pidfd_ = fd.value();
  if (Error err = pidfd_watch_.start(pidfd_, Readable, [this] { (void)try_reap(); })) {
    (void)close_descriptor(pidfd_);
    pidfd_ = -1;
    return err;
  }
  return Error();
#else
  path_ = ChildPath::SigChld;  // request_child_path() keeps Pidfd off Linux; be safe anyway
  return Error();
#endif
}

void Child::stop() noexcept {
  if (!active_) return;
  loop_->assert_owner_thread();
  loop_->children_.remove(*this);
  active_ = false;
  if (path_ == ChildPath::SigChld) {
    loop_->stop_sigchld_child();
  } else if (path_ == ChildPath::ProcessEvent) {
    loop_->unwatch_process(*this);
    process_registered_ = false;
  } else if (pidfd_ >= 0) {
    (void)pidfd_watch_.close();  // out of the kernel's set first: forked children may hold copies
    pidfd_ = -1;
  }
  release_handles();
}

void Child::release_handles() noexcept {
  if (pidfd_ >= 0) (void)close_descriptor(pidfd_);
  pidfd_ = -1;
#if defined(_WIN32)
  win::close_process(process_);
  process_ = nullptr;
#endif
}

#if defined(__linux__)
namespace {

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

}  // namespace
#endif

#if defined(_WIN32)
bool Child::try_reap() noexcept {
  if (status_shared_) {
    report(shared_status_);
    return true;
  }
  Result<uint32_t> code = win::exit_code(process_);
  if (!code && code.error().code() == EAGAIN) return false;  // still running
  report(code ? ExitStatus::from_wait_status(static_cast<int>(code.value())) : ExitStatus::unknown());
  return true;
}
#else
bool Child::try_reap() noexcept {
  if (status_shared_) {  // another watcher of this loop reaped it (report())
    report(shared_status_);
    return true;
  }
  int status = 0;
  pid_t reaped = 0;
  bool done = false;
#if defined(__linux__)
  if (pidfd_ >= 0) {
    // By pidfd: exact even if the pid was reaped elsewhere and reused meanwhile.
    siginfo_t info{};
    int result;
    do {
      result = ::waitid(kWaitByPidfd, static_cast<id_t>(pidfd_), &info, WEXITED | WNOHANG);
    } while (result < 0 && errno == EINTR);
    if (result == 0) {
      if (info.si_pid == 0) return false;  // not exited yet
      status = wait_status_from(info);
      reaped = pid_;
      done = true;
    } else if (errno != EINVAL) {
      done = true;  // ECHILD: someone else reaped it
    }
  }
#endif
  if (!done) {  // SIGCHLD path, or a kernel without P_PIDFD
    do {
      reaped = ::waitpid(pid_, &status, WNOHANG);  // this pid only: never another's child
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) return false;  // still running (a spurious readiness or another child's SIGCHLD)
  }
  report(reaped == pid_ ? ExitStatus::from_wait_status(status) : ExitStatus::unknown());
  return true;
}

#endif

void Child::report(ExitStatus result) noexcept {
  // Other watchers of the same process in this loop get the same status: at the child
  // check that follows (or when their own pidfd reports), not "reaped elsewhere".
  if (!result.reaped_elsewhere()) {
    loop_->children_.visit([&](Child& other) {
      if (&other == this || other.pid_ != pid_ || other.status_shared_) return;
      other.shared_status_ = result;
      other.status_shared_ = true;
      loop_->children_check_due_ = true;
    });
  }
  stop();
  status_ = result;
  ++loop_->dispatched_;
  callback_(*this, result);
}

}  // namespace evflow
