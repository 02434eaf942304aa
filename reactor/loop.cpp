#include "reactor/loop.hpp"

#include <algorithm>
#include <bit>

#include "platform/descriptor.hpp"
#include "platform/fatal.hpp"
#include "platform/fork_generation.hpp"
#include "reactor/async.hpp"
#include "reactor/child.hpp"
#include "reactor/hook.hpp"
#include "reactor/io.hpp"
#include "reactor/periodic.hpp"
#include "reactor/signal.hpp"
#include "reactor/timer.hpp"
#include "signals/signal_registry.hpp"

namespace evflow {

Loop::Loop() noexcept = default;

Loop::~Loop() {
  // From one of its own callbacks (or while another thread runs it), the loop's frames
  // are still on a stack and would run on freed memory: refused in every build. In a
  // forked child whose running thread is gone, nothing runs it any more.
  if (running_) {
    if (!forked() || owner_ == detail::this_thread_identity())
      detail::fatal("evflow::Loop destroyed while it runs (from one of its own callbacks, or another thread)");
    abandon_orphaned_run();  // timers taken out for firing go back, to be detached with the others
  }
  detach_all();
  backend_.close();
}

void Loop::check_owner_thread() const noexcept {
  // In a forked child that has not rebuilt, the owner may be a thread that only the parent
  // has: the first call rebuilds the loop and hands it to the calling thread.
  if (owner_ != nullptr && owner_ != detail::this_thread_identity() && !forked())
    detail::fatal("a loop-thread-only member of evflow::Loop was called from a thread that does not own the loop");
}

Error Loop::open() noexcept {
  if (open_) return Error(EBUSY);
  // The tables' first room, taken before any kernel object exists: nothing to undo.
  if (!io_snapshot_.reserve(16) || cover_descriptors(64)) return Error(ENOMEM);
  if (Error err = backend_.open()) return err;
  open_ = true;
  owner_ = detail::this_thread_identity();
  // A send before open() found no channel to write to and left the flag set, which would
  // swallow every later wake-up. (Its Async, started later, is scanned by start_async.)
  wake_pending_.store(false);
  now_ns_ = read_monotonic();
  timers_.rebase(now_ns_);
  periodics_.rebase(read_realtime());
  watch_forks();
  fork_generation_.store(fork_generation(), std::memory_order_relaxed);
  return Error();
}

Error Loop::reserve_descriptors(int count) noexcept {
  if (count <= 0) return Error();
  return cover_descriptors(static_cast<size_t>(count));
}

Error Loop::cover_descriptors(size_t count) noexcept {
  if (count <= fds_.size()) return Error();
  // Every descriptor is queued for a change at most once: changed_fds_ never needs more
  // room than the table has entries. Grown first, so that a failure leaves the table as
  // it was; stop_stamps_ is cut back if fds_ cannot follow it.
  if (!changed_fds_.reserve(count) || !stop_stamps_.resize(count)) return Error(ENOMEM);
  if (!fds_.resize(count)) {
    stop_stamps_.truncate(fds_.size());
    return Error(ENOMEM);
  }
  return Error();
}

void Loop::queue_change(int fd) noexcept {
  FdEntry& e = fds_[static_cast<size_t>(fd)];
  if (e.queued) return;
  e.queued = true;
  changed_fds_.push_back(fd);  // room: changed_fds_ can hold every descriptor (cover_descriptors)
}

Events Loop::wanted_interest(int fd) const noexcept {
  Events wanted;
  for (const Io* w = fds_[static_cast<size_t>(fd)].head; w != nullptr; w = w->next_)
    wanted |= w->interest_;
  return wanted;
}

// --- Io registration -------------------------------------------------------------

Error Loop::register_now(int fd, Events from, Events to) noexcept {
  InterestChange change{fd, from, to, next_tag()};
  backend_.apply(std::span<InterestChange>(&change, 1));
  if (change.error) {
    if (static_cast<size_t>(fd) < fds_.size()) {
      FdEntry& e = fds_[static_cast<size_t>(fd)];
      e.tag = change.tag;
      e.registered = Events();
      if (e.head != nullptr) fail_watchers(e);  // refused for the loop's other watchers of it too
    }
    return change.error;
  }
  // The kernel is asked before the table grows, so that a wild number (say INT_MAX - 1)
  // is an EBADF and not a table of billions of entries. A table that cannot grow takes
  // the registration back.
  const auto index = static_cast<size_t>(fd);
  if (Error err = cover_descriptors(std::max<size_t>(64, std::bit_ceil(index + 1)))) {  // amortised
    InterestChange undo{fd, to, Events(), next_tag()};
    backend_.apply(std::span<InterestChange>(&undo, 1));
    return err;
  }
  fds_[index].tag = change.tag;
  fds_[index].registered = to;
  return Error();
}

Error Loop::start_io(Io& watcher) noexcept {
  if (Error err = check_fork()) return err;  // in a forked child, never register into the parent's epoll set
  const int fd = watcher.fd_;
  const auto index = static_cast<size_t>(fd);
  // Watchers of one descriptor are dispatched from a snapshot (dispatch_descriptor): it
  // must hold them all, this one included. Counted before anything is registered.
  size_t sharing = 0;
  if (index < fds_.size()) {
    for (const Io* w = fds_[index].head; w != nullptr; w = w->next_)
      ++sharing;
  }
  if (!io_snapshot_.reserve_amortised(sharing + 1)) return Error(ENOMEM);
  if (index >= fds_.size() || kernel_interest(fds_[index]).empty()) {
    // Not in the kernel's set: register now, so that a bad descriptor is reported here.
    // (While the kernel set is renewed, other watchers may have it in the old set: the
    // registration moves whole.)
    const Events others = index < fds_.size() ? wanted_interest(fd) : Events();
    if (Error err = register_now(fd, Events(), others | watcher.interest_)) return err;
  } else if (const uint32_t stamp = stop_stamps_[index];
             fds_[index].head == nullptr && (stamp == 0 || stamp != watcher.stop_stamp_)) {
    // The kernel still has the registration of a watcher stopped in this iteration, and
    // this is another watcher: its descriptor may be a new file that reuses the number.
    // Re-register it (MOD, or ADD if the kernel dropped the old one).
    const Events registered = fds_[index].registered;
    if (Error err = register_now(fd, registered, registered | watcher.interest_)) return err;
  }
  // The stamp vouches only for a restart straight after the stop that set it: once started,
  // the watcher may leave this descriptor for another one it shares, where it sets none.
  watcher.stop_stamp_ = 0;
  // Append: watchers of one descriptor are served in start order.
  Io** link = &fds_[index].head;
  while (*link != nullptr)
    link = &(*link)->next_;
  *link = &watcher;
  watcher.next_ = nullptr;
  watcher.active_ = true;
  ++active_;
  queue_change(fd);
  return Error();
}

Error Loop::check_fork() noexcept {
  if (!forked()) return Error();
  return after_fork();
}

void Loop::deregister_now(int fd) noexcept {
  // For a descriptor about to be closed while a forked child may hold a copy: closing
  // would leave the registration alive in the kernel (epoll_backend.hpp, note a).
  const Error fork_pending = check_fork();
  if (static_cast<size_t>(fd) >= fds_.size()) return;
  FdEntry& e = fds_[static_cast<size_t>(fd)];
  if (e.head != nullptr || e.registered.empty()) return;
  // A forked child that could not rebuild yet: the registration is in the parent's set,
  // which is not ours to edit; the child's new set will not have it.
  if (fork_pending || kernel_interest(e).empty()) {  // or only the instance being retired has it
    e.registered = Events();
    e.tag = next_tag();
    return;
  }
  InterestChange change{fd, e.registered, Events(), next_tag()};
  backend_.apply(std::span<InterestChange>(&change, 1));
  record_outcome(change);
}

Error Loop::close_io(Io& watcher) noexcept {
  const int fd = watcher.fd_;
  if (watcher.active_) stop_io(watcher);
  const auto index = static_cast<size_t>(fd);
  if (index < fds_.size()) {
    FdEntry& e = fds_[index];
    // The descriptor closes under the loop's other watchers of it: stopped, and called
    // once with Invalid in the next iteration.
    if (e.head != nullptr) fail_watchers(e);
    deregister_now(fd);  // before the close: no registration may outlive it (epoll_backend.hpp, note a)
    stop_stamps_[index] = 0;
  }
  watcher.fd_ = -1;
  watcher.stop_stamp_ = 0;
  return close_descriptor(fd);
}

void Loop::stop_io(Io& watcher) noexcept {
  Io** link;
  if (watcher.failed_) {
    link = &failed_;
  } else {
    link = &fds_[static_cast<size_t>(watcher.fd_)].head;
  }
  while (*link != &watcher)
    link = &(*link)->next_;
  *link = watcher.next_;
  if (io_cursor_ == &watcher) io_cursor_ = watcher.next_;
  if (io_snapshot_live_) std::replace(io_snapshot_.begin(), io_snapshot_.end(), &watcher, static_cast<Io*>(nullptr));
  if (!watcher.failed_) {
    FdEntry& e = fds_[static_cast<size_t>(watcher.fd_)];
    if (e.head == nullptr) {
      if (next_stop_stamp_ == 0) next_stop_stamp_ = 1;  // 0 means "none"
      stop_stamps_[static_cast<size_t>(watcher.fd_)] = watcher.stop_stamp_ = next_stop_stamp_++;
    }
    queue_change(watcher.fd_);
  }
  watcher.next_ = nullptr;
  watcher.active_ = false;
  watcher.failed_ = false;
  --active_;
}

void Loop::apply_changes() noexcept {
  ChangeBatch batch(*this);
  for (int fd : changed_fds_) {
    FdEntry& e = fds_[static_cast<size_t>(fd)];
    e.queued = false;
    stop_stamps_[static_cast<size_t>(fd)] = 0;
    const Events wanted = wanted_interest(fd);
    if (wanted == e.registered) continue;  // stopped and restarted unchanged: no system call
    const Events from = kernel_interest(e);
    if (wanted.empty() && from.empty()) {
      // Only the kernel object being retired has it (renewal): it goes with that object,
      // and its reports, under the old tag, are stale from now on.
      e.registered = Events();
      e.tag = next_tag();
      continue;
    }
    batch.add(InterestChange{fd, from, wanted, next_tag()});
  }
  changed_fds_.clear();
}

void Loop::ChangeBatch::add(const InterestChange& change) noexcept {
  changes_[count_++] = change;
  if (count_ == kMaxChangesPerApply) submit();
}

void Loop::ChangeBatch::submit() noexcept {
  if (count_ == 0) return;
  loop_.backend_.apply(std::span<InterestChange>(changes_, count_));
  for (size_t i = 0; i < count_; ++i) {
    if (changes_[i].source == Source::Descriptor) {
      loop_.record_outcome(changes_[i]);
    } else if (Error err = loop_.record_process_outcome(changes_[i]); err && !first_error_) {
      first_error_ = err;
    }
  }
  count_ = 0;
}

void Loop::record_outcome(const InterestChange& change) noexcept {
  FdEntry& e = fds_[static_cast<size_t>(change.fd)];
  e.tag = change.tag;
  if (!change.error) {
    e.registered = change.to;
    return;
  }
  e.registered = Events();
  // A failed removal (EBADF, ENOENT) means the kernel already dropped it: nothing to do.
  if (change.to.empty() || e.head == nullptr) return;
  // The kernel refused the descriptor (typically EBADF: it was closed under an active
  // watcher). Its watchers move to the failed list and get one Invalid callback each.
  fail_watchers(e);
}

void Loop::fail_watchers(FdEntry& e) noexcept {
  Io** tail = &failed_;
  while (*tail != nullptr)
    tail = &(*tail)->next_;
  *tail = e.head;
  for (Io* w = e.head; w != nullptr; w = w->next_) {
    w->failed_ = true;
    // Not served in a pass over its descriptor under way: its Invalid callback comes next.
    if (io_snapshot_live_) std::replace(io_snapshot_.begin(), io_snapshot_.end(), w, static_cast<Io*>(nullptr));
  }
  e.head = nullptr;
}

Error Loop::rebuild() noexcept {
  if (!open_) return Error(EINVAL);
  assert_owner_thread();
  if (running_) {  // from a callback: the chains may be mid-dispatch; rebuild before the next wait
    rebuild_needed_ = true;
    return Error();
  }
  Error err = rebuild_backend();
  changed_outside_run();  // an embedded loop's new kernel object gets its deadline
  return err;
}

Error Loop::rebuild_backend() noexcept {
  if (forked()) return after_fork();  // the objects to replace are shared with the parent
  if constexpr (Backend::kReportsSignals || Backend::kReportsProcesses) collect_process_events();
  if (Error err = backend_.reopen()) return err;
  return reregister_all();
}

void Loop::note_stale_report() noexcept {
  // The kernel holds a registration the loop cannot remove (epoll_backend.hpp, note a):
  // only a new kernel object is rid of it. Replaced gradually where the backend can, so
  // that no iteration pays for re-registering every descriptor at once.
  if constexpr (Backend::kRenewsGradually) {
    if (!renewing_) renewal_needed_ = true;  // while renewing, the old object's reports are expected
  } else {
    rebuild_needed_ = true;
  }
}

Error Loop::start_renewal() noexcept {
  if constexpr (Backend::kRenewsGradually) {
    if (Error err = backend_.renew()) {
      // Out of resources: renewal_needed_ stays, tried again next time. Refused for another
      // reason (say too deep a nesting of epoll instances, ELOOP): all at once instead.
      if (err.code() == EMFILE || err.code() == ENFILE || err.code() == ENOMEM) return err;
      renewal_needed_ = false;
      return rebuild_backend();
    }
    renewal_needed_ = false;
    renewing_ = true;
    renewal_mark_ = next_tag_;
    renewal_cursor_ = 0;
  }
  return Error();
}

void Loop::continue_renewal() noexcept {
  if constexpr (Backend::kRenewsGradually) {
    // One batch of registrations per iteration moves to the new kernel object; what is
    // not moved yet is still reported through the old one, nested in the new.
    // The scan is bounded too: a sparse table (reserve_descriptors) costs no long pause.
    ChangeBatch batch(*this);
    size_t moved = 0;
    for (size_t scanned = 0; renewal_cursor_ < fds_.size() && moved < kMaxChangesPerApply && scanned < 4096;
         ++renewal_cursor_, ++scanned) {
      const FdEntry& e = fds_[renewal_cursor_];
      if (e.registered.empty() || in_current_set(e)) continue;
      batch.add(InterestChange{static_cast<int>(renewal_cursor_), Events(), e.registered, next_tag()});
      ++moved;
    }
    (void)batch.finish();
    if (renewal_cursor_ < fds_.size()) return;
    if (backend_.retire()) return;  // refused: the old set stays, tried again next iteration
    renewing_ = false;
    ++rebuilds_;
  }
}

void Loop::collect_process_events() noexcept {
  // Signals the old kqueue counted and exits it saw would close with it: take them
  // first. Descriptor reports can go; every descriptor is registered again. (Not in a
  // forked child, where the number is no kqueue of ours.)
  if (forked()) return;
  Result<int> count = backend_.wait(0, now_ns_);
  if (!count) return;
  for (int i = 0; i < count.value(); ++i) {
    const ReadyEvent event = backend_.event(i);
    if (event.source != Source::Descriptor) dispatch_process_event(event);
  }
}

Error Loop::reregister_all() noexcept {
  ++rebuilds_;
  rebuild_needed_ = renewal_needed_ = renewing_ = false;  // the backend dropped any instance being retired
  // The kernel object is new and empty: look at every Async once more, in case a
  // wake-up was consumed by the old one.
  wake_pending_.store(false);
  async_scan_ = true;
  ChangeBatch batch(*this);
  for (size_t fd = 0; fd < fds_.size(); ++fd) {
    FdEntry& e = fds_[fd];
    e.registered = Events();
    stop_stamps_[fd] = 0;
    if (e.head != nullptr)
      batch.add(InterestChange{static_cast<int>(fd), Events(), wanted_interest(static_cast<int>(fd)), next_tag()});
  }
  if constexpr (Backend::kReportsSignals) {
    // Signals registered in the backend itself (kqueue) lived in the old kernel object too.
    for (int signo = 1; signo <= 64; ++signo) {
      if (filtered_signals_ & signals::bit_of(signo))
        batch.add(InterestChange{signo, Events(), Readable, next_tag(), {}, Source::Signal});
    }
  }
  if constexpr (Backend::kReportsProcesses) {
    // So did children (kqueue: EVFILT_PROC; IOCP: the process waits).
    children_.visit([&](Child& child) {
      if (child.path_ == ChildPath::ProcessEvent && child.process_registered_)
        batch.add(InterestChange{
            static_cast<int>(child.pid_), Events(), Readable, child.tag_ = next_tag(), {}, Source::Process});
    });
  }
  return batch.finish();
}

Error Loop::record_process_outcome(const InterestChange& change) noexcept {
  if (!change.error) return Error();
  if (change.source == Source::Process && change.error.code() == ESRCH) {
    children_.visit([&](Child& child) {  // exited meanwhile: reaped at the child check
      if (child.path_ == ChildPath::ProcessEvent && child.pid_ == change.fd) child.process_registered_ = false;
    });
    children_check_due_ = true;
    return Error();
  }
  // Refused for want of resources (ENOMEM): nothing is dropped silently; the caller
  // hears of it, and the next iteration builds the whole set again.
  rebuild_needed_ = true;
  return change.error;
}

void Loop::request_child_path(ChildPath path) noexcept {
  if (path == ChildPath::Pidfd && !ChildProcess::kHasDescriptor) path = kDefaultChildPath;
  if (path == ChildPath::SigChld && !ChildProcess::kHasSigChld) path = kDefaultChildPath;  // Windows
  if (path == ChildPath::ProcessEvent && !Backend::kReportsProcesses) path = kDefaultChildPath;
  child_path_ = path;
}

void Loop::abandon_orphaned_run() noexcept {
  // The thread that was running this loop when the process forked does not exist in the
  // child: no run() is in progress here, whatever running_ says. If that thread was in a
  // callback at the instant of the fork, the rest of its iteration is dropped: ready
  // descriptors report again, Async sends are still pending, and timers taken out for
  // firing go back to the wheel, due.
  running_ = stop_requested_ = false;
  io_snapshot_live_ = false;
  io_cursor_ = nullptr;
  timers_.abandon_expiry();
  periodics_.abandon_expiry();
}

Error Loop::after_fork() noexcept {
  if (!open_) return Error(EINVAL);
  if (running_ && forked() && owner_ != detail::this_thread_identity()) abandon_orphaned_run();
  owner_ = detail::this_thread_identity();  // the child's only thread is the one that forked
  // First replace every kernel object shared with the parent (epoll set, eventfd, clock
  // timerfd, signalfd), so that nothing below can edit the parent's; only then drop the
  // Child watchers, whose processes are the parent's children, not ours. Each step can
  // be taken again: until all succeeded the fork counts as not handled, every call that
  // would touch a kernel object tries again first (and reports the error), and run()
  // reports it.
  if (Error err = backend_.after_fork()) return err;
  if (wall_clock_io_) {
    if (Error err = wall_clock_watch_.after_fork()) return err;
  }
  if (Error err = signal_fd_.after_fork()) return err;
  fork_generation_.store(fork_generation(), std::memory_order_relaxed);
  filtered_signals_pending_ = 0;  // caught before the fork: the parent's to dispatch
  while (Child* child = children_.front()) {
    child->process_registered_ = false;  // it went with the parent's kqueue
    child->stop();
  }
  Error err = reregister_all();
  // Caught in this process before its kqueue existed (signals::filtered_since_fork):
  // read after registering, so that a signal is reported twice rather than never.
  if constexpr (Backend::kReportsSignals)
    filtered_signals_pending_ |= signals::filtered_since_fork() & filtered_signals_;
  changed_outside_run();  // an embedded loop's new kernel object gets its deadline
  return err;
}

// --- Async and wake-ups ----------------------------------------------------------

void Loop::wake() noexcept {
  // Coalesce: only the first wake() since the loop last looked writes to the kernel.
  // The loop clears wake_pending_ after draining the channel and before it scans the
  // Async flags, so a send that finds the flag already set is seen by that scan. In a
  // forked child not rebuilt yet the channel is the parent's: the flag alone is enough,
  // since the rebuild looks at every Async.
  if (!wake_pending_.exchange(true) && !forked()) backend_.wake();
}

void Loop::start_async(Async& watcher) noexcept {
  asyncs_.push_back(watcher);
  watcher.active_ = true;
  ++active_;
  if (watcher.pending_.load()) async_scan_ = true;  // a send that arrived while stopped
}

void Loop::stop_async(Async& watcher) noexcept {
  asyncs_.remove(watcher);
  watcher.active_ = false;
  --active_;
}

void Loop::dispatch_asyncs() noexcept {
  asyncs_.for_each([this](Async& watcher) {
    if (watcher.pending_.exchange(false)) {
      ++dispatched_;
      watcher.callback_(watcher);
    }
  });
}

// --- The iteration ---------------------------------------------------------------

template <detail::HookKind K>
void Loop::run_hooks() noexcept {
  // for_each visits the hooks present when it began: one started now waits a turn.
  hooks<K>().for_each([](Hook<K>& hook) { hook.callback_(hook); });
}

bool Loop::has_due_work() const noexcept {
  return !idles_.empty() || failed_ != nullptr || async_scan_ || children_check_due_;
}

void Loop::dispatch_failed() noexcept {
  Io* w = failed_;
  while (w != nullptr) {
    io_cursor_ = w->next_;
    stop_io(*w);  // the watcher is inactive before its callback runs
    ++dispatched_;
    w->callback_(*w, Invalid);
    w = io_cursor_;
  }
  io_cursor_ = nullptr;
}

void Loop::dispatch_descriptor(Io* head, Events ready) noexcept {
  if (head == nullptr) return;
  if (head->next_ == nullptr) {  // the common case: one watcher
    const Events wanted = ready & head->interest_;
    if (!wanted.empty()) {
      ++dispatched_;
      head->callback_(*head, wanted);
    }
    return;
  }
  // Several watchers: serve exactly those present now. A callback may stop, destroy or
  // restart any of them (a stopped one is blanked out of the snapshot; a restarted or
  // new one waits for the next iteration), so no watcher runs twice in one pass.
  io_snapshot_.clear();
  for (Io* w = head; w != nullptr; w = w->next_)
    io_snapshot_.push_back(w);
  io_snapshot_live_ = true;
  for (size_t i = 0; i < io_snapshot_.size(); ++i) {
    Io* w = io_snapshot_[i];
    if (w == nullptr) continue;
    const Events wanted = ready & w->interest_;
    if (!wanted.empty()) {
      ++dispatched_;
      w->callback_(*w, wanted);
    }
  }
  io_snapshot_live_ = false;
}

void Loop::dispatch_events(int count) noexcept {
  bool woken = false;
  for (int i = 0; i < count; ++i) {
    const ReadyEvent event = backend_.event(i);
    if (event.fd == kWakeDescriptor) {
      woken = true;
      continue;
    }
    if (forked()) break;  // a callback forked: this batch is the parent's
    if constexpr (Backend::kReportsSignals || Backend::kReportsProcesses) {
      if (event.source != Source::Descriptor) {
        dispatch_process_event(event);
        continue;
      }
    }
    const auto index = static_cast<size_t>(event.fd);
    if (index >= fds_.size()) {
      note_stale_report();  // a registration the loop never made: a stale one (note a)
      continue;
    }
    const FdEntry& e = fds_[index];
    if (e.registered.empty() || e.tag != event.tag) {
      // Stale. If the registration changed after this wait began, the report is merely
      // out of date; otherwise the kernel holds a registration the loop cannot remove
      // (closed descriptor, open duplicate): recreate the set before the next wait.
      if (!tag_is_recent(e.tag)) note_stale_report();
      continue;
    }
    if (event.events.invalid()) {
      // The backend ended the registration itself (IOCP: the socket was closed, note e
      // of iocp_backend.hpp): its watchers get their Invalid callback now.
      fds_[index].registered = Events();
      fail_watchers(fds_[index]);
      dispatch_failed();
      continue;
    }
    dispatch_descriptor(e.head, event.events);
  }
  if (woken && !forked()) {  // a callback forked: the wake-up channel is the parent's
    backend_.acknowledge_wake();
    wake_pending_.store(false);
    async_scan_ = true;
  }
  if (async_scan_) {
    async_scan_ = false;
    dispatch_asyncs();
  }
}

Error Loop::run(RunMode mode) noexcept {
  if (!open_) return Error(EINVAL);
  if (running_ && forked() && owner_ != detail::this_thread_identity()) abandon_orphaned_run();
  if (running_) {
    assert_owner_thread();
    return Error(EBUSY);
  }
  owner_ = detail::this_thread_identity();
  running_ = true;
  stop_requested_ = false;
  Error result;
  for (;;) {
    if (mode == RunMode::Default && active_watchers() == 0) break;
    if (forked()) {  // a forked child: rebuild first
      if ((result = after_fork())) break;
    }
    if (rebuild_needed_) {
      if ((result = rebuild_backend())) break;
    } else if (renewal_needed_) {
      if ((result = start_renewal())) break;
    }
    if (!prepares_.empty()) run_hooks<detail::HookKind::Prepare>();
    if (!changed_fds_.empty()) apply_changes();
    if (renewing_) continue_renewal();
    const bool poll = mode == RunMode::NoWait || active_watchers() == 0 || stop_requested_ || has_due_work();
    int64_t timeout = poll ? 0 : -1;
    int64_t deadline = kNoDeadline;
    if (!poll && (deadline = next_wake_deadline()) != kNoDeadline) timeout = time_until(deadline, deadline);
    tag_mark_ = next_tag_;
    Result<int> count = backend_.wait(timeout, deadline);
    if (!count) {
      result = count.error();
      break;
    }
    now_ns_ = read_monotonic();
    ++iteration_;
    dispatched_ = 0;
    if (failed_ != nullptr) dispatch_failed();
    dispatch_events(count.value());
    if (!forked()) {  // else a callback forked: the parent's to dispatch
      if (signal_slot_ >= 0) dispatch_signals();
      if (children_check_due_) check_children();
    }
    if (!timers_.empty()) expire_timers();
    if (!periodic_list_.empty()) expire_periodics();  // the list: on a hot line
    if (dispatched_ == 0 && !idles_.empty()) run_hooks<detail::HookKind::Idle>();
    if (!checks_.empty()) run_hooks<detail::HookKind::Check>();
    if (stop_requested_ || mode != RunMode::Default) break;
  }
  running_ = false;
  stop_requested_ = false;
  if (embedded_) keep_handle_ready();
  return result;
}

int64_t Loop::time_until(int64_t deadline, int64_t& kernel_deadline) const noexcept {
  const int64_t now = read_monotonic();  // callbacks since the last wait took time
  int64_t timeout = 0;
  if (deadline > now && __builtin_sub_overflow(deadline, now, &timeout)) timeout = kNoDeadline;
  // The kernel sleeps on its own clock: with a clock source installed, the same timeout
  // from the real present (a fake clock's deadline would be meaningless to a timerfd).
  kernel_deadline = clock_ == nullptr ? deadline : saturating_add(monotonic_ns(), timeout);
  return timeout;
}

int Loop::native_handle() noexcept {
  if (!embedded_ && open_) {
    embedded_ = true;
    if (!running_) keep_handle_ready();
  }
  return backend_.native_handle();
}

void Loop::keep_handle_ready() noexcept {
  // Another loop polls the handle instead of this loop waiting (backend.hpp,
  // keep_ready_at): pending interest changes go to the kernel now, and the handle
  // becomes readable at the next deadline, or at once when work is due already.
  if (!open_ || forked()) return;
  if (!changed_fds_.empty()) apply_changes();
  const bool due = has_due_work() || rebuild_needed_ || renewal_needed_;
  const int64_t deadline = due ? read_monotonic() : next_wake_deadline();
  if (deadline == kNoDeadline) return;
  int64_t kernel_deadline = kNoDeadline;
  const int64_t timeout = time_until(deadline, kernel_deadline);
  backend_.keep_ready_at(timeout, kernel_deadline);
}

void Loop::stop() noexcept {
  assert_owner_thread();
  if (running_) stop_requested_ = true;
}

void Loop::detach_all() noexcept {
  // Nothing here may issue epoll_ctl: in a forked child that has not rebuilt yet, the
  // epoll instance is still the parent's. Child watchers are let go without Child::stop.
  while (Child* child = children_.front()) {
    children_.remove(*child);
    child->process_.close();             // the pidfd's Io is detached with the others below
    child->process_registered_ = false;  // dropped with the kqueue
    child->active_ = false;
    child->loop_ = nullptr;
  }
  sigchld_.reset();
  sigchld_children_ = 0;
  signalfd_io_.reset();  // closed with the kernel set, which goes with the loop
  signal_fd_.close();
  filtered_signals_ = filtered_signals_pending_ = 0;  // dropped with the kqueue
  while (Signal* signal = signals_.front()) {
    signals_.remove(*signal);
    signal->active_ = false;
    signal->loop_ = nullptr;
    --active_;
  }
  if (signal_slot_ >= 0) {
    signals::release_slot(signal_slot_);  // drops its watches, restores dispositions
    signal_slot_ = -1;
  }
  wall_clock_io_.reset();
  auto detach_chain = [](Io* w) {
    while (w != nullptr) {
      Io* next = w->next_;
      w->next_ = nullptr;
      w->active_ = false;
      w->failed_ = false;
      w->loop_ = nullptr;
      w = next;
    }
  };
  for (FdEntry& e : fds_) {
    detach_chain(e.head);
    e.head = nullptr;
  }
  detach_chain(failed_);
  failed_ = nullptr;
  auto detach_list = [](auto& list) {
    while (auto* w = list.front()) {
      list.remove(*w);
      w->active_ = false;
      w->loop_ = nullptr;
    }
  };
  timers_.clear([](TimerNode& node) { static_cast<Timer&>(node).loop_ = nullptr; });
  periodics_.clear([](TimerNode&) {});
  while (Periodic* p = periodic_list_.front()) {
    periodic_list_.remove(*p);
    p->loop_ = nullptr;
  }
  detach_list(asyncs_);
  detach_list(prepares_);
  detach_list(checks_);
  detach_list(idles_);
  active_ = 0;
}

int Loop::active_watchers() const noexcept {
  // The loop's own watchers (clock watch, signalfd, SIGCHLD) never keep run() going.
  const int internal = (wall_clock_io_ && wall_clock_io_->active()) + (signalfd_io_ && signalfd_io_->active()) +
                       (sigchld_ && sigchld_->active());
  return active_ - internal + static_cast<int>(timers_.size()) + static_cast<int>(periodics_.size());
}

}  // namespace evflow
