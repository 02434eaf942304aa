// Test-only: EVFILT_SIGNAL, EVFILT_PROC and EVFILT_TIMER of the kqueue emulation, each over
// a Linux descriptor of the knote's own; what they emulate, and how, is in
// kqueue_emulation.hpp.
#include "tests/support/kqueue_emulation_internal.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>

namespace evflow::testing::kqueue_emulation::detail {
namespace {

using namespace evflow::detail::kqueue_abi;

// Adds one of the knote's own descriptors to the kqueue's nested set.
int watch(Kqueue& q, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = fd;
  return ::epoll_ctl(q.sources_fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

// watch(), closing the descriptor when it fails.
int watch_or_close(Kqueue& q, int fd) {
  const int error = watch(q, fd);
  if (error != 0) ::close(fd);
  return error;
}

// A timerfd on `clock`, armed with `spec` (timerfd_settime's `flags`) and watched: 0 with
// the descriptor in `fd`, or an errno with nothing left open.
int open_timer(Kqueue& q, clockid_t clock, int flags, const itimerspec& spec, int& fd) {
  const int timer = ::timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer < 0) return errno;
  if (::timerfd_settime(timer, flags, &spec, nullptr) != 0) {
    const int error = errno;
    ::close(timer);
    return error;
  }
  if (const int error = watch_or_close(q, timer)) return error;
  fd = timer;
  return 0;
}

// ---- EVFILT_SIGNAL: a process-wide tap -------------------------------------------------
//
// Linux discards an ignored signal before anyone sees it, so the tap is installed as the
// real handler while a knote watches the signal, and acts out the disposition it found.
// The handler reads only the atomics below: it takes no lock, and in particular never a
// kqueue's mutex, which the interrupted thread may hold.

constexpr int kMaxSignal = 64;  // Linux numbers its signals 1..64
constexpr int kSlots = 256;     // live EVFILT_SIGNAL knotes, across every emulated kqueue

struct SignalSlot {
  std::atomic<int> signo{0};  // 0: free
  std::atomic<int> eventfd{-1};
  std::atomic<uint64_t> count{0};  // deliveries not yet reported
  std::atomic<int> inside{0};      // handlers past their check of signo: the eventfd stays open
};

// A signal's disposition as the process set it, which the tap stands in for.
struct Disposition {
  std::atomic<uintptr_t> handler{0};  // SIG_DFL, SIG_IGN or the function
  std::atomic<int> flags{0};          // its sa_flags: SA_SIGINFO chooses how it is called
};

SignalSlot g_slots[kSlots];
Disposition g_dispositions[kMaxSignal + 1];
std::mutex g_signal_mutex;                // taking and freeing slots, installing and removing the tap
sigset_t g_masks[kMaxSignal + 1];         // under g_signal_mutex: the sa_mask to put back
int g_knotes_per_signal[kMaxSignal + 1];  // under g_signal_mutex
thread_local std::atomic<uint32_t> t_absorbed{0};

const uintptr_t kDefault = reinterpret_cast<uintptr_t>(SIG_DFL);
const uintptr_t kIgnore = reinterpret_cast<uintptr_t>(SIG_IGN);

void record(int signo) {
  for (SignalSlot& slot : g_slots) {
    if (slot.signo.load(std::memory_order_acquire) != signo) continue;
    slot.inside.fetch_add(1);          // sequentially consistent with free_slot's store, so that
    if (slot.signo.load() == signo) {  // either it sees this handler inside or this sees it freed
      slot.count.fetch_add(1);
      const uint64_t one = 1;
      (void)!::write(slot.eventfd.load(), &one, sizeof one);
    }
    slot.inside.fetch_sub(1);
  }
}

void tap(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  Disposition& found = g_dispositions[signo];
  const uintptr_t handler = found.handler.load(std::memory_order_acquire);
  const int flags = found.flags.load(std::memory_order_relaxed);
  // kqueue(2), EVFILT_SIGNAL: every attempt to deliver is recorded, even while ignored,
  // except SIGCHLD while ignored; the knote hears of it before the handler runs.
  if (handler != kIgnore || signo != SIGCHLD) record(signo);
  if (handler == kIgnore || handler == kDefault) {
    t_absorbed.fetch_add(1, std::memory_order_relaxed);  // default actions are not acted out
  } else {
    if (flags & SA_RESETHAND) found.handler.store(kDefault);  // one delivery, as sigaction(2) says
    if (flags & SA_SIGINFO) {
      reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handler)(signo, info, context);
    } else {
      reinterpret_cast<void (*)(int)>(handler)(signo);
    }
  }
  errno = saved_errno;
}

bool is_tap(const struct sigaction& action) { return (action.sa_flags & SA_SIGINFO) && action.sa_sigaction == tap; }

// The first knote of `signo`: remember its disposition and put the tap in its place.
void install_tap(int signo) {
  struct sigaction current {};
  // Already the tap with no knote: a disposition saved while the tap stood in, set again
  // since. What it stands in for is still recorded, and must not become the tap itself.
  if (::sigaction(signo, nullptr, &current) != 0 || is_tap(current)) return;
  const uintptr_t handler = reinterpret_cast<uintptr_t>(current.sa_handler);  // a union with sa_sigaction
  g_masks[signo] = current.sa_mask;
  g_dispositions[signo].flags.store(current.sa_flags, std::memory_order_relaxed);
  g_dispositions[signo].handler.store(handler, std::memory_order_release);
  struct sigaction replacement {};
  replacement.sa_sigaction = tap;
  replacement.sa_mask = current.sa_mask;  // a handler the tap calls runs with the mask it asked for
  // A handler's system calls restart as it asked. Under SIG_IGN or SIG_DFL none would have
  // been interrupted at all: SA_RESTART comes closest.
  const bool handled = handler != kIgnore && handler != kDefault;
  const int restart = handled ? current.sa_flags & SA_RESTART : SA_RESTART;
  replacement.sa_flags =
      SA_SIGINFO | restart | (current.sa_flags & (SA_ONSTACK | SA_NODEFER | SA_NOCLDSTOP | SA_NOCLDWAIT));
  // An ignored SIGCHLD leaves no zombies (POSIX, sigaction(2)); a handler must ask for it.
  if (signo == SIGCHLD && handler == kIgnore) replacement.sa_flags |= SA_NOCLDWAIT;
  // Refused for SIGKILL, SIGSTOP and the two glibc keeps for itself: those knotes never fire.
  (void)::sigaction(signo, &replacement, nullptr);
}

// The last knote of `signo` is gone: put back what the tap stood in for, unless someone
// set a disposition since (the library restores its own before it deletes the knote).
void remove_tap(int signo) {
  struct sigaction current {};
  if (::sigaction(signo, nullptr, &current) != 0 || !is_tap(current)) return;
  struct sigaction restored {};
  restored.sa_handler = reinterpret_cast<void (*)(int)>(g_dispositions[signo].handler.load());
  restored.sa_flags = g_dispositions[signo].flags.load();
  restored.sa_mask = g_masks[signo];
  (void)::sigaction(signo, &restored, nullptr);
}

// Under g_signal_mutex. The slot is complete before signo publishes it to the handler.
int take_slot(int signo, int fd) {
  for (int i = 0; i < kSlots; ++i) {
    SignalSlot& slot = g_slots[i];
    if (slot.signo.load(std::memory_order_relaxed) != 0) continue;
    slot.eventfd.store(fd, std::memory_order_relaxed);
    slot.count.store(0, std::memory_order_relaxed);
    slot.signo.store(signo, std::memory_order_release);
    return i;
  }
  return -1;
}

// Under g_signal_mutex. Once it returns no handler will write to the slot's eventfd.
void free_slot(int i) {
  SignalSlot& slot = g_slots[i];
  slot.signo.store(0);
  while (slot.inside.load() != 0)
    ::sched_yield();
  slot.eventfd.store(-1, std::memory_order_relaxed);
}

int attach_signal(Kqueue& q, Knote& note, const Record& change, bool fresh) {
  if (!fresh) return 0;  // re-adding keeps the count: only flags and udata change
  if (change.ident < 1 || change.ident > kMaxSignal) return EINVAL;
  const int signo = static_cast<int>(change.ident);
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return errno;
  if (const int error = watch_or_close(q, fd)) return error;
  std::lock_guard<std::mutex> lock(g_signal_mutex);
  const int slot = take_slot(signo, fd);
  if (slot < 0) {
    ::close(fd);
    return ENOMEM;  // what FreeBSD answers when it cannot register one more
  }
  if (g_knotes_per_signal[signo]++ == 0) install_tap(signo);
  note.source_fd = fd;
  note.signal_slot = slot;
  return 0;
}

bool evaluate_signal(Knote& note, Record& out) {
  uint64_t drained;
  (void)!::read(note.source_fd, &drained, sizeof drained);  // the count is the truth; this only wakes
  const uint64_t count = g_slots[note.signal_slot].count.exchange(0);
  out.fflags = 0;
  out.data = static_cast<int64_t>(count);
  return count > 0;
}

// ---- EVFILT_PROC: a pidfd --------------------------------------------------------------

constexpr idtype_t kPidfdIdType = static_cast<idtype_t>(3);  // P_PIDFD, Linux 5.4 (waitid(2)); glibc 2.36 lacks it

constexpr int64_t kExitPollNs = 10'000'000;

// The wait(2) status that FreeBSD and macOS encode as Linux does (exit code << 8, or the
// signal with 0x80 for a core dump).
int64_t wait_status(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return (info.si_status & 0xff) << 8;
    case CLD_KILLED:
      return info.si_status & 0x7f;
    case CLD_DUMPED:
      return (info.si_status & 0x7f) | 0x80;
    default:
      return 0;
  }
}

// Whether the process has exited (a zombie, or reaped already), watched through `pidfd`,
// or by its pid when that is -1; `status` is its wait(2) status when that can be read.
bool has_exited(pid_t pid, int pidfd, int64_t& status) {
  siginfo_t info{};
  status = 0;
  // WNOWAIT: the status is read, the child stays for its parent's waitpid.
  const int waited = pidfd < 0 ? ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT)
                               : ::waitid(kPidfdIdType, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG | WNOWAIT);
  if (waited == 0) {
    if (info.si_pid == 0) return false;
    status = wait_status(info);
    return true;
  }
  if (pidfd < 0) return ::kill(pid, 0) != 0 && errno == ESRCH;  // not our child, or reaped already
  // Not our child (ECHILD), or reaped already: the pidfd still tells whether it exited.
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// Without pidfds (valgrind 3.19 answers ENOSYS, a seccomp filter may answer EPERM) the exit
// is looked for again every kExitPollNs, woken by a timerfd.
int attach_polled_process(Kqueue& q, Knote& note, pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return ESRCH;
  itimerspec spec{};
  spec.it_value.tv_nsec = spec.it_interval.tv_nsec = kExitPollNs;
  int fd = -1;
  if (const int error = open_timer(q, CLOCK_MONOTONIC, 0, spec, fd)) return error;
  note.source_fd = fd;
  note.exit_polled = true;
  return 0;
}

int attach_process(Kqueue& q, Knote& note, const Record& change, bool fresh, bool macos) {
  if (!fresh) return 0;  // re-adding keeps the pidfd; the new fflags are stored by the caller
  if (change.ident > static_cast<uintptr_t>(INT_MAX)) return ESRCH;
  const pid_t pid = static_cast<pid_t>(change.ident);
  int64_t status = 0;
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
    if (macos && has_exited(pid, -1, status)) return ESRCH;
    return attach_polled_process(q, note, pid);
  }
  if (fd < 0) return errno;  // ESRCH for no such process, as kevent(2) answers; a zombie is found
  // FreeBSD finds a zombie and reports its exit at once; xnu does not find it (proc_find
  // skips a process that has exited) and answers ESRCH.
  if (macos && has_exited(pid, fd, status)) {
    ::close(fd);
    return ESRCH;
  }
  if (const int error = watch_or_close(q, fd)) return error;
  note.source_fd = fd;
  return 0;
}

bool evaluate_process(Knote& note, bool macos, Record& out, bool& gone) {
  const pid_t pid = static_cast<pid_t>(note.record.ident);
  if (note.exit_polled) {
    uint64_t expired;
    (void)!::read(note.source_fd, &expired, sizeof expired);  // the timerfd only wakes
  }
  int64_t status = 0;
  if (!has_exited(pid, note.exit_polled ? -1 : note.source_fd, status)) return false;
  const uint32_t wanted = note.record.fflags;
  if (!(wanted & kNoteExit)) {
    gone = true;  // FreeBSD drops it unreported (kern_event.c, filt_proc: EV_DROP)
    return false;
  }
  // kqueue(2), EVFILT_PROC: NOTE_EXIT with the wait(2) status in data; on macOS only when
  // NOTE_EXITSTATUS was asked for, and then also returned in fflags (xnu, filt_proc).
  const uint32_t exit_status = macos ? (wanted & macos::kNoteExitStatus) : 0;
  out.fflags = kNoteExit | exit_status;
  out.data = !macos || exit_status ? status : 0;
  out.flags |= kEvEof | kEvOneshot;  // the process is gone: so is its knote, once reported
  return true;
}

// ---- EVFILT_TIMER: a timerfd -----------------------------------------------------------

uint32_t absolute_flag(bool macos) { return macos ? macos::kNoteAbsolute : freebsd::kNoteAbsolute; }

// Units per second of the unit fflags choose in this flavour, or 0 when it names two.
int64_t units_per_second(uint32_t fflags, bool macos) {
  const uint32_t seconds = macos ? macos::kNoteSeconds : freebsd::kNoteSeconds;
  const uint32_t milliseconds = macos ? 0 : freebsd::kNoteMilliseconds;  // macOS has none
  const uint32_t microseconds = macos ? macos::kNoteMicroseconds : freebsd::kNoteMicroseconds;
  const uint32_t nanoseconds = macos ? macos::kNoteNanoseconds : freebsd::kNoteNanoseconds;
  const uint32_t unit = fflags & (seconds | milliseconds | microseconds | nanoseconds);
  if (unit == 0) return 1'000;  // kqueue(2): milliseconds unless told
  if (unit == seconds) return 1;
  if (unit == milliseconds) return 1'000;
  if (unit == microseconds) return 1'000'000;
  if (unit == nanoseconds) return 1'000'000'000;
  return 0;  // both kernels refuse two units (filt_timervalidate)
}

int attach_timer(Kqueue& q, Knote& note, const Record& change, bool macos) {
  const int64_t per_second = units_per_second(change.fflags, macos);
  if (change.data < 0 || per_second == 0) return EINVAL;
  const bool absolute = change.fflags & absolute_flag(macos);
  const bool periodic = !absolute && !(change.flags & kEvOneshot);
  itimerspec spec{};
  spec.it_value.tv_sec = change.data / per_second;
  spec.it_value.tv_nsec = (change.data % per_second) * (1'000'000'000 / per_second);
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) {
    // kqueue(2): a periodic timer of 0 runs at one unit; a deadline of now or earlier
    // fires at once (a zero it_value would disarm the timerfd instead).
    if (!periodic) {
      spec.it_value.tv_nsec = 1;
    } else if (per_second == 1) {
      spec.it_value.tv_sec = 1;
    } else {
      spec.it_value.tv_nsec = 1'000'000'000 / per_second;
    }
  }
  if (periodic) spec.it_interval = spec.it_value;
  // Absolute deadlines are wall-clock times (FreeBSD: since the Epoch; macOS: in
  // gettimeofday(2)'s terms), periods are monotonic.
  int fd = -1;
  if (const int error = absolute ? open_timer(q, CLOCK_REALTIME, TFD_TIMER_ABSTIME, spec, fd)
                                 : open_timer(q, CLOCK_MONOTONIC, 0, spec, fd))
    return error;
  // kqueue(2): re-adding cancels the timer, with any unreported expirations, and restarts it.
  if (note.source_fd >= 0) ::close(note.source_fd);
  note.source_fd = fd;
  note.expirations = 0;
  return 0;
}

bool evaluate_timer(Knote& note, Record& out) {
  uint64_t expired = 0;
  if (::read(note.source_fd, &expired, sizeof expired) == sizeof expired) note.expirations += expired;
  out.fflags = 0;
  out.data = static_cast<int64_t>(note.expirations);
  // A FreeBSD absolute timer has no EV_CLEAR: once expired it stays reported, as there.
  if (note.record.flags & kEvClear) note.expirations = 0;
  return out.data > 0;
}

}  // namespace

bool is_source_filter(int16_t filter) {
  return filter == kEvfiltSignal || filter == kEvfiltProc || filter == kEvfiltTimer;
}

int attach(Kqueue& q, Knote& note, const Record& change, bool fresh, bool macos) {
  switch (change.filter) {
    case kEvfiltSignal:
      return attach_signal(q, note, change, fresh);
    case kEvfiltProc:
      return attach_process(q, note, change, fresh, macos);
    default:
      return attach_timer(q, note, change, macos);
  }
}

uint16_t implied_flags(const Record& change, bool macos) {
  // kqueue(2) for EVFILT_SIGNAL and EVFILT_TIMER; filt_procattach for EVFILT_PROC. A
  // FreeBSD absolute timer is the exception (filt_timerattach); a macOS one is a oneshot.
  if (change.filter != kEvfiltTimer || !(change.fflags & absolute_flag(macos))) return kEvClear;
  return macos ? static_cast<uint16_t>(kEvClear | kEvOneshot) : 0;
}

bool evaluate_source(Knote& note, bool macos, Record& out, bool& gone) {
  switch (note.record.filter) {
    case kEvfiltSignal:
      return evaluate_signal(note, out);
    case kEvfiltProc:
      return evaluate_process(note, macos, out, gone);
    default:
      return evaluate_timer(note, out);
  }
}

void release(Knote& note) {
  if (note.signal_slot >= 0) {
    const int signo = static_cast<int>(note.record.ident);
    std::lock_guard<std::mutex> lock(g_signal_mutex);
    free_slot(note.signal_slot);
    if (--g_knotes_per_signal[signo] == 0) remove_tap(signo);
    note.signal_slot = -1;
  }
  if (note.source_fd >= 0) ::close(note.source_fd);
  note.source_fd = -1;
  note.exit_polled = false;
}

void signals_before_fork() { g_signal_mutex.lock(); }

void signals_after_fork_in_parent() { g_signal_mutex.unlock(); }

void signals_after_fork_in_child() {
  // The knotes are gone with their kqueues (their eventfds are closed by the caller), and
  // with them the tap: each signal it watched gets back the disposition it stood in for.
  // sigaction(2) is async-signal-safe, as the child of a threaded process needs.
  for (int signo = 1; signo <= kMaxSignal; ++signo) {
    if (g_knotes_per_signal[signo] > 0) remove_tap(signo);
    g_knotes_per_signal[signo] = 0;
  }
  for (SignalSlot& slot : g_slots) {
    slot.signo.store(0);
    slot.eventfd.store(-1);
    slot.count.store(0);
    slot.inside.store(0);
  }
  g_signal_mutex.unlock();
}

uint32_t absorbed_signals() noexcept { return t_absorbed.load(std::memory_order_relaxed); }

}  // namespace evflow::testing::kqueue_emulation::detail
