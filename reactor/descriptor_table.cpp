#include "descriptor_table.hpp"

#include <algorithm>
#include <bit>

#include "../platform/descriptor.hpp"
#include "io.hpp"

namespace evflow::detail {

Error DescriptorTable::open() noexcept {
  if (!snapshot_.reserve(16)) return Error(ENOMEM);
  return cover(64);
}

Error DescriptorTable::cover(size_t count) noexcept {
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

void DescriptorTable::queue(int fd) noexcept {
  Entry& e = fds_[static_cast<size_t>(fd)];
  if (e.queued) return;
  e.queued = true;
  changed_fds_.push_back(fd);  // room: changed_fds_ can hold every descriptor (cover)
}

Events DescriptorTable::wanted_interest(int fd) const noexcept {
  Events wanted;
  for (const Io* w = fds_[static_cast<size_t>(fd)].head; w != nullptr; w = w->next_)
    wanted |= w->interest_;
  return wanted;
}

// --- starting and stopping --------------------------------------------------------

Error DescriptorTable::register_now(int fd, Events from, Events to) noexcept {
  InterestChange change{fd, from, to, core_.take_tag()};
  core_.backend.apply(std::span<InterestChange>(&change, 1));
  // A backend that queues changes (io_uring) submits this one now: it names the file by
  // its number, which the caller may close and reuse before the loop's next wait.
  flush_if_any(core_.backend);
  if (change.error) {
    if (static_cast<size_t>(fd) < fds_.size()) {
      Entry& e = fds_[static_cast<size_t>(fd)];
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
  if (Error err = cover(std::max<size_t>(64, std::bit_ceil(index + 1)))) {  // amortised
    InterestChange undo{fd, to, Events(), core_.take_tag()};
    core_.backend.apply(std::span<InterestChange>(&undo, 1));
    return err;
  }
  fds_[index].tag = change.tag;
  fds_[index].registered = to;
  return Error();
}

Error DescriptorTable::start(Io& watcher) noexcept {
  if (Error err = core_.check_fork()) return err;  // in a forked child, never register into the parent's set
  const int fd = watcher.fd_;
  const auto index = static_cast<size_t>(fd);
  // Watchers of one descriptor are dispatched from a snapshot (dispatch_watchers): it
  // must hold them all, this one included. Counted before anything is registered.
  size_t sharing = 0;
  if (index < fds_.size()) {
    for (const Io* w = fds_[index].head; w != nullptr; w = w->next_)
      ++sharing;
  }
  if (!snapshot_.reserve_amortised(sharing + 1)) return Error(ENOMEM);
  if (index >= fds_.size() || kernel_interest(fds_[index]).empty()) {
    // Not in the kernel's set: register now, so that a bad descriptor is reported here.
    // (While the kernel set is renewed, other watchers may have it in the old set: the
    // registration moves whole.)
    const Events others = index < fds_.size() ? wanted_interest(fd) : Events();
    if (Error err = register_now(fd, Events(), others | watcher.interest_)) return err;
  } else if (const uint32_t stamp = stop_stamps_[index];
             fds_[index].head == nullptr && (stamp == 0 || stamp != watcher.stop_stamp_)) {
    // The kernel still has the registration of a watcher stopped in this iteration, and
    // this watcher does not carry that watcher's stamp: its descriptor may be a new file
    // that reuses the number. Re-register it (MOD, or ADD if the kernel dropped the old one).
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
  ++core_.active;
  ++core_.kernel_watchers;
  queue(fd);
  return Error();
}

void DescriptorTable::stop(Io& watcher) noexcept {
  Io** link = watcher.failed_ ? &failed_ : &fds_[static_cast<size_t>(watcher.fd_)].head;
  while (*link != &watcher)
    link = &(*link)->next_;
  *link = watcher.next_;
  if (cursor_ == &watcher) cursor_ = watcher.next_;
  if (snapshot_live_) std::replace(snapshot_.begin(), snapshot_.end(), &watcher, static_cast<Io*>(nullptr));
  if (!watcher.failed_) {
    Entry& e = fds_[static_cast<size_t>(watcher.fd_)];
    if (e.head == nullptr) {
      if (next_stop_stamp_ == 0) next_stop_stamp_ = 1;  // 0 means "none"
      stop_stamps_[static_cast<size_t>(watcher.fd_)] = watcher.stop_stamp_ = next_stop_stamp_++;
    }
    queue(watcher.fd_);
  }
  watcher.next_ = nullptr;
  watcher.active_ = false;
  watcher.failed_ = false;
  --core_.active;
  --core_.kernel_watchers;
}

void DescriptorTable::interest_changed(Io& watcher) noexcept {
  if (!watcher.failed_) queue(watcher.fd_);
}

void DescriptorTable::deregister(int fd) noexcept {
  // For a descriptor about to be closed while a forked child may hold a copy: closing
  // would leave the registration alive in the kernel (epoll_backend.hpp, note a).
  const Error fork_pending = core_.check_fork();
  if (static_cast<size_t>(fd) >= fds_.size()) return;
  Entry& e = fds_[static_cast<size_t>(fd)];
  if (e.head != nullptr || e.registered.empty()) return;
  // A forked child that could not rebuild yet: the registration is in the parent's set,
  // which is not ours to edit; the child's new set will not have it.
  if (fork_pending || kernel_interest(e).empty()) {  // or only the instance being retired has it
    e.registered = Events();
    e.tag = core_.take_tag();
    return;
  }
  InterestChange change{fd, e.registered, Events(), core_.take_tag()};
  core_.backend.apply(std::span<InterestChange>(&change, 1));
  // A backend that queues removals (io_uring) makes this one now: its hold on the file
  // would otherwise outlive the close until the next wait.
  flush_if_any(core_.backend);
  record_outcome(change);
}

Error DescriptorTable::close(Io& watcher) noexcept {
  const int fd = watcher.fd_;
  if (watcher.active_) stop(watcher);
  const auto index = static_cast<size_t>(fd);
  if (index < fds_.size()) {
    Entry& e = fds_[index];
    // The descriptor closes under the loop's other watchers of it: stopped, and called
    // once with Invalid in the next iteration.
    if (e.head != nullptr) fail_watchers(e);
    deregister(fd);  // before the close: no registration may outlive it (epoll_backend.hpp, note a)
    stop_stamps_[index] = 0;
  }
  watcher.fd_ = -1;
  watcher.stop_stamp_ = 0;
  return close_descriptor(fd);
}

// --- applying ---------------------------------------------------------------------

void DescriptorTable::apply_changes() noexcept {
  ChangeBatch batch(core_.backend, &DescriptorTable::record, this);
  for (int fd : changed_fds_) {
    Entry& e = fds_[static_cast<size_t>(fd)];
    e.queued = false;
    stop_stamps_[static_cast<size_t>(fd)] = 0;
    const Events wanted = wanted_interest(fd);
    if (wanted == e.registered) continue;  // stopped and restarted unchanged: no system call
    const Events from = kernel_interest(e);
    if (wanted.empty() && from.empty()) {
      // Only the kernel object being retired has it (renewal): it goes with that object,
      // and its reports, under the old tag, are stale from now on.
      e.registered = Events();
      e.tag = core_.take_tag();
      continue;
    }
    batch.add(InterestChange{fd, from, wanted, core_.take_tag()});
  }
  changed_fds_.clear();
}

Error DescriptorTable::record(void* table, const InterestChange& change) noexcept {
  if (change.source == Source::Descriptor) static_cast<DescriptorTable*>(table)->record_outcome(change);
  return Error();
}

void DescriptorTable::record_outcome(const InterestChange& change) noexcept {
  Entry& e = fds_[static_cast<size_t>(change.fd)];
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

void DescriptorTable::fail_watchers(Entry& e) noexcept {
  Io** tail = &failed_;
  while (*tail != nullptr)
    tail = &(*tail)->next_;
  *tail = e.head;
  for (Io* w = e.head; w != nullptr; w = w->next_) {
    w->failed_ = true;
    // Not served in a pass over its descriptor under way: its Invalid callback comes next.
    if (snapshot_live_) std::replace(snapshot_.begin(), snapshot_.end(), w, static_cast<Io*>(nullptr));
  }
  e.head = nullptr;
}

// --- dispatching ------------------------------------------------------------------

void DescriptorTable::dispatch_failed() noexcept {
  Io* w = failed_;
  while (w != nullptr) {
    cursor_ = w->next_;
    stop(*w);  // the watcher is inactive before its callback runs
    ++core_.dispatched;
    w->notify(Invalid);
    w = cursor_;
  }
  cursor_ = nullptr;
}

void DescriptorTable::dispatch_other(const ReadyEvent& event) noexcept {
  const auto index = static_cast<size_t>(event.fd);
  if (index >= fds_.size()) {
    note_stale_report();  // a registration the loop never made: a stale one (note a)
    return;
  }
  Entry& e = fds_[index];
  if (e.registered.empty() || e.tag != event.tag) {
    // Stale. If the registration changed after this wait began, the report is merely
    // out of date; otherwise the kernel holds a registration the loop cannot remove
    // (closed descriptor, open duplicate): the kernel object must be replaced.
    if (!core_.tag_is_recent(e.tag)) note_stale_report();
    return;
  }
  if (event.events.invalid()) {
    // The backend ended the registration itself (IOCP: the socket was closed, note e
    // of iocp_backend.hpp): its watchers get their Invalid callback now.
    e.registered = Events();
    fail_watchers(e);
    dispatch_failed();
    return;
  }
  dispatch_watchers(e.head, event.events);
}

void DescriptorTable::dispatch_watchers(Io* head, Events ready) noexcept {
  if (head == nullptr) return;
  if (head->next_ == nullptr) {  // the common case: one watcher
    const Events wanted = ready & head->interest_;
    if (!wanted.empty()) {
      ++core_.dispatched;
      head->notify(wanted);
    }
    return;
  }
  // Several watchers: serve exactly those present now. A callback may stop, destroy or
  // restart any of them (a stopped one is blanked out of the snapshot; a restarted or
  // new one waits for the next iteration), so no watcher runs twice in one pass.
  snapshot_.clear();
  for (Io* w = head; w != nullptr; w = w->next_)
    snapshot_.push_back(w);
  snapshot_live_ = true;
  for (size_t i = 0; i < snapshot_.size(); ++i) {
    Io* w = snapshot_[i];
    if (w == nullptr) continue;
    const Events wanted = ready & w->interest_;
    if (!wanted.empty()) {
      ++core_.dispatched;
      w->notify(wanted);
    }
  }
  snapshot_live_ = false;
}

// --- replacing the kernel object ----------------------------------------------------

void DescriptorTable::note_stale_report() noexcept {
  // The kernel holds a registration the loop cannot remove (epoll_backend.hpp, note a):
  // only a new kernel object is rid of it. Replaced gradually where the backend can, so
  // that no iteration pays for re-registering every descriptor at once.
  if constexpr (Backend::kRenewsGradually) {
    if (!renewing_) renewal_needed_ = true;  // while renewing, the old object's reports are expected
  } else {
    core_.rebuild_needed = true;
  }
}

void DescriptorTable::reregister(ChangeBatch& batch) noexcept {
  end_renewal();  // the backend dropped any object being retired
  for (size_t fd = 0; fd < fds_.size(); ++fd) {
    Entry& e = fds_[fd];
    e.registered = Events();
    stop_stamps_[fd] = 0;
    if (e.head != nullptr)
      batch.add(
          InterestChange{static_cast<int>(fd), Events(), wanted_interest(static_cast<int>(fd)), core_.take_tag()});
  }
}

Error DescriptorTable::start_renewal() noexcept {
  if constexpr (Backend::kRenewsGradually) {
    if (Error err = core_.backend.renew()) {
      // Out of resources: renewal_needed_ stays, tried again next time. Refused for another
      // reason (say too deep a nesting of epoll instances, ELOOP): all at once instead.
      if (err.code() == EMFILE || err.code() == ENFILE || err.code() == ENOMEM) return err;
      renewal_needed_ = false;
      core_.rebuild_needed = true;
      return Error();
    }
    renewal_needed_ = false;
    renewing_ = true;
    renewal_mark_ = core_.next_tag;
    renewal_cursor_ = 0;
  }
  return Error();
}

void DescriptorTable::continue_renewal() noexcept {
  if constexpr (Backend::kRenewsGradually) {
    // One batch of registrations per iteration moves to the new kernel object; what is
    // not moved yet is still reported through the old one, nested in the new. The scan
    // is bounded too: a sparse table (a few high numbers) costs no long pause.
    ChangeBatch batch(core_.backend, &DescriptorTable::record, this);
    size_t moved = 0;
    for (size_t scanned = 0; renewal_cursor_ < fds_.size() && moved < kMaxChangesPerApply && scanned < 4096;
         ++renewal_cursor_, ++scanned) {
      const Entry& e = fds_[renewal_cursor_];
      if (e.registered.empty() || in_current_set(e)) continue;
      batch.add(InterestChange{static_cast<int>(renewal_cursor_), Events(), e.registered, core_.take_tag()});
      ++moved;
    }
    (void)batch.finish();
    if (renewal_cursor_ < fds_.size()) return;
    if (core_.backend.retire()) return;  // refused: the old set stays, tried again next iteration
    renewing_ = false;
    ++core_.rebuilds;
  }
}

// --- the loop goes away -------------------------------------------------------------

void DescriptorTable::detach_all() noexcept {
  auto detach_chain = [](Io* w) {
    while (w != nullptr) {
      Io* next = w->next_;
      w->next_ = nullptr;
      w->active_ = false;
      w->failed_ = false;
      w->detach();
      w = next;
    }
  };
  for (Entry& e : fds_) {
    detach_chain(e.head);
    e.head = nullptr;
  }
  detach_chain(failed_);
  failed_ = nullptr;
}

}  // namespace evflow::detail
