#include "observer.hpp"

#include <algorithm>
#include <vector>

namespace evflow {

const char* to_string(TaskEvent event) noexcept {
  switch (event) {
    case TaskEvent::Created:
      return "created";
    case TaskEvent::Started:
      return "started";
    case TaskEvent::Suspended:
      return "suspended";
    case TaskEvent::Resumed:
      return "resumed";
    case TaskEvent::Completed:
      return "completed";
    case TaskEvent::Failed:
      return "failed";
    case TaskEvent::Cancelled:
      return "cancelled";
  }
  return "?";
}

const char* to_string(TaskState state) noexcept {
  switch (state) {
    case TaskState::Pending:
      return "pending";
    case TaskState::Running:
      return "running";
    case TaskState::Completed:
      return "completed";
    case TaskState::Failed:
      return "failed";
    case TaskState::Cancelled:
      return "cancelled";
  }
  return "?";
}

Error set_task_observer(Loop& loop, TaskObserver* observer) noexcept {
  if (!loop.is_open()) return Error(EINVAL);
  detail::TaskScheduler* scheduler = detail::TaskScheduler::of(loop);
  if (scheduler == nullptr) return Error(ENOMEM);
  scheduler->set_observer(observer);
  return Error();
}

TaskObserver* task_observer(const Loop& loop) noexcept {
  const detail::TaskScheduler* scheduler = detail::TaskScheduler::existing(loop);
  return scheduler != nullptr ? scheduler->observer() : nullptr;
}

namespace detail {

TaskInfo info_of(const TaskRoot& task) noexcept {
  TaskInfo info;
  info.id = task.id;
  info.parent_id = task.parent_id;
  info.spawned_at = task.spawned_at;
  info.state = task.state;
  if (task.state == TaskState::Pending) {
    info.activity = "not started";
  } else if (task.state != TaskState::Running) {
    info.activity = "finished";
  } else if (task.queued) {
    info.activity = "ready to run";
  } else if (task.suspended != nullptr) {
    info.activity = task.suspended->activity;
  } else if (TaskScheduler::current() == &task) {
    info.activity = "running";
  } else {
    info.activity = "waiting on an await";
  }
  return info;
}

void TaskScheduler::notify(TaskRoot& root, TaskEvent event) noexcept { observer_->on_task_event(event, info_of(root)); }

}  // namespace detail

namespace {

using TaskTable = std::vector<const detail::TaskRoot*>;

bool has_task(const TaskTable& by_id, uint64_t id) {
  auto it = std::lower_bound(by_id.begin(), by_id.end(), id,
                             [](const detail::TaskRoot* task, uint64_t value) { return task->id < value; });
  return it != by_id.end() && (*it)->id == id;
}

}  // namespace

void visit_task_tree(const Loop& loop, void (*visit)(const TaskInfo& task, int depth, void* context), void* context) {
  const detail::TaskScheduler* scheduler = detail::TaskScheduler::existing(loop);
  if (scheduler == nullptr) return;
  TaskTable by_id;
  scheduler->visit_live([&](const detail::TaskRoot& task) { by_id.push_back(&task); });
  std::sort(by_id.begin(), by_id.end(),
            [](const detail::TaskRoot* a, const detail::TaskRoot* b) { return a->id < b->id; });
  // Children by parent: (parent id, id) ascending, for the depth-first walk.
  TaskTable by_parent = by_id;
  std::stable_sort(by_parent.begin(), by_parent.end(),
                   [](const detail::TaskRoot* a, const detail::TaskRoot* b) { return a->parent_id < b->parent_id; });
  struct Step {
    const detail::TaskRoot* task;
    int depth;
  };
  std::vector<Step> stack;  // the next task to visit on top
  for (auto it = by_id.rbegin(); it != by_id.rend(); ++it)
    if (!has_task(by_id, (*it)->parent_id)) stack.push_back(Step{*it, 0});
  while (!stack.empty()) {
    const Step step = stack.back();
    stack.pop_back();
    visit(detail::info_of(*step.task), step.depth, context);
    const uint64_t id = step.task->id;
    auto first = std::lower_bound(by_parent.begin(), by_parent.end(), id,
                                  [](const detail::TaskRoot* task, uint64_t value) { return task->parent_id < value; });
    auto last = std::upper_bound(first, by_parent.end(), id,
                                 [](uint64_t value, const detail::TaskRoot* task) { return value < task->parent_id; });
    while (last != first)
      stack.push_back(Step{*--last, step.depth + 1});
  }
}

void print_task_tree(const Loop& loop, std::FILE* out) {
  visit_task_tree(
      loop,
      [](const TaskInfo& task, int depth, void* context) {
        std::fprintf(static_cast<std::FILE*>(context), "%*stask %llu (parent %llu) %s; spawned at %s:%u\n", depth * 2,
                     "", static_cast<unsigned long long>(task.id), static_cast<unsigned long long>(task.parent_id),
                     task.activity, task.spawned_at.file_name(), static_cast<unsigned>(task.spawned_at.line()));
      },
      out);
}

}  // namespace evflow
