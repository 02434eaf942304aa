#include "scheduler.hpp"

#include <new>
#include <utility>

#include "observer.hpp"

namespace evflow::detail {

TaskScheduler::TaskScheduler(Loop& loop, FramePool* frames) noexcept
    : loop_(loop), frames_(frames), keep_running_(loop) {
  keep_running_.set_callback([this] { run_ready(); });
  loop_destroyed = [](Loop::Extension& self) noexcept { static_cast<TaskScheduler&>(self).end_with_loop(); };
}

TaskScheduler* TaskScheduler::of(Loop& loop) noexcept {
  if (TaskScheduler* scheduler = existing(loop)) return scheduler;
  auto* frames = new (std::nothrow) FramePool();
  if (frames == nullptr) return nullptr;
  auto* scheduler = new (std::nothrow) TaskScheduler(loop, frames);
  if (scheduler == nullptr) {
    frames->release();
    return nullptr;
  }
  loop.set_extension(scheduler);
  return scheduler;
}

void TaskScheduler::adopt(TaskRoot& root) noexcept {
  root.scheduler = this;
  root.id = ++last_id_;
  if (root.parent != nullptr) {
    root.parent_id = root.parent->id;
  } else if (current_ != nullptr && current_->scheduler == this) {
    root.parent_id = current_->id;
  }
  report(root, TaskEvent::Created);
  live_.push_back(root);
  if (live_count_++ == 0) (void)keep_running_.start();  // EINVAL only on a loop not open
  wake(root);
}

void TaskScheduler::wake(TaskRoot& root) noexcept {
  root.queued = true;
  root.next_ready = nullptr;
  *ready_tail_ = &root;
  ready_tail_ = &root.next_ready;
  request_run();
}

void TaskScheduler::request_run() noexcept {
  if (run_requested_) return;
  run_requested_ = true;
  // The posted-work phase; if the pool of posted work cannot grow, the Async (step 5,
  // before timers) runs the queue instead: nothing is lost either way.
  if (loop_.post([this] { run_ready(); })) keep_running_.send();
}

std::coroutine_handle<> TaskScheduler::transfer_through_queue(TaskRoot& root, std::coroutine_handle<> target) noexcept {
  root.resume_point = target;
  wake(root);
  return std::noop_coroutine();
}

void TaskScheduler::run_ready() noexcept {
  if (!run_requested_) return;  // the Async fallback after the post already ran
  // run_requested_ stays set while tasks run: a wake-up meanwhile only queues.
  FramePool::Scope frames(frames_);
  TaskRoot* const outer = current_;  // a task of another loop, running this one's run()
  bool phase_end_ran = false;
  for (int resumed = 0; resumed < kResumptionsPerPhase; ++resumed) {
    if (ready_head_ == nullptr) {
      if (phase_end_ran || phase_end_.empty()) break;
      phase_end_ran = true;  // once a phase: what is left meanwhile waits for the next
      current_ = outer;
      run_phase_end();  // may wake tasks, which run in this phase
      if (ready_head_ == nullptr) break;
    }
    TaskRoot* root = ready_head_;
    ready_head_ = root->next_ready;
    if (ready_head_ == nullptr) ready_tail_ = &ready_head_;
    root->next_ready = nullptr;
    root->queued = false;
    inline_transfers_ = 0;
    current_ = root;  // the switch of context variables: this one pointer
    if (root->state == TaskState::Pending) {
      root->state = TaskState::Running;
      report(*root, TaskEvent::Started);
    } else {
      report(*root, TaskEvent::Resumed);
    }
    root->resume_point.resume();
    if (current_ == root) report(*root, TaskEvent::Suspended);  // finished() clears it
  }
  current_ = outer;
  run_requested_ = false;
  if (busy()) request_run();  // the rest after the loop has polled and fired timers
}

void TaskScheduler::run_phase_end() noexcept {
  // The work left now, each once; work left meanwhile waits for the next turn.
  phase_end_.for_each([this](PhaseEndWork& work) {
    phase_end_.remove(work);
    work.pending = false;
    work.run(work);
  });
}

void TaskScheduler::finished(TaskRoot& root) noexcept {
  if (GroupNode* group = root.group) {  // out of its group, which learns how it ended
    if (root.prev_in_group != nullptr) {
      root.prev_in_group->next_in_group = root.next_in_group;
    } else {
      group->children = root.next_in_group;
    }
    if (root.next_in_group != nullptr) root.next_in_group->prev_in_group = root.prev_in_group;
    root.group = nullptr;
    --group->live;
    root.report_to_group(root, *group);
  }
  // Joiners in the order they began to wait (the list is newest first).
  JoinWaiter* oldest_first = nullptr;
  while (JoinWaiter* waiter = root.joiners) {
    root.joiners = waiter->next;
    waiter->next = oldest_first;
    oldest_first = waiter;
  }
  while (JoinWaiter* waiter = oldest_first) {
    oldest_first = waiter->next;
    waiter->joined(*waiter);
  }
  live_.remove(root);
  if (--live_count_ == 0) keep_running_.stop();
  root.frame = nullptr;
  report(root, root.state == TaskState::Completed ? TaskEvent::Completed
               : root.state == TaskState::Failed  ? TaskEvent::Failed
                                                  : TaskEvent::Cancelled);
  if (current_ == &root) current_ = nullptr;
  if (root.end_call != nullptr) root.end_call(&root);
  if (root.context != nullptr) release_context(std::exchange(root.context, nullptr));
  root.release();
}

void TaskScheduler::cancel(TaskRoot& root) noexcept {
  if (root.state != TaskState::Pending && root.state != TaskState::Running) return;
  if (root.state == TaskState::Pending) {  // never started: it never runs
    if (root.queued) {                     // out of the ready queue
      TaskRoot** link = &ready_head_;
      while (*link != &root)
        link = &(*link)->next_ready;
      *link = root.next_ready;
      if (ready_tail_ == &root.next_ready) ready_tail_ = link;
      root.queued = false;
    }
    std::coroutine_handle<> frame = root.frame;
    root.state = TaskState::Cancelled;
    {
      FramePool::Scope frames(frames_);
      frame.destroy();
    }
    finished(root);
    return;
  }
  root.cancel_requested = true;
  deliver_cancellation(root);
}

void TaskScheduler::deliver_cancellation(TaskRoot& root) noexcept {
  Suspension* suspension = root.suspended;
  if (suspension != nullptr && root.cancelled() && suspension->interrupt(*suspension)) {
    root.suspended = nullptr;  // the await pending now has ended
    if (!root.queued) wake(root);
  }
  // The tasks spawned into the groups running in this task run inside its scopes: the
  // cancellation may reach them too (each decides by its own chain).
  for (GroupNode* group = root.groups; group != nullptr; group = group->outer) {
    for (TaskRoot* child = group->children; child != nullptr; child = child->next_in_group)
      deliver_cancellation(*child);
  }
}

void TaskScheduler::end_with_loop() noexcept {
  // Every task still owned is destroyed, its frames and the watchers in them with it;
  // its handles (if any) see Cancelled. Nothing runs any more.
  ready_head_ = nullptr;
  ready_tail_ = &ready_head_;
  while (PhaseEndWork* work = phase_end_.front())
    withdraw(*work);
  {
    FramePool::Scope frames(frames_);
    while (TaskRoot* root = live_.front()) {
      live_.remove(*root);
      root->state = TaskState::Cancelled;
      report(*root, TaskEvent::Cancelled);
      root->scheduler = nullptr;  // a handle's cancel() then does nothing
      root->joiners = nullptr;    // joiners are tasks of this loop: destroyed here too
      std::coroutine_handle<> frame = root->frame;
      root->frame = nullptr;
      frame.destroy();
      if (root->end_call != nullptr) root->end_call(root);
      if (root->context != nullptr) release_context(std::exchange(root->context, nullptr));
      root->release();
    }
  }
  live_count_ = 0;
  keep_running_.stop();
  while (LoopEndHook* hook = loop_end_.front()) {
    loop_end_.remove(*hook);
    hook->run(*hook);
  }
  frames_->release();
  delete this;
}

}  // namespace evflow::detail
