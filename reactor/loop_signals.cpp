// Loop: the parts that deal with processes — Signal watchers (through the process-wide
// signal layer, with a signalfd for blocked signals) and Child watchers on the SIGCHLD path.
#include <signal.h>

#include "platform/linux/sys.hpp"
#include "reactor/child.hpp"
#include "reactor/io.hpp"
#include "reactor/loop.hpp"
#include "reactor/signal.hpp"
#include "signals/signal_registry.hpp"

namespace evflow {

Error Loop::start_signal(Signal& watcher) noexcept {
  if (Error err = watch_signal(watcher.signo_)) return err;
  signals_.push_back(watcher);
  watcher.active_ = true;
  ++active_;
  return Error();
}

Error Loop::watch_signal(int signo) noexcept {
  if (signal_slot_ < 0) {
    Result<int> slot = signals::acquire_slot(backend_.wake_handle());
    if (!slot) return slot.error();
    signal_slot_ = slot.value();
  }
  if (signal_watchers_[signo] == 0) {
    Result<signals::CatchMode> mode = signals::watch(signal_slot_, signo);
    if (!mode) return mode.error();
    if (mode.value() == signals::CatchMode::SignalFd) {
      if (Error err = update_signalfd(signalfd_mask_ | signals::bit_of(signo))) {
        signals::unwatch(signal_slot_, signo);
        return err;
      }
    }
  }
  ++signal_watchers_[signo];
  return Error();
}

void Loop::unwatch_signal(int signo) noexcept {
  if (--signal_watchers_[signo] != 0) return;
  signals::unwatch(signal_slot_, signo);
  if (signalfd_mask_ & signals::bit_of(signo)) (void)update_signalfd(signalfd_mask_ & ~signals::bit_of(signo));
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
}

Error Loop::update_signalfd(uint64_t mask) noexcept {
  if (mask == 0) {
    signalfd_io_.reset();
    if (signalfd_ >= 0) (void)linux_abi::close(signalfd_);
    signalfd_ = -1;
    signalfd_mask_ = 0;
    return Error();
  }
  check_fork();  // the inherited signalfd's mask is the parent's too
  Result<int> fd = linux_abi::signalfd(signalfd_, mask);
  if (!fd) return fd.error();
  if (signalfd_ < 0) {
    signalfd_ = fd.value();
    signalfd_io_.reset(new (std::nothrow) Io(*this));
    Error err = signalfd_io_ ? signalfd_io_->start(signalfd_, Readable, [this] { read_signalfd(); }) : Error(ENOMEM);
    if (err) {
      signalfd_io_.reset();
      (void)linux_abi::close(signalfd_);
      signalfd_ = -1;
      return err;
    }
  }
  signalfd_mask_ = mask;
  return Error();
}

void Loop::read_signalfd() noexcept {
  linux_abi::SignalfdSiginfo records[8];
  for (;;) {
    Result<long> got = linux_abi::read(signalfd_, records, sizeof records);
    if (!got || got.value() <= 0) return;
    const long count = got.value() / static_cast<long>(sizeof records[0]);
    // Fan out: every loop watching the signal sees it, not only the one that read it.
    for (long i = 0; i < count; ++i)
      signals::deliver(static_cast<int>(records[i].signo));
    if (got.value() < static_cast<long>(sizeof records)) return;
  }
}

void Loop::dispatch_signals() noexcept {
  const uint64_t pending = signals::take_pending(signal_slot_);
  if (pending == 0) return;
  signals_.for_each([this, pending](Signal& watcher) {
    if ((pending & signals::bit_of(watcher.signo_)) == 0) return;
    ++dispatched_;
    watcher.callback_(watcher);
  });
}

Error Loop::start_sigchld_child() noexcept {
  if (!sigchld_) {
    sigchld_.reset(new (std::nothrow) Signal(*this));
    if (!sigchld_) return Error(ENOMEM);
    if (Error err = sigchld_->start(SIGCHLD, [this] { children_check_due_ = true; })) {
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
  children_.for_each([](Child& child) {
    if (child.via_sigchld_) (void)child.try_reap();
  });
}

}  // namespace evflow
