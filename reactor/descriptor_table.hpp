// evflow — detail::DescriptorTable: the loop's Io watchers and the kernel's interest set.
//
// One entry per descriptor number: the watchers on it (in start order), the interest the
// kernel has for it and the tag of that registration. Starting a watcher on a number the
// kernel does not watch registers it at once (so that a bad descriptor is an error of
// start()); every other start, stop or change of interest only queues the number, and
// apply_changes() brings the kernel in line once per iteration, in batches: a watcher
// stopped and started again unchanged costs nothing. Reports are matched to the entry by
// tag, so a report for a registration since replaced is dropped; one the loop can explain
// by no recent change is an orphan (a closed descriptor whose duplicate lives on, epoll
// note a) and has the kernel object replaced: gradually where the backend can (a batch of
// registrations per iteration), at once otherwise. A descriptor the kernel refuses on
// re-registration, or reports closed, has its watchers stopped and called once with Invalid.
//
// Memory: the table grows when a start needs it (ENOMEM then); the change queue and the
// snapshot of a descriptor's watchers have room for every descriptor and watcher before
// they are needed, so that dispatching and applying never allocate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../platform/growable_array.hpp"
#include "../platform/prefetch.hpp"
#include "../platform/readiness.hpp"
#include "change_batch.hpp"
#include "loop_core.hpp"

namespace evflow {

class Io;

namespace detail {

class DescriptorTable {
 public:
  explicit DescriptorTable(LoopCore& core) noexcept : core_(core) {}
  DescriptorTable(const DescriptorTable&) = delete;
  DescriptorTable& operator=(const DescriptorTable&) = delete;

  // The first room of the tables. Errors: ENOMEM.
  Error open() noexcept;

  // The Io watcher's verbs (io.cpp calls them).
  Error start(Io& watcher) noexcept;
  void stop(Io& watcher) noexcept;
  Error close(Io& watcher) noexcept;
  void interest_changed(Io& watcher) noexcept;

  // Takes `fd`'s registration out of the kernel now, if no watcher needs it any more.
  void deregister(int fd) noexcept;

  bool has_changes() const noexcept { return !changed_fds_.empty(); }
  void apply_changes() noexcept;

  // Watchers waiting for their Invalid callback.
  bool has_failed() const noexcept { return failed_ != nullptr; }
  void dispatch_failed() noexcept;
  // One report of the backend for a descriptor. Inline where Io is complete (io.hpp): a
  // live registration with one watcher is served there; the rest by dispatch_other().
  inline void dispatch(const ReadyEvent& event) noexcept;
  // Hints for a batch of events, dispatched in report order, not memory order: fetch the
  // entry of an event two ahead, and the first watcher of the next one (whose entry the
  // hint before brought in). Nothing is read that the hint could not.
  void prefetch_entry(int fd) const noexcept {
    const auto index = static_cast<size_t>(fd);
    if (index < fds_.size()) prefetch(&fds_[index]);
  }
  void prefetch_watcher(int fd) const noexcept {
    const auto index = static_cast<size_t>(fd);
    if (index < fds_.size() && fds_[index].head != nullptr) prefetch(fds_[index].head);
  }

  // Replacing the kernel object: reregister() queues every registration into a batch for
  // a new, empty one; the renewal moves them a batch per iteration (Backend::renew).
  void reregister(ChangeBatch& batch) noexcept;
  void end_renewal() noexcept { renewal_needed_ = renewing_ = false; }
  bool renewal_needed() const noexcept { return renewal_needed_; }
  bool renewing() const noexcept { return renewing_; }
  Error start_renewal() noexcept;
  void continue_renewal() noexcept;
  // The outcome of a change applied through a batch (ChangeBatch::Record).
  static Error record(void* table, const InterestChange& change) noexcept;

  // The loop goes away: every watcher becomes inactive and forgets it.
  void detach_all() noexcept;
  // In a forked child whose running thread is gone: no pass over a descriptor is under way.
  void abandon_dispatch() noexcept {
    snapshot_live_ = false;
    cursor_ = nullptr;
  }

 private:
  // What the loop knows of one descriptor number.
  struct Entry {
    Io* head = nullptr;   // active watchers on this descriptor, in start order
    uint32_t tag = 0;     // tag of the last change of the kernel registration
    Events registered;    // interest the kernel has for this descriptor
    bool queued = false;  // in changed_fds_
  };
  // Four to a cache line: dispatching an event reads its descriptor's entry, and ready
  // descriptors are often neighbours. (The stop stamps, needed only by start and stop,
  // live apart in stop_stamps_.)
  static_assert(sizeof(void*) != 8 || sizeof(Entry) == 16);

  Error cover(size_t count) noexcept;  // the table and what keeps pace with it, to `count` entries
  void queue(int fd) noexcept;
  Events wanted_interest(int fd) const noexcept;
  Error register_now(int fd, Events from, Events to) noexcept;
  void record_outcome(const InterestChange& change) noexcept;
  void fail_watchers(Entry& e) noexcept;                  // e's watchers to failed_, for an Invalid callback
  void dispatch_other(const ReadyEvent& event) noexcept;  // dispatch() but its common case
  void dispatch_watchers(Io* head, Events ready) noexcept;
  void note_stale_report() noexcept;
  // While the backend is renewed (kRenewsGradually), whether `e`'s registration is in the
  // new kernel object: registered (or changed) since the renewal began.
  bool in_current_set(const Entry& e) const noexcept {
    return !renewing_ || issued_since(e.tag, renewal_mark_, core_.next_tag);
  }
  // What the current kernel object has for `e`.
  Events kernel_interest(const Entry& e) const noexcept { return in_current_set(e) ? e.registered : Events(); }

  LoopCore& core_;
  bool snapshot_live_ = false;
  bool renewal_needed_ = false;  // a stale report: replace the kernel object gradually
  bool renewing_ = false;        // between Backend::renew() and retire()
  Io* failed_ = nullptr;         // watchers whose descriptor the kernel refused or reported closed
  GrowableArray<Entry> fds_;
  GrowableArray<uint32_t> stop_stamps_;  // per descriptor: the stamp of the watcher that stopped last
                                         // (Io::stop_stamp_); 0 after apply. As long as fds_.
  GrowableArray<int> changed_fds_;       // room for every descriptor of fds_
  Io* cursor_ = nullptr;                 // next watcher of the failed list being dispatched
  GrowableArray<Io*> snapshot_;          // watchers of the descriptor being dispatched (several);
                                         // room for the most watchers any descriptor has
  uint32_t next_stop_stamp_ = 1;
  uint32_t renewal_mark_ = 0;  // next tag when the renewal began
  size_t renewal_cursor_ = 0;  // next descriptor to move to the new kernel object
};

}  // namespace detail
}  // namespace evflow
