// evflow — detail::SignalSources: the loop's Signal watchers and how their signals reach it.
//
// Through the process-wide signal layer (signals/signal_registry.hpp): the loop holds a
// mailbox there while it has a Signal watcher; the layer's handler marks the signals
// caught for it and wakes it. A signal blocked where it was first watched is read from the
// loop's signalfd (platform/signal_fd.hpp) and handed to the layer, which fans it out to
// every loop watching it. Where the backend reports signals itself (kqueue's EVFILT_SIGNAL,
// Backend::kReportsSignals), each watched signal is a registration in the loop's kernel
// object instead. dispatch() calls the watchers of every signal caught, in start order.
#pragma once

#include <cstdint>
#include <memory>

#include "../platform/signal_fd.hpp"
#include "change_batch.hpp"
#include "intrusive_list.hpp"
#include "loop_core.hpp"

namespace evflow {

class Io;
class Signal;

namespace detail {

class SignalSources {
 public:
  explicit SignalSources(LoopCore& core) noexcept;
  ~SignalSources();
  SignalSources(const SignalSources&) = delete;
  SignalSources& operator=(const SignalSources&) = delete;

  // The Signal watcher's verbs (signal.cpp). Errors: EAGAIN (no mailbox left), EMFILE
  // (the signalfd), what the backend answers for a kernel filter, EMFILE/ENOMEM in a
  // forked child whose rebuild failed.
  Error start(Signal& watcher) noexcept;
  // Watches `signo` before letting the old signal go (no default disposition in between).
  Error restart(Signal& watcher, int signo) noexcept;
  void stop(Signal& watcher) noexcept;

  bool has_mailbox() const noexcept { return slot_ >= 0; }
  // Calls the watchers of every signal caught since the last time, in start order.
  void dispatch() noexcept;
  // A signal the backend reported (kReportsSignals).
  void on_backend_report(int signo) noexcept;
  // The kernel filters of the watched signals, again, into a new kernel object.
  void reregister(ChangeBatch& batch) noexcept;
  // In a forked child: a new signalfd with the same mask (the inherited one is shared
  // with the parent), and the signals caught before the fork dropped (the parent's).
  Error after_fork() noexcept;
  // In a forked child, once its kernel object exists: what the handler noted meanwhile.
  void after_fork_registered() noexcept;
  // The loop's own watchers among the active ones (the signalfd's).
  int internal_active() const noexcept;
  // The loop goes away: every watcher becomes inactive and forgets it; the mailbox and the
  // dispositions go back.
  void detach_all() noexcept;

 private:
  Error watch(int signo) noexcept;
  void unwatch(int signo) noexcept;
  void release_unused_mailbox() noexcept;
  Error update_signalfd(uint64_t mask) noexcept;
  void read_signalfd() noexcept;
  Error change_filter(int signo, bool watch) noexcept;

  LoopCore& core_;
  int slot_ = -1;               // mailbox in the process-wide signal layer
  uint16_t watchers_[65] = {};  // active Signal watchers per signal number
  IntrusiveList<Signal> signals_;
  uint64_t filtered_ = 0;            // signals registered in the backend (CatchMode::KernelFilter)
  uint64_t filtered_pending_ = 0;    // reported by the backend, not yet dispatched
  SignalFd signal_fd_;               // the signals this loop reads from a signalfd (its mask)
  std::unique_ptr<Io> signalfd_io_;  // internal: not counted as active
};

}  // namespace detail
}  // namespace evflow
