#if defined(_WIN32)

#include "iocp_backend.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <limits>
#include <new>

#include "../clock.hpp"
#include "../fatal.hpp"
#include "win_sys.hpp"

namespace evflow::detail {

using namespace win_abi;

namespace {

// Completion keys: what a packet is about.
constexpr ULONG_PTR kPollKey = 1;     // an AFD poll completed; OVERLAPPED* is its status block
constexpr ULONG_PTR kWakeKey = 2;     // wake()
constexpr ULONG_PTR kProcessKey = 3;  // a process ended; bytes: the tag, OVERLAPPED*: the pid

HANDLE handle(void* h) noexcept { return static_cast<HANDLE>(h); }

// Note l: a descriptor is a SOCKET's value; back to a SOCKET by sign extension.
SOCKET socket_of(int fd) noexcept { return static_cast<SOCKET>(static_cast<intptr_t>(fd)); }

}  // namespace

struct IocpBackend::SocketPoll {
  IoStatusBlock status_block{};  // its address is the packet's OVERLAPPED*
  AfdPollInfo info{};
  HANDLE base = nullptr;
  int fd = -1;
  uint32_t tag = 0;            // of the loop's last change
  uint32_t submitted_tag = 0;  // `tag` when the poll in flight was submitted
  ULONG wanted = 0;            // AFD bits the loop asks for
  ULONG submitted = 0;         // AFD bits of the poll in flight
  bool in_flight = false;
  bool dropped = false;  // no longer registered: freed when its packet is dequeued
  bool queued = false;   // in resubmit_
};

struct IocpBackend::ProcessWait {
  HANDLE port = nullptr;
  HANDLE process = nullptr;
  HANDLE wait = nullptr;
  int pid = 0;
  uint32_t tag = 0;
};

// --- translation ---------------------------------------------------------------------

Events IocpBackend::translate(uint32_t afd) noexcept {
  uint8_t bits = 0;
  if (afd & (kAfdPollReceive | kAfdPollReceiveExpedited | kAfdPollAccept | kAfdPollDisconnect)) bits |= Readable.bits();
  if (afd & kAfdPollSend) bits |= Writable.bits();
  if (afd & (kAfdPollAbort | kAfdPollConnectFail)) bits |= (Readable | Writable).bits();
  return Events(bits);
}

uint32_t IocpBackend::afd_interest(Events interest) noexcept {
  // Errors and the local close are always asked for, as epoll always reports EPOLLERR.
  uint32_t afd = kAfdPollAbort | kAfdPollConnectFail | kAfdPollLocalClose;
  if (interest.readable()) afd |= kAfdPollReceive | kAfdPollReceiveExpedited | kAfdPollAccept | kAfdPollDisconnect;
  if (interest.writable()) afd |= kAfdPollSend;
  return afd;
}

// --- lifetime ------------------------------------------------------------------------

Error IocpBackend::open() noexcept {
  if (port_ != nullptr) return Error(EBUSY);
  polls_in_flight_ = 0;
  wake_queued_.store(false);
  if (Error err = start_winsock()) return err;
  winsock_ = true;
  Result<HANDLE> port = create_completion_port();
  if (!port) {
    close();
    return port.error();
  }
  port_ = port.value();
  Result<HANDLE> afd = open_afd(handle(port_), kPollKey);
  if (!afd) {
    close();
    return afd.error();
  }
  afd_ = afd.value();
  return Error();
}

void IocpBackend::close() noexcept {
  drop_all();
  // Note b: a cancelled poll's packet is still to come, and the kernel writes its state
  // first. Take every one before freeing anything; a request the driver never completes
  // (it should not happen) keeps its state, leaked rather than written after free.
  OVERLAPPED_ENTRY entries[64];
  while (polls_in_flight_ > 0 && port_ != nullptr) {
    Result<int> count = dequeue(handle(port_), entries, 64, 1000);
    if (!count || count.value() == 0) break;
    for (int i = 0; i < count.value(); ++i) {
      ReadyEvent ignored{};
      (void)take_packet(&entries[i], ignored);
    }
  }
  if (afd_ != nullptr) CloseHandle(handle(afd_));
  if (port_ != nullptr) CloseHandle(handle(port_));
  afd_ = port_ = nullptr;
  resubmit_.clear();
  if (winsock_) stop_winsock();
  winsock_ = false;
}

Error IocpBackend::reopen() noexcept {
  if (port_ == nullptr) return Error(EINVAL);
  // The port stays (the wake-up channel, note g); every registration goes, with the AFD
  // handle that carried the polls. Their packets still arrive here and free their states.
  drop_all();
  if (afd_ != nullptr) CloseHandle(handle(afd_));
  afd_ = nullptr;
  Result<HANDLE> afd = open_afd(handle(port_), kPollKey);
  if (!afd) return afd.error();
  afd_ = afd.value();
  return Error();
}

void IocpBackend::drop_all() noexcept {
  for (SocketPoll* poll : sockets_) {
    if (poll != nullptr) drop(*poll);
  }
  sockets_.clear();
  while (!processes_.empty())
    unwatch_process(processes_.back()->pid);
}

int IocpBackend::native_handle() const noexcept {
  return port_ == nullptr ? -1 : static_cast<int>(reinterpret_cast<intptr_t>(port_));  // note l
}

// --- the socket table ----------------------------------------------------------------

IocpBackend::SocketPoll*& IocpBackend::slot(int fd) noexcept {
  return sockets_[static_cast<size_t>(fd) / 4];  // note l: handles are multiples of 4
}

bool IocpBackend::cover(int fd) noexcept {
  const auto index = static_cast<size_t>(fd) / 4;
  if (index < sockets_.size()) return true;
  const size_t count = std::max<size_t>(64, std::bit_ceil(index + 1));  // amortised
  return resubmit_.reserve(count) && sockets_.resize(count);
}

IocpBackend::SocketPoll* IocpBackend::find(int fd) const noexcept {
  const auto index = static_cast<size_t>(fd) / 4;
  if (fd < 0 || index >= sockets_.size()) return nullptr;
  SocketPoll* poll = sockets_[index];
  return poll != nullptr && poll->fd == fd ? poll : nullptr;
}

void IocpBackend::drop(SocketPoll& poll) noexcept {
  if (!poll.dropped && find(poll.fd) == &poll) slot(poll.fd) = nullptr;
  poll.dropped = true;
  if (poll.queued) {
    SocketPoll** at = std::find(resubmit_.begin(), resubmit_.end(), &poll);
    std::copy(at + 1, resubmit_.end(), at);
    resubmit_.truncate(resubmit_.size() - 1);
    poll.queued = false;
  }
  if (!poll.in_flight) {
    delete &poll;
    return;
  }
  ++interest_syscalls_;
  (void)cancel_afd_poll(handle(afd_), &poll.status_block);  // its packet frees it (note b)
}

// --- apply ---------------------------------------------------------------------------

void IocpBackend::apply(std::span<InterestChange> changes) noexcept {
  for (InterestChange& change : changes) {
    switch (change.source) {
      case Source::Descriptor:
        change.error = change_socket(change);
        break;
      case Source::Process:
        change.error = change_process(change);
        break;
      case Source::Signal:
        change.error = Error(ENOTSUP);  // note j
        break;
    }
  }
}

Error IocpBackend::change_socket(InterestChange& change) noexcept {
  SocketPoll* poll = find(change.fd);
  if (change.to.empty()) {
    if (poll != nullptr) drop(*poll);
    return Error();  // not registered (any more): nothing to remove
  }
  // Note l: kernel handles are multiples of 4; another value is no socket of ours, and
  // would share a table slot with one.
  if (change.fd < 0 || change.fd % 4 != 0) return Error(EBADF);
  if (poll == nullptr) return add_socket(change);
  poll->tag = change.tag;
  poll->wanted = afd_interest(change.to);
  if (poll->in_flight) {
    // Note b: a poll that misses some of these bits is cancelled, and its packet
    // resubmits with them. One that asks for more is left alone: what it reports beyond
    // the interest is masked off when it completes.
    if ((poll->wanted & ~poll->submitted) != 0) {
      ++interest_syscalls_;
      (void)cancel_afd_poll(handle(afd_), &poll->status_block);
    }
    return Error();
  }
  if (poll->queued) return Error();  // resubmitted, with these bits, before the next wait
  if (Error err = submit(*poll)) {
    slot(change.fd) = nullptr;
    delete poll;
    return err;
  }
  return Error();
}

Error IocpBackend::add_socket(const InterestChange& change) noexcept {
  Result<HANDLE> base = base_socket(socket_of(change.fd));
  if (!base) return base.error();
  auto* poll = new (std::nothrow) SocketPoll;
  if (poll == nullptr) return Error(ENOMEM);
  poll->base = base.value();
  poll->fd = change.fd;
  poll->tag = change.tag;
  poll->wanted = afd_interest(change.to);
  // The first poll is the test that the handle is a live socket (wine 8's SIO_BASE_HANDLE
  // answers for any value, the handle itself): only then does the table grow, so that a wild number (say
  // INT_MAX - 1) is an EBADF and not a table of half a billion entries.
  if (Error err = submit(*poll)) {
    delete poll;
    // AFD answers STATUS_INVALID_HANDLE for any handle that is no socket (note d).
    return err.code() == EBADF ? refusal_of(socket_of(change.fd)) : err;
  }
  if (!cover(change.fd)) {
    drop(*poll);  // cancelled; freed when its packet comes
    return Error(ENOMEM);
  }
  slot(change.fd) = poll;
  return Error();
}

Error IocpBackend::submit(SocketPoll& poll) noexcept {
  poll.info.timeout.QuadPart = std::numeric_limits<LONGLONG>::max();
  poll.info.handle_count = 1;
  poll.info.exclusive = FALSE;
  poll.info.handles[0].handle = poll.base;
  poll.info.handles[0].events = poll.wanted;
  poll.info.handles[0].status = 0;
  ++interest_syscalls_;
  if (Error err = start_afd_poll(handle(afd_), &poll.info, &poll.status_block)) return err;
  poll.submitted = poll.wanted;
  poll.submitted_tag = poll.tag;
  poll.in_flight = true;
  ++polls_in_flight_;
  return Error();
}

bool IocpBackend::ask_again(SocketPoll& poll) noexcept {
  if (!submit(poll)) return true;
  // The base handle may be stale: the number now names another socket (note e).
  Result<HANDLE> base = base_socket(socket_of(poll.fd));
  if (!base) return false;
  poll.base = base.value();
  return !submit(poll);
}

// --- processes (note i) --------------------------------------------------------------

Error IocpBackend::change_process(InterestChange& change) noexcept {
  if (change.to.empty()) {
    unwatch_process(change.fd);
    return Error();
  }
  if (change.fd <= 0) return Error(EINVAL);
  unwatch_process(change.fd);  // re-registration of a watched pid: the new tag only
  if (!processes_.reserve_amortised(processes_.size() + 1)) return Error(ENOMEM);
  HANDLE process = OpenProcess(SYNCHRONIZE, FALSE, static_cast<DWORD>(change.fd));
  if (process == nullptr) {
    const DWORD code = GetLastError();
    return code == ERROR_INVALID_PARAMETER ? Error(ESRCH) : error_from_win32(code);
  }
  auto* watch = new (std::nothrow) ProcessWait{handle(port_), process, nullptr, change.fd, change.tag};
  if (watch == nullptr) {
    CloseHandle(process);
    return Error(ENOMEM);
  }
  // The callback runs once, in the thread pool's wait thread: it only posts a packet.
  auto on_exit = [](void* context, BOOLEAN) {
    const auto* w = static_cast<const ProcessWait*>(context);
    (void)post(w->port, w->tag, kProcessKey, reinterpret_cast<OVERLAPPED*>(static_cast<intptr_t>(w->pid)));
  };
  if (!RegisterWaitForSingleObject(&watch->wait, process, on_exit, watch, INFINITE,
                                   WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD)) {
    const Error err = last_error();
    CloseHandle(process);
    delete watch;
    return err;
  }
  processes_.push_back(watch);
  return Error();
}

void IocpBackend::unwatch_process(int pid) noexcept {
  auto it = std::find_if(processes_.begin(), processes_.end(), [pid](const ProcessWait* w) { return w->pid == pid; });
  if (it == processes_.end()) return;
  ProcessWait* watch = *it;
  std::copy(it + 1, processes_.end(), it);
  processes_.truncate(processes_.size() - 1);
  (void)UnregisterWaitEx(watch->wait, INVALID_HANDLE_VALUE);  // waits for a running callback
  CloseHandle(watch->process);
  delete watch;
}

// --- waiting -------------------------------------------------------------------------

void IocpBackend::wake() noexcept {
  if (port_ == nullptr || wake_queued_.exchange(true)) return;  // one packet is enough (note g)
  // The port is open and ours: a refusal (no memory for the packet) would lose this
  // wake-up and, through the loop's coalescing flag, every later one.
  if (post(handle(port_), 0, kWakeKey, nullptr)) detail::fatal("PostQueuedCompletionStatus refused a wake-up");
}

int IocpBackend::resubmit(int first) noexcept {
  int invalid = 0;
  size_t kept = 0;
  for (size_t i = 0; i < resubmit_.size(); ++i) {
    SocketPoll* poll = resubmit_[i];
    if (first + invalid == kCapacity) {  // no room to report a failure now: next time
      resubmit_[kept++] = poll;
      continue;
    }
    poll->queued = false;
    if (!ask_again(*poll)) {
      // The socket went away between two polls (closed: EBADF or ENOTSOCK): note e.
      events_[first + invalid++] = ReadyEvent{poll->fd, poll->tag, Invalid};
      slot(poll->fd) = nullptr;
      delete poll;
    }
  }
  resubmit_.truncate(kept);
  return invalid;
}

// One dequeued packet: true when it is a report for the loop, written to `out`.
bool IocpBackend::take_packet(const void* raw_entry, ReadyEvent& out) noexcept {
  const auto& entry = *static_cast<const OVERLAPPED_ENTRY*>(raw_entry);
  if (entry.lpCompletionKey == kWakeKey) {
    wake_queued_.store(false);  // a wake() from now on posts again
    out = ReadyEvent{kWakeDescriptor, 0, Events()};
    return true;
  }
  if (entry.lpCompletionKey == kProcessKey) {
    const int pid = static_cast<int>(reinterpret_cast<intptr_t>(entry.lpOverlapped));
    const uint32_t tag = entry.dwNumberOfBytesTransferred;
    // The process ended: its registration is over (the loop does not remove it).
    auto it = std::find_if(processes_.begin(), processes_.end(),
                           [&](const ProcessWait* w) { return w->pid == pid && w->tag == tag; });
    if (it != processes_.end()) unwatch_process(pid);
    out = ReadyEvent{pid, tag, Readable, Source::Process};
    return true;
  }
  if (entry.lpCompletionKey != kPollKey) return false;
  // A poll: the status block is the first member of its SocketPoll.
  auto* poll = reinterpret_cast<SocketPoll*>(entry.lpOverlapped);
  poll->in_flight = false;
  --polls_in_flight_;
  if (poll->dropped) {
    delete poll;
    return false;
  }
  const NtStatus status = poll->status_block.status;
  const ULONG afd = status == kStatusSuccess && poll->info.handle_count >= 1 ? poll->info.handles[0].events : 0;
  // The socket was closed (note e), or the poll failed.
  const bool closed = (status != kStatusSuccess && status != kStatusCancelled) || (afd & kAfdPollLocalClose);
  // Ask again now, rather than report: when cancelled for a change of interest, or
  // completed before the cancel came for one (note b: half of the bits); when closed,
  // but the loop registered the number again since this poll was submitted, so the
  // number may name a new socket by now (closed and reused in between, note e).
  const bool ask =
      closed ? poll->tag != poll->submitted_tag : status == kStatusCancelled || (poll->wanted & ~poll->submitted) != 0;
  if (ask && ask_again(*poll)) {
    resubmitted_ = true;
    return false;
  }
  if (closed || ask) {  // gone: the socket went away (note e)
    out = ReadyEvent{poll->fd, poll->tag, Invalid};
    slot(poll->fd) = nullptr;
    delete poll;
    return true;
  }
  resubmit_.push_back(poll);  // note a; room: as many as the table (cover())
  poll->queued = true;
  out = ReadyEvent{poll->fd, poll->tag, translate(afd & poll->wanted)};
  return !out.events.empty();
}

Result<int> IocpBackend::wait(int64_t timeout_ns, int64_t) noexcept {
  if (port_ == nullptr) return Error(EINVAL);
  static_assert(offsetof(SocketPoll, status_block) == 0, "the packet's OVERLAPPED* is the SocketPoll");
  // The kernel's deadline for this call, on the real clock (the loop's may be a fake).
  const int64_t until = timeout_ns > 0 ? monotonic_ns() + timeout_ns : 0;
  OVERLAPPED_ENTRY entries[kCapacity];
  int count = 0;
  for (;;) {
    count += resubmit(count);
    if (count > 0) timeout_ns = 0;  // reports already: do not sleep
    DWORD timeout_ms = INFINITE;
    if (timeout_ns >= 0) {
      // Rounded up (note h); below INFINITE, which would mean "forever".
      const int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0);
      timeout_ms = static_cast<DWORD>(std::min<int64_t>(ms, INFINITE - 1));
    }
    Result<int> dequeued = dequeue(handle(port_), entries, static_cast<ULONG>(kCapacity - count), timeout_ms);
    if (!dequeued) return dequeued.error();
    resubmitted_ = false;
    for (int i = 0; i < dequeued.value(); ++i) {
      if (take_packet(&entries[i], events_[count])) ++count;
    }
    // A poll resubmitted for a change of interest completes at once when the condition
    // already holds (note c): look once more, so that even a wait that must not block
    // reports what the new interest finds ready now.
    if (count > 0 || (timeout_ns == 0 && !resubmitted_)) return count;
    // Nothing to report: packets that were only bookkeeping (note b), or a wait that
    // ended early (note h). Wait for the rest of the timeout.
    if (timeout_ns > 0) {
      const int64_t now = monotonic_ns();
      if (now >= until) return 0;
      timeout_ns = until - now;
    }
    if (resubmitted_) timeout_ns = 0;  // look once more, at once (above); sleep after that
  }
}

}  // namespace evflow::detail

#endif
