// Reactor timers and hooks fuzzer: Timer, Prepare, Check, Idle and Async watchers on a
// loop with a fake clock, checked against a model of one iteration's phases.
//
// The input starts, stops, restarts (again()), re-times (set_repeat), destroys and
// re-creates up to 8 timers, 3 watchers of each hook kind and 3 Asyncs; sends Asyncs;
// moves the fake clock by nanoseconds to centuries; and runs one non-blocking iteration.
// Callbacks do any of this to any watcher, themselves included.
//
// Checked against the order loop.hpp documents, at every callback:
// - phases come in order: Prepare, Async, Timer, Idle, Check;
// - hooks of a phase run in start order, each one present when the phase began exactly
//   once, unless stopped (or restarted) before its turn; one started during its phase
//   waits for the next iteration;
// - Asyncs run in start order, only when sent since their last callback (coalesced), and
//   every active Async with a send pending when its turn comes is called;
// - timers fire never early, in (deadline, start order) order, each due timer exactly once
//   unless stopped or restarted first; a repeating timer keeps its phase (the next deadline
//   is the first deadline + k * interval after now);
// - Idle runs only in iterations in which no Async or Timer callback ran;
// - run() from inside a callback is EBUSY.
#include <algorithm>
#include <optional>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "reactor/async.hpp"
#include "reactor/hook.hpp"
#include "reactor/loop.hpp"
#include "reactor/timer.hpp"

namespace {

using evflow::Async;
using evflow::Check;
using evflow::ClockSource;
using evflow::Idle;
using evflow::Loop;
using evflow::Prepare;
using evflow::RunMode;
using evflow::Timer;
using evflow::detail::kNoDeadline;
using evflow::fuzz::clamped_add;
using evflow::fuzz::FuzzInput;
using std::chrono::nanoseconds;

constexpr int kTimers = 8;
constexpr int kHooks = 3;  // of each kind
constexpr int kAsyncs = 3;

// Phases of one iteration, in the order they run.
enum Phase { kPrepare, kAsync, kTimer, kIdle, kCheck, kPhases };
const char* const kPhaseNames[] = {"prepare", "async", "timer", "idle", "check"};

struct TimerModel {
  bool active = false;
  int64_t deadline = 0;
  uint64_t sequence = 0;
  int64_t timeout = -1;  // of the last start(); -1: never started
  int64_t repeat = 0;
  uint64_t epoch = 0;  // bumped by every insert and removal
};

// Watchers kept in start order, as the loop's lists are.
struct Ordered {
  bool active = false;
  uint64_t epoch = 0;
};

struct Entry {
  int id;
  uint64_t epoch;
};

struct Harness {
  FuzzInput& in;
  int64_t mono = 1'000'000'000;
  int64_t wall = 1'700'000'000'000'000'000;
  ClockSource clock{[](void* self) { return static_cast<Harness*>(self)->mono; },
                    [](void* self) { return static_cast<Harness*>(self)->wall; }, this};
  Loop loop;

  std::optional<Timer> timers[kTimers];
  TimerModel timer_model[kTimers];
  uint64_t next_sequence = 0;

  std::optional<Prepare> prepares[kHooks];
  std::optional<Check> checks[kHooks];
  std::optional<Idle> idles[kHooks];
  std::optional<Async> asyncs[kAsyncs];
  Ordered hook_model[3][kHooks];  // [0] prepare, [1] check, [2] idle
  std::vector<int> hook_order[3];
  Ordered async_model[kAsyncs];
  bool async_pending[kAsyncs] = {};
  bool async_called[kAsyncs] = {};  // in the current iteration
  std::vector<int> async_order;

  // The iteration in progress.
  bool running = false;
  int phase = -1;
  std::vector<Entry> expected;  // of the current phase, in order
  size_t cursor = 0;
  bool dispatched = false;  // an Async or Timer callback ran
  int depth = 0;

  explicit Harness(FuzzInput& input) : in(input) {}

  ~Harness() {
    // Watchers go before the loop (they would be detached safely otherwise).
    for (auto& t : timers)
      t.reset();
    for (int i = 0; i < kHooks; ++i) {
      prepares[i].reset();
      checks[i].reset();
      idles[i].reset();
    }
    for (auto& a : asyncs)
      a.reset();
  }

  // --- phases -----------------------------------------------------------------------

  bool entry_valid(Phase p, const Entry& e) const {
    switch (p) {
      case kPrepare:
        return hook_model[0][e.id].active && hook_model[0][e.id].epoch == e.epoch;
      case kCheck:
        return hook_model[1][e.id].active && hook_model[1][e.id].epoch == e.epoch;
      case kIdle:
        return hook_model[2][e.id].active && hook_model[2][e.id].epoch == e.epoch;
      case kAsync:
        // Visited but not called: only if its send was not pending at its turn.
        return async_model[e.id].active && async_model[e.id].epoch == e.epoch && async_pending[e.id];
      case kTimer:
        return timer_model[e.id].active && timer_model[e.id].epoch == e.epoch;
      default:
        return false;
    }
  }

  void begin_phase(Phase p) {
    expected.clear();
    cursor = 0;
    auto hooks_of = [&](int kind) {
      for (int id : hook_order[kind])
        expected.push_back({id, hook_model[kind][id].epoch});
    };
    switch (p) {
      case kPrepare:
        hooks_of(0);
        break;
      case kAsync:
        for (int id : async_order)
          expected.push_back({id, async_model[id].epoch});
        break;
      case kTimer: {
        std::vector<int> due;
        for (int id = 0; id < kTimers; ++id)
          if (timer_model[id].active && timer_model[id].deadline <= mono) due.push_back(id);
        std::sort(due.begin(), due.end(), [&](int a, int b) {
          const TimerModel &x = timer_model[a], &y = timer_model[b];
          return x.deadline != y.deadline ? x.deadline < y.deadline : x.sequence < y.sequence;
        });
        for (int id : due)
          expected.push_back({id, timer_model[id].epoch});
        break;
      }
      case kIdle:
        if (!dispatched) hooks_of(2);
        break;
      case kCheck:
        hooks_of(1);
        break;
      default:
        break;
    }
  }

  // Every entry still owed a callback when the phase ends is a lost callback.
  void end_phase() {
    for (; cursor < expected.size(); ++cursor)
      FUZZ_CHECK(!entry_valid(static_cast<Phase>(phase), expected[cursor]), "a callback due in this phase was lost");
  }

  // Called first by every callback: moves the phase tracker to `p` and checks that `id`
  // is the next callback owed in it.
  void arrive(Phase p, int id) {
    FUZZ_TRACE("  %s %d\n", kPhaseNames[p], id);
    FUZZ_CHECK(running, "callbacks run only inside run()");
    FUZZ_CHECK(p >= phase, "phases run in the documented order");
    while (phase < p) {
      if (phase >= 0) end_phase();
      ++phase;
      begin_phase(static_cast<Phase>(phase));
    }
    for (;; ++cursor) {
      FUZZ_CHECK(cursor < expected.size(), "a callback the model does not owe (wrong phase, order or count)");
      if (expected[cursor].id == id && entry_valid(p, expected[cursor])) break;
      FUZZ_CHECK(!entry_valid(p, expected[cursor]), "callbacks within a phase run in order");
    }
    ++cursor;
  }

  // --- timers -----------------------------------------------------------------------

  int64_t pick_duration() {
    switch (in.below(6)) {
      case 0:
        return in.byte();
      case 1:
        return static_cast<int64_t>(in.bits(2)) << in.below(40);
      case 2:
        return -static_cast<int64_t>(in.byte());
      case 3:
        return INT64_MAX - in.byte();
      case 4:
        return static_cast<int64_t>(in.bits(4));
      default:
        return 0;
    }
  }

  void model_insert(int id, int64_t deadline) {
    TimerModel& m = timer_model[id];
    m.active = true;
    m.deadline = deadline;
    m.sequence = next_sequence++;
    ++m.epoch;
  }

  void ensure_timer(int id) {
    if (timers[id]) return;
    timers[id].emplace(loop);
    const uint64_t epoch = timer_model[id].epoch;  // never reused: old snapshot entries stay stale
    timer_model[id] = TimerModel{};
    timer_model[id].epoch = epoch + 1;
  }

  void timer_start(int id) {
    ensure_timer(id);
    const int64_t after = pick_duration(), repeat = in.flag() ? pick_duration() : 0;
    const int64_t base = loop.now().time_since_epoch().count();
    evflow::Error err;
    if (in.flag() || timer_model[id].timeout < 0) {
      err = timers[id]->start(nanoseconds(after), nanoseconds(repeat), [this](Timer& self) { on_timer(id_of(self)); });
    } else {
      err = timers[id]->start(nanoseconds(after), nanoseconds(repeat));  // keeps the callback
    }
    FUZZ_TRACE("timer %d start %lld repeat %lld: %d\n", id, static_cast<long long>(after),
               static_cast<long long>(repeat), err.code());
    if (repeat < 0) {
      FUZZ_CHECK(err.code() == EINVAL, "a negative repeat is EINVAL");
      // A start that fails leaves the timer inactive, active before or not.
      if (timer_model[id].active) ++timer_model[id].epoch;
      timer_model[id].active = false;
      return;
    }
    FUZZ_CHECK(!err, "start succeeds");
    TimerModel& m = timer_model[id];
    m.timeout = after < 0 ? 0 : after;
    m.repeat = repeat;
    model_insert(id, clamped_add(base, m.timeout));
  }

  void timer_again(int id) {
    if (!timers[id]) return;
    TimerModel& m = timer_model[id];
    const evflow::Error err = timers[id]->again();
    FUZZ_TRACE("timer %d again: %d\n", id, err.code());
    if (m.timeout < 0) {
      FUZZ_CHECK(err.code() == EINVAL, "again() on a timer never started is EINVAL");
      return;
    }
    FUZZ_CHECK(!err, "again() succeeds");
    model_insert(id, clamped_add(loop.now().time_since_epoch().count(), m.repeat > 0 ? m.repeat : m.timeout));
  }

  void timer_stop(int id) {
    if (!timers[id]) return;
    FUZZ_TRACE("timer %d stop\n", id);
    timers[id]->stop();
    if (timer_model[id].active) ++timer_model[id].epoch;
    timer_model[id].active = false;
  }

  void timer_destroy(int id) {
    FUZZ_TRACE("timer %d destroy\n", id);
    timers[id].reset();
    if (timer_model[id].active) ++timer_model[id].epoch;
    timer_model[id].active = false;
    timer_model[id].timeout = -1;
  }

  void timer_set_repeat(int id) {
    if (!timers[id]) return;
    const int64_t repeat = pick_duration();
    const evflow::Error err = timers[id]->set_repeat(nanoseconds(repeat));
    FUZZ_TRACE("timer %d set_repeat %lld\n", id, static_cast<long long>(repeat));
    if (repeat < 0) {
      FUZZ_CHECK(err.code() == EINVAL, "a negative repeat is EINVAL: nothing changes");
      return;
    }
    FUZZ_CHECK(!err, "set_repeat succeeds");
    // One interval for again(), not two (timer.hpp): a repeating timer made one-shot
    // keeps its last repeat interval as again()'s timeout.
    if (repeat == 0 && timer_model[id].repeat > 0 && timer_model[id].timeout >= 0)
      timer_model[id].timeout = timer_model[id].repeat;
    timer_model[id].repeat = repeat;
  }

  // The callback captures `this` only (a Timer's room is one pointer): which timer fired
  // is found from its address.
  int id_of(const Timer& timer) const {
    for (int id = 0; id < kTimers; ++id)
      if (timers[id] && &*timers[id] == &timer) return id;
    FUZZ_CHECK(false, "a timer of the harness fired");
    return 0;
  }

  void on_timer(int id) {
    arrive(kTimer, id);
    TimerModel& m = timer_model[id];
    FUZZ_CHECK(m.deadline <= mono, "a timer never fires early");
    dispatched = true;
    if (m.repeat > 0) {
      // The first deadline + k * interval that is after now, without drift.
      const __int128 behind = static_cast<__int128>(mono) - m.deadline;
      const __int128 next = m.deadline + (behind / m.repeat + 1) * static_cast<__int128>(m.repeat);
      model_insert(id, next > INT64_MAX ? kNoDeadline : static_cast<int64_t>(next));
      FUZZ_CHECK(timers[id]->active() && timers[id]->when().time_since_epoch().count() == m.deadline,
                 "a repeating timer is rescheduled on its phase before its callback");
    } else {
      m.active = false;
      ++m.epoch;
      FUZZ_CHECK(!timers[id]->active(), "a one-shot timer is inactive in its callback");
    }
    react(id);
  }

  // --- hooks and Asyncs ---------------------------------------------------------------

  template <class H>
  void hook_start(std::optional<H>* set, int kind, int id, Phase phase_of) {
    if (!set[id]) set[id].emplace(loop);
    const evflow::Error err = set[id]->start([this, kind, id, phase_of] { on_hook(kind, id, phase_of); });
    FUZZ_TRACE("%s %d start\n", kPhaseNames[phase_of], id);
    FUZZ_CHECK(!err, "a hook starts");
    Ordered& m = hook_model[kind][id];
    if (!m.active) {
      m.active = true;
      ++m.epoch;
      hook_order[kind].push_back(id);
    }
  }

  template <class H>
  void hook_stop(std::optional<H>* set, int kind, int id, bool destroy) {
    if (destroy) {
      set[id].reset();
    } else if (set[id]) {
      set[id]->stop();
    }
    FUZZ_TRACE("hook %d/%d %s\n", kind, id, destroy ? "destroy" : "stop");
    Ordered& m = hook_model[kind][id];
    if (m.active) {
      m.active = false;
      ++m.epoch;
      std::erase(hook_order[kind], id);
    }
  }

  void on_hook(int kind, int id, Phase p) {
    arrive(p, id);
    FUZZ_CHECK(hook_model[kind][id].active, "no callback for a stopped hook");
    react(-1);
  }

  void async_start(int id) {
    if (!asyncs[id]) asyncs[id].emplace(loop);
    const evflow::Error err = asyncs[id]->start([this, id] { on_async(id); });
    FUZZ_TRACE("async %d start\n", id);
    FUZZ_CHECK(!err, "an Async starts");
    Ordered& m = async_model[id];
    if (!m.active) {
      m.active = true;
      ++m.epoch;
      async_order.push_back(id);
    }
  }

  void async_stop(int id, bool destroy) {
    FUZZ_TRACE("async %d %s\n", id, destroy ? "destroy" : "stop");
    if (destroy) {
      asyncs[id].reset();
      async_pending[id] = false;  // a new Async starts with nothing pending
    } else if (asyncs[id]) {
      asyncs[id]->stop();  // a pending send stays pending
    }
    Ordered& m = async_model[id];
    if (m.active) {
      m.active = false;
      ++m.epoch;
      std::erase(async_order, id);
    }
  }

  void async_send(int id) {
    if (!asyncs[id]) return;
    FUZZ_TRACE("async %d send\n", id);
    asyncs[id]->send();
    async_pending[id] = true;
  }

  void on_async(int id) {
    FUZZ_CHECK(async_pending[id], "an Async runs only when sent since its last callback");
    arrive(kAsync, id);
    async_pending[id] = false;
    async_called[id] = true;
    FUZZ_CHECK(!asyncs[id]->pending(), "the send is consumed before the callback");
    dispatched = true;
    react(-1);
  }

  // --- the iteration ----------------------------------------------------------------

  void advance_clock() {
    int64_t by = 0;
    switch (in.below(4)) {
      case 0:
        by = in.byte();
        break;
      case 1:
        by = static_cast<int64_t>(in.bits(2)) << in.below(40);
        break;
      case 2:
        by = static_cast<int64_t>(in.bits(8) >> 1);
        break;
      default:
        break;
    }
    mono = clamped_add(mono, by);
    wall = clamped_add(wall, by);
    FUZZ_TRACE("clock +%lld = %lld\n", static_cast<long long>(by), static_cast<long long>(mono));
  }

  void run_once() {
    FUZZ_TRACE("run at %lld\n", static_cast<long long>(mono));
    bool owed[kAsyncs];
    uint64_t epoch[kAsyncs];
    for (int id = 0; id < kAsyncs; ++id) {
      owed[id] = async_model[id].active && async_pending[id];
      epoch[id] = async_model[id].epoch;
      async_called[id] = false;
    }
    running = true;
    phase = -1;
    dispatched = false;
    FUZZ_CHECK(!loop.run(RunMode::NoWait), "run succeeds");
    if (phase >= 0) end_phase();
    while (phase < kPhases - 1) {
      ++phase;
      begin_phase(static_cast<Phase>(phase));
      end_phase();
    }
    running = false;
    FUZZ_CHECK(loop.now().time_since_epoch().count() == mono, "now() is the clock read at the iteration");
    for (int id = 0; id < kAsyncs; ++id)
      if (owed[id] && async_model[id].active && async_model[id].epoch == epoch[id])
        FUZZ_CHECK(async_called[id], "a pending send is delivered");
    for (int id = 0; id < kTimers; ++id) {
      if (!timers[id]) continue;
      FUZZ_CHECK(timers[id]->active() == timer_model[id].active, "Timer::active() agrees with the model");
      if (timer_model[id].active) {
        FUZZ_CHECK(timers[id]->when().time_since_epoch().count() == timer_model[id].deadline, "deadlines agree");
        const int64_t left = timer_model[id].deadline > mono ? timer_model[id].deadline - mono : 0;
        FUZZ_CHECK(timers[id]->remaining().count() == left, "remaining() is the time left");
      }
    }
  }

  // One operation on any watcher; `self` is the timer whose callback runs, if any.
  void operate(int self) {
    const int op = static_cast<int>(in.below(16));
    const int t = self >= 0 && in.flag() ? self : static_cast<int>(in.below(kTimers));
    const int h = static_cast<int>(in.below(kHooks));
    const int a = static_cast<int>(in.below(kAsyncs));
    switch (op) {
      case 0:
      case 1:
        timer_start(t);
        break;
      case 2:
        timer_again(t);
        break;
      case 3:
        timer_stop(t);
        break;
      case 4:
        if (in.below(4) == 0) {
          timer_destroy(t);
        } else {
          timer_set_repeat(t);
        }
        break;
      case 5:
        hook_start(prepares, 0, h, kPrepare);
        break;
      case 6:
        hook_start(checks, 1, h, kCheck);
        break;
      case 7:
        hook_start(idles, 2, h, kIdle);
        break;
      case 8: {
        const int kind = static_cast<int>(in.below(3));
        const bool destroy = in.flag();
        if (kind == 0) hook_stop(prepares, 0, h, destroy);
        if (kind == 1) hook_stop(checks, 1, h, destroy);
        if (kind == 2) hook_stop(idles, 2, h, destroy);
        break;
      }
      case 9:
        async_start(a);
        break;
      case 10:
        async_stop(a, in.flag());
        break;
      case 11:
      case 12:
        async_send(a);
        break;
      case 13:
        if (running) FUZZ_CHECK(loop.run(RunMode::NoWait).code() == EBUSY, "a nested run() is EBUSY");
        break;
      default:
        break;  // mostly nothing, from callbacks
    }
  }

  // What a callback does: a few operations, rarely nested deeper.
  void react(int self) {
    if (depth > 0) return;
    ++depth;
    const int count = static_cast<int>(in.below(3));
    for (int i = 0; i < count; ++i)
      operate(self);
    --depth;
  }

  void run() {
    FUZZ_CHECK(!loop.open(), "the loop opens");
    FUZZ_CHECK(!loop.set_clock(&clock), "the fake clock installs");
    while (!in.done()) {
      switch (in.below(4)) {
        case 0:
          advance_clock();
          [[fallthrough]];
        case 1:
          run_once();
          break;
        default:
          operate(-1);
          break;
      }
    }
    run_once();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Harness harness(in);
  harness.run();
  return 0;
}
