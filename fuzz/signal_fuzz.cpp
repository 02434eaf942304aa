// Signal layer fuzzer: Signal watchers on two loops, raised signals, and the process's
// dispositions, checked against a model of every loop's pending set.
//
// Two loops in this thread, three watchers each, six signals: four caught by evflow's
// handler (SIGHUP, SIGWINCH, SIGURG, SIGRTMIN+3) and two blocked before anything starts,
// so read through signalfds (SIGRTMIN+5, SIGRTMIN+6). The input starts (also on refused
// numbers), restarts in place, stops and destroys watchers, raises signals (raise():
// delivered to this thread before it returns) and runs either loop one non-blocking
// iteration. Callbacks do the same.
//
// Checked: a signal raised while a loop watches it reaches every watcher of it in that
// loop at the loop's next iteration, once (coalesced), in start order; no callback for
// a signal the loop was not watching when it arrived; a signal read from one loop's
// signalfd reaches the other loop too; while nobody watches a handler-mode signal, the
// process's own handler (installed here before evflow) is back in place and receives it,
// and while somebody does, it receives nothing; watchers_of() counts the watching loops.
#include <signal.h>

#include <optional>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "reactor/loop.hpp"
#include "reactor/signal.hpp"
#include "signals/signal_registry.hpp"

namespace {

using evflow::Loop;
using evflow::RunMode;
using evflow::Signal;
using evflow::fuzz::FuzzInput;

constexpr int kLoops = 2;
constexpr int kPerLoop = 3;
constexpr int kWatchers = kLoops * kPerLoop;
constexpr int kSignals = 6;
constexpr int kHandlerSignals = 4;  // the first four; the rest are blocked (signalfd)

int signal_numbers[kSignals];
volatile sig_atomic_t own_handler_calls[65];

void own_handler(int signo) { own_handler_calls[signo] = own_handler_calls[signo] + 1; }

struct Harness {
  FuzzInput& in;
  std::optional<Loop> loops[kLoops];
  std::optional<Signal> watchers[kWatchers];
  struct Model {
    bool active = false;
    int signal = -1;  // index into signal_numbers
    uint64_t epoch = 0;
  } model[kWatchers];
  std::vector<int> order[kLoops];       // active watchers in start order
  bool pending[kLoops][kSignals] = {};  // caught for the loop, not yet dispatched
  bool kernel_pending[kSignals] = {};   // blocked signals raised and not yet read
  int running = -1;                     // the loop whose iteration is in progress
  bool taken[kSignals] = {};            // what that iteration's dispatch took
  std::vector<std::pair<int, uint64_t>> expected;
  size_t cursor = 0;
  int depth = 0;

  explicit Harness(FuzzInput& input) : in(input) {}

  ~Harness() {
    for (auto& w : watchers)
      w.reset();
    for (auto& l : loops)
      l.reset();
    check_dispositions();
  }

  static int loop_of(int w) { return w / kPerLoop; }

  int watching(int l, int s) const {
    int count = 0;
    for (int w : order[l])
      count += model[w].signal == s;
    return count;
  }

  void check_dispositions() {
    for (int s = 0; s < kSignals; ++s) {
      int loops_watching = 0;
      for (int l = 0; l < kLoops; ++l)
        loops_watching += loops[l] && watching(l, s) > 0;
      FUZZ_CHECK(evflow::detail::signals::watchers_of(signal_numbers[s]) == loops_watching,
                 "watchers_of() counts loops");
      if (s >= kHandlerSignals) continue;  // signalfd signals: blocked here, read from the signalfds
      struct sigaction current {};
      FUZZ_CHECK(::sigaction(signal_numbers[s], nullptr, &current) == 0, "sigaction query");
      if (loops_watching == 0) {
        FUZZ_CHECK(current.sa_handler == own_handler, "the previous disposition is back when nobody watches");
      } else {
        FUZZ_CHECK(current.sa_handler != own_handler && current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN,
                   "evflow's handler is installed while watched");
      }
    }
  }

  // --- watchers ---------------------------------------------------------------------

  void start(int w) {
    const int l = loop_of(w);
    if (!loops[l]) return;
    if (!watchers[w]) watchers[w].emplace(*loops[l]);
    Model& m = model[w];
    if (in.below(8) == 0) {
      // Refused: out of range, uncatchable, synchronous faults, and glibc's own (32, 33:
      // sigaction says EINVAL). A start that fails leaves the watcher inactive, active
      // before or not (README, "Watchers").
      const int refused[] = {0, 65, -3, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 32, 33};
      const int signo = refused[in.below(11)];
      const evflow::Error err = watchers[w]->start(signo, [this, w] { on_signal(w); });
      FUZZ_TRACE("watcher %d start refused %d: %d\n", w, signo, err.code());
      FUZZ_CHECK(err.code() == EINVAL, "a number that cannot be watched is EINVAL");
      FUZZ_CHECK(!watchers[w]->active(), "a refused start leaves the watcher inactive");
      if (m.active) {  // as a stop
        m.active = false;
        ++m.epoch;
        std::erase(order[l], w);
        if (watching(l, m.signal) == 0) pending[l][m.signal] = false;
      }
      check_dispositions();
      return;
    }
    const int s = static_cast<int>(in.below(kSignals));
    const evflow::Error err = watchers[w]->start(signal_numbers[s], [this, w] { on_signal(w); });
    FUZZ_TRACE("watcher %d (loop %d) start %d: %d\n", w, l, signal_numbers[s], err.code());
    FUZZ_CHECK(!err, "a watchable signal starts");
    FUZZ_CHECK(watchers[w]->active() && watchers[w]->signal_number() == signal_numbers[s], "started on it");
    const int old = m.signal;
    m.signal = s;
    if (!m.active) {  // a restart keeps the watcher's place
      m.active = true;
      ++m.epoch;
      order[l].push_back(w);
    } else if (old != s && watching(l, old) == 0) {
      pending[l][old] = false;  // the loop's last watcher of it let go
    }
  }

  void stop(int w, bool destroy) {
    const int l = loop_of(w);
    FUZZ_TRACE("watcher %d %s\n", w, destroy ? "destroy" : "stop");
    if (destroy) {
      watchers[w].reset();
    } else if (watchers[w]) {
      watchers[w]->stop();
    }
    Model& m = model[w];
    if (!m.active) return;
    m.active = false;
    ++m.epoch;
    std::erase(order[l], w);
    if (watching(l, m.signal) == 0) pending[l][m.signal] = false;
  }

  // Destroying a loop with active watchers detaches them (loop.hpp): each becomes
  // inactive, a later start() is EINVAL, destroying it is safe, and the loop's signals
  // are let go (dispositions restored when no other loop watches them).
  void reopen_loop(int l) {
    FUZZ_TRACE("loop %d destroyed and reopened\n", l);
    const std::vector<int> detached = order[l];
    loops[l].reset();
    for (int w : order[l])
      ++model[w].epoch, model[w].active = false;
    order[l].clear();
    for (bool& p : pending[l])
      p = false;
    check_dispositions();
    for (int w : detached) {
      FUZZ_CHECK(!watchers[w]->active(), "a watcher of a destroyed loop is inactive");
      FUZZ_CHECK(watchers[w]->start(SIGHUP).code() == EINVAL, "starting a detached watcher is EINVAL");
    }
    // Watchers that were not active still refer to the destroyed loop: only destroying
    // them is allowed (loop.hpp).
    for (int w = l * kPerLoop; w < (l + 1) * kPerLoop; ++w)
      watchers[w].reset();
    loops[l].emplace();
    FUZZ_CHECK(!loops[l]->open(), "a loop opens");
  }

  void raise_signal() {
    const int s = static_cast<int>(in.below(kSignals));
    const int signo = signal_numbers[s];
    const sig_atomic_t before = own_handler_calls[signo];
    FUZZ_TRACE("raise %d\n", signo);
    FUZZ_CHECK(::raise(signo) == 0, "raise");
    const bool own_called = own_handler_calls[signo] != before;
    if (s >= kHandlerSignals) {
      FUZZ_CHECK(!own_called, "a blocked signal runs no handler");
      kernel_pending[s] = true;
      return;
    }
    bool anyone = false;
    for (int l = 0; l < kLoops; ++l) {
      if (loops[l] && watching(l, s) > 0) {
        pending[l][s] = true;
        anyone = true;
      }
    }
    FUZZ_CHECK(own_called == !anyone, "the process's handler runs exactly when no loop watches the signal");
  }

  // --- the iteration ----------------------------------------------------------------

  void on_signal(int w) {
    const int l = loop_of(w);
    FUZZ_TRACE("  loop %d watcher %d (signal %d)\n", l, w, model[w].signal >= 0 ? signal_numbers[model[w].signal] : 0);
    FUZZ_CHECK(running == l, "a watcher is called by its own loop's iteration");
    FUZZ_CHECK(model[w].active, "no callback for a stopped watcher");
    for (;; ++cursor) {
      FUZZ_CHECK(cursor < expected.size(), "a callback for a signal the loop did not catch, or out of order");
      const auto [id, epoch] = expected[cursor];
      const bool owed = model[id].active && model[id].epoch == epoch && taken[model[id].signal];
      if (id == w && owed) break;
      FUZZ_CHECK(!owed, "watchers are called in start order, none skipped");
    }
    ++cursor;
    if (depth == 0) {
      ++depth;
      for (int i = static_cast<int>(in.below(3)); i > 0; --i)
        operate(true);
      --depth;
    }
  }

  void run_loop(int l) {
    if (!loops[l]) return;
    FUZZ_TRACE("run loop %d\n", l);
    // The loop's signalfd hands blocked signals to every loop watching them.
    for (int s = kHandlerSignals; s < kSignals; ++s) {
      if (!kernel_pending[s] || watching(l, s) == 0) continue;
      kernel_pending[s] = false;
      for (int m = 0; m < kLoops; ++m)
        if (loops[m] && watching(m, s) > 0) pending[m][s] = true;
    }
    for (int s = 0; s < kSignals; ++s) {
      taken[s] = pending[l][s];
      pending[l][s] = false;
    }
    expected.clear();
    cursor = 0;
    for (int w : order[l])
      expected.emplace_back(w, model[w].epoch);
    running = l;
    FUZZ_CHECK(!loops[l]->run(RunMode::NoWait), "run succeeds");
    running = -1;
    for (; cursor < expected.size(); ++cursor) {
      const auto [id, epoch] = expected[cursor];
      FUZZ_CHECK(!(model[id].active && model[id].epoch == epoch && taken[model[id].signal]),
                 "every watcher of a caught signal is called");
    }
  }

  void operate(bool inside) {
    const int w = static_cast<int>(in.below(kWatchers));
    switch (in.below(inside ? 8 : 10)) {
      case 0:
      case 1:
        start(w);
        break;
      case 2:
        stop(w, in.flag());
        break;
      case 3:
      case 4:
      case 5:
        raise_signal();
        break;
      case 6:
      case 7:
        break;
      case 8:
        if (in.below(8) == 0) {
          reopen_loop(static_cast<int>(in.below(kLoops)));
        } else {
          run_loop(static_cast<int>(in.below(kLoops)));
        }
        break;
      default:
        run_loop(static_cast<int>(in.below(kLoops)));
        break;
    }
    check_dispositions();
  }

  void run() {
    for (auto& l : loops) {
      l.emplace();
      FUZZ_CHECK(!l->open(), "a loop opens");
    }
    while (!in.done())
      operate(false);
    // Settle: whatever was caught is delivered.
    for (int l = 0; l < kLoops; ++l)
      run_loop(l);
    for (int l = 0; l < kLoops; ++l)
      run_loop(l);
    for (int l = 0; l < kLoops; ++l)
      for (int s = 0; s < kSignals; ++s)
        FUZZ_CHECK(!pending[l][s] || watching(l, s) == 0, "nothing caught stays undelivered");
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const int numbers[kSignals] = {SIGHUP, SIGWINCH, SIGURG, SIGRTMIN + 3, SIGRTMIN + 5, SIGRTMIN + 6};
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int s = 0; s < kSignals; ++s) {
    signal_numbers[s] = numbers[s];
    if (s < kHandlerSignals) {
      // The application's own disposition, which evflow must restore.
      struct sigaction action {};
      action.sa_handler = own_handler;
      sigemptyset(&action.sa_mask);
      ::sigaction(numbers[s], &action, nullptr);
    } else {
      sigaddset(&blocked, numbers[s]);
    }
  }
  // Blocked before libFuzzer starts its threads, so blocked in every thread: evflow
  // reads these through signalfd (signals/signal_registry.hpp).
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  {
    Harness harness(in);
    harness.run();
  }
  // Blocked signals raised while nobody watched stay pending in the kernel: drain them
  // so that every input starts from the same state.
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int s = kHandlerSignals; s < kSignals; ++s)
    sigaddset(&blocked, signal_numbers[s]);
  const timespec zero{0, 0};
  while (::sigtimedwait(&blocked, nullptr, &zero) > 0) {
  }
  return 0;
}
