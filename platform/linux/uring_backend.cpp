#include "uring_backend.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <limits>
#include <new>

#include "../clock.hpp"
#include "../fatal.hpp"
#include "../fork_generation.hpp"
#include "../timer_slack.hpp"
#include "epoll_backend.hpp"
#include "socket_operation.hpp"

namespace evflow::detail {

namespace {

using linux_abi::IoUringCqe;
using linux_abi::IoUringSqe;

constexpr unsigned kSubmissionEntries = 256;   // a full apply() takes at most 128 (note c)
constexpr unsigned kCompletionEntries = 4096;  // more wait in the kernel's overflow list
// user_data of the backend's own requests (note b): descriptors -1, -2, -3 with tag 0.
constexpr uint32_t kWakeData = 0xffffffffu;       // the wake-up eventfd's poll (note g)
constexpr uint32_t kTimerData = 0xfffffffeu;      // the embedded loop's timeout (note h)
constexpr uint32_t kRemoveData = 0xfffffffdu;     // POLL_REMOVE and TIMEOUT_REMOVE
constexpr uint32_t kOperationData = 0x80000000u;  // an operation, its slot above (note l)
constexpr uint32_t kInternalBit = 0x80000000u;    // one of the four above
constexpr uint64_t kProbeBit = 0x40000000u;       // a new registration's probe (note c)
constexpr int kMaxDescriptor = 0x3fffffff;        // below both bits

uint64_t registration(int fd, uint32_t tag) noexcept { return (uint64_t{tag} << 32) | static_cast<uint32_t>(fd); }

// The change of this apply() that made the registration (fd, tag), if any.
InterestChange* added_by(std::span<InterestChange> changes, int fd, uint32_t tag) noexcept {
  for (InterestChange& change : changes) {
    if (change.fd == fd && change.tag == tag && !change.to.empty()) return &change;
  }
  return nullptr;
}

}  // namespace

Error UringBackend::open() noexcept {
  if (ring_.is_open()) return Error(EBUSY);
  Result<int> wakefd = linux_abi::eventfd(0);
  if (!wakefd) return wakefd.error();
  wake_fd_ = wakefd.value();
  if (Error err = open_ring()) {
    close();
    return err;
  }
  return Error();
}

Error UringBackend::open_ring() noexcept {
  watch_forks();
  ring_generation_ = fork_generation();
  // Note m: task work without an interrupt (Linux >= 5.19; EINVAL before, then without).
  Error opened = ring_.open(kSubmissionEntries, kCompletionEntries,
                            linux_abi::kIoringSetupClamp | linux_abi::kIoringSetupCoopTaskrun);
  if (opened == Error(EINVAL))
    opened = ring_.open(kSubmissionEntries, kCompletionEntries, linux_abi::kIoringSetupClamp);
  if (opened) return opened;
  constexpr uint32_t kNeeded = linux_abi::kIoringFeatExtArg | linux_abi::kIoringFeatRsrcTags;  // note a
  if ((ring_.features() & kNeeded) != kNeeded) {
    ring_.close();
    return Error(ENOSYS);
  }
  if (!events_ || capacity_ < static_cast<int>(ring_.cq_entries())) {
    const int capacity = static_cast<int>(ring_.cq_entries());
    events_.reset(new (std::nothrow) ReadyEvent[capacity]);
    if (!events_) {
      ring_.close();
      capacity_ = 0;
      return Error(ENOMEM);
    }
    capacity_ = capacity;
  }
  count_ = reported_ = 0;
  timer_deadline_ = -1;
  queue_poll(wake_fd_, Readable, kWakeData, true);
  Result<int> submitted = enter(0, nullptr);
  if (!submitted) {
    ring_.close();
    return submitted.error();
  }
  return Error();
}

void UringBackend::close() noexcept {
  cancel_all();
  ring_.close();
  operations_.clear();  // their owners abandoned them first (operation.hpp)
  free_slots_.clear();
  completed_head_ = completed_tail_ = nullptr;
  if (wake_fd_ >= 0) (void)linux_abi::close(wake_fd_);
  wake_fd_ = -1;
  polls_.clear();
  count_ = reported_ = 0;
  timer_deadline_ = -1;
}

void UringBackend::cancel_all() noexcept {
  // Note j. (Before Linux 5.19, EINVAL: the ring's teardown cancels them, later.)
  // In a forked child the ring is the parent's (note i): not ours to submit to.
  if (!ring_.is_open() || fork_generation() != ring_generation_) return;
  IoUringSqe* sqe = next_sqe();
  sqe->opcode = linux_abi::kIoringOpAsyncCancel;
  sqe->fd = -1;
  sqe->op_flags = linux_abi::kIoringAsyncCancelAll | linux_abi::kIoringAsyncCancelAny;
  sqe->user_data = kRemoveData;
  (void)ring_.submit_and_wait(1, nullptr);
  (void)ring_.submit_and_wait(0, nullptr);  // the cancelled requests' task work, if any is left
}

Error UringBackend::reopen() noexcept {
  // The ring is this process's alone (after_fork() handles a shared one). The eventfd
  // stays, for the threads that may be writing. Operations that completed are
  // delivered; the ones cancelled here stay in the table for the new ring (note l).
  cancel_all();
  reopening_ = true;
  reap({});
  reopening_ = false;
  ring_.close();
  polls_.clear();
  if (Error err = open_ring()) return err;
  resubmit_operations();
  return Error();
}

Error UringBackend::after_fork() noexcept {
  // Note i: only our mappings and descriptor of the parent's ring go.
  ring_.close();
  polls_.clear();
  count_ = reported_ = 0;
  if (Error err = linux_abi::renew_eventfd(wake_fd_)) return err;
  unread_wakes_ = 0;
  wake_word_.reset();
  if (Error err = open_ring()) return err;
  resubmit_operations();  // note l
  return Error();
}

Error UringBackend::set_timer_slack(int64_t ns) noexcept { return set_thread_timer_slack(ns); }

// --- the submission ring ------------------------------------------------------------

IoUringSqe* UringBackend::next_sqe() noexcept {
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (IoUringSqe* sqe = ring_.get_sqe()) return sqe;
    // Full: what is queued goes to the kernel now (completions it cannot post wait in
    // its overflow list, kIoringFeatNodrop).
    (void)enter(0, nullptr);
  }
  fatal("evflow: the io_uring submission ring stays full");
}

void UringBackend::queue_poll(int fd, Events interest, uint64_t user_data, bool multishot) noexcept {
  IoUringSqe* sqe = next_sqe();
  sqe->opcode = linux_abi::kIoringOpPollAdd;
  sqe->fd = fd;
  sqe->len = multishot ? linux_abi::kIoringPollAddMulti : 0;
  sqe->op_flags = EpollBackend::interest_mask(interest);  // poll(2)'s bits are epoll's
  sqe->user_data = user_data;
}

void UringBackend::queue_remove(uint64_t user_data) noexcept {
  IoUringSqe* sqe = next_sqe();
  sqe->opcode = linux_abi::kIoringOpPollRemove;
  sqe->fd = -1;
  sqe->addr = user_data;
  sqe->user_data = kRemoveData;
}

// An io_uring_enter that ended without harm: the timeout expired (ETIME), a signal
// (EINTR), or no room for completions yet (EAGAIN, EBUSY: the next one submits the rest).
bool UringBackend::harmless(Error err) noexcept {
  const int code = err.code();
  return code == ETIME || code == EINTR || code == EAGAIN || code == EBUSY;
}

Result<int> UringBackend::enter(unsigned wait_nr, const linux_abi::KernelTimespec* timeout) noexcept {
  Result<int> ret = ring_.submit_and_wait(wait_nr, timeout);
  if (!ret && harmless(ret.error())) return 0;
  return ret;
}

// --- interest -------------------------------------------------------------------------

void UringBackend::apply(std::span<InterestChange> changes) noexcept {
  bool adds = false;
  for (InterestChange& change : changes) {
    change.error = Error();
    if (change.source != Source::Descriptor) {  // neither kReportsSignals nor kReportsProcesses
      change.error = Error(EINVAL);
      continue;
    }
    if (change.fd < 0 || change.fd > kMaxDescriptor) {
      change.error = Error(EBADF);
      continue;
    }
    const auto index = static_cast<size_t>(change.fd);
    if (index >= polls_.size()) {
      if (change.to.empty()) continue;  // never armed here
      if (!polls_.resize(std::max<size_t>(64, std::bit_ceil(index + 1)))) {
        change.error = Error(ENOMEM);
        continue;
      }
    }
    Poll& poll = polls_[index];
    if (poll.armed) queue_remove(registration(change.fd, poll.tag));  // note c
    poll = Poll{change.tag, change.to.bits(), !change.to.empty()};
    if (change.to.empty()) continue;
    if (change.from.empty()) {  // note c: the probe first, then the poll
      queue_poll(change.fd, Events(), registration(change.fd, change.tag) | kProbeBit, false);
      queue_remove(registration(change.fd, change.tag) | kProbeBit);
      adds = true;
    }
    queue_poll(change.fd, change.to, registration(change.fd, change.tag), false);
  }
  if (!adds) return;
  // A new registration is refused now or never (note c).
  ++interest_syscalls_;
  (void)enter(0, nullptr);
  reap(changes);
}

void UringBackend::flush() noexcept {
  if (ring_.pending() == 0) return;
  ++interest_syscalls_;
  (void)enter(0, nullptr);
}

// --- completions ------------------------------------------------------------------------

void UringBackend::reap(std::span<InterestChange> added) noexcept {
  while (count_ < capacity_) {
    const IoUringCqe* next = ring_.peek();
    if (next == nullptr) break;
    const IoUringCqe cqe = *next;
    ring_.advance(1);  // before anything below may submit (and so post more)
    switch (static_cast<uint32_t>(cqe.user_data)) {
      case kWakeData:
        events_[count_++] = ReadyEvent{kWakeDescriptor, 0, Readable};
        if ((cqe.flags & linux_abi::kIoringCqeFMore) == 0) queue_poll(wake_fd_, Readable, kWakeData, true);
        break;
      case kTimerData:
        if (cqe.res == -ETIME) timer_deadline_ = -1;  // fired; a removed one says ECANCELED
        break;
      case kRemoveData:
        break;
      case kOperationData:
        on_operation(cqe);
        break;
      default:
        if ((static_cast<uint32_t>(cqe.user_data) & kInternalBit) == 0) on_poll(cqe, added);
    }
  }
}

void UringBackend::on_poll(const IoUringCqe& cqe, std::span<InterestChange> added) noexcept {
  const auto low = static_cast<uint32_t>(cqe.user_data);
  const int fd = static_cast<int>(low & static_cast<uint32_t>(kMaxDescriptor));
  const auto tag = static_cast<uint32_t>(cqe.user_data >> 32);
  if (static_cast<size_t>(fd) >= polls_.size()) return;
  Poll& poll = polls_[static_cast<size_t>(fd)];
  if (!poll.armed || poll.tag != tag) return;  // removed or replaced since (note b)
  if ((low & kProbeBit) != 0) {                // note c
    InterestChange* change = added_by(added, fd, tag);
    // Armed, then removed (ECANCELED), or completed by an error or hang-up: pollable.
    if (change == nullptr || cqe.res >= 0 || cqe.res == -ECANCELED) return;
    poll.armed = false;                                            // its poll's completion, next, is dropped
    change->error = Error(cqe.res == -EINVAL ? EPERM : -cqe.res);  // no wait queue: EPERM; EBADF
    return;
  }
  if (cqe.res < 0) {
    if (cqe.res == -ECANCELED) {  // not by us (we never cancel a current poll): armed again
      queue_poll(fd, Events(poll.bits), cqe.user_data, false);
      return;
    }
    poll.armed = false;
    events_[count_++] = ReadyEvent{fd, tag, Invalid};  // note d
    return;
  }
  // Reported, and armed again by the wait after the one that reports it (rearm_reported()).
  events_[count_++] = ReadyEvent{fd, tag, EpollBackend::translate(static_cast<uint32_t>(cqe.res))};
}

void UringBackend::recheck_pending() noexcept {
  // Note k: a completion already in the ring (or kept by apply()) says the descriptor was
  // ready when it was posted, maybe long before this wait; the loop's callbacks may have
  // drained it since. Each becomes a poll armed again, which the kernel completes while
  // this wait submits it if the descriptor is still ready.
  reap({});
  int kept = 0;
  for (int i = 0; i < count_; ++i) {
    const ReadyEvent event = events_[i];
    if (event.fd >= 0 && !event.events.invalid()) {
      const Poll& poll = polls_[static_cast<size_t>(event.fd)];
      if (poll.armed && poll.tag == event.tag)
        queue_poll(event.fd, Events(poll.bits), registration(event.fd, event.tag), false);
      continue;
    }
    events_[kept++] = event;  // wake-ups and failures stand
  }
  count_ = kept;
}

void UringBackend::rearm_reported() noexcept {
  // Level-triggered (note d): each poll that the last wait reported has completed; once
  // the loop has served its events, it is armed again, and the kernel completes it again
  // at once if the descriptor is still ready. Not before: a descriptor would be reported
  // twice by one wait (once from the completion kept, once from its new poll).
  for (int i = 0; i < reported_; ++i) {
    const ReadyEvent& event = events_[i];
    if (event.fd < 0 || event.events.invalid()) continue;
    const Poll& poll = polls_[static_cast<size_t>(event.fd)];
    if (!poll.armed || poll.tag != event.tag) continue;  // removed or replaced meanwhile
    queue_poll(event.fd, Events(poll.bits), registration(event.fd, event.tag), false);
  }
}

Result<int> UringBackend::wait(int64_t timeout_ns, int64_t deadline_ns) noexcept {
  if (reported_ > 0) {  // dispatched: what apply() read since moves to the front (note e)
    rearm_reported();
    const int kept = count_ - reported_;
    if (kept > 0)
      std::memmove(events_.get(), events_.get() + reported_, static_cast<size_t>(kept) * sizeof(ReadyEvent));
    count_ = kept;
    reported_ = 0;
  }
  recheck_pending();
  // Note g: a wait that may block announces itself on the word; a wake-up already there
  // makes it a poll.
  bool polling = false;
  if (timeout_ns != 0) {
    polling = wake_word_.announce_wait();
    if (!polling) timeout_ns = 0;
  }
  Error failed;
  for (;;) {
    Result<int> entered = 0;
    if (timeout_ns == 0 || count_ > 0 || completed_head_ != nullptr || ring_.ready() > 0) {
      entered = enter(0, nullptr);  // note f
    } else if (timeout_ns < 0) {
      entered = ring_.submit_and_wait(1, nullptr);
    } else {
      int64_t ns = timeout_ns;
      if (sleep_path_ == SleepPath::Milliseconds) ns = (ns + 999'999) / 1'000'000 * 1'000'000;  // never early
      const linux_abi::KernelTimespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
      entered = ring_.submit_and_wait(1, &ts);
    }
    bool retry = false;
    if (!entered) {
      if (!harmless(entered.error())) {
        failed = entered.error();
        break;
      }
    } else {
      retry = timeout_ns != 0;  // woken by a completion: maybe only one never shown
    }
    reap({});
    if (count_ > 0 || completed_head_ != nullptr || !retry) break;
    // Only completions the loop never sees (a removal's, a stale poll's): the wait goes
    // on for what is left of its timeout, so as not to end before it.
    if (timeout_ns > 0) {
      timeout_ns = deadline_ns - monotonic_ns();
      if (timeout_ns <= 0) break;
    }
  }
  if (polling) wake_word_.end_wait();
  if (failed) return failed;
  if (wake_word_.sent()) report_wake();
  reported_ = count_;
  return count_;
}

void UringBackend::report_wake() noexcept {
  for (int i = 0; i < count_; ++i)
    if (events_[i].fd == kWakeDescriptor) return;
  if (count_ == capacity_) return;  // no room: the word stays sent, the next wait reports it
  events_[count_++] = ReadyEvent{kWakeDescriptor, 0, Readable};  // as the eventfd's completion
}

void UringBackend::keep_ready_at(int64_t, int64_t deadline_ns) noexcept {
  // Note h.
  if (!ring_.is_open()) return;
  // Note g: polled by another loop, this one does not wait: every wake-up writes the
  // eventfd from now on, and one sent before is written now.
  if (wake_word_.poll_from_outside()) signal_wake_fd();
  if (deadline_ns != std::numeric_limits<int64_t>::max() && deadline_ns != timer_deadline_) {
    if (timer_deadline_ != -1) {
      IoUringSqe* remove = next_sqe();
      remove->opcode = linux_abi::kIoringOpTimeoutRemove;
      remove->fd = -1;
      remove->addr = kTimerData;
      remove->user_data = kRemoveData;
    }
    timer_at_ = linux_abi::KernelTimespec{deadline_ns / 1'000'000'000, deadline_ns % 1'000'000'000};
    IoUringSqe* sqe = next_sqe();
    sqe->opcode = linux_abi::kIoringOpTimeout;
    sqe->fd = -1;
    sqe->addr = reinterpret_cast<uint64_t>(&timer_at_);
    sqe->len = 1;
    sqe->op_flags = linux_abi::kIoringTimeoutAbs;
    sqe->user_data = kTimerData;
    timer_deadline_ = deadline_ns;
  }
  flush();  // the interest changes the loop just applied, too
}

// --- operations (note l) ----------------------------------------------------------------

Error UringBackend::submit(OperationRequest& request) noexcept {
  if (request.in_kernel || request.completed) return Error(EBUSY);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.truncate(free_slots_.size() - 1);
  } else {
    if (operations_.size() >= UINT32_MAX || !operations_.resize(operations_.size() + 1) ||
        !free_slots_.reserve(operations_.capacity()))
      return Error(ENOMEM);
    slot = static_cast<uint32_t>(operations_.size() - 1);
  }
  request.slot = slot;
  if (Error err = queue_operation(request)) {
    free_slots_.push_back(slot);
    return err;
  }
  operations_[slot] = &request;
  request.in_kernel = true;
  return Error();
}

Error UringBackend::queue_operation(OperationRequest& request) noexcept {
  IoUringSqe* sqe = next_sqe();
  if (Error err = prepare_operation(request, *sqe)) {
    // The entry is handed out already: a no-op in its place, whose completion is ignored.
    *sqe = IoUringSqe{};
    sqe->opcode = linux_abi::kIoringOpNop;
    sqe->user_data = kRemoveData;
    return err;
  }
  sqe->user_data = (uint64_t{request.slot} << 32) | kOperationData;
  return Error();
}

void UringBackend::cancel(OperationRequest& request) noexcept {
  if (!request.in_kernel || fork_generation() != ring_generation_) return;
  IoUringSqe* sqe = next_sqe();
  sqe->opcode = linux_abi::kIoringOpAsyncCancel;
  sqe->fd = -1;
  sqe->addr = (uint64_t{request.slot} << 32) | kOperationData;
  sqe->user_data = kRemoveData;
}

void UringBackend::abandon(OperationRequest& request) noexcept {
  if (request.in_kernel) {
    if (!ring_.is_open() || fork_generation() != ring_generation_) {
      // Closed with the ring (its teardown cancelled it), or the ring is the parent's
      // (note i), whose kernel works on the parent's copy of the buffer, never on ours.
      if (ring_.is_open()) forget_operation(request);
      request.in_kernel = false;
      request.result = -ECANCELED;  // nothing it did reaches this process
    } else {
      cancel(request);
      while (request.in_kernel) {
        if (count_ == capacity_) fatal("evflow: io_uring events fill the table while an operation is abandoned");
        Result<int> entered = ring_.submit_and_wait(1, nullptr);
        if (!entered && !harmless(entered.error()))
          fatal("evflow: io_uring_enter failed while an operation was abandoned");
        reap({});
      }
    }
  }
  unlink_completed(request);
}

OperationRequest* UringBackend::take_completed() noexcept {
  OperationRequest* request = completed_head_;
  if (request == nullptr) return nullptr;
  completed_head_ = request->next_completed;
  if (completed_head_ == nullptr) completed_tail_ = nullptr;
  request->next_completed = nullptr;
  request->completed = false;
  return request;
}

void UringBackend::on_operation(const IoUringCqe& cqe) noexcept {
  const auto slot = static_cast<uint32_t>(cqe.user_data >> 32);
  if (slot >= operations_.size() || operations_[slot] == nullptr) return;
  OperationRequest& request = *operations_[slot];
  if (reopening_ && cqe.res == -ECANCELED) return;  // stays for the new ring (note l)
  forget_operation(request);
  finish_operation(request, cqe.res, cqe.flags);
  request.completed = true;
  request.next_completed = nullptr;
  if (completed_tail_ != nullptr) {
    completed_tail_->next_completed = &request;
  } else {
    completed_head_ = &request;
  }
  completed_tail_ = &request;
}

void UringBackend::forget_operation(OperationRequest& request) noexcept {
  operations_[request.slot] = nullptr;
  free_slots_.push_back(request.slot);  // reserved by submit()
  request.in_kernel = false;
}

void UringBackend::unlink_completed(OperationRequest& request) noexcept {
  if (!request.completed) return;
  OperationRequest** link = &completed_head_;
  OperationRequest* previous = nullptr;
  while (*link != &request) {
    previous = *link;
    link = &(*link)->next_completed;
  }
  *link = request.next_completed;
  if (completed_tail_ == &request) completed_tail_ = previous;
  request.next_completed = nullptr;
  request.completed = false;
}

void UringBackend::resubmit_operations() noexcept {
  for (OperationRequest* request : operations_) {
    if (request != nullptr && queue_operation(*request)) fatal("evflow: an operation prepared once was refused again");
  }
}

// --- wake-ups ---------------------------------------------------------------------------

void UringBackend::wake() noexcept {
  // Note g: the eventfd is written for a thread in io_uring_enter, or for a ring another
  // loop polls; otherwise the word alone tells the next wait.
  if (wake_word_.send()) signal_wake_fd();
}

void UringBackend::signal_wake_fd() noexcept {
  const uint64_t one = 1;
  (void)linux_abi::write(wake_fd_, &one, sizeof one);  // EAGAIN: counter full, already awake (note g)
}

void UringBackend::acknowledge_wake() noexcept {
  wake_word_.acknowledge();
  if (++unread_wakes_ < kWakesBetweenReads) return;  // note g
  unread_wakes_ = 0;
  uint64_t value;
  (void)linux_abi::read(wake_fd_, &value, sizeof value);
}

}  // namespace evflow::detail
