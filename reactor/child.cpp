#include "child.hpp"

#include <cerrno>

namespace evflow {

bool ExitStatus::exited() const noexcept { return known_ && detail::ChildProcess::exited(status_); }
int ExitStatus::code() const noexcept { return detail::ChildProcess::code(status_); }
bool ExitStatus::signaled() const noexcept { return known_ && detail::ChildProcess::signaled(status_); }
int ExitStatus::signal_number() const noexcept { return detail::ChildProcess::signal_number(status_); }
bool ExitStatus::core_dumped() const noexcept { return known_ && detail::ChildProcess::core_dumped(status_); }

Error Child::start(pid_t pid) noexcept {
  if (Error err = check_loop()) return err;
  if (!callback_) return Error(EINVAL);
  if (Error err = loop_->core().check_fork())
    return err;  // in a forked child, rebuild first (it drops inherited Child watchers)
  if (active_) stop();
  if (pid <= 0) return Error(EINVAL);
  if (Error err = process_.attach(pid)) return err;  // our unreaped child (POSIX), an open handle (Windows)
  pid_ = pid;
  status_ = ExitStatus();
  status_shared_ = false;
  path_ = loop_->child_reaper().path();
  process_registered_ = false;
  if (path_ == ChildPath::Pidfd) {
    if (Error err = start_pidfd()) return err;
  }
  // The SIGCHLD and process-event paths are the reaper's to register.
  if (Error err = loop_->child_reaper().start(*this)) {
    process_.close();
    return err;
  }
  active_ = true;
  loop_->core().changed_outside_run();
  return Error();
}

Error Child::start_pidfd() noexcept {
  if (Error err = process_.open_descriptor()) {
    if (err.code() != ENOSYS && err.code() != EPERM) return err;
    loop_->child_reaper().pidfds_missing();  // this kernel has no pidfd: SIGCHLD from now on
    path_ = ChildPath::SigChld;
    return Error();
  }
  if (Error err = pidfd_watch_.start(process_.descriptor(), Readable, [this] { (void)try_reap(); })) {
    process_.close();
    return err;
  }
  return Error();
}

void Child::stop() noexcept {
  if (!active_) return;
  loop_->core().assert_owner_thread();
  loop_->child_reaper().stop(*this);  // (the SIGCHLD and process-event paths)
  active_ = false;
  if (path_ == ChildPath::Pidfd && process_.descriptor() >= 0) {
    (void)pidfd_watch_.close();  // out of the kernel's set first: forked children may hold copies
    process_.forget_descriptor();
  }
  process_.close();
}

bool Child::try_reap() noexcept {
  if (status_shared_) {  // another watcher of this loop reaped it (report())
    report(shared_status_);
    return true;
  }
  const detail::ChildProcess::Outcome outcome = process_.try_reap();
  if (outcome.state == detail::ChildProcess::State::Running) return false;
  report(outcome.state == detail::ChildProcess::State::Exited ? ExitStatus::from_wait_status(outcome.status)
                                                              : ExitStatus::unknown());
  return true;
}

void Child::report(ExitStatus result) noexcept {
  // Other watchers of the same process in this loop get the same status: at the child
  // check that follows (or when their own pidfd reports), not "reaped elsewhere".
  if (!result.reaped_elsewhere()) loop_->child_reaper().share_status(*this, result);
  detail::LoopCore& core = loop_->core();
  stop();
  status_ = result;
  ++core.dispatched;
  callback_(*this, result);
}

}  // namespace evflow
