// evflow — the Linux system calls evflow uses, as typed wrappers returning Result<T>.
//
// Every call here is a raw system call (raw_syscall.hpp): no libc wrapper, no errno,
// so each is async-signal-safe. The kernel ABI evflow needs (flag values, struct
// layouts) is declared below, and io_uring's in uring_abi.hpp, rather than taken from
// libc or kernel headers.
//
// EINTR policy, per call:
// - read, write: retried. evflow only uses them on non-blocking descriptors, so a retry
//   cannot block, and no caller wants to see a signal's interruption of a 1-byte I/O.
// - close: never retried. Linux releases the descriptor even when close reports EINTR
//   (close(2), "Dealing with error returns"); a retry could close a reused number.
// - epoll_pwait2, epoll_pwait: not retried; EINTR is returned as "0 events" so that the
//   loop recomputes its deadline and dispatches whatever the signal handler recorded.
// - futex: FUTEX_WAIT's EINTR, like its EAGAIN, only means "look at the word again".
// - io_uring_enter: not retried. A signal can end only the wait, and the kernel then
//   reports EINTR only when it consumed no submission (otherwise it returns the count),
//   so EINTR is returned as "0 submitted", like epoll's "0 events". ETIME, the end of a
//   timed wait, is returned as an error.
// - io_uring_register: not retried; the caller knows whether its operation may be
//   repeated.
// - epoll_create1, epoll_ctl, eventfd2, timerfd_*, prctl, io_uring_setup, mmap, munmap:
//   cannot fail with EINTR.
#pragma once

#include <atomic>
#include <cstdint>

#include "../result.hpp"
#include "raw_syscall.hpp"
#include "syscall_numbers.hpp"
#include "uring_abi.hpp"

// Under ThreadSanitizer, mmap and munmap go through the C library (see linux_abi::mmap).
#if defined(__SANITIZE_THREAD__)
#define EVFLOW_MAP_THROUGH_LIBC 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVFLOW_MAP_THROUGH_LIBC 1
#endif
#endif
#if defined(EVFLOW_MAP_THROUGH_LIBC)
#include <sys/mman.h>
#endif

namespace evflow::detail::linux_abi {

// open(2) flags shared by every descriptor-creating call (same values on x86_64 and
// aarch64: include/uapi/asm-generic/fcntl.h).
inline constexpr int kCloseOnExec = 02000000;  // O_CLOEXEC, EPOLL_CLOEXEC, EFD_CLOEXEC
inline constexpr int kNonBlocking = 04000;     // O_NONBLOCK, EFD_NONBLOCK, TFD_NONBLOCK

// epoll(7) ABI: include/uapi/linux/eventpoll.h.
inline constexpr uint32_t kEpollIn = 0x001;
inline constexpr uint32_t kEpollOut = 0x004;
inline constexpr uint32_t kEpollErr = 0x008;
inline constexpr uint32_t kEpollHup = 0x010;
inline constexpr uint32_t kEpollEt = 1u << 31;
inline constexpr int kEpollCtlAdd = 1;
inline constexpr int kEpollCtlDel = 2;
inline constexpr int kEpollCtlMod = 3;

// The kernel packs struct epoll_event on x86_64 only (12 bytes there, 16 elsewhere),
// so that 32-bit and 64-bit x86 processes share one layout.
struct
#if defined(__x86_64__)
    __attribute__((packed))
#endif
    EpollEvent {
  uint32_t events;
  uint64_t data;
};
#if defined(__x86_64__)
static_assert(sizeof(EpollEvent) == 12, "x86_64 epoll_event is packed to 12 bytes");
#else
static_assert(sizeof(EpollEvent) == 16, "epoll_event is 16 bytes outside x86_64");
#endif

// struct __kernel_timespec: 64-bit seconds on every architecture.
struct KernelTimespec {
  int64_t seconds;
  int64_t nanoseconds;
};

// clockid_t values (include/uapi/linux/time.h).
inline constexpr int kClockRealtime = 0;
inline constexpr int kClockMonotonic = 1;

// timerfd(2) ABI: include/uapi/linux/timerfd.h. struct itimerspec with 64-bit fields.
inline constexpr int kTimerAbsolute = 1;     // TFD_TIMER_ABSTIME
inline constexpr int kTimerCancelOnSet = 2;  // TFD_TIMER_CANCEL_ON_SET
struct KernelItimerspec {
  KernelTimespec interval;
  KernelTimespec value;
};

// prctl(2) options.
inline constexpr int kSetTimerSlack = 29;  // PR_SET_TIMERSLACK
inline constexpr int kGetTimerSlack = 30;  // PR_GET_TIMERSLACK

namespace detail {
inline Result<int> to_int(long ret) noexcept {
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return static_cast<int>(ret);
}
inline Result<long> to_long(long ret) noexcept {
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return ret;
}
inline Error to_error(long ret) noexcept { return is_error(ret) ? Error(static_cast<int>(-ret)) : Error(); }
}  // namespace detail

// epoll_create1(EPOLL_CLOEXEC): a new epoll instance.
inline Result<int> epoll_create() noexcept { return detail::to_int(raw_syscall(nr::epoll_create1, kCloseOnExec)); }

// epoll_ctl(2). `op` is one of kEpollCtl*; `event` may be null for kEpollCtlDel.
inline Error epoll_ctl(int epfd, int op, int fd, EpollEvent* event) noexcept {
  return detail::to_error(raw_syscall(nr::epoll_ctl, epfd, op, fd, reinterpret_cast<long>(event)));
}

// epoll_pwait2(2) (Linux >= 5.11): nanosecond relative timeout, null = forever.
// Returns the number of events; EINTR is reported as 0 events (see the policy above).
inline Result<int> epoll_pwait2(int epfd, EpollEvent* events, int capacity, const KernelTimespec* timeout) noexcept {
  long ret = raw_syscall(nr::epoll_pwait2, epfd, reinterpret_cast<long>(events), capacity,
                         reinterpret_cast<long>(timeout), 0, 8);
  if (ret == -EINTR) return 0;
  return detail::to_int(ret);
}

// futex(2) on a process-private 32-bit word (FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE).
inline constexpr long kFutexWaitPrivate = 0 | 128;
inline constexpr long kFutexWakePrivate = 1 | 128;
static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free);

// Sleeps while *word == expected, without a timeout, until futex_wake() on the word or a
// signal. Every way it ends (woken; EAGAIN: the word had changed; EINTR) means "read the
// word again", so nothing is returned.
inline void futex_wait(const std::atomic<uint32_t>* word, uint32_t expected) noexcept {
  (void)raw_syscall(nr::futex, reinterpret_cast<long>(word), kFutexWaitPrivate, static_cast<long>(expected));
}

// Wakes one thread sleeping in futex_wait() on `word`. Async-signal-safe.
inline void futex_wake(const std::atomic<uint32_t>* word) noexcept {
  (void)raw_syscall(nr::futex, reinterpret_cast<long>(word), kFutexWakePrivate, 1);
}

// epoll_pwait(2) with a null signal mask: millisecond timeout, -1 = forever.
// EINTR is reported as 0 events.
inline Result<int> epoll_pwait(int epfd, EpollEvent* events, int capacity, int timeout_ms) noexcept {
  long ret = raw_syscall(nr::epoll_pwait, epfd, reinterpret_cast<long>(events), capacity, timeout_ms, 0, 8);
  if (ret == -EINTR) return 0;
  return detail::to_int(ret);
}

// A wait that does not block (timeout 0), as epoll_pwait(). Where the architecture has
// epoll_wait(2) (x86_64; aarch64's generic table does not), that one: without
// epoll_pwait's signal-mask handling it measured 10 to 20 ns less a call here, and the
// loop's busy iterations make one call each. EINTR is reported as 0 events.
inline Result<int> epoll_poll(int epfd, EpollEvent* events, int capacity) noexcept {
#if defined(__x86_64__)
  const long ret = raw_syscall(nr::epoll_wait, epfd, reinterpret_cast<long>(events), capacity, 0);
#else
  const long ret = raw_syscall(nr::epoll_pwait, epfd, reinterpret_cast<long>(events), capacity, 0, 0, 8);
#endif
  if (ret == -EINTR) return 0;
  return detail::to_int(ret);
}

// eventfd2(initial, EFD_CLOEXEC | EFD_NONBLOCK).
inline Result<int> eventfd(unsigned initial) noexcept {
  return detail::to_int(raw_syscall(nr::eventfd2, initial, kCloseOnExec | kNonBlocking));
}

// read(2); EINTR retried. EAGAIN comes back as Error(EAGAIN): the caller decides.
inline Result<long> read(int fd, void* buffer, unsigned long size) noexcept {
  long ret;
  do {
    ret = raw_syscall(nr::read, fd, reinterpret_cast<long>(buffer), static_cast<long>(size));
  } while (ret == -EINTR);
  return detail::to_long(ret);
}

// write(2); EINTR retried.
inline Result<long> write(int fd, const void* buffer, unsigned long size) noexcept {
  long ret;
  do {
    ret = raw_syscall(nr::write, fd, reinterpret_cast<long>(buffer), static_cast<long>(size));
  } while (ret == -EINTR);
  return detail::to_long(ret);
}

// close(2); never retried (see the policy above).
inline Error close(int fd) noexcept { return detail::to_error(raw_syscall(nr::close, fd)); }

// timerfd_create(clock, TFD_CLOEXEC | TFD_NONBLOCK).
inline Result<int> timerfd_create(int clock) noexcept {
  return detail::to_int(raw_syscall(nr::timerfd_create, clock, kCloseOnExec | kNonBlocking));
}

// timerfd_settime(2). Arming resets the expiration count, so it also clears readiness.
// ECANCELED: a TFD_TIMER_CANCEL_ON_SET timer whose clock was set meanwhile.
inline Error timerfd_settime(int fd, int flags, const KernelItimerspec& value) noexcept {
  return detail::to_error(raw_syscall(nr::timerfd_settime, fd, flags, reinterpret_cast<long>(&value), 0));
}

// prctl(2) with one integer argument; returns the call's result.
inline Result<long> prctl(int option, unsigned long argument) noexcept {
  return detail::to_long(raw_syscall(nr::prctl, option, static_cast<long>(argument), 0, 0, 0));
}

// dup3(old, new, O_CLOEXEC): makes `new_fd` refer to `old_fd`'s file, atomically
// closing what `new_fd` referred to. Used to replace a file behind a number that other
// threads may still be using, without the number ever being free.
inline Error dup3(int old_fd, int new_fd) noexcept {
  return detail::to_error(raw_syscall(nr::dup3, old_fd, new_fd, kCloseOnExec));
}

// A fresh eventfd (counter 0) under the number `fd`, which keeps naming a wake-up channel
// throughout: for a forked child, whose inherited eventfd is its parent's too.
inline Error renew_eventfd(int fd) noexcept {
  Result<int> fresh = eventfd(0);
  if (!fresh) return fresh.error();
  Error err = dup3(fresh.value(), fd);
  (void)close(fresh.value());
  return err;
}

// signalfd4(fd, mask, 8, SFD_CLOEXEC | SFD_NONBLOCK): fd -1 creates, otherwise updates
// the mask of an existing signalfd. `mask` is the kernel's 64-bit sigset.
inline Result<int> signalfd(int fd, uint64_t mask) noexcept {
  return detail::to_int(raw_syscall(nr::signalfd4, fd, reinterpret_cast<long>(&mask), 8, kCloseOnExec | kNonBlocking));
}
// One record read from a signalfd (struct signalfd_siginfo, 128 bytes).
struct SignalfdSiginfo {
  uint32_t signo;
  int32_t error;
  int32_t code;
  uint32_t pid;
  uint8_t rest[112];
};
static_assert(sizeof(SignalfdSiginfo) == 128);

// pidfd_open(pid, 0) (Linux >= 5.3): a descriptor that becomes readable when `pid` exits.
inline Result<int> pidfd_open(int pid) noexcept { return detail::to_int(raw_syscall(nr::pidfd_open, pid, 0)); }

// clock_gettime as a real system call, bypassing the vDSO. Kept for the benchmark that
// justifies reading the clock through libc instead (see platform/clock.hpp).
inline Error clock_gettime_syscall(int clock, KernelTimespec* out) noexcept {
  return detail::to_error(raw_syscall(nr::clock_gettime, clock, reinterpret_cast<long>(out)));
}

// mmap(2) protections and flags (include/uapi/asm-generic/mman-common.h, mman.h; the
// same on x86_64 and aarch64).
inline constexpr int kProtRead = 0x1;
inline constexpr int kProtWrite = 0x2;
inline constexpr int kMapShared = 0x01;
inline constexpr int kMapPopulate = 0x8000;

// ThreadSanitizer learns of mappings only through the C library's mmap and munmap, which
// it intercepts: memory unmapped by one thread and mapped again at the same address by
// another (a ring closed, then a new one) would look like the old owner's, and every
// first write to it like a race. Under TSan those two go through the C library.

// mmap(2) of `length` bytes of `fd` at `offset`, wherever the kernel chooses.
inline Result<void*> mmap(unsigned long length, int prot, int flags, int fd, uint64_t offset) noexcept {
#if defined(EVFLOW_MAP_THROUGH_LIBC)
  void* at = ::mmap(nullptr, length, prot, flags, fd, static_cast<long>(offset));
  if (at == MAP_FAILED) return Error(errno);
  return at;
#else
  long ret = raw_syscall(nr::mmap, 0, static_cast<long>(length), prot, flags, fd, static_cast<long>(offset));
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return reinterpret_cast<void*>(ret);
#endif
}

// munmap(2).
inline Error munmap(void* address, unsigned long length) noexcept {
#if defined(EVFLOW_MAP_THROUGH_LIBC)
  return ::munmap(address, length) == 0 ? Error() : Error(errno);
#else
  return detail::to_error(raw_syscall(nr::munmap, reinterpret_cast<long>(address), static_cast<long>(length)));
#endif
}

// io_uring_setup(2) (Linux >= 5.1): a new ring of at least `entries` submissions; the
// kernel fills in `params` (features, sizes, offsets). The descriptor is close-on-exec.
// ENOSYS: no io_uring in this kernel (or a filter or emulator refuses it); EPERM:
// kernel.io_uring_disabled or a filter; ENOMEM: out of memory or, before Linux 5.12, over
// RLIMIT_MEMLOCK.
inline Result<int> io_uring_setup(unsigned entries, IoUringParams* params) noexcept {
  return detail::to_int(raw_syscall(nr::io_uring_setup, entries, reinterpret_cast<long>(params)));
}

// io_uring_enter(2): submits `to_submit` entries published in the submission ring, then,
// with kIoringEnterGetevents, waits until `min_complete` completions are in the
// completion ring. Returns the number of entries the kernel consumed; EINTR is reported
// as 0 (see the policy above).
inline Result<int> io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) noexcept {
  long ret = raw_syscall(nr::io_uring_enter, fd, to_submit, min_complete, flags, 0, 0);
  if (ret == -EINTR) return 0;
  return detail::to_int(ret);
}

// io_uring_enter(2) with kIoringEnterExtArg (Linux >= 5.11, kIoringFeatExtArg): the
// wait is also bounded by `arg.ts`, a relative KernelTimespec; ETIME when it expires
// with fewer than `min_complete` completions and nothing submitted.
inline Result<int> io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                                  const IoUringGeteventsArg& arg) noexcept {
  long ret = raw_syscall(nr::io_uring_enter, fd, to_submit, min_complete, flags | kIoringEnterExtArg,
                         reinterpret_cast<long>(&arg), sizeof arg);
  if (ret == -EINTR) return 0;
  return detail::to_int(ret);
}

// io_uring_register(2): `opcode` is one of kIoringRegister*; returns its result.
inline Result<int> io_uring_register(int fd, unsigned opcode, void* arg, unsigned nr_args) noexcept {
  return detail::to_int(raw_syscall(nr::io_uring_register, fd, opcode, reinterpret_cast<long>(arg), nr_args));
}

}  // namespace evflow::detail::linux_abi
