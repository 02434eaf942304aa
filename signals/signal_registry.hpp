// evflow — the process-wide signal layer: any number of loops, in any threads, watching
// any signals, fed by one handler per signal.
//
// Each loop that watches signals owns a mailbox (a slot): a 64-bit mask of the signals
// it watches, a 64-bit mask of those caught but not yet dispatched, and how to wake it
// (its Loop::wake(), async-signal-safe). Slots live in a static array and are never
// freed, so the signal handler only ever touches static memory, and no pointer travels
// through a pipe. A loop holds its slot while it has a Signal watcher and releases it
// with its last one, for another loop to take.
//
// Delivery, for a signal S caught by the handler (or read from a signalfd, below):
// for every slot watching S, set S in its pending mask; if it was not set already,
// wake its loop. The handler saves and restores errno and does nothing
// else: callbacks run in the loops. Several deliveries of S before a loop looks are
// seen as one (coalescing), and a delivery after the loop took its pending mask wakes
// it again, so none is lost. At fork(2) an atfork handler empties every pending mask in
// the child: the parent dispatches what was caught before.
//
// Four ways to catch a signal, chosen when the first loop in the process starts
// watching it:
// - Handler: if S is not blocked in the calling thread, evflow installs its handler
//   with sigaction (SA_RESTART) and restores the previous disposition when the last
//   watcher in the process stops. The kernel may run it in any thread that does not
//   block S, including threads that know nothing of evflow.
// - signalfd: if S is blocked in the calling thread, evflow takes that as the usual
//   signalfd arrangement (the application blocked S before creating any thread, so it
//   is blocked everywhere); each loop watching S reads it from its own signalfd and
//   hands it to deliver(), which fans it out to every loop. The handler is installed as
//   well: a thread that does not block S (one started before S was blocked, or that
//   unblocked it) may be the one the kernel gives it to, and must not meet the default
//   action; there the handler delivers it like any other. A signal directed at one
//   thread that blocks it and never reads a signalfd stays pending there: block it in
//   every thread, or in none. (Linux only.)
// - Kernel filter: where the loops' backend reports signals itself (kqueue's
//   EVFILT_SIGNAL, which every watching kqueue records), evflow installs a handler that
//   only notes the signal for forked children (filtered_since_fork()), so that the
//   default action cannot end the process, and restores the previous disposition when
//   the last watcher stops. Not SIG_IGN: an ignored signal stays ignored across exec,
//   the terminal driver never sends an ignored SIGTTIN or SIGTTOU, and an ignored
//   SIGCHLD makes the kernel reap children itself. Each loop registers the signal in
//   its own kqueue; deliver() is not involved.
//
// - Console handler (Windows, the only mode there): no POSIX signals exist. SIGINT,
//   SIGBREAK and SIGHUP (1) stand for the console control events (Ctrl+C, Ctrl+Break,
//   the console closing); evflow installs one SetConsoleCtrlHandler routine when the
//   first of them is watched and keeps it; it calls deliver() from the system's thread
//   and leaves events no loop watches to the next handler, so that an unwatched event
//   meets the application's own handlers or the default action, as before the watch
//   (platform/win/console_events.hpp). Every other
//   number is refused (EINVAL). CatchMode is Handler.
//
// SIGCHLD is shared by all the code of a process that has children: when evflow's handler
// replaces an application's SIGCHLD handler, it calls that handler after its own, with
// the same arguments, for every SIGCHLD (without the application's sa_mask), and keeps
// the application's SA_NOCLDSTOP and SA_NOCLDWAIT (an ignored SIGCHLD: SA_NOCLDWAIT, so
// that its children are still reaped by the kernel). The other signals are the watchers'
// alone while watched, as a handler installed by the application would make them.
//
// Refused: 0 and numbers above 64 (EINVAL); SIGKILL and SIGSTOP, which cannot be caught
// (EINVAL); SIGSEGV, SIGBUS, SIGFPE and SIGILL, which report a fault in the thread that
// raised them and cannot be handled later in a loop (EINVAL); signals the C library
// reserves for itself (sigaction answers EINVAL).
#pragma once

#include <cstdint>

#include "../platform/result.hpp"

namespace evflow::detail::signals {

// How a signal is caught in this process while it is watched.
enum class CatchMode : uint8_t { None, Handler, SignalFd, KernelFilter };

inline constexpr int kMaxLoops = 256;  // loops watching signals at once, process-wide

constexpr uint64_t bit_of(int signo) noexcept { return uint64_t{1} << (signo - 1); }

// True for a number a Signal watcher may watch (see the header comment).
bool watchable(int signo) noexcept;

// How deliver() wakes a loop: `wake(context)` must be async-signal-safe and thread-safe.
struct Waker {
  void (*wake)(void* context) noexcept;
  void* context;
};

// Takes a free mailbox for a loop woken by `waker`. Errors: EAGAIN when kMaxLoops loops
// already have one.
Result<int> acquire_slot(Waker waker) noexcept;
// Returns the mailbox; waits for handlers still waking its loop. The loop's
// watches must have been dropped first.
void release_slot(int slot) noexcept;
// In a forked process that will never run the loops it inherited (a worker of
// spawn_process): returns every mailbox, restoring each watched signal's disposition as
// it was before evflow took it, so that the inherited loops catch nothing there.
void release_every_slot() noexcept;

// The loop of `slot` starts watching `signo` (0 -> 1 of its watchers). Sets the
// disposition if this is the first watch in the process. `kernel_filter`: the loops'
// backend reports signals itself (Backend::kReportsSignals). Returns how it is caught.
Result<CatchMode> watch(int slot, int signo, bool kernel_filter) noexcept;
// The loop of `slot` stops watching `signo` (1 -> 0). Restores the previous disposition
// after the last watch in the process.
void unwatch(int slot, int signo) noexcept;

// Kernel-filter signals caught in this process since it was forked (since it started,
// if it was not): what a forked child's loops, which have no kqueue until they rebuild,
// may have missed. Async-signal-safe.
uint64_t filtered_since_fork() noexcept;

// The signals caught for `slot` since the last call. Async-signal-safe, thread-safe.
uint64_t take_pending(int slot) noexcept;

// Marks `signo` caught for every loop watching it and wakes them. Async-signal-safe.
void deliver(int signo) noexcept;

// For tests: how many slots are watching `signo` process-wide.
int watchers_of(int signo) noexcept;
// For tests: how `signo` is caught now (None while no loop watches it).
CatchMode catch_mode(int signo) noexcept;

}  // namespace evflow::detail::signals
