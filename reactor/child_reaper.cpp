#include "child_reaper.hpp"

#include <new>

#include "../platform/child_process.hpp"
#include "child.hpp"
#include "signal.hpp"

namespace evflow::detail {

ChildReaper::ChildReaper(LoopCore& core) noexcept : core_(core) {}

ChildReaper::~ChildReaper() = default;

void ChildReaper::request_path(ChildPath path) noexcept {
  if (path == ChildPath::Pidfd && !ChildProcess::kHasDescriptor) path = kDefaultPath;
  if (path == ChildPath::SigChld && !ChildProcess::kHasSigChld) path = kDefaultPath;  // Windows
  if (path == ChildPath::ProcessEvent && !Backend::kReportsProcesses) path = kDefaultPath;
  path_ = path;
}

Error ChildReaper::start(Child& child) noexcept {
  if (child.path_ == ChildPath::ProcessEvent) {
    if (Error err = watch_process(child)) return err;
  } else if (child.path_ == ChildPath::SigChld) {
    if (Error err = watch_sigchld()) return err;
  }
  children_.push_back(child);
  return Error();
}

void ChildReaper::stop(Child& child) noexcept {
  children_.remove(child);
  if (child.path_ == ChildPath::SigChld) {
    unwatch_sigchld();
  } else if (child.path_ == ChildPath::ProcessEvent) {
    unwatch_process(child);
    child.process_registered_ = false;
  }
}

void ChildReaper::share_status(Child& reaper, const ExitStatus& status) noexcept {
  children_.visit([&](Child& other) {
    if (&other == &reaper || other.pid_ != reaper.pid_ || other.status_shared_) return;
    other.shared_status_ = status;
    other.status_shared_ = true;
    check_due_ = true;
  });
}

// --- SIGCHLD ------------------------------------------------------------------------

Error ChildReaper::watch_sigchld() noexcept {
  if constexpr (!ChildProcess::kHasSigChld) return Error(ENOTSUP);  // request_path() keeps Windows off it
  if (!sigchld_) {
    sigchld_.reset(new (std::nothrow) Signal(core_.loop()));
    if (!sigchld_) return Error(ENOMEM);
    if (Error err = sigchld_->start(ChildProcess::kSigChld, [this] { check_due_ = true; })) {
      sigchld_.reset();
      return err;
    }
  }
  ++sigchld_children_;
  ++core_.active;
  ++core_.kernel_watchers;
  check_due_ = true;  // it may have exited before SIGCHLD was caught
  return Error();
}

void ChildReaper::unwatch_sigchld() noexcept {
  --core_.active;
  --core_.kernel_watchers;
  if (--sigchld_children_ == 0 && sigchld_) {
    sigchld_.reset();  // restores SIGCHLD's disposition if no other loop watches it
  }
}

int ChildReaper::internal_active() const noexcept { return sigchld_ && sigchld_->active(); }

// --- the backend's process events ---------------------------------------------------

Error ChildReaper::watch_process(Child& child) noexcept {
  if (Error err = core_.check_fork()) return err;
  InterestChange change{static_cast<int>(child.pid_), Events(), Readable, core_.take_tag(), {}, Source::Process};
  core_.backend.apply(std::span<InterestChange>(&change, 1));
  // ESRCH: the kernel no longer lists the process, so it has exited (kqueue refuses a
  // zombie on some systems); waitpid() collects it at the next iteration.
  if (change.error && change.error.code() != ESRCH) return change.error;
  child.tag_ = change.tag;
  child.process_registered_ = !change.error;
  if (change.error) {
    check_due_ = true;
  } else {
    // The kqueue holds one registration per pid: other watchers of this pid now share it.
    children_.visit([&](Child& other) {
      if (other.path_ == ChildPath::ProcessEvent && other.process_registered_ && other.pid_ == child.pid_)
        other.tag_ = change.tag;
    });
  }
  ++core_.active;
  ++core_.kernel_watchers;
  return Error();
}

void ChildReaper::unwatch_process(Child& child) noexcept {
  --core_.active;
  --core_.kernel_watchers;
  if (!child.process_registered_) return;  // reported: the kernel dropped it (kqueue_backend.hpp, note l)
  if (core_.check_fork()) return;          // not rebuilt: it went with the parent's kqueue
  bool shared = false;                     // another watcher of the pid still needs the registration
  children_.visit([&](Child& other) {
    if (&other != &child && other.path_ == ChildPath::ProcessEvent && other.process_registered_ &&
        other.pid_ == child.pid_)
      shared = true;
  });
  if (shared) return;
  InterestChange change{static_cast<int>(child.pid_), Readable, Events(), core_.take_tag(), {}, Source::Process};
  core_.backend.apply(std::span<InterestChange>(&change, 1));
}

void ChildReaper::on_backend_report(const ReadyEvent& event) noexcept {
  // A process exited. Children are few: a walk finds its watchers (several may share
  // the registration of one pid). The kernel removed it (note l), so stop() need not;
  // the child check collects the status, the first watcher reaps it and shares it. No
  // manual promises that NOTE_EXIT comes after the process became a zombie: the check
  // looks again until it is one.
  children_.visit([&](Child& child) {
    if (child.path_ == ChildPath::ProcessEvent && child.process_registered_ && child.pid_ == event.fd &&
        child.tag_ == event.tag) {
      child.process_registered_ = false;
      check_due_ = true;
    }
  });
}

void ChildReaper::reregister(ChangeBatch& batch) noexcept {
  children_.visit([&](Child& child) {
    if (child.path_ == ChildPath::ProcessEvent && child.process_registered_)
      batch.add(InterestChange{
          static_cast<int>(child.pid_), Events(), Readable, child.tag_ = core_.take_tag(), {}, Source::Process});
  });
}

Error ChildReaper::record(const InterestChange& change) noexcept {
  if (!change.error) return Error();
  if (change.source == Source::Process && change.error.code() == ESRCH) {
    children_.visit([&](Child& child) {  // exited meanwhile: reaped at the child check
      if (child.path_ == ChildPath::ProcessEvent && child.pid_ == change.fd) child.process_registered_ = false;
    });
    check_due_ = true;
    return Error();
  }
  // Refused for want of resources (ENOMEM): nothing is dropped silently; the caller
  // hears of it, and the next iteration builds the whole set again.
  core_.rebuild_needed = true;
  return change.error;
}

// --- the child check ----------------------------------------------------------------

void ChildReaper::check() noexcept {
  check_due_ = false;
  children_.for_each([this](Child& child) {
    // A process event's child is looked at once its registration is gone (it exited).
    const bool exited = child.path_ == ChildPath::ProcessEvent && !child.process_registered_;
    if (child.status_shared_ || child.path_ == ChildPath::SigChld) {
      (void)child.try_reap();
    } else if (exited && !child.try_reap()) {
      check_due_ = true;  // not a zombie yet: a moment more
    }
  });
}

// --- fork and the end -----------------------------------------------------------------

void ChildReaper::drop_inherited() noexcept {
  while (Child* child = children_.front()) {
    child->process_registered_ = false;  // it went with the parent's kqueue
    child->stop();
  }
}

void ChildReaper::detach_all() noexcept {
  // Nothing here may issue a system call on the kernel object: in a forked child that
  // has not rebuilt yet, it is still the parent's. Child watchers are let go without
  // Child::stop.
  detach_each(children_, [](Child& child) {
    child.process_.close();             // the pidfd's Io is detached with the descriptors'
    child.process_registered_ = false;  // dropped with the kqueue
    child.active_ = false;
  });
  sigchld_.reset();
  sigchld_children_ = 0;
}

}  // namespace evflow::detail
