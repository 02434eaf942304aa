// evflow — the task observer: every task's transitions, and a dump of the live task tree.
//
//   struct Printer final : evflow::TaskObserver {
//     void on_task_event(evflow::TaskEvent event, const evflow::TaskInfo& task) noexcept override {
//       std::printf("task %llu %s\n", (unsigned long long)task.id, evflow::to_string(event));
//     }
//   } printer;
//   (void)evflow::set_task_observer(loop, &printer);
//   ...
//   evflow::print_task_tree(loop, stderr);   // each task, its state, what it waits for
//
// One pointer per loop, null by default: with no observer, each transition costs one
// predictable branch. With one, the observer is called on the loop's thread at each
// transition of each task of the loop, in the order they happen, exactly once each:
//
//   Created    spawned (into a group or not); the task has not run yet
//   Started    its first step begins
//   Suspended  it stopped at an await (after Started or Resumed)
//   Resumed    it continues after an await
//   Completed  it returned                                       } the last event:
//   Failed     an exception left it (builds with exceptions)     } one of these three
//   Cancelled  cancelled before its first step, or its loop was destroyed before it ended
//
// so a task's events read Created (Started (Suspended Resumed)* Suspended?)? then one of
// the last three. A task that awaits another task, a scope's or a group's body stays the
// same task: only the tasks spawned (spawn, TaskGroup::spawn, gather's) have events.
//
// Each event carries the task's TaskInfo: its id (from 1, in the order of spawns on the
// loop), its parent's id (the task whose group it was spawned into, else the task that
// spawned it; 0 for a spawn from plain code), the place of its spawn (the spawn() call;
// for a group's child, where the group was declared), its state, and what it is doing.
// The observer must not destroy the loop, nor spawn or cancel from the callback; it may
// read the tree (visit_task_tree, print_task_tree).
#pragma once

#include <cstdint>
#include <cstdio>

#include "scheduler.hpp"

namespace evflow {

enum class TaskEvent : uint8_t { Created, Started, Suspended, Resumed, Completed, Failed, Cancelled };

// "created", "started", ...: the event's name in lower case.
const char* to_string(TaskEvent event) noexcept;
// "pending", "running", "completed", "failed", "cancelled".
const char* to_string(TaskState state) noexcept;

// A task as the observer and the tree see it.
struct TaskInfo {
  uint64_t id = 0;
  uint64_t parent_id = 0;  // 0: spawned from plain code
  SourceLocation spawned_at;
  TaskState state = TaskState::Pending;
  // What the task is doing: "not started", "ready to run" (woken, in the ready queue),
  // "running", "waiting on ..." what its pending await waits for ("a timer", "a
  // descriptor", "the children of its group", ...), or "finished".
  const char* activity = "";
};

class TaskObserver {
 public:
  virtual void on_task_event(TaskEvent event, const TaskInfo& task) noexcept = 0;

 protected:
  TaskObserver() noexcept = default;
  TaskObserver(const TaskObserver&) = default;
  TaskObserver& operator=(const TaskObserver&) = default;
  ~TaskObserver() = default;
};

// Sets the loop's observer (null: none); it must outlive the loop's tasks, or be unset
// first. EINVAL when the loop is not open; ENOMEM when the loop's task scheduler cannot be
// made.
Error set_task_observer(Loop& loop, TaskObserver* observer) noexcept;
// The loop's observer, or null.
TaskObserver* task_observer(const Loop& loop) noexcept;

// Calls visit(task, depth, context) for every task of the loop not finished, depth first:
// each task, then its children (depth + 1), in the order of their spawns; a task whose
// parent has finished is at depth 0. For debugging: it allocates a table of the tasks.
void visit_task_tree(const Loop& loop, void (*visit)(const TaskInfo& task, int depth, void* context), void* context);
// Prints the tree visit_task_tree walks, one task per line, indented by depth:
//   task 3 (parent 1) waiting on a timer; spawned at server.cpp:42
void print_task_tree(const Loop& loop, std::FILE* out);

namespace detail {
TaskInfo info_of(const TaskRoot& task) noexcept;
}  // namespace detail

}  // namespace evflow
