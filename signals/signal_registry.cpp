#include "signal_registry.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cerrno>

#if defined(_WIN32)
#include "../platform/win/console_events.hpp"
#endif

namespace evflow::detail::signals {

namespace {

constexpr int kMaxSignal = 64;

// One loop's mailbox. Static storage, never freed: the handler may read any slot at any
// time. All fields are atomics for that reason.
struct Slot {
  std::atomic<bool> in_use{false};
  std::atomic<void (*)(void*) noexcept> wake{nullptr};  // with wake_context: Waker
  std::atomic<void*> wake_context{nullptr};
  std::atomic<uint64_t> watched{0};
  std::atomic<uint64_t> pending{0};
  std::atomic<int> handlers_inside{0};  // deliver() calls between their check and their write
  std::atomic<bool> draining{false};    // released, waiting for handlers: not acquirable yet
};

// What the process does with one signal while it is watched. Guarded by g_mutex.
struct SignalState {
  CatchMode mode = CatchMode::None;
#if !defined(_WIN32)
  struct sigaction previous {};
#endif
};

Slot g_slots[kMaxLoops];
std::atomic<int> g_slots_used{0};  // slots [0, g_slots_used) have ever been taken
std::atomic<uint64_t> g_filtered_since_fork{0};
SignalState g_signals[kMaxSignal + 1];
// Serialises watch/unwatch/acquire/release. A pthread mutex, not std::mutex: no
// exceptions; held across fork() (see install_fork_handlers).
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_once_t g_fork_handlers_once = PTHREAD_ONCE_INIT;

void lock() noexcept { (void)pthread_mutex_lock(&g_mutex); }
void unlock() noexcept { (void)pthread_mutex_unlock(&g_mutex); }

#if !defined(_WIN32)
// The application's SIGCHLD disposition from before evflow took it, when it is a handler:
// called after evflow's for every SIGCHLD, since the application's own children (those
// no Child watcher names) are its business. Set before evflow's handler is installed,
// cleared after the application's disposition is back.
std::atomic<void (*)(int)> g_chained_handler{nullptr};
std::atomic<void (*)(int, siginfo_t*, void*)> g_chained_action{nullptr};

void call_chained(int signo, siginfo_t* info, void* context) {
  if (signo != SIGCHLD) return;
  if (auto action = g_chained_action.load()) {
    action(signo, info, context);
  } else if (auto handler = g_chained_handler.load()) {
    handler(signo);
  }
}

void on_signal(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;  // deliver() uses raw system calls only, but be strict
  deliver(signo);
  errno = saved_errno;
  call_chained(signo, info, context);
}

// The disposition of a signal a kqueue filter watches: the kqueue reports it; the
// handler only keeps it from the default action and notes it for a forked child.
void on_filtered_signal(int signo, siginfo_t* info, void* context) {
  g_filtered_since_fork.fetch_or(bit_of(signo));
  call_chained(signo, info, context);
}
#endif

#if defined(_WIN32)
void install_fork_handlers() {}  // no fork() on Windows

// Whether the console control handler is installed (console_events.hpp). Guarded by g_mutex.
bool g_console_handler = false;

bool watched_by_a_loop(int signo) noexcept { return watchers_of(signo) > 0; }

// Installs the handler with the first watched console signal, and keeps it: an event no
// loop watches goes on to the next handler as if it were not there (console_events.hpp
// says why it is never removed).
Error ensure_console_handler() noexcept {
  if (g_console_handler) return Error();
  if (Error err = win::install_console_handler(win::ConsoleSink{deliver, watched_by_a_loop})) return err;
  g_console_handler = true;
  return Error();
}
#else
void install_fork_handlers() {
  // Hold the mutex across fork() so that the child never inherits it locked by a thread
  // that does not exist there. Signals caught but not dispatched at the instant of the
  // fork are dropped in the child (the parent dispatches them); signals the child
  // catches before its loops rebuild are kept. Mailboxes stay as they are: the child
  // cannot tell the forking thread's loops from the others'. A loop not rebuilt yet
  // writes nothing to its parent-shared wake-up (Loop::wake()).
  (void)pthread_atfork([] { lock(); }, [] { unlock(); },
                       [] {
                         g_filtered_since_fork.store(0);
                         for (Slot& slot : g_slots) {
                           slot.pending.store(0);
                           slot.handlers_inside.store(0);
                         }
                         // The forking thread took it (prepare) and is the child's one
                         // thread: it unlocks it (a mutex initialised anew would still
                         // count as held for ThreadSanitizer).
                         unlock();
                       });
}
#endif

// Whether any live mailbox still watches `signo`. Caller holds g_mutex.
bool watched_anywhere(int signo) noexcept {
  const int used = g_slots_used.load();
  for (int i = 0; i < used; ++i) {
    if (g_slots[i].in_use.load() && (g_slots[i].watched.load() & bit_of(signo))) return true;
  }
  return false;
}

void restore_if_unwatched(int signo) noexcept {
  SignalState& state = g_signals[signo];
  if (state.mode == CatchMode::None || watched_anywhere(signo)) return;
#if defined(_WIN32)
  state.mode = CatchMode::None;  // the console handler stays, passing the event on
#else
  (void)::sigaction(signo, &state.previous, nullptr);
  if (signo == SIGCHLD) {  // after: a handler still running may call it
    g_chained_action.store(nullptr);
    g_chained_handler.store(nullptr);
  }
  state.mode = CatchMode::None;
#endif
}

}  // namespace

bool watchable(int signo) noexcept {
  if (signo < 1 || signo > kMaxSignal) return false;
#if defined(_WIN32)
  // Only what a console control event stands for (console_events.hpp).
  return signo == win::kSigInt || signo == win::kSigBreak || signo == win::kSigHup;
#else
  switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
      return false;
    default:
      return true;
  }
#endif
}

Result<int> acquire_slot(Waker waker) noexcept {
  (void)pthread_once(&g_fork_handlers_once, install_fork_handlers);
  lock();
  for (int i = 0; i < kMaxLoops; ++i) {
    Slot& slot = g_slots[i];
    if (slot.in_use.load() || slot.draining.load()) continue;
    slot.wake.store(waker.wake);
    slot.wake_context.store(waker.context);
    slot.pending.store(0);
    slot.in_use.store(true);
    if (g_slots_used.load() <= i) g_slots_used.store(i + 1);
    unlock();
    return i;
  }
  unlock();
  return Error(EAGAIN);
}

void release_slot(int slot_index) noexcept {
  Slot& slot = g_slots[slot_index];
  lock();
  slot.draining.store(true);
  const uint64_t watched = slot.watched.exchange(0);
  slot.in_use.store(false);
  for (int signo = 1; signo <= kMaxSignal; ++signo) {
    if (watched & bit_of(signo)) restore_if_unwatched(signo);
  }
  unlock();
  // A handler that saw in_use == true may still be about to wake the loop, which may be
  // destroyed after this returns. Handlers are short: wait them out, and
  // only then clear the mailbox and let another loop take it.
  while (slot.handlers_inside.load() != 0)
    sched_yield();
  slot.pending.store(0);
  slot.draining.store(false);
}

void release_every_slot() noexcept {
  const int used = g_slots_used.load();
  for (int i = 0; i < used; ++i) {
    if (g_slots[i].in_use.load()) release_slot(i);
  }
}

namespace {

// Makes the process catch `signo`, the first time a loop watches it; returns how.
// Caller holds g_mutex.
Result<CatchMode> take_disposition(int signo, bool kernel_filter) noexcept {
#if defined(_WIN32)
  // The console handler delivers it (console_events.hpp); no backend filters signals.
  (void)kernel_filter;
  if (Error err = ensure_console_handler()) return err;
  g_signals[signo].mode = CatchMode::Handler;
  return CatchMode::Handler;
#else
  CatchMode mode = kernel_filter ? CatchMode::KernelFilter : CatchMode::Handler;
#if defined(__linux__)
  sigset_t blocked;
  (void)pthread_sigmask(SIG_BLOCK, nullptr, &blocked);
  if (sigismember(&blocked, signo) == 1) mode = CatchMode::SignalFd;
#endif
  // sigaction through libc: the kernel needs libc's restorer trampoline.
  struct sigaction previous {};
  if (::sigaction(signo, nullptr, &previous) != 0) return Error(errno);
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_SIGINFO;
  // Even in signalfd mode a handler is installed: a thread that does not block the signal
  // (one the application started without blocking it) may still be the one the kernel
  // delivers it to, and must not meet the default action. The handler hands it to the
  // loops like any other.
  action.sa_sigaction = mode == CatchMode::KernelFilter ? on_filtered_signal : on_signal;
  if (signo == SIGCHLD) {
    // The application's choices about its children stay: no stop reports if it asked for
    // none, no zombies if it asked for none (then every exit is "reaped elsewhere").
    action.sa_flags |= previous.sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT);
    if (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_IGN) action.sa_flags |= SA_NOCLDWAIT;
    if (previous.sa_flags & SA_SIGINFO) {
      g_chained_action.store(previous.sa_sigaction);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
      g_chained_handler.store(previous.sa_handler);
    }
  }
  if (::sigaction(signo, &action, nullptr) != 0) {
    g_chained_action.store(nullptr);
    g_chained_handler.store(nullptr);
    return Error(errno);
  }
  g_signals[signo].previous = previous;
  g_signals[signo].mode = mode;
  return mode;
#endif
}

}  // namespace

Result<CatchMode> watch(int slot_index, int signo, bool kernel_filter) noexcept {
  if (!watchable(signo)) return Error(EINVAL);
  Slot& slot = g_slots[slot_index];
  lock();
  if (g_signals[signo].mode == CatchMode::None) {
    Result<CatchMode> taken = take_disposition(signo, kernel_filter);
    if (!taken) {
      unlock();
      return taken.error();
    }
  }
  slot.watched.fetch_or(bit_of(signo));
  const CatchMode mode = g_signals[signo].mode;
  unlock();
  return mode;
}

void unwatch(int slot_index, int signo) noexcept {
  if (!watchable(signo)) return;
  Slot& slot = g_slots[slot_index];
  lock();
  slot.watched.fetch_and(~bit_of(signo));
  slot.pending.fetch_and(~bit_of(signo));
  restore_if_unwatched(signo);
  unlock();
}

uint64_t filtered_since_fork() noexcept { return g_filtered_since_fork.load(); }

uint64_t take_pending(int slot_index) noexcept { return g_slots[slot_index].pending.exchange(0); }

void deliver(int signo) noexcept {
  const uint64_t bit = bit_of(signo);
  const int used = g_slots_used.load();
  for (int i = 0; i < used; ++i) {
    Slot& slot = g_slots[i];
    if ((slot.watched.load() & bit) == 0) continue;
    slot.handlers_inside.fetch_add(1);
    // Checked after announcing ourselves: release_slot() either sees us or we see it.
    if (slot.in_use.load() && (slot.pending.fetch_or(bit) & bit) == 0) slot.wake.load()(slot.wake_context.load());
    slot.handlers_inside.fetch_sub(1);
  }
}

CatchMode catch_mode(int signo) noexcept {
  if (signo < 1 || signo > kMaxSignal) return CatchMode::None;
  lock();
  const CatchMode mode = g_signals[signo].mode;
  unlock();
  return mode;
}

int watchers_of(int signo) noexcept {
  if (signo < 1 || signo > kMaxSignal) return 0;
  int count = 0;
  const int used = g_slots_used.load();
  for (int i = 0; i < used; ++i) {
    if (g_slots[i].in_use.load() && (g_slots[i].watched.load() & bit_of(signo))) ++count;
  }
  return count;
}

}  // namespace evflow::detail::signals
