// evflow — detail::TaskScheduler: one loop's ready queue of tasks.
//
// The bet: tasks are woken by the loop's own callbacks (a timer fired, a descriptor became
// readable, a task finished) and run a little later, in one place of the iteration, in
// the order they were woken. The queue is a FIFO of TaskRoot records linked through the
// record itself: waking a task costs two pointer writes and no allocation.
//
// Where tasks run: in the loop's posted-work phase (the end of step 5 of the iteration,
// Loop::post). The first wake-up posts one piece of work that resumes the queued tasks in
// FIFO order, those woken meanwhile (a yield, the joiners of a task that ended, a transfer
// past the inline bound) behind the others. After kResumptionsPerPhase resumptions the
// rest waits for the next iteration, after the loop has polled for I/O and fired due
// timers: tasks that only yield never starve the loop, and the iteration's system call is
// shared by up to kResumptionsPerPhase resumptions.
//
// The end of the phase: work a task leaves there (defer_to_phase_end) runs once the ready
// queue is empty, before the loop polls again, in the order it was left; tasks it wakes
// run in the same phase. A socket read that last found its buffer empty retries there
// (net/socket.hpp): by then the tasks ahead of it have run and its peer may have answered.
//
// Inline resumption is bounded: a task that awaits a task, which completes at once,
// continues by symmetric transfer, which an unoptimised build makes a nested call. After
// kMaxInlineTransfers transfers in a row the next one goes through the queue, so that a
// chain of any length runs in bounded stack.
//
// The scheduler is the loop's Extension (Loop::set_extension): made by the first spawn on
// a loop, it destroys every task it still owns when the loop is destroyed, and keeps the
// loop's run() going while it owns a task (an Async watcher active while tasks live).
#pragma once

#include <coroutine>
#include <cstdint>

#include "../reactor/async.hpp"
#include "../reactor/intrusive_list.hpp"
#include "../reactor/io.hpp"
#include "../reactor/loop.hpp"
#include "frame_pool.hpp"
#include "source_location.hpp"

namespace evflow {

// Where a spawned task is in its life (TaskHandle::state()).
enum class TaskState : uint8_t {
  Pending,    // spawned, not yet started
  Running,    // started, not finished (running now, or suspended at an await)
  Completed,  // returned (co_return)
  Failed,     // an exception left it (builds with exceptions only)
  Cancelled,  // cancelled before its first step, or its loop was destroyed before it finished
};

// What a task observer is told (observer.hpp).
enum class TaskEvent : uint8_t;
class TaskObserver;

namespace detail {

class TaskScheduler;
struct ThreadReturnPath;  // where to_thread's work comes back (thread_return_path.hpp)
struct Context;           // the values of a task's context variables (context_var.hpp)
void release_context(Context* context) noexcept;

// A suspension that a cancellation reaches: interrupt() stops what it waits for (its
// watcher), records ECANCELED and returns true, and the task is then woken; or returns
// false to go on waiting (a task group waiting for its children, which the cancellation
// reaches in turn).
struct Suspension {
  bool (*interrupt)(Suspension& self) noexcept = nullptr;
  const char* activity = "waiting on an await";  // what the task waits for, in the task tree's words

 protected:
  Suspension() noexcept = default;
  ~Suspension() = default;
};

// A cancellation scope as the task's chain of scopes sees it (cancellation.hpp): the
// scopes a task is inside link innermost first, up to the task itself.
struct ScopeNode {
  ScopeNode* parent = nullptr;
  bool cancelled = false;  // the scope's own cancellation (cancel() or its deadline)
  bool shield = false;     // cancellations from outside the scope do not reach inside
};

struct TaskRoot;

// A task group as the scheduler sees it (task_group.hpp): a scope in the chain of the
// task that runs it, and the tasks spawned into it, which run inside that scope.
struct GroupNode {
  ScopeNode scope;
  TaskRoot* owner = nullptr;     // the task that runs the group, while it runs
  GroupNode* outer = nullptr;    // the next group running in the same task
  TaskRoot* children = nullptr;  // unfinished children, newest first
  std::size_t live = 0;
};

// What a join awaits: one per task that awaits another's end, in the awaiter (in the
// awaiting frame), linked into the awaited task's record.
struct JoinWaiter {
  JoinWaiter* next = nullptr;
  void (*joined)(JoinWaiter& self) noexcept = nullptr;  // wakes the joining task
  void* awaiter = nullptr;
};

// The record of one spawned task, apart from its frames so that a handle may outlive
// them. The loop holds one reference while the task has not finished, each handle one.
struct TaskRoot : ListNode<TaskRoot> {
  TaskScheduler* scheduler = nullptr;
  std::coroutine_handle<> frame;         // the spawned frame (owned until the task ends)
  std::coroutine_handle<> resume_point;  // the innermost frame, to resume when woken
  TaskRoot* next_ready = nullptr;
  JoinWaiter* joiners = nullptr;  // newest first
  uint32_t references = 1;
  Suspension* suspended = nullptr;  // the await it is suspended in, if cancellable
  Io::Handover last_readiness;      // the registration its last readiness await left
  TaskState state = TaskState::Pending;
  bool queued = false;
  bool cancel_requested = false;  // level-triggered: every later suspension completes at once
  ScopeNode* innermost_scope = nullptr;
  // A task spawned into a group runs inside the group's scope, in its parent's chain.
  TaskRoot* parent = nullptr;
  const ScopeNode* spawned_in = nullptr;
  GroupNode* group = nullptr;  // until it finishes
  TaskRoot* next_in_group = nullptr;
  TaskRoot* prev_in_group = nullptr;
  GroupNode* groups = nullptr;  // the groups running in this task, innermost first
  // A child of a group has finished (its record still there): its group notes how it
  // ended, and wakes the owner when it was the last.
  void (*report_to_group)(TaskRoot& child, GroupNode& group) noexcept = nullptr;
  void (*destroy_record)(TaskRoot*) noexcept = nullptr;
  void (*end_call)(TaskRoot*) noexcept = nullptr;  // the task's frames are gone: its arguments go
  Context* context = nullptr;                      // its context variables' values (null: none set)
  uint64_t id = 0;                                 // from 1, in the order of spawns on the loop
  uint64_t parent_id = 0;                          // the group's owner, or the task that spawned it (0: plain code)
  SourceLocation spawned_at;

  // Whether a suspension of the task now completes at once with ECANCELED: the innermost
  // cancelled scope decides, unless a shield lies between it and the suspension; the
  // task's own cancellation (TaskHandle::cancel) is the outermost scope.
  bool cancelled() const noexcept { return cancelled_from(innermost_scope); }
  // The same, seen from `scope` of this task's chain (a child of a group sees its parent
  // from the group's scope).
  bool cancelled_from(const ScopeNode* scope) const noexcept {
    for (; scope != nullptr; scope = scope->parent) {
      if (scope->cancelled) return true;
      if (scope->shield) return false;
    }
    if (cancel_requested) return true;
    return parent != nullptr && parent->cancelled_from(spawned_in);
  }

  // Drops one reference; the record goes with the last.
  void release() noexcept {
    if (--references == 0) destroy_record(this);
  }
};

// Work left for the end of a task phase (TaskScheduler::defer_to_phase_end): a node in
// the object that leaves it, so leaving it costs no allocation.
struct PhaseEndWork : ListNode<PhaseEndWork> {
  void (*run)(PhaseEndWork& self) noexcept = nullptr;
  bool pending = false;  // left and not yet run or withdrawn
};

// Work to do when the loop goes, after its tasks are destroyed (TaskScheduler::on_loop_end):
// a node in the object that registers it.
struct LoopEndHook : ListNode<LoopEndHook> {
  void (*run)(LoopEndHook& self) noexcept = nullptr;
};

class TaskScheduler final : public Loop::Extension {
 public:
  static constexpr int kMaxInlineTransfers = 64;
  static constexpr int kResumptionsPerPhase = 1024;

  // The loop's scheduler, made on first use; null when the memory is not there.
  static TaskScheduler* of(Loop& loop) noexcept;
  // The loop's scheduler if a spawn has made one, else null.
  static TaskScheduler* existing(const Loop& loop) noexcept { return static_cast<TaskScheduler*>(loop.extension()); }

  Loop& loop() const noexcept { return loop_; }
  FramePool& frames() noexcept { return *frames_; }

  // Takes a new task (state Pending) and queues its first step.
  void adopt(TaskRoot& root) noexcept;
  // Queues `root` to resume at root.resume_point. Precondition: not queued.
  void wake(TaskRoot& root) noexcept;
  // Symmetric transfer from a frame of `root` to `target`, inline up to the bound, else
  // through the queue (then the noop coroutine is returned).
  std::coroutine_handle<> transfer(TaskRoot& root, std::coroutine_handle<> target) noexcept {
    if (++inline_transfers_ <= kMaxInlineTransfers) return target;
    return transfer_through_queue(root, target);
  }
  // Whether running a task now would wait behind others: tasks are ready, or work is left
  // for the end of the phase.
  bool busy() const noexcept { return ready_head_ != nullptr || !phase_end_.empty(); }
  // Leaves `work` (work.run set, not pending) for the end of this task phase, or of the
  // next when the phase is over. work.run(work) is called once, unless withdrawn first.
  void defer_to_phase_end(PhaseEndWork& work) noexcept {
    work.pending = true;
    phase_end_.push_back(work);
    request_run();
  }
  // Takes back work left and not yet run (nothing when it is not pending).
  void withdraw(PhaseEndWork& work) noexcept {
    if (!work.pending) return;
    work.pending = false;
    phase_end_.remove(work);
  }
  // Calls hook.run(hook) when the loop goes, after every task is destroyed (a component
  // that keeps per-loop state beside the scheduler: to_thread's return path). Hooks run in
  // the order they were registered; a hook is never removed.
  void on_loop_end(LoopEndHook& hook) noexcept { loop_end_.push_back(hook); }
  // The loop's return path for work done on threads, once to_thread() has made it.
  ThreadReturnPath* thread_return_path() const noexcept { return thread_return_path_; }
  void set_thread_return_path(ThreadReturnPath* path) noexcept { thread_return_path_ = path; }
  // The task has finished: wakes its joiners, drops the loop's reference.
  void finished(TaskRoot& root) noexcept;
  // TaskHandle::cancel(): see spawn.hpp.
  void cancel(TaskRoot& root) noexcept;
  // A cancellation that may now reach the task (its own, a scope's, a shield lifted): if
  // it is suspended in a cancellable await and root.cancelled(), ends that await.
  void deliver_cancellation(TaskRoot& root) noexcept;

  std::size_t live_tasks() const noexcept { return live_count_; }
  // Visits every task not finished, in the order of their spawns.
  template <class Visit>
  void visit_live(Visit&& visit) const {
    live_.visit(visit);
  }

  // The task running now on this thread (in a task phase), or null.
  static TaskRoot* current() noexcept { return current_; }

  // The observer told of every task's transitions (observer.hpp), or null.
  TaskObserver* observer() const noexcept { return observer_; }
  void set_observer(TaskObserver* observer) noexcept { observer_ = observer; }

  // The loop is being destroyed (Loop::Extension).
  void end_with_loop() noexcept;

 private:
  explicit TaskScheduler(Loop& loop, FramePool* frames) noexcept;
  ~TaskScheduler() = default;

  std::coroutine_handle<> transfer_through_queue(TaskRoot& root, std::coroutine_handle<> target) noexcept;
  void run_ready() noexcept;
  void run_phase_end() noexcept;
  void request_run() noexcept;
  void report(TaskRoot& root, TaskEvent event) noexcept {
    if (observer_ != nullptr) [[unlikely]]
      notify(root, event);
  }
  void notify(TaskRoot& root, TaskEvent event) noexcept;  // observer.cpp

  static inline thread_local TaskRoot* current_ = nullptr;

  Loop& loop_;
  FramePool* frames_;
  TaskRoot* ready_head_ = nullptr;
  TaskRoot** ready_tail_ = &ready_head_;
  IntrusiveList<PhaseEndWork> phase_end_;
  IntrusiveList<LoopEndHook> loop_end_;
  ThreadReturnPath* thread_return_path_ = nullptr;
  bool run_requested_ = false;
  int inline_transfers_ = 0;
  IntrusiveList<TaskRoot> live_;
  std::size_t live_count_ = 0;
  Async keep_running_;  // active while tasks live; also runs the queue if a post fails
  TaskObserver* observer_ = nullptr;
  uint64_t last_id_ = 0;
};

}  // namespace detail
}  // namespace evflow
