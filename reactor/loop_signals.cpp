// Loop: the parts that deal with processes — Signal watchers (through the process-wide
// signal layer, with a signalfd for blocked signals on Linux, or the backend's own signal
// events on kqueue) and Child watchers on the SIGCHLD and process-event paths.
#include "platform/child_process.hpp"
#include "platform/descriptor.hpp"
#include "platform/fork_generation.hpp"
#include "reactor/child.hpp"
#include "reactor/io.hpp"
#include "reactor/loop.hpp"
#include "reactor/signal.hpp"
#include "signals/signal_registry.hpp"

namespace evflow {

Error Loop::start_signal(Signal& watcher) noexcept {
  if (Error err = watch_signal(watcher.signo_)) {
    release_unused_signal_slot();  // a first watch that failed keeps no mailbox
    return err;
  }
  signals_.push_back(watcher);
  watcher.active_ = true;
  ++active_;
  return Error();
}

Error Loop::watch_signal(int signo) noexcept {
  if (signal_slot_ < 0) {
    const signals::Waker waker{[](void* loop) noexcept { static_cast<Loop*>(loop)->wake(); }, this};
    Result<int> slot = signals::acquire_slot(waker);
    if (!slot) return slot.error();
    signal_slot_ = slot.value();
  }
  if (signal_watchers_[signo] == 0) {
    // On kqueue, a signal that arrives after the disposition is set and before the
    // registration reaches no kqueue yet: that window is the start's, as it is for
    // sigaction followed by kevent in any program.
    Result<signals::CatchMode> mode = signals::watch(signal_slot_, signo, Backend::kReportsSignals);
    if (!mode) return mode.error();
    Error err;
    if (mode.value() == signals::CatchMode::SignalFd) {
      err = update_signalfd(signal_fd_.mask() | signals::bit_of(signo));
    } else if (mode.value() == signals::CatchMode::KernelFilter) {
      err = change_signal_filter(signo, true);
    }
    if (err) {
      signals::unwatch(signal_slot_, signo);
      return err;
    }
  }
  ++signal_watchers_[signo];
  return Error();
}

void Loop::unwatch_signal(int signo) noexcept {
  if (--signal_watchers_[signo] != 0) return;
  signals::unwatch(signal_slot_, signo);
  const uint64_t bit = signals::bit_of(signo);
  if (signal_fd_.mask() & bit) (void)update_signalfd(signal_fd_.mask() & ~bit);
  if (filtered_signals_ & bit) (void)change_signal_filter(signo, false);
}

Error Loop::change_signal_filter(int signo, bool watch) noexcept {
  const uint64_t bit = signals::bit_of(signo);
  const Error fork_pending = check_fork();  // a forked child registers in its own kqueue
  if (!watch && fork_pending) {
    filtered_signals_ &= ~bit;  // not rebuilt: the registration went with the parent's kqueue
    filtered_signals_pending_ &= filtered_signals_;
    return Error();
  }
  if (fork_pending) return fork_pending;
  const Events interest = watch ? Readable : Events();
  InterestChange change{signo, watch ? Events() : Readable, interest, next_tag(), {}, Source::Signal};
  backend_.apply(std::span<InterestChange>(&change, 1));
  if (watch && change.error) return change.error;
  filtered_signals_ = watch ? filtered_signals_ | bit : filtered_signals_ & ~bit;
  filtered_signals_pending_ &= filtered_signals_;
  return Error();
}

Error Loop::restart_signal(Signal& watcher, int signo) noexcept {
  // Take the new watch before dropping the old one: the signal is never left at its
  // default disposition in between, and one caught but not dispatched stays pending.
  if (Error err = watch_signal(signo)) return err;
  unwatch_signal(watcher.signo_);
  watcher.signo_ = signo;
  return Error();
}

void Loop::stop_signal(Signal& watcher) noexcept {
  signals_.remove(watcher);
  watcher.active_ = false;
  --active_;
  unwatch_signal(watcher.signo_);
  release_unused_signal_slot();
}

void Loop::release_unused_signal_slot() noexcept {
  // No Signal watcher left (its internal SIGCHLD one included): the mailbox goes back to
  // the signal layer, for another loop to take (at most kMaxLoops watch at once).
  if (signals_.empty() && signal_slot_ >= 0) {
    signals::release_slot(signal_slot_);
    signal_slot_ = -1;
  }
}

Error Loop::update_signalfd(uint64_t mask) noexcept {
  if constexpr (!SignalFd::kAvailable) {
    return Error(ENOTSUP);  // the signal layer chooses CatchMode::SignalFd where it exists only
  } else {
    if (mask == 0) {
      // Out of the kernel's set before the close: a forked child may hold a copy of the
      // signalfd, which would keep an orphaned registration reporting (epoll_backend.hpp,
      // note a).
      if (signalfd_io_) (void)signalfd_io_->close();
      signalfd_io_.reset();
      signal_fd_.forget();
      return Error();
    }
    if (Error err = check_fork()) return err;  // the inherited signalfd's mask is the parent's too
    const bool fresh = signal_fd_.fd() < 0;
    if (Error err = signal_fd_.set_mask(mask)) return err;
    if (!fresh) return Error();
    signalfd_io_.reset(new (std::nothrow) Io(*this));
    Error err =
        signalfd_io_ ? signalfd_io_->start(signal_fd_.fd(), Readable, [this] { read_signalfd(); }) : Error(ENOMEM);
    if (err) {
      signalfd_io_.reset();
      signal_fd_.close();
    }
    return err;
  }
}

void Loop::read_signalfd() noexcept {
  // Fan out: every loop watching the signal sees it, not only the one that read it.
  uint64_t taken = signal_fd_.take();
  while (taken != 0) {
    const int signo = __builtin_ctzll(taken) + 1;
    taken &= taken - 1;
    signals::deliver(signo);
  }
}

void Loop::dispatch_signals() noexcept {
  const uint64_t pending = signals::take_pending(signal_slot_) | filtered_signals_pending_;
  filtered_signals_pending_ = 0;
  if (pending == 0) return;
  signals_.for_each([this, pending](Signal& watcher) {
    if ((pending & signals::bit_of(watcher.signo_)) == 0) return;
    ++dispatched_;
    watcher.callback_(watcher);
  });
}

Error Loop::start_sigchld_child() noexcept {
  if constexpr (!ChildProcess::kHasSigChld) return Error(ENOTSUP);  // request_child_path() keeps Windows off it
  if (!sigchld_) {
    sigchld_.reset(new (std::nothrow) Signal(*this));
    if (!sigchld_) return Error(ENOMEM);
    if (Error err = sigchld_->start(ChildProcess::kSigChld, [this] { children_check_due_ = true; })) {
      sigchld_.reset();
      return err;
    }
  }
  ++sigchld_children_;
  ++active_;
  children_check_due_ = true;  // it may have exited before SIGCHLD was caught
  return Error();
}

void Loop::stop_sigchld_child() noexcept {
  --active_;
  if (--sigchld_children_ == 0 && sigchld_) {
    sigchld_.reset();  // restores SIGCHLD's disposition if no other loop watches it
  }
}

void Loop::check_children() noexcept {
  children_check_due_ = false;
  children_.for_each([this](Child& child) {
    // A process event's child is looked at once its registration is gone (it exited).
    const bool exited = child.path_ == ChildPath::ProcessEvent && !child.process_registered_;
    if (child.status_shared_ || child.path_ == ChildPath::SigChld) {
      (void)child.try_reap();
    } else if (exited && !child.try_reap()) {
      children_check_due_ = true;  // not a zombie yet: a moment more
    }
  });
}

Error Loop::watch_process(Child& child) noexcept {
  if (Error err = check_fork()) return err;
  InterestChange change{static_cast<int>(child.pid_), Events(), Readable, next_tag(), {}, Source::Process};
  backend_.apply(std::span<InterestChange>(&change, 1));
  // ESRCH: the kernel no longer lists the process, so it has exited (kqueue refuses a
  // zombie on some systems); waitpid() collects it at the next iteration.
  if (change.error && change.error.code() != ESRCH) return change.error;
  child.tag_ = change.tag;
  child.process_registered_ = !change.error;
  if (change.error) {
    children_check_due_ = true;
  } else {
    // The kqueue holds one registration per pid: other watchers of this pid now share it.
    children_.visit([&](Child& other) {
      if (other.path_ == ChildPath::ProcessEvent && other.process_registered_ && other.pid_ == child.pid_)
        other.tag_ = change.tag;
    });
  }
  ++active_;
  return Error();
}

void Loop::unwatch_process(Child& child) noexcept {
  --active_;
  if (!child.process_registered_) return;  // reported: the kernel dropped it (kqueue_backend.hpp, note l)
  if (check_fork()) return;                // not rebuilt: it went with the parent's kqueue
  bool shared = false;                     // another watcher of the pid still needs the registration
  children_.visit([&](Child& other) {
    if (&other != &child && other.path_ == ChildPath::ProcessEvent && other.process_registered_ &&
        other.pid_ == child.pid_)
      shared = true;
  });
  if (shared) return;
  InterestChange change{static_cast<int>(child.pid_), Readable, Events(), next_tag(), {}, Source::Process};
  backend_.apply(std::span<InterestChange>(&change, 1));
}

void Loop::dispatch_process_event(const ReadyEvent& event) noexcept {
  if (event.source == Source::Signal) {
    if (event.fd >= 1 && event.fd <= 64) filtered_signals_pending_ |= signals::bit_of(event.fd) & filtered_signals_;
    return;
  }
  // A process exited. Children are few: a walk finds its watchers (several may share
  // the registration of one pid). The kernel removed it (note l), so stop() need not;
  // the child check collects the status with waitpid(), the first watcher gets it and
  // any other hears that it was reaped elsewhere. No manual promises that NOTE_EXIT
  // comes after the process became a zombie: the check looks again until it is one.
  children_.for_each([&](Child& child) {
    if (child.path_ == ChildPath::ProcessEvent && child.process_registered_ && child.pid_ == event.fd &&
        child.tag_ == event.tag) {
      child.process_registered_ = false;
      children_check_due_ = true;
    }
  });
}

}  // namespace evflow
