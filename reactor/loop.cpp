// Loop: the iteration, and the steps that concern every component at once (open, fork,
// rebuild, embedding, the end). Each watcher kind's behaviour is in its own file, and
// the state it needs in the component that keeps its kind (loop.hpp, the members).
#include "loop.hpp"

#include "../platform/checked_math.hpp"
#include "../platform/fatal.hpp"
#include "../platform/fork_generation.hpp"
#include "../platform/timer_slack.hpp"
#include "async.hpp"
#include "child.hpp"
#include "hook.hpp"
#include "io.hpp"
#include "periodic.hpp"
#include "signal.hpp"
#include "timer.hpp"

namespace evflow {

// --- the core's calls back into the loop ------------------------------------------------

Error detail::LoopCore::check_fork() noexcept {
  if (!forked()) return Error();
  return loop_.after_fork();
}

void detail::LoopCore::check_owner_thread() const noexcept {
  // In a forked child that has not rebuilt, the owner may be a thread that only the parent
  // has: the first call rebuilds the loop and hands it to the calling thread.
  if (owner != nullptr && owner != this_thread_identity() && !forked())
    fatal("a loop-thread-only member of evflow::Loop was called from a thread that does not own the loop");
}

void detail::LoopCore::keep_handle_ready() noexcept { loop_.keep_handle_ready(); }

// --- life -------------------------------------------------------------------------------

Loop::Loop() noexcept
    : core_(*this),
      descriptors_(core_),
      time_(core_),
      hooks_(core_),
      signals_(core_),
      children_(core_),
      posts_(core_),
      asyncs_(core_),
      operations_(core_) {}

Loop::~Loop() {
  // From one of its own callbacks (or while another thread runs it), the loop's frames
  // are still on a stack and would run on freed memory: refused in every build. In a
  // forked child whose running thread is gone, nothing runs it any more.
  if (core_.running) {
    if (!core_.forked() || core_.owner == detail::this_thread_identity())
      detail::fatal("evflow::Loop destroyed while it runs (from one of its own callbacks, or another thread)");
    abandon_orphaned_run();  // timers taken out for firing go back, to be detached with the others
  }
  if (Extension* extension = extension_) {  // first: what it runs may still use the loop
    extension_ = nullptr;
    if (extension->loop_destroyed != nullptr) extension->loop_destroyed(*extension);
  }
  posts_.drop_pending();  // the callables' destructors may still use the loop and its watchers
  detach_all();
  core_.backend.close();
}

Error Loop::open(BackendKind backend) noexcept {
  if (core_.open) return Error(EBUSY);
  // The tables' first room, taken before any kernel object exists: nothing to undo.
  if (Error err = descriptors_.open()) return err;
  if (Error err = open_backend(core_.backend, backend)) return err;
  core_.open = true;
  core_.owner = detail::this_thread_identity();
  asyncs_.forget_wake();  // (an Async started later with a send pending is scanned by its start)
  time_.open();
  detail::watch_forks();
  core_.fork_generation_seen.store(detail::fork_generation(), std::memory_order_relaxed);
  return Error();
}

template <class B>
Error Loop::open_backend(B& backend, BackendKind kind) noexcept {
  if constexpr (detail::OpensByKind<B>) {
    return backend.open(kind);
  } else {
    (void)kind;  // one mechanism on this platform
    return backend.open();
  }
}

void Loop::detach_all() noexcept {
  // Nothing here may issue a system call on the kernel object: in a forked child that has
  // not rebuilt yet, it is still the parent's.
  children_.detach_all();
  signals_.detach_all();
  time_.detach_all();
  descriptors_.detach_all();
  asyncs_.detach_all();
  hooks_.detach_all();
  operations_.forget_all();
  core_.active = 0;
  core_.kernel_watchers = 0;
}

int Loop::active_watchers() const noexcept {
  // The loop's own watchers (clock watch, signalfd, SIGCHLD) never keep run() going.
  const int internal = time_.internal_active() + signals_.internal_active() + children_.internal_active();
  return core_.active - internal + time_.active();
}

// --- replacing the kernel object: rebuild, renewal, fork ---------------------------------

Error Loop::rebuild() noexcept {
  if (!core_.open) return Error(EINVAL);
  core_.assert_owner_thread();
  if (core_.running) {  // from a callback: the chains may be mid-dispatch; rebuild before the next wait
    core_.rebuild_needed = true;
    return Error();
  }
  Error err = rebuild_backend();
  core_.changed_outside_run();  // an embedded loop's new kernel object gets its deadline
  return err;
}

Error Loop::rebuild_backend() noexcept {
  if (core_.forked()) return after_fork();  // the objects to replace are shared with the parent
  if constexpr (detail::Backend::kReportsSignals || detail::Backend::kReportsProcesses) collect_process_events();
  if (Error err = core_.backend.reopen()) return err;
  return reregister_all();
}

void Loop::collect_process_events() noexcept {
  // Signals the old kqueue counted and exits it saw would close with it: take them
  // first. Descriptor reports can go; every descriptor is registered again. (Not in a
  // forked child, where the number is no kqueue of ours.)
  if (core_.forked()) return;
  Result<int> count = core_.backend.wait(0, time_.now());
  if (!count) return;
  for (int i = 0; i < count.value(); ++i) {
    const detail::ReadyEvent event = core_.backend.event(i);
    if (event.source == detail::Source::Signal) signals_.on_backend_report(event.fd);
    if (event.source == detail::Source::Process) children_.on_backend_report(event);
  }
}

Error Loop::reregister_all() noexcept {
  ++core_.rebuilds;
  core_.rebuild_needed = false;
  asyncs_.rescan();  // the new kernel object is empty: a wake-up may have gone with the old
  detail::ChangeBatch batch(core_.backend, &Loop::record_change, this);
  descriptors_.reregister(batch);
  if constexpr (detail::Backend::kReportsSignals) signals_.reregister(batch);     // kqueue's EVFILT_SIGNAL
  if constexpr (detail::Backend::kReportsProcesses) children_.reregister(batch);  // EVFILT_PROC, IOCP's waits
  return batch.finish();
}

Error Loop::record_change(void* loop, const detail::InterestChange& change) noexcept {
  Loop& self = *static_cast<Loop*>(loop);
  if (change.source == detail::Source::Descriptor) return detail::DescriptorTable::record(&self.descriptors_, change);
  if (change.source == detail::Source::Process) return self.children_.record(change);
  if (!change.error) return Error();
  // A signal filter refused for want of resources (ENOMEM): nothing is dropped silently;
  // the caller hears of it, and the next iteration builds the whole set again.
  self.core_.rebuild_needed = true;
  return change.error;
}

void Loop::abandon_orphaned_run() noexcept {
  // The thread that was running this loop when the process forked does not exist in the
  // child: no run() is in progress here, whatever `running` says. If that thread was in a
  // callback at the instant of the fork, the rest of its iteration is dropped: ready
  // descriptors report again, Async sends are still pending, and timers taken out for
  // firing go back to the wheel, due.
  core_.running = stop_requested_ = false;
  descriptors_.abandon_dispatch();
  time_.abandon_expiry();
}

Error Loop::after_fork() noexcept {
  if (!core_.open) return Error(EINVAL);
  if (core_.running && core_.forked() && core_.owner != detail::this_thread_identity()) abandon_orphaned_run();
  core_.owner = detail::this_thread_identity();  // the child's only thread is the one that forked
  posts_.after_fork();                           // no other thread, and no phase under way, here
  // First replace every kernel object shared with the parent (epoll set, eventfd, clock
  // timerfd, signalfd), so that nothing below can edit the parent's; only then drop the
  // Child watchers, whose processes are the parent's children, not ours. Each step can
  // be taken again: until all succeeded the fork counts as not handled, every call that
  // would touch a kernel object tries again first (and reports the error), and run()
  // reports it.
  if (Error err = core_.backend.after_fork()) return err;
  if (Error err = time_.after_fork()) return err;
  if (Error err = signals_.after_fork()) return err;
  core_.fork_generation_seen.store(detail::fork_generation(), std::memory_order_relaxed);
  children_.drop_inherited();
  Error err = reregister_all();
  if constexpr (detail::Backend::kReportsSignals) signals_.after_fork_registered();
  core_.changed_outside_run();  // an embedded loop's new kernel object gets its deadline
  return err;
}

// --- the iteration ----------------------------------------------------------------------

void Loop::wake() noexcept { asyncs_.wake(); }

void Loop::stop() noexcept {
  core_.assert_owner_thread();
  if (core_.running) stop_requested_ = true;
}

bool Loop::has_due_work() const noexcept {
  return !hooks_.empty<detail::HookKind::Idle>() || descriptors_.has_failed() || asyncs_.scan_due() ||
         children_.check_due() || posts_.due();
}

// (Inline, as dispatch_events below: the busy path's one caller each.)
[[gnu::always_inline]] inline bool Loop::serve_event(const detail::ReadyEvent& event, bool& woken) noexcept {
  if (event.fd == detail::kWakeDescriptor) {
    woken = true;
    return true;
  }
  if (core_.forked()) return false;  // a callback forked: this batch is the parent's
  if constexpr (detail::Backend::kReportsSignals || detail::Backend::kReportsProcesses) {
    if (event.source == detail::Source::Signal) {
      signals_.on_backend_report(event.fd);
      return true;
    }
    if (event.source == detail::Source::Process) {
      children_.on_backend_report(event);
      return true;
    }
  }
  descriptors_.dispatch(event);
  return true;
}

[[gnu::always_inline]] inline void Loop::dispatch_events(int count) noexcept {
  bool woken = false;
  if (count == 1) {
    (void)serve_event(core_.backend.event(0), woken);
  } else if (count > 1) {
    // A batch: what the next events will touch is fetched ahead (descriptor_table.hpp),
    // the entry two events ahead and the watcher of the next. Each event is translated
    // once, into this window of the next two (callbacks do not change the backend's
    // events).
    detail::ReadyEvent next = core_.backend.event(0);
    detail::ReadyEvent after = core_.backend.event(1);
    descriptors_.prefetch_entry(next.fd);
    for (int i = 0; i < count; ++i) {
      const detail::ReadyEvent event = next;
      next = after;
      if (i + 1 < count) {
        if (i + 2 < count) {
          after = core_.backend.event(i + 2);
          descriptors_.prefetch_entry(after.fd);
        }
        descriptors_.prefetch_watcher(next.fd);
      }
      if (!serve_event(event, woken)) break;
    }
  }
  if (operations_.pending() > 0 && !core_.forked()) operations_.dispatch();
  if (woken && !core_.forked()) asyncs_.woken();  // (a callback forked: the channel is the parent's)
  asyncs_.dispatch();
}

Error Loop::run(RunMode mode, int64_t until) noexcept {
  if (!core_.open) return Error(EINVAL);
  if (core_.running && core_.forked() && core_.owner != detail::this_thread_identity()) abandon_orphaned_run();
  if (core_.running) {
    core_.assert_owner_thread();
    return Error(EBUSY);
  }
  core_.owner = detail::this_thread_identity();
  core_.running = true;
  stop_requested_ = false;
  Error result;
  for (;;) {
    if (mode == RunMode::Default && active_watchers() == 0 && !posts_.due()) break;
    if (core_.forked()) {  // a forked child: rebuild first
      if ((result = after_fork())) break;
    }
    if (!core_.rebuild_needed && descriptors_.renewal_needed()) {
      if ((result = descriptors_.start_renewal())) break;  // (may ask for a rebuild instead)
    }
    if (core_.rebuild_needed) {
      if ((result = rebuild_backend())) break;
    }
    if (!hooks_.empty<detail::HookKind::Prepare>()) hooks_.run<detail::HookKind::Prepare>();
    if (descriptors_.has_changes()) descriptors_.apply_changes();
    if (descriptors_.renewing()) descriptors_.continue_renewal();
    const bool poll = mode == RunMode::NoWait || active_watchers() == 0 || stop_requested_ || has_due_work();
    int64_t timeout = poll ? 0 : -1;
    int64_t deadline = detail::kNoDeadline;
    if (!poll) {
      deadline = time_.next_deadline();
      if (until < deadline) deadline = until;  // run_until(): the wait ends there at the latest
      if (deadline != detail::kNoDeadline) timeout = time_until(deadline, deadline);
    }
    core_.tag_mark = core_.next_tag;
    Result<int> count = only_wake_ups(deadline) ? detail::wait_for_wake_if_any(core_.backend, timeout != 0)
                                                : core_.backend.wait(timeout, deadline);
    if (!count) {
      result = count.error();
      break;
    }
    time_.update_now();
    ++iteration_;
    core_.dispatched = 0;
    if (descriptors_.has_failed()) descriptors_.dispatch_failed();
    dispatch_events(count.value());
    if (!core_.forked()) {  // else a callback forked: the parent's to dispatch
      if (signals_.has_mailbox()) signals_.dispatch();
      if (children_.check_due()) children_.check();
    }
    time_.expire();
    if (posts_.due()) posts_.run();
    if (core_.dispatched == 0 && !hooks_.empty<detail::HookKind::Idle>()) hooks_.run<detail::HookKind::Idle>();
    if (!hooks_.empty<detail::HookKind::Check>()) hooks_.run<detail::HookKind::Check>();
    if (stop_requested_ || mode != RunMode::Default || time_.now() >= until) break;
  }
  core_.running = false;
  stop_requested_ = false;
  if (core_.embedded) keep_handle_ready();
  return result;
}

bool Loop::only_wake_ups(int64_t deadline) const noexcept {
  // Nothing in the kernel's set but the wake-up (stale registrations of stopped watchers
  // have no one to report to), no deadline, and no other loop polling the handle: the
  // backend may wait for a wake-up alone, the cheaper way (epoll_backend.hpp, note l).
  return detail::WaitsForWake<detail::Backend> && core_.kernel_watchers == 0 && deadline == detail::kNoDeadline &&
         !core_.embedded && !descriptors_.renewing();
}

int64_t Loop::time_until(int64_t deadline, int64_t& kernel_deadline) const noexcept {
  const int64_t now = time_.read_monotonic();  // callbacks since the last wait took time
  int64_t timeout = 0;
  if (deadline > now && detail::sub_overflows(deadline, now, timeout)) timeout = detail::kNoDeadline;
  // The kernel sleeps on its own clock: with a clock source installed, the same timeout
  // from the real present (a fake clock's deadline would be meaningless to a timerfd).
  kernel_deadline = time_.fake_clock() ? detail::saturating_add(detail::monotonic_ns(), timeout) : deadline;
  return timeout;
}

// --- embedding --------------------------------------------------------------------------

int Loop::native_handle() noexcept {
  if (!core_.embedded && core_.open) {
    core_.embedded = true;
    if (!core_.running) keep_handle_ready();
  }
  return core_.backend.native_handle();
}

void Loop::keep_handle_ready() noexcept {
  // Another loop polls the handle instead of this loop waiting (backend.hpp,
  // keep_ready_at): pending interest changes go to the kernel now, and the handle
  // becomes readable at the next deadline, or at once when work is due already.
  if (!core_.open || core_.forked()) return;
  if (descriptors_.has_changes()) descriptors_.apply_changes();
  const bool due = has_due_work() || core_.rebuild_needed || descriptors_.renewal_needed();
  const int64_t deadline = due ? time_.read_monotonic() : time_.next_deadline();
  if (deadline == detail::kNoDeadline) {  // nothing to arm; the backend still learns it is polled
    core_.backend.keep_ready_at(-1, detail::kNoDeadline);
    return;
  }
  int64_t kernel_deadline = detail::kNoDeadline;
  const int64_t timeout = time_until(deadline, kernel_deadline);
  core_.backend.keep_ready_at(timeout, kernel_deadline);
}

// --- time -------------------------------------------------------------------------------

void Loop::wall_clock_changed() noexcept {
  core_.assert_owner_thread();
  time_.wall_clock_changed();
}

Error Loop::set_clock(const ClockSource* source) noexcept {
  core_.assert_owner_thread();
  return time_.set_clock(source);
}

Error Loop::set_timer_slack(std::chrono::nanoseconds slack) noexcept {
  core_.assert_owner_thread();
  if (slack.count() <= 0) return Error(EINVAL);         // bad input is EINVAL on every backend
  return core_.backend.set_timer_slack(slack.count());  // the backend re-chooses its sleep path
}

void Loop::request_sleep_path(SleepPath path) noexcept { core_.backend.request_sleep_path(path); }

std::chrono::nanoseconds Loop::timer_slack() noexcept { return std::chrono::nanoseconds(detail::thread_timer_slack()); }

}  // namespace evflow
