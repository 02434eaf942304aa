#include "reactor/child.hpp"

#include <cerrno>

namespace evflow {

bool ExitStatus::exited() const noexcept { return known_ && ChildProcess::exited(status_); }
int ExitStatus::code() const noexcept { return ChildProcess::code(status_); }
bool ExitStatus::signaled() const noexcept { return known_ && ChildProcess::signaled(status_); }
int ExitStatus::signal_number() const noexcept { return ChildProcess::signal_number(status_); }
bool ExitStatus::core_dumped() const noexcept { return known_ && ChildProcess::core_dumped(status_); }

Error Child::start(pid_t pid) noexcept {
  if (loop_ == nullptr || !loop_->open_ || !callback_) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (Error err = loop_->check_fork())
    return err;  // in a forked child, rebuild first (it drops inherited Child watchers)
  if (active_) stop();
  if (pid <= 0) return Error(EINVAL);
  if (Error err = process_.attach(pid)) return err;  // our unreaped child (POSIX), an open handle (Windows)
  pid_ = pid;
  status_ = ExitStatus();
  status_shared_ = false;
  path_ = loop_->child_path_;
  process_registered_ = false;
  if (path_ == ChildPath::Pidfd) {
    if (Error err = start_pidfd()) return err;
  } else if (path_ == ChildPath::ProcessEvent) {
    if (Error err = loop_->watch_process(*this)) {
      process_.close();
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
  if (Error err = process_.open_descriptor()) {
    if (err.code() != ENOSYS && err.code() != EPERM) return err;
    loop_->child_path_ = path_ = ChildPath::SigChld;  // this kernel has no pidfd: SIGCHLD from now on
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
  loop_->assert_owner_thread();
  loop_->children_.remove(*this);
  active_ = false;
  if (path_ == ChildPath::SigChld) {
    loop_->stop_sigchld_child();
  } else if (path_ == ChildPath::ProcessEvent) {
    loop_->unwatch_process(*this);
    process_registered_ = false;
  } else if (process_.descriptor() >= 0) {
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
  const ChildProcess::Outcome outcome = process_.try_reap();
  if (outcome.state == ChildProcess::State::Running) return false;
  report(outcome.state == ChildProcess::State::Exited ? ExitStatus::from_wait_status(outcome.status)
                                                      : ExitStatus::unknown());
  return true;
}

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
