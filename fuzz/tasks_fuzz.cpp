// Coroutine task fuzzer: trees of tasks on a loop with a fake clock, checked against a
// model of the scheduler.
//
// The input spawns up to 8 tasks, each running a small program: sleep(0..5 ms), yield(),
// join() of a task spawned before it, and cancellation scopes (with or without a deadline
// of 0..6 ms, shields among them) whose bodies are programs again, nested up to 3 deep.
// Between iterations it cancels tasks and moves the clock by 0..7 ms; at the end it runs
// the loop until every task has finished, or destroys the loop with tasks suspended.
//
// The model runs the same programs by the rules tasks/ documents: one FIFO ready queue
// run in the posted-work phase, after the iteration's timers, up to a budget of
// resumptions; timers fire in (deadline, start order); cancellation is
// level-triggered, reaches a suspension through the scopes unless a shield is in the
// way, and ends a pending sleep or join at once; a scope's outcome is Completed, Cancelled
// or TimedOut. Checked after every iteration: the same events (each await's result, each
// scope's outcome, each task's end and its value) in the same order, and the same state
// for every task; at the end, a destroyed loop leaves every unfinished task Cancelled.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "fuzz/fuzz_input.hpp"
#include "reactor/loop.hpp"
#include "tasks/tasks.hpp"

namespace {

using evflow::CancellationScope;
using evflow::ClockSource;
using evflow::Loop;
using evflow::RunMode;
using evflow::ScopeOutcome;
using evflow::Task;
using evflow::TaskHandle;
using evflow::TaskState;
using evflow::fuzz::FuzzInput;
using std::chrono::milliseconds;

constexpr int kTasks = 8;
constexpr int kMaxOpsPerTask = 24;  // keeps a task's inline transfers under the scheduler's bound
constexpr int kMaxDepth = 3;
constexpr int64_t kMs = 1'000'000;

struct Op {
  enum Kind { Sleep, Yield, Join, Scope } kind = Yield;
  int arg = 0;           // Sleep: ms; Join: the task; Scope: the deadline in ms, -1 none
  bool shield = false;   // Scope
  std::vector<Op> body;  // Scope
};
using Program = std::vector<Op>;

// One event of the run: what an await gave, how a scope ended, how a task ended.
struct Event {
  int task;
  char what;  // 'S' sleep, 'Y' yield, 'J' join, 'C' scope, 'F' finished
  int value;
  bool operator==(const Event&) const = default;
};

Program decode_program(FuzzInput& in, int task, int depth, int& budget) {
  Program program;
  const uint32_t count = in.below(5);
  for (uint32_t i = 0; i < count && budget > 0; ++i) {
    --budget;
    Op op;
    switch (in.below(depth < kMaxDepth ? 4 : 3)) {
      case 0:
        op.kind = Op::Sleep;
        op.arg = static_cast<int>(in.below(6));
        break;
      case 1:
        op.kind = Op::Yield;
        break;
      case 2:
        if (task == 0) break;  // nobody to join: a yield
        op.kind = Op::Join;
        op.arg = static_cast<int>(in.below(static_cast<uint32_t>(task)));
        break;
      default:
        op.kind = Op::Scope;
        op.arg = static_cast<int>(in.below(8)) - 1;
        op.shield = in.below(4) == 0;
        op.body = decode_program(in, task, depth + 1, budget);
        break;
    }
    program.push_back(std::move(op));
  }
  return program;
}

int value_of_task(int task, const Program& program) { return task * 1000 + static_cast<int>(program.size()); }

// --- the real thing ---------------------------------------------------------------

struct Real {
  int64_t mono = 1'000'000'000;
  ClockSource clock{[](void* self) { return static_cast<Real*>(self)->mono; },
                    [](void* self) { return static_cast<Real*>(self)->mono; }, this};
  std::deque<Program> programs;
  std::vector<Event> log;
  std::vector<TaskHandle<int>> handles;
  std::unique_ptr<Loop> loop = std::make_unique<Loop>();
};

Task<int> interpret(Real* real, int task, const Program* program) {
  for (const Op& op : *program) {
    switch (op.kind) {
      case Op::Sleep:
        real->log.push_back({task, 'S', (co_await evflow::sleep(milliseconds(op.arg))).code()});
        break;
      case Op::Yield:
        real->log.push_back({task, 'Y', (co_await evflow::yield()).code()});
        break;
      case Op::Join: {
        auto joined = co_await real->handles[static_cast<size_t>(op.arg)].join();
        real->log.push_back({task, 'J', joined ? joined.value() : -joined.error().code()});
        break;
      }
      case Op::Scope: {
        CancellationScope scope;
        scope.set_shield(op.shield);
        if (op.arg >= 0) (void)scope.set_timeout(milliseconds(op.arg));
        auto scoped = co_await scope.run(interpret(real, task, &op.body));
        real->log.push_back({task, 'C', static_cast<int>(scoped.outcome())});
        break;
      }
    }
  }
  co_return value_of_task(task, *program);
}

Task<int> run_task(Real* real, int task) {
  const int value = co_await interpret(real, task, &real->programs[static_cast<size_t>(task)]);
  real->log.push_back({task, 'F', value});
  co_return value;
}

// --- the model --------------------------------------------------------------------

struct Model {
  struct Scope {
    bool cancelled = false;
    bool shield = false;
    ScopeOutcome reason = ScopeOutcome::Completed;
    uint64_t timer = 0;  // its deadline's timer, 0: none
  };
  struct Frame {
    const Program* program;
    size_t pc = 0;
  };
  enum class Wait { None, Queued, Sleeping, Joining };
  struct TaskModel {
    TaskState state = TaskState::Pending;
    std::vector<Frame> frames;
    std::vector<Scope> scopes;  // one per frame but the first, innermost last
    bool cancel_requested = false;
    Wait wait = Wait::Queued;
    uint64_t sleep_timer = 0;
    int joining = -1;
    int pending = 0;  // the result of the await it resumes from
    int value = 0;
    std::vector<int> joiners;  // tasks waiting for this one, in the order they began
  };
  struct TimerModel {
    int64_t deadline;
    uint64_t seq;
    int task;
    int scope;  // -1: the task's sleep
  };

  int64_t now = 1'000'000'000;
  uint64_t next_seq = 0;
  std::vector<TaskModel> tasks;
  std::vector<TimerModel> timers;
  std::deque<int> ready;
  std::vector<Event> log;
  const std::deque<Program>* programs = nullptr;

  bool cancelled(const TaskModel& t) const {
    for (auto scope = t.scopes.rbegin(); scope != t.scopes.rend(); ++scope) {
      if (scope->cancelled) return true;
      if (scope->shield) return false;
    }
    return t.cancel_requested;
  }
  uint64_t start_timer(int64_t deadline, int task, int scope) {
    timers.push_back({deadline, ++next_seq, task, scope});
    return next_seq;
  }
  void stop_timer(uint64_t seq) {
    std::erase_if(timers, [seq](const TimerModel& timer) { return timer.seq == seq; });
  }
  void wake(int task, int result) {
    tasks[task].pending = result;
    tasks[task].wait = Wait::Queued;
    ready.push_back(task);
  }
  // A cancellation that may now reach the task's pending sleep or join.
  void deliver(int task) {
    TaskModel& t = tasks[task];
    if ((t.wait != Wait::Sleeping && t.wait != Wait::Joining) || !cancelled(t)) return;
    if (t.wait == Wait::Sleeping) {
      stop_timer(t.sleep_timer);
      wake(task, ECANCELED);
    } else {
      std::erase(tasks[t.joining].joiners, task);
      wake(task, -ECANCELED);
    }
  }
  void cancel_scope(int task, int scope, ScopeOutcome reason) {
    Scope& s = tasks[task].scopes[scope];
    if (s.cancelled) return;
    s.cancelled = true;
    s.reason = reason;
    if (s.timer != 0) stop_timer(std::exchange(s.timer, 0));
    deliver(task);
  }
  void finish(int task, TaskState state, int value) {
    TaskModel& t = tasks[task];
    t.state = state;
    t.value = value;
    t.wait = Wait::None;
    if (state == TaskState::Completed) log.push_back({task, 'F', value});
    for (int joiner : std::exchange(t.joiners, {}))
      wake(joiner, state == TaskState::Completed ? value : -ECANCELED);
  }

  void spawn(int task) {
    TaskModel t;
    t.frames.push_back({&(*programs)[task]});
    tasks.push_back(std::move(t));
    ready.push_back(task);
  }
  void cancel(int task) {
    TaskModel& t = tasks[task];
    if (t.state == TaskState::Pending) {
      std::erase(ready, task);
      finish(task, TaskState::Cancelled, 0);
    } else if (t.state == TaskState::Running) {
      t.cancel_requested = true;
      deliver(task);
    }
  }

  // Runs the task from where it was woken until it suspends or ends.
  void resume(int task) {
    TaskModel& t = tasks[task];
    if (t.state == TaskState::Pending) {
      t.state = TaskState::Running;
    } else {  // the await it was suspended in gives its result
      Frame& frame = t.frames.back();
      const Op& op = (*frame.program)[frame.pc++];
      log.push_back({task, op.kind == Op::Sleep ? 'S' : op.kind == Op::Yield ? 'Y' : 'J', t.pending});
    }
    t.wait = Wait::None;
    for (;;) {
      Frame& frame = t.frames.back();
      if (frame.pc == frame.program->size()) {
        const int value = value_of_task(task, *frame.program);
        if (t.frames.size() == 1) {
          finish(task, TaskState::Completed, value);
          return;
        }
        const bool reached = cancelled(t);
        Scope& scope = t.scopes.back();
        if (scope.timer != 0) stop_timer(scope.timer);
        const ScopeOutcome outcome = !reached          ? ScopeOutcome::Completed
                                     : scope.cancelled ? scope.reason
                                                       : ScopeOutcome::Cancelled;
        t.scopes.pop_back();
        t.frames.pop_back();
        ++t.frames.back().pc;
        log.push_back({task, 'C', static_cast<int>(outcome)});
        continue;
      }
      const Op& op = (*frame.program)[frame.pc];
      switch (op.kind) {
        case Op::Sleep:
          if (cancelled(t)) break;
          t.sleep_timer = start_timer(now + op.arg * kMs, task, -1);
          t.wait = Wait::Sleeping;
          return;
        case Op::Yield:
          if (cancelled(t)) break;
          wake(task, 0);
          return;
        case Op::Join: {
          const TaskModel& joined = tasks[op.arg];
          if (cancelled(t)) {  // level-triggered: before the joined task's end
            ++frame.pc;
            log.push_back({task, 'J', -ECANCELED});
            continue;
          }
          if (joined.state == TaskState::Completed || joined.state == TaskState::Cancelled) {
            ++frame.pc;
            log.push_back({task, 'J', joined.state == TaskState::Completed ? joined.value : -ECANCELED});
            continue;
          }
          tasks[op.arg].joiners.push_back(task);
          t.joining = op.arg;
          t.wait = Wait::Joining;
          return;
        }
        case Op::Scope: {
          Scope scope;
          scope.shield = op.shield;
          t.scopes.push_back(scope);
          t.frames.push_back({&op.body});
          const int index = static_cast<int>(t.scopes.size()) - 1;
          if (op.arg == 0) {
            cancel_scope(task, index, ScopeOutcome::TimedOut);
          } else if (op.arg > 0) {
            t.scopes.back().timer = start_timer(now + op.arg * kMs, task, index);
          }
          continue;
        }
      }
      // An await of a cancelled task: ECANCELED at once.
      ++frame.pc;
      log.push_back({task, op.kind == Op::Sleep ? 'S' : 'Y', ECANCELED});
    }
  }

  // One iteration at `now`: due timers, then the ready queue up to the budget.
  void iterate() {
    for (;;) {
      auto due = std::min_element(timers.begin(), timers.end(), [](const TimerModel& a, const TimerModel& b) {
        return a.deadline != b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
      });
      if (due == timers.end() || due->deadline > now) break;
      const TimerModel timer = *due;
      timers.erase(due);
      if (timer.scope < 0) {
        wake(timer.task, 0);
      } else {
        tasks[timer.task].scopes[timer.scope].timer = 0;
        cancel_scope(timer.task, timer.scope, ScopeOutcome::TimedOut);
      }
    }
    for (int resumed = 0; resumed < evflow::detail::TaskScheduler::kResumptionsPerPhase && !ready.empty(); ++resumed) {
      const int task = ready.front();
      ready.pop_front();
      resume(task);
    }
  }
};

void fail(const char* what, const Real& real, const Model& model) {
  std::fprintf(stderr, "tasks_fuzz: %s\n", what);
  const size_t n = std::max(real.log.size(), model.log.size());
  for (size_t i = 0; i < n; ++i) {
    auto show = [](const std::vector<Event>& log, size_t at) {
      if (at >= log.size()) return std::fprintf(stderr, "%-16s", "-");
      return std::fprintf(stderr, "t%d %c %-10d", log[at].task, log[at].what, log[at].value);
    };
    std::fprintf(stderr, "%4zu real ", i);
    show(real.log, i);
    std::fprintf(stderr, " model ");
    show(model.log, i);
    std::fprintf(stderr, "%s\n",
                 i < real.log.size() && i < model.log.size() && real.log[i] == model.log[i] ? "" : " <");
  }
  std::abort();
}

void compare(const Real& real, const Model& model) {
  if (real.log != model.log) fail("the events differ", real, model);
  for (size_t i = 0; i < model.tasks.size(); ++i) {
    if (real.handles[i].state() != model.tasks[i].state) fail("a task's state differs", real, model);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Real real;
  if (real.loop->open() || real.loop->set_clock(&real.clock)) std::abort();
  real.handles.reserve(kTasks);
  Model model;
  model.programs = &real.programs;
  const bool trace = evflow::fuzz::tracing();

  auto step = [&](int64_t advance_ms) {
    real.mono += advance_ms * kMs;
    model.now = real.mono;
    if (real.loop->run(RunMode::NoWait)) std::abort();
    model.iterate();
    compare(real, model);
  };

  while (!in.done()) {
    switch (in.below(4)) {
      case 0: {  // spawn
        if (real.handles.size() >= kTasks) break;
        const int task = static_cast<int>(real.handles.size());
        int budget = kMaxOpsPerTask;
        real.programs.push_back(decode_program(in, task, 0, budget));
        if (trace) std::fprintf(stderr, "spawn t%d (%zu ops)\n", task, real.programs.back().size());
        real.handles.push_back(evflow::spawn(*real.loop, run_task, &real, task));
        if (!real.handles.back().valid()) std::abort();
        model.spawn(task);
        break;
      }
      case 1: {  // cancel
        if (real.handles.empty()) break;
        const auto task = in.below(static_cast<uint32_t>(real.handles.size()));
        if (trace) std::fprintf(stderr, "cancel t%u\n", task);
        real.handles[task].cancel();
        model.cancel(static_cast<int>(task));
        compare(real, model);
        break;
      }
      default: {
        const int64_t advance = in.below(8);
        if (trace) std::fprintf(stderr, "step +%lld ms\n", static_cast<long long>(advance));
        step(advance);
        break;
      }
    }
  }

  if (in.flag()) {  // the loop goes with tasks suspended: each one unfinished says Cancelled
    real.loop.reset();
    for (size_t i = 0; i < model.tasks.size(); ++i) {
      const TaskState expected =
          model.tasks[i].state == TaskState::Completed ? TaskState::Completed : TaskState::Cancelled;
      if (real.handles[i].state() != expected) fail("a task outlived its loop", real, model);
    }
    return 0;
  }
  // Every task ends: sleeps and deadlines are finite, and a task joins only earlier ones.
  for (int i = 0; i < 10'000 && evflow::live_tasks(*real.loop) > 0; ++i)
    step(1);
  if (evflow::live_tasks(*real.loop) != 0) fail("tasks never finished", real, model);
  for (const auto& t : model.tasks)
    if (t.state == TaskState::Pending || t.state == TaskState::Running)
      fail("the model's tasks never finished", real, model);
  return 0;
}
