#include "signal_sources.hpp"

#include <bit>
#include <new>

#include "../signals/signal_registry.hpp"
#include "io.hpp"
#include "loop.hpp"
#include "signal.hpp"

namespace evflow::detail {

SignalSources::SignalSources(LoopCore& core) noexcept : core_(core) {}

SignalSources::~SignalSources() = default;

Error SignalSources::start(Signal& watcher) noexcept {
  if (Error err = watch(watcher.signo_)) {
    release_unused_mailbox();  // a first watch that failed keeps no mailbox
    return err;
  }
  signals_.push_back(watcher);
  watcher.active_ = true;
  ++core_.active;
  ++core_.kernel_watchers;
  return Error();
}

Error SignalSources::restart(Signal& watcher, int signo) noexcept {
  // Take the new watch before dropping the old one: the signal is never left at its
  // default disposition in between, and one caught but not dispatched stays pending.
  if (Error err = watch(signo)) return err;
  unwatch(watcher.signo_);
  watcher.signo_ = signo;
  return Error();
}

void SignalSources::stop(Signal& watcher) noexcept {
  signals_.remove(watcher);
  watcher.active_ = false;
  --core_.active;
  --core_.kernel_watchers;
  unwatch(watcher.signo_);
  release_unused_mailbox();
}

Error SignalSources::watch(int signo) noexcept {
  if (slot_ < 0) {
    const signals::Waker waker{[](void* loop) noexcept { static_cast<Loop*>(loop)->wake(); }, &core_.loop()};
    Result<int> slot = signals::acquire_slot(waker);
    if (!slot) return slot.error();
    slot_ = slot.value();
  }
  if (watchers_[signo] == 0) {
    // On kqueue, a signal that arrives after the disposition is set and before the
    // registration reaches no kqueue yet: that window is the start's, as it is for
    // sigaction followed by kevent in any program.
    Result<signals::CatchMode> mode = signals::watch(slot_, signo, Backend::kReportsSignals);
    if (!mode) return mode.error();
    Error err;
    if (mode.value() == signals::CatchMode::SignalFd) {
      err = update_signalfd(signal_fd_.mask() | signals::bit_of(signo));
    } else if (mode.value() == signals::CatchMode::KernelFilter) {
      err = change_filter(signo, true);
    }
    if (err) {
      signals::unwatch(slot_, signo);
      return err;
    }
  }
  ++watchers_[signo];
  return Error();
}

void SignalSources::unwatch(int signo) noexcept {
  if (--watchers_[signo] != 0) return;
  signals::unwatch(slot_, signo);
  const uint64_t bit = signals::bit_of(signo);
  if (signal_fd_.mask() & bit) (void)update_signalfd(signal_fd_.mask() & ~bit);
  if (filtered_ & bit) (void)change_filter(signo, false);
}

void SignalSources::release_unused_mailbox() noexcept {
  // No Signal watcher left (the child reaper's internal SIGCHLD one included): the
  // mailbox goes back to the signal layer, for another loop to take (kMaxLoops at once).
  if (signals_.empty() && slot_ >= 0) {
    signals::release_slot(slot_);
    slot_ = -1;
  }
}

Error SignalSources::change_filter(int signo, bool watch) noexcept {
  const uint64_t bit = signals::bit_of(signo);
  const Error fork_pending = core_.check_fork();  // a forked child registers in its own kqueue
  if (!watch && fork_pending) {
    filtered_ &= ~bit;  // not rebuilt: the registration went with the parent's kqueue
    filtered_pending_ &= filtered_;
    return Error();
  }
  if (fork_pending) return fork_pending;
  const Events interest = watch ? Readable : Events();
  InterestChange change{signo, watch ? Events() : Readable, interest, core_.take_tag(), {}, Source::Signal};
  core_.backend.apply(std::span<InterestChange>(&change, 1));
  if (watch && change.error) return change.error;
  filtered_ = watch ? filtered_ | bit : filtered_ & ~bit;
  filtered_pending_ &= filtered_;
  return Error();
}

Error SignalSources::update_signalfd(uint64_t mask) noexcept {
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
    if (Error err = core_.check_fork()) return err;  // the inherited signalfd's mask is the parent's too
    const bool fresh = signal_fd_.fd() < 0;
    if (Error err = signal_fd_.set_mask(mask)) return err;
    if (!fresh) return Error();
    signalfd_io_.reset(new (std::nothrow) Io(core_.loop()));
    Error err =
        signalfd_io_ ? signalfd_io_->start(signal_fd_.fd(), Readable, [this] { read_signalfd(); }) : Error(ENOMEM);
    if (err) {
      signalfd_io_.reset();
      signal_fd_.close();
    }
    return err;
  }
}

void SignalSources::read_signalfd() noexcept {
  // Fan out: every loop watching the signal sees it, not only the one that read it.
  uint64_t taken = signal_fd_.take();
  while (taken != 0) {
    const int signo = std::countr_zero(taken) + 1;
    taken &= taken - 1;
    signals::deliver(signo);
  }
}

void SignalSources::dispatch() noexcept {
  const uint64_t pending = signals::take_pending(slot_) | filtered_pending_;
  filtered_pending_ = 0;
  if (pending == 0) return;
  signals_.for_each([this, pending](Signal& watcher) {
    if ((pending & signals::bit_of(watcher.signo_)) == 0) return;
    ++core_.dispatched;
    watcher.notify();
  });
}

void SignalSources::on_backend_report(int signo) noexcept {
  if (signo >= 1 && signo <= 64) filtered_pending_ |= signals::bit_of(signo) & filtered_;
}

void SignalSources::reregister(ChangeBatch& batch) noexcept {
  for (int signo = 1; signo <= 64; ++signo) {
    if (filtered_ & signals::bit_of(signo))
      batch.add(InterestChange{signo, Events(), Readable, core_.take_tag(), {}, Source::Signal});
  }
}

Error SignalSources::after_fork() noexcept {
  if (Error err = signal_fd_.after_fork()) return err;
  filtered_pending_ = 0;  // caught before the fork: the parent's to dispatch
  return Error();
}

void SignalSources::after_fork_registered() noexcept {
  // Caught in this process before its kqueue existed (signals::filtered_since_fork):
  // read after registering, so that a signal is reported twice rather than never.
  filtered_pending_ |= signals::filtered_since_fork() & filtered_;
}

int SignalSources::internal_active() const noexcept { return signalfd_io_ && signalfd_io_->active(); }

void SignalSources::detach_all() noexcept {
  signalfd_io_.reset();  // closed with the kernel set, which goes with the loop
  signal_fd_.close();
  filtered_ = filtered_pending_ = 0;  // dropped with the kqueue
  detach_each(signals_, [this](Signal& signal) {
    signal.active_ = false;
    --core_.active;
    --core_.kernel_watchers;
  });
  if (slot_ >= 0) {
    signals::release_slot(slot_);  // drops its watches, restores dispositions
    slot_ = -1;
  }
}

}  // namespace evflow::detail
