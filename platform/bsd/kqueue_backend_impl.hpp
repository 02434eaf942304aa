// evflow — the kqueue backend's member definitions (a template: included by
// kqueue_backend.hpp). The lettered notes are in that header.
#pragma once

#include <cerrno>
#include <limits>
#include <new>

#include "../fatal.hpp"
#include "../fork_generation.hpp"
#include "kqueue_backend.hpp"

namespace evflow::detail {

template <class Kernel>
Error BasicKqueueBackend<Kernel>::create_instance() noexcept {
  const int kq = Kernel::kqueue();
  if (kq < 0) return Error(Kernel::last_error());
  (void)Kernel::set_cloexec(kq);  // note h
  Kevent wake_event{};
  wake_event.ident = kWakeIdent;
  wake_event.filter = Kernel::kEvfiltUser;
  wake_event.flags = kqueue_abi::kEvAdd | kqueue_abi::kEvClear;  // note e
  if (Kernel::kevent(kq, &wake_event, 1, nullptr, 0, nullptr) < 0) {
    const int err = Kernel::last_error();
    (void)Kernel::close(kq);
    return Error(err);
  }
  kqueue_fd_.store(kq, std::memory_order_release);
  generation_ = fork_generation();
  armed_deadline_ = -1;  // a new kqueue has no keep_ready_at timer (note m)
  return Error();
}

template <class Kernel>
void BasicKqueueBackend<Kernel>::release(int kq) noexcept {
  // Only a kqueue this process created: after fork its number is free or someone else's (note f).
  if (kq >= 0 && generation_ == fork_generation()) (void)Kernel::close(kq);
}

template <class Kernel>
Error BasicKqueueBackend<Kernel>::open() noexcept {
  if (native_handle() >= 0) return Error(EBUSY);
  if (!events_) grow(64);
  if (!changes_) changes_.reset(new (std::nothrow) Kevent[3 * kChangeCapacity]);  // changes, receipts, undo
  if (!events_ || !changes_) return Error(ENOMEM);
  return create_instance();
}

template <class Kernel>
void BasicKqueueBackend<Kernel>::close() noexcept {
  release(kqueue_fd_.exchange(-1));
}

template <class Kernel>
Error BasicKqueueBackend<Kernel>::reopen() noexcept {
  const int old = native_handle();
  const uint64_t old_generation = generation_;
  if (Error err = create_instance()) return err;
  if (old >= 0 && old_generation == fork_generation()) (void)Kernel::close(old);
  // A wake() that reached the old kqueue is not lost: report one on the new one (a
  // spurious wake-up at worst, as the contract allows).
  wake();
  return Error();
}

template <class Kernel>
Error BasicKqueueBackend<Kernel>::after_fork() noexcept {
  kqueue_fd_.store(-1, std::memory_order_relaxed);  // not ours in the child (note f): never closed
  return create_instance();
}

template <class Kernel>
void BasicKqueueBackend<Kernel>::wake() noexcept {
  const int saved_errno = errno;  // may run in a signal handler: leave errno as it was
  Kevent trigger{};
  trigger.ident = kWakeIdent;
  trigger.filter = Kernel::kEvfiltUser;
  trigger.fflags = kqueue_abi::kNoteTrigger;
  (void)Kernel::kevent(kqueue_fd_.load(std::memory_order_acquire), &trigger, 1, nullptr, 0, nullptr);
  errno = saved_errno;
}

template <class Kernel>
void BasicKqueueBackend<Kernel>::grow(int capacity) noexcept {
  Kevent* events = new (std::nothrow) Kevent[static_cast<size_t>(capacity)];
  ReadyEvent* ready = new (std::nothrow) ReadyEvent[static_cast<size_t>(capacity)];
  if (events == nullptr || ready == nullptr) {
    delete[] events;
    delete[] ready;
    return;  // keep the current buffers
  }
  events_.reset(events);
  ready_.reset(ready);
  capacity_ = capacity;
}

template <class Kernel>
void BasicKqueueBackend<Kernel>::apply(std::span<InterestChange> changes) noexcept {
  // Up to two kevents per change (note a), and as many receipts (note b).
  if (changes.size() > kMaxChangesPerApply) detail::fatal("kqueue backend: more changes than kMaxChangesPerApply");
  Kevent* list = changes_.get();
  Kevent* receipts = list + kChangeCapacity;
  // A filter gets a kevent when wanted (EV_ADD: adds, or modifies the tag, note i), when
  // registered and no longer wanted (EV_DELETE), and when the caller believes nothing is
  // registered (EV_DELETE, ENOENT ignored): a registration it lost track of is dropped,
  // as the epoll backend turns EEXIST into a modify.
  auto sent = [](bool wanted, bool had, bool fresh) { return wanted || had || fresh; };
  int count = 0;
  auto queue = [&](const InterestChange& change, int16_t filter, bool wanted, bool had) {
    if (!sent(wanted, had, change.from.empty())) return;
    Kevent& k = list[count++];
    k = Kevent{};
    k.ident = static_cast<uintptr_t>(change.fd);
    k.filter = filter;
    k.flags = static_cast<uint16_t>((wanted ? kqueue_abi::kEvAdd : kqueue_abi::kEvDelete) | kqueue_abi::kEvReceipt);
    if (filter == kqueue_abi::kEvfiltProc) k.fflags = kqueue_abi::kNoteExit;  // note l
    k.udata = pack(change.fd, change.tag);
  };
  for (InterestChange& change : changes) {
    change.error = Error();
    if (change.source != Source::Descriptor) {  // one kevent: the signal's or the process's (note l)
      if (change.fd <= 0) {
        change.error = Error(EINVAL);
        continue;
      }
      const int16_t filter = change.source == Source::Signal ? kqueue_abi::kEvfiltSignal : kqueue_abi::kEvfiltProc;
      queue(change, filter, !change.to.empty(), !change.from.empty());
      continue;
    }
    // Regular files and directories are always ready: refused as epoll refuses them (note j).
    if (change.from.empty() && !change.to.empty()) {
      if (const int refused = Kernel::refusal(change.fd)) {
        change.error = Error(refused);
        continue;
      }
    }
    queue(change, kqueue_abi::kEvfiltRead, change.to.readable(), change.from.readable());
    queue(change, kqueue_abi::kEvfiltWrite, change.to.writable(), change.from.writable());
  }
  if (count == 0) return;
  ++interest_syscalls_;
  const kqueue_abi::Timespec zero{0, 0};
  const int answered = Kernel::kevent(native_handle(), list, count, receipts, count, &zero);
  if (answered < 0) {
    const Error err(Kernel::last_error());
    for (InterestChange& change : changes)
      if (!change.error) change.error = err;
    return;
  }
  // Receipts come in changelist order (note i); match them to their changes. A change is
  // all or nothing, as with epoll: when one filter failed, the other's add is undone (note k).
  Kevent* undo = receipts + kChangeCapacity;
  int undone = 0;
  int next = 0;
  for (InterestChange& change : changes) {
    if (change.error) continue;  // refused before submission: no kevent
    const bool fresh = change.from.empty();
    const int kevents = change.source != Source::Descriptor
                            ? 1
                            : sent(change.to.readable(), change.from.readable(), fresh) +
                                  sent(change.to.writable(), change.from.writable(), fresh);
    const int first = next;
    for (int k = 0; k < kevents; ++k, ++next) {
      const int err = next >= answered                                ? EIO
                      : (receipts[next].flags & kqueue_abi::kEvError) ? static_cast<int>(receipts[next].data)
                                                                      : 0;
      const bool removal = (list[next].flags & kqueue_abi::kEvDelete) != 0;
      // Already gone: a closed descriptor (note c), an exited process (note l).
      if (err == 0 || (removal && (err == ENOENT || err == EBADF || err == ESRCH))) continue;
      if (!change.error) change.error = Error(err);
    }
    // wait() merges a descriptor's reports through seen_: room for it once the kernel took
    // the descriptor (not before: a wild number is EBADF, not a table of billions), and
    // here, where running out of memory can still be reported (the add is undone below).
    if (!change.error && change.source == Source::Descriptor && !change.to.empty()) {
      const auto slot = static_cast<size_t>(change.fd);
      if (slot >= seen_.size() && !seen_.resize(slot + 1 > 2 * seen_.size() ? slot + 1 : 2 * seen_.size()))
        change.error = Error(ENOMEM);
    }
    if (!change.error) continue;
    for (int k = first; k < next && k < answered; ++k) {
      const bool added = (list[k].flags & kqueue_abi::kEvAdd) != 0;
      if (added && (!(receipts[k].flags & kqueue_abi::kEvError) || receipts[k].data == 0)) {
        undo[undone] = list[k];
        undo[undone++].flags = kqueue_abi::kEvDelete | kqueue_abi::kEvReceipt;
      }
    }
  }
  if (undone > 0) {
    ++interest_syscalls_;
    (void)Kernel::kevent(native_handle(), undo, undone, receipts, undone, &zero);
  }
}

template <class Kernel>
Result<int> BasicKqueueBackend<Kernel>::wait(int64_t timeout_ns, int64_t) noexcept {
  if (grow_before_next_wait_) {  // not earlier: event(i) reads the buffers until now
    grow(capacity_ * 2);
    grow_before_next_wait_ = false;
  }
  kqueue_abi::Timespec timeout{};
  const kqueue_abi::Timespec* limit = nullptr;
  if (timeout_ns >= 0) {
    if (sleep_path_ == SleepPath::Milliseconds && timeout_ns <= INT64_MAX - 999'999)
      timeout_ns = (timeout_ns + 999'999) / 1'000'000 * 1'000'000;
    timeout.tv_sec = timeout_ns / 1'000'000'000;
    timeout.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
    limit = &timeout;
  }
  const int count = Kernel::kevent(native_handle(), nullptr, 0, events_.get(), capacity_, limit);
  if (count < 0) {
    const int err = Kernel::last_error();
    if (err == EINTR) return 0;  // a signal: the loop looks at what it brought, then waits again
    return Error(err);
  }
  // One event per descriptor and tag (note a): the reports of one descriptor are merged
  // into the first, found through a per-descriptor stamp of this wait (no search).
  ++wait_stamp_;
  int merged = 0;
  for (int i = 0; i < count; ++i) {
    const Kevent& raw = events_[i];
    if (raw.filter == Kernel::kEvfiltUser) {
      ready_[merged++] = ReadyEvent{kWakeDescriptor, 0, Events()};
      continue;
    }
    if (raw.filter == kqueue_abi::kEvfiltTimer) {  // keep_ready_at's, one-shot (note m)
      armed_deadline_ = -1;
      continue;
    }
    const auto data = reinterpret_cast<uintptr_t>(raw.udata);
    const int fd = static_cast<int>(static_cast<uint32_t>(data));
    const auto tag = static_cast<uint32_t>(data >> 32);
    if (raw.filter == kqueue_abi::kEvfiltSignal || raw.filter == kqueue_abi::kEvfiltProc) {  // note l
      const Source source = raw.filter == kqueue_abi::kEvfiltSignal ? Source::Signal : Source::Process;
      ready_[merged++] = ReadyEvent{fd, tag, Readable, source};
      continue;
    }
    Events ready = raw.filter == kqueue_abi::kEvfiltRead ? Readable : Writable;  // EV_EOF too (note d)
    if (raw.flags & kqueue_abi::kEvError) ready = Readable | Writable;           // the next read or write reports it
    const auto slot = static_cast<size_t>(fd);
    Seen* seen = slot < seen_.size() ? &seen_[slot] : nullptr;  // apply() covered every registered one
    if (seen != nullptr && seen->stamp == wait_stamp_ && seen->index < merged && ready_[seen->index].fd == fd &&
        ready_[seen->index].tag == tag) {
      ready_[seen->index].events |= ready;
    } else {
      if (seen != nullptr) *seen = Seen{wait_stamp_, merged};
      ready_[merged++] = ReadyEvent{fd, tag, ready};
    }
  }
  grow_before_next_wait_ = count == capacity_ && capacity_ < 4096;  // busy: take more next time
  return merged;
}

template <class Kernel>
void BasicKqueueBackend<Kernel>::keep_ready_at(int64_t timeout_ns, int64_t deadline_ns) noexcept {
  if (deadline_ns == armed_deadline_ || deadline_ns == std::numeric_limits<int64_t>::max()) return;
  Kevent timer{};
  timer.ident = kTimerIdent;
  timer.filter = kqueue_abi::kEvfiltTimer;
  timer.flags = kqueue_abi::kEvAdd | kqueue_abi::kEvOneshot;
  timer.fflags = Kernel::kNoteNanoseconds;
  timer.data = timeout_ns > 0 ? timeout_ns : 0;  // 0: at once
  ++interest_syscalls_;
  if (Kernel::kevent(native_handle(), &timer, 1, nullptr, 0, nullptr) == 0) armed_deadline_ = deadline_ns;
}

}  // namespace evflow::detail
