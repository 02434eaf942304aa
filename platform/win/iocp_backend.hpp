// evflow — the IOCP backend with AFD readiness (Windows). The contract is in
// platform/backend.hpp.
//
// Windows has no readiness call that scales (select() is limited and linear; WSAPoll is
// linear and lost connection failures before Windows 10 2004). Its scalable mechanism,
// the I/O completion port, reports completed operations, not readiness. Readiness comes
// from the driver under Winsock, AFD: an IOCTL_AFD_POLL request on a handle to
// \Device\Afd completes when one of the asked-for conditions holds on a socket, and with
// that handle associated with the completion port, its completion is a packet there. This
// is how wepoll, mio, libuv's poll handles and Node's libuv give epoll-like readiness.
//
// Notes on AFD and the completion port, the behaviours this backend handles:
//
// a) An AFD poll is one-shot: it completes once, then asks nothing more. After each
//    completion the socket's poll is submitted again, but only at the start of the next
//    wait(), once the loop has run the callbacks: a poll resubmitted at once would find
//    the data still unread and complete again at once. This gives level-triggered
//    reports, as epoll's default (wepoll, "sock_feed_event"; mio, src/sys/windows/afd.rs).
// b) A poll in flight owns its status block and its AFD_POLL_INFO (the kernel writes
//    both on completion): a socket's state is freed only when its packet has been
//    dequeued. A removal or a change of interest cancels the poll (NtCancelIoFileEx);
//    the cancelled request still queues its packet (STATUS_CANCELLED), which frees the
//    state or resubmits it with the new interest. A cancel that finds the request already
//    complete answers STATUS_NOT_FOUND: its packet is on its way all the same.
// c) A request that completes at once (STATUS_SUCCESS from NtDeviceIoControlFile) still
//    queues its packet, because the AFD handle is not set to
//    FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (SetFileCompletionNotificationModes docs); its
//    result is read from the packet like any other. Only FILE_SKIP_SET_EVENT_ON_HANDLE is
//    set: nobody waits on the handle itself.
// d) AFD knows only the base provider's socket. A layered service provider (LSP) hands
//    the application handles of its own; WSAIoctl(SIO_BASE_HANDLE) finds the base one,
//    and where an LSP hides it, SIO_BSP_HANDLE_POLL then SIO_BSP_HANDLE_SELECT, whose
//    answer is asked for its own base handle again (as wepoll does). A handle that is no socket (file, pipe, console)
//    gets ENOTSOCK from Io::start; a value that is no handle at all, EBADF. wine 8 answers SIO_BASE_HANDLE for any
//    value (with the value itself), so the first poll is the real test: AFD refuses what is no socket
//    (STATUS_INVALID_HANDLE), and GetHandleInformation then tells a live handle (ENOTSOCK) from a dead one (EBADF).
// e) Closing a socket's last handle completes its poll with AFD_POLL_LOCAL_CLOSE (afd.h;
//    wine's server/sock.c does the same). The registration is then dropped and reported
//    as Invalid, so its watchers learn of it instead of waiting forever. A handle that
//    lives on elsewhere (inherited by a child process, duplicated) keeps the socket open,
//    and then no close is seen. Handle values are reused at once (the lowest free one):
//    if the loop registered the number again after the poll was submitted, the number
//    may name a new socket, so the backend looks up its base handle anew and polls it,
//    and reports Invalid only if that fails. A failed resubmission does the same.
// f) AFD reports a peer's orderly shutdown as AFD_POLL_DISCONNECT, a reset as
//    AFD_POLL_ABORT and a failed connect as AFD_POLL_CONNECT_FAIL. DISCONNECT is passed on
//    as Readable (recv() then returns 0, as on the other systems); ABORT and CONNECT_FAIL
//    as Readable|Writable, masked by the interest, so that the next call sees the error
//    (epoll's EPOLLERR, note c of epoll_backend.hpp).
// g) The wake-up is PostQueuedCompletionStatus with a key of its own: thread-safe and
//    callable from the console-control thread. Each call would queue a packet of its own,
//    so wake() posts only when none is queued yet (a flag cleared when the packet is
//    dequeued, before the loop looks at its Async watchers). The port outlives reopen(),
//    so a wake() during a rebuild is never lost. A refused post (no memory for the
//    packet) is fatal: the wake-up, and every later one behind the loop's coalescing
//    flag, would be lost.
// h) GetQueuedCompletionStatusEx takes its timeout in milliseconds: the wait rounds up, so
//    a timer never fires early (SleepPath::Milliseconds is the only path). The kernel ends
//    such waits on its clock tick: 15.625 ms by default, 1 ms or less while some process
//    asked timeBeginPeriod(1) (Windows Internals, "Clock intervals"). The wait can also
//    return a little before its timeout (libuv, src/win/core.c, documents the same): a
//    wait that ends early with nothing to report waits again for the rest. Sub-millisecond
//    deadlines would need a high-resolution waitable timer associated with the port
//    (NtAssociateWaitCompletionPacket, Windows 8+; CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
//    Windows 10 1803+); wine 8 has neither entry point, so nothing here could test it
//    and it is not used.
// i) Children: RegisterWaitForSingleObject on a handle to the process, run once, posts a
//    packet with the pid and the registration's tag when the process ends. A removal
//    waits for a running callback to finish (UnregisterWaitEx with INVALID_HANDLE_VALUE),
//    so no callback touches a freed registration; a packet already posted for it is
//    stale, and the loop drops it by its tag. The exit code is read by Child itself.
// j) Signals are not the port's business: SIGINT, SIGBREAK and SIGHUP come from the
//    console control handler of the signal layer (platform/win/console_events.hpp), which
//    wakes loops with wake(). Source::Signal registrations are refused (ENOTSUP).
// k) No fork() on Windows: after_fork() is never called and answers ENOTSUP.
// l) Descriptors are SOCKET values converted to int. Windows keeps handle values within
//    32 bits so that 32- and 64-bit processes can share them ("Interprocess
//    Communication Between 32-bit and 64-bit Applications", Microsoft Learn), and kernel
//    handles are multiples of 4 (the low two bits are ignored by the kernel and left to
//    applications); a SOCKET is such a handle for the base provider. A value that is not
//    a multiple of 4 is EBADF. The conversion back sign-extends, as that page prescribes.
// m) interest_syscalls() counts every NtDeviceIoControlFile and NtCancelIoFileEx: those of
//    apply(), and the polls wait() submits again (note a), one per report.
// n) Embedding: the only documented way to wait for a completion port is to dequeue from
//    it (GetQueuedCompletionStatus, "I/O Completion Ports", Microsoft Learn); no other
//    loop's wait reports it as ready, so native_handle() only names it, and
//    keep_ready_at() has nothing to arm. An IOCP loop inside another loop is driven by
//    the outer loop calling run(RunMode::NoWait) on a schedule of its own.
#pragma once

#if defined(_WIN32)

#include <atomic>
#include <cstdint>
#include <span>

#include "../backend_contract.hpp"
#include "../growable_array.hpp"
#include "../readiness.hpp"

namespace evflow::detail {

class IocpBackend {
 public:
  IocpBackend() noexcept = default;
  ~IocpBackend() { close(); }
  IocpBackend(const IocpBackend&) = delete;
  IocpBackend& operator=(const IocpBackend&) = delete;

  // Descriptors, and process exits (note i); signals come from the signal layer (note j).
  static constexpr bool kReportsSignals = false;
  static constexpr bool kReportsProcesses = true;
  // AFD polls end with the socket (note e): no registration outlives its socket (never
  // called).
  static constexpr bool kRenewsGradually = false;
  Error renew() noexcept { return Error(ENOTSUP); }
  Error retire() noexcept { return Error(); }
  bool renewing() const noexcept { return false; }

  Error open() noexcept;
  void close() noexcept;
  Error reopen() noexcept;
  Error after_fork() noexcept { return Error(ENOTSUP); }  // note k

  void apply(std::span<InterestChange> changes) noexcept;
  Result<int> wait(int64_t timeout_ns, int64_t deadline_ns) noexcept;
  ReadyEvent event(int i) const noexcept { return events_[i]; }
  // A completion port is not a handle another loop can wait for (note n): nothing to arm.
  void keep_ready_at(int64_t, int64_t) noexcept {}

  void wake() noexcept;
  void acknowledge_wake() noexcept {}  // the packet was consumed when dequeued (note g)

  // The completion port's handle value (note l).
  int native_handle() const noexcept;
  SleepPath sleep_path() const noexcept { return SleepPath::Milliseconds; }
  void request_sleep_path(SleepPath) noexcept {}                      // note h: milliseconds is the only path
  Error set_timer_slack(int64_t) noexcept { return Error(ENOTSUP); }  // no such notion on Windows
  BackendKind kind() const noexcept { return BackendKind::Iocp; }
  uint64_t interest_syscalls() const noexcept { return interest_syscalls_; }

  // Readiness bits for AFD_POLL_* bits (note f).
  static Events translate(uint32_t afd_events) noexcept;
  // AFD_POLL_* bits to ask for the interest `interest`.
  static uint32_t afd_interest(Events interest) noexcept;

 private:
  struct SocketPoll;   // one registered socket and its poll request (platform/win/iocp_backend.cpp)
  struct ProcessWait;  // one watched process

  static constexpr int kCapacity = 256;  // events one wait() returns at most

  SocketPoll*& slot(int fd) noexcept;  // by handle value / 4; precondition: covered
  bool cover(int fd) noexcept;         // grows the table (and resubmit_'s room) to hold fd; false: no memory
  SocketPoll* find(int fd) const noexcept;
  Error change_socket(InterestChange& change) noexcept;
  Error add_socket(const InterestChange& change) noexcept;
  Error change_process(InterestChange& change) noexcept;
  Error submit(SocketPoll& poll) noexcept;
  bool ask_again(SocketPoll& poll) noexcept;  // submit, else with the base handle found anew
  void drop(SocketPoll& poll) noexcept;       // forget it; freed now, or when its packet comes
  void drop_all() noexcept;
  void unwatch_process(int pid) noexcept;
  int resubmit(int first) noexcept;  // Invalid reports written to events_ from `first`: how many
  bool take_packet(const void* entry, ReadyEvent& out) noexcept;

  void* port_ = nullptr;  // HANDLE of the completion port
  void* afd_ = nullptr;   // HANDLE to \Device\Afd
  bool winsock_ = false;
  bool resubmitted_ = false;  // the last packets included a cancelled poll asked again
  int polls_in_flight_ = 0;   // packets still to come for poll requests, dropped ones included
  uint64_t interest_syscalls_ = 0;
  detail::GrowableArray<SocketPoll*> sockets_;
  // Completed and still wanted: poll again before waiting. Each poll of the table at most
  // once, so it has room for as many as the table (cover()): filled while waiting, it
  // never allocates.
  detail::GrowableArray<SocketPoll*> resubmit_;
  detail::GrowableArray<ProcessWait*> processes_;
  ReadyEvent events_[kCapacity] = {};
  alignas(64) std::atomic<bool> wake_queued_{false};  // a wake-up packet is in the port (note g)
};

static_assert(ReadinessBackend<IocpBackend>);

}  // namespace evflow::detail

#endif
