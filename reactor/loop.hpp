// evflow — Loop: one event loop, owned by one thread.
//
// A Loop multiplexes the watchers started on it: Io (descriptor readiness), Async
// (wake-ups from other threads), Timer (monotonic durations), Periodic (wall-clock
// instants), and the loop hooks Prepare, Check and Idle. Watchers
// are objects the caller owns; the loop links them in place and never allocates per
// event. A Loop is constructed without system calls; open() creates its kernel objects.
//
// One iteration, always in this order:
//   1. Prepare watchers run (every iteration, RunMode::NoWait included).
//   2. Interest changes recorded by Io::start/stop since the last wait are applied in
//      one batch; an unchanged watcher costs no system call.
//   3. The loop waits for readiness until the earliest Timer or Periodic deadline: not
//      at all if Idle watchers are active, a callback is already due, the run mode is
//      NoWait or stop() was called.
//   4. now() is refreshed; the iteration counter advances.
//   5. Io callbacks, in the order the kernel reported the descriptors (watchers of one
//      descriptor in the order they were started); then Async callbacks, in start
//      order; then Signal callbacks, in start order; then Child callbacks of the SIGCHLD
//      and process-event paths (pidfd ones run with the Io callbacks); then Timer callbacks, then
//      Periodic callbacks, each in deadline order (ties in start order); then posted work
//      (post(), post_from_any_thread()), in post order.
//   6. Idle callbacks, only if no callback ran in step 5.
//   7. Check callbacks.
// Callbacks started during a phase of Prepare, Check or Idle first run in the next
// iteration; an Io or Async watcher started during step 5 may be called in it.
//
// Semantics (the README's "Semantics" section lists every decision with its test):
// - stop() while the loop is not running is ignored: it affects only the run() in
//   progress. stop() from a callback lets the current iteration finish every callback
//   already due (nothing is lost), then run() returns.
// - run(RunMode::Default) returns at once when no watcher is active.
// - Destroying a Loop with active watchers detaches them: each becomes inactive and
//   forgets the loop; starting it again reports EINVAL. Their own destruction is safe.
//   A watcher that was already inactive is not known to the loop and still refers to
//   it: it may be destroyed, never started again.
// - run() from inside a callback (a nested run) returns EBUSY.
// - Each callback is called through a noexcept function (callback.hpp): unwinding out of
//   a callback ends the process (std::terminate). A callback may
//   stop, restart or destroy any watcher, but not the loop: destroying a loop while it
//   runs (from one of its own callbacks, or from another thread) aborts with a message,
//   in every build.
// - A start() that fails leaves its watcher inactive, whatever it was before.
// - Memory: open() and the starts that need memory report ENOMEM and change nothing; the
//   dispatch of events and the expiry of timers never allocate.
#pragma once

#include <chrono>
#include <cstdint>

#include "../platform/backend.hpp"
#include "../platform/clock.hpp"
#include "async_set.hpp"
#include "child_reaper.hpp"
#include "descriptor_table.hpp"
#include "hook_lists.hpp"
#include "loop_core.hpp"
#include "operations.hpp"
#include "post_queue.hpp"
#include "signal_sources.hpp"
#include "time_keeper.hpp"

namespace evflow {

enum class RunMode : uint8_t {
  Default,  // iterate until stop() or until no watcher is active
  Once,     // one iteration, waiting for at least one event if watchers are active
  NoWait,   // one iteration that does not wait
};

// Counters a Loop keeps about itself; cheap to read, useful in tests and dashboards.
struct LoopStats {
  uint64_t iterations;         // completed iterations (== Loop::iteration())
  uint64_t interest_syscalls;  // system calls made to change the kernel's interest set
  uint64_t backend_rebuilds;   // times the kernel object was replaced (stale registrations, fork, rebuild())
};

class Loop {
 public:
  Loop() noexcept;
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Creates the kernel objects (epoll instance, wake-up eventfd and sleep timerfd; kqueue;
  // or completion port and AFD handle) and the first room of the loop's tables: all a
  // loop needs, so that none is made later, when a failure could only degrade it.
  // Errors: EMFILE/ENFILE when no descriptor is left, ENOMEM, EBUSY when already open.
  // The calling thread becomes the owner.
  Error open() noexcept { return open(BackendKind::Default); }
  // The same on the mechanism asked for, where the platform has it and the kernel allows
  // it; otherwise on the platform's own, and backend_kind() says which. On Linux:
  // BackendKind::IoUring falls back to epoll when io_uring is missing, refused (ENOSYS,
  // EPERM: the kernel.io_uring_disabled sysctl, a seccomp filter), short of memory, or
  // older than 5.13; BackendKind::Default is epoll unless the environment variable
  // EVFLOW_BACKEND says io_uring.
  Error open(BackendKind backend) noexcept;
  bool is_open() const noexcept { return core_.open; }

  // Runs iterations as described above. Errors: EINVAL if not open, EBUSY from inside
  // a callback of this loop, EMFILE/ENFILE/ENOMEM when the kernel objects had to be
  // replaced and could not be (a forked child, a stale registration: the next call tries
  // again), or what the kernel answered when waiting failed. The calling thread becomes
  // the owner.
  Error run(RunMode mode = RunMode::Default) noexcept { return run(mode, detail::kNoDeadline); }

  // Runs iterations as run() does, and also returns once `deadline` (on the loop's
  // monotonic clock, that of now()) has passed: the waits are cut short at the deadline,
  // and an iteration that ends at or after it is the last. A deadline already past gives
  // at most one iteration, which does not block (none when no watcher is active). With a fake clock (set_clock), time
  // moves only when the fake clock does: drive such a loop with RunMode::NoWait instead. Same errors as run().
  Error run_until(MonotonicClock::time_point deadline) noexcept {
    return run(RunMode::Default, deadline.time_since_epoch().count());
  }
  // run_until() the present instant (the clock read now, not the cached now()) plus `duration`.
  Error run_for(std::chrono::nanoseconds duration) noexcept {
    return run(RunMode::Default, detail::saturating_add(time_.read_monotonic(), duration.count()));
  }

  // Asks the run() in progress to return after the current iteration.
  void stop() noexcept;

  // Runs `fn()` once, in this loop's thread, in the posted-work phase of the next iteration
  // (the last of step 5), which then does not block; pending work keeps run(RunMode::Default)
  // going as an active watcher does (stop() still ends it: the work then waits for the next
  // run()). `fn` takes no arguments and fits in kPostCapacity bytes (a coroutine handle,
  // `[this]`, a few pointers). Work posted while the phase runs waits for the next
  // iteration. No allocation once the pool of posted work has grown to the most work
  // pending at once. Work never run is destroyed first when the loop is, with every watcher
  // still attached. Work posted and not yet run when the process forks runs in the parent
  // and in the child (as Async sends are delivered in both). For the loop's thread (a
  // callback, or before run()). Errors: EINVAL when the loop is not open or `fn` is a null
  // function pointer; ENOMEM when the pool cannot grow (nothing is posted).
  template <class F>
  Error post(F&& fn) noexcept {
    if (!core_.open) return Error(EINVAL);
    core_.assert_owner_thread();
    if (Error err = posts_.post(std::forward<F>(fn))) return err;
    core_.changed_outside_run();  // an embedded loop's handle: work is due
    return Error();
  }
  // Same, from any thread (not from a signal handler): the work is handed over with one
  // compare-and-swap, and the first post since the loop last looked wakes it. One
  // thread's posts run in the order it posted them. The loop must outlive every thread
  // that may still post. Errors: EINVAL for a null function pointer; ENOMEM.
  template <class F>
  Error post_from_any_thread(F&& fn) noexcept {
    return posts_.post_from_any_thread(std::forward<F>(fn));
  }

  // Makes a waiting run() return soon from any thread, or from a signal handler.
  // Coalesced: many calls before the loop wakes cost one system call.
  void wake() noexcept;

  // The time at the start of the current iteration's callbacks (cached, monotonic).
  MonotonicClock::time_point now() const noexcept {
    return MonotonicClock::time_point(MonotonicClock::duration(time_.now()));
  }
  // Re-reads the clock, for a callback that ran long and wants an exact now().
  void update_now() noexcept { time_.update_now(); }
  // The wall-clock time, read now (not cached): what Periodic instants are compared to.
  WallClock::time_point wall_now() const noexcept {
    return WallClock::time_point(WallClock::duration(time_.read_realtime()));
  }

  // Reschedules every Periodic against the current wall time, as when the wall clock is
  // set. The loop notices clock changes by itself where the kernel reports them (Linux);
  // call this where it cannot, or after moving a fake clock's wall time.
  void wall_clock_changed() noexcept;

  // Installs a clock source (nullptr: the kernel's clocks). The loop keeps the pointer:
  // the source must outlive the loop or be replaced first. Errors: EBUSY while any
  // Timer or Periodic is active.
  Error set_clock(const ClockSource* source) noexcept;

  // Lowers (or restores) the calling thread's timer slack, the grace the kernel may add
  // to every timed sleep so that it can batch wake-ups (Linux default: 50 us). 1 ns gives
  // the tightest timers at the cost of more wake-ups and less power saving; it affects
  // every timed sleep of this thread, not only this loop's. Call it from the loop's
  // thread; the loop then re-chooses its sleep path. Errors: EINVAL for zero or negative
  // values; ENOTSUP where unsupported.
  Error set_timer_slack(std::chrono::nanoseconds slack) noexcept;
  // The calling thread's current timer slack.
  static std::chrono::nanoseconds timer_slack() noexcept;

  // How the loop sleeps until a deadline. By default the most precise path that costs
  // least: epoll_pwait2 when the loop thread's timer slack is at most 1 us (see
  // set_timer_slack), otherwise an absolute timerfd, which the kernel does not delay by
  // the slack; milliseconds only where the kernel offers neither.
  SleepPath sleep_path() const noexcept { return core_.backend.sleep_path(); }
  // The kernel mechanism this loop runs on (epoll, io_uring, kqueue, IOCP).
  BackendKind backend_kind() const noexcept { return core_.backend.kind(); }
  // Uses this sleep path instead of the automatic choice, where the kernel allows it
  // (tests, benchmarks, embedding).
  void request_sleep_path(SleepPath path) noexcept;

  uint64_t iteration() const noexcept { return iteration_; }
  // Active watchers; run(RunMode::Default) returns when this reaches 0.
  int active_watchers() const noexcept;
  LoopStats stats() const noexcept { return {iteration_, core_.backend.interest_syscalls(), core_.rebuilds}; }
  // The epoll descriptor or the kqueue, to embed this loop in another loop: the other
  // loop watches it for readability and then calls run(RunMode::NoWait). From the first
  // call on, the handle is readable whenever this loop has work due: a ready descriptor,
  // a wake-up or signal, an Idle watcher, and a Timer or Periodic deadline (an armed
  // timerfd or EVFILT_TIMER in the set, re-armed when the next deadline changes: at
  // most one system call per run() or start outside run()). Interest changes made
  // outside run() reach the kernel at once. On epoll without timerfds (kernels before
  // 2.6.25) deadlines cannot make it readable. Windows: the completion port's handle
  // value, which no other loop can wait for (iocp_backend.hpp, note n): drive an
  // embedded IOCP loop with run(RunMode::NoWait) on a schedule.
  int native_handle() noexcept;

  // Reserves room for `count` Timer watchers active at once and maps it now: starting up
  // to that many allocates nothing, and the first expiry of a burst of them takes no page
  // faults (without it, the room grows with the timers started, as address space that the
  // kernel maps during the first large burst; bench/timer_bench.cpp, BM_TimerFirstBurst).
  // Costs 36 to 72 bytes of resident memory per timer, plus at most 2.5 MB for the sort of
  // a large batch. Errors: ENOMEM (nothing reserved beyond what was).
  Error reserve_timers(std::size_t count) noexcept {
    core_.assert_owner_thread();
    return time_.reserve_timers(count);
  }

  // Recreates the kernel object and re-registers every active Io watcher at once (on
  // kqueue also every watched signal and child, after taking what the old kqueue had
  // counted). The loop does this by itself when a stale registration shows (on epoll
  // gradually instead: a batch of registrations per iteration, epoll_backend.hpp note
  // j). From inside a callback it takes effect before the loop next waits. In a forked
  // child it is after_fork(). Errors: EINVAL if not open, EMFILE/ENFILE/ENOMEM when the
  // new kernel object cannot be created or refuses a registration (the next iteration
  // tries again).
  Error rebuild() noexcept;

  // Makes this loop usable in a forked child. Done automatically at the next iteration
  // after fork() (a pthread_atfork handler marks every loop); call it to do it at once.
  // Windows has no fork(): there it is never done automatically and answers ENOTSUP.
  // The child gets new kernel objects (epoll, wake-up, timer, signal descriptors) with
  // every active watcher re-registered, and never modifies the parent's: the parent
  // keeps working untouched. Signals caught but not dispatched before the fork are
  // dropped in the child; Async sends not yet dispatched are delivered in both; Child
  // watchers are stopped without a callback (their processes are the parent's children).
  // The fork counts as handled only when every step succeeded: until then each call that
  // needs a kernel object (run(), a start, a Signal change) tries again first and reports
  // the error, and none writes to an object the parent uses. A loop that another thread
  // was running at the fork is taken over by the calling thread, if that thread was
  // waiting for events or inside a callback at the instant of the fork: in the latter
  // case the rest of its iteration is dropped here (its descriptors report again, its
  // Async sends stay pending, its due timers fire at the next iteration). A fork while
  // that thread was inside the loop's own bookkeeping (applying changes, filing timers)
  // leaves the child a torn copy, as a fork while another thread holds a lock does.
  // Errors: EINVAL if not open; EMFILE/ENFILE/ENOMEM.
  Error after_fork() noexcept;

  // How Child watchers started from now on learn of exits; see ChildPath. A path this
  // build lacks (Pidfd off Linux, ProcessEvent on epoll, anything but ProcessEvent on
  // Windows) means the default. The loop
  // falls back to SigChld by itself where pidfd_open is unavailable.
  void request_child_path(ChildPath path) noexcept { children_.request_path(path); }
  ChildPath child_path() const noexcept { return children_.path(); }
  static constexpr ChildPath kDefaultChildPath = detail::ChildReaper::kDefaultPath;

  // A layer built on this loop (the coroutine tasks of tasks/) keeps its per-loop state
  // here, one object per loop. When the loop is destroyed it calls loop_destroyed() first,
  // while its watchers and posted work still work, so that the layer ends what it runs;
  // the loop knows nothing else of it. The object must outlive the loop or be cleared.
  struct Extension {
    void (*loop_destroyed)(Extension& self) noexcept = nullptr;  // a function, not a virtual: no RTTI
  };
  Extension* extension() const noexcept { return extension_; }
  void set_extension(Extension* extension) noexcept { extension_ = extension; }

  // Internal: the loop's components, for the watcher kinds (each calls the component that
  // keeps its kind; README, "How it fits together"). Not for applications.
  detail::LoopCore& core() noexcept { return core_; }
  detail::DescriptorTable& descriptors() noexcept { return descriptors_; }
  detail::TimeKeeper& time() noexcept { return time_; }
  const detail::TimeKeeper& time() const noexcept { return time_; }
  detail::SignalSources& signal_sources() noexcept { return signals_; }
  detail::ChildReaper& child_reaper() noexcept { return children_; }
  detail::AsyncSet& asyncs() noexcept { return asyncs_; }
  detail::HookLists& hooks() noexcept { return hooks_; }
  detail::Operations& operations() noexcept { return operations_; }

 private:
  friend class detail::LoopCore;  // check_fork() and keep_handle_ready() come back here

  Error run(RunMode mode, int64_t until) noexcept;
  void abandon_orphaned_run() noexcept;
  Error rebuild_backend() noexcept;
  Error reregister_all() noexcept;
  // The outcome of a change applied through a batch, to the component it belongs to.
  static Error record_change(void* loop, const detail::InterestChange& change) noexcept;
  void collect_process_events() noexcept;
  void dispatch_events(int count) noexcept;
  // One reported event; false when a callback forked (the rest of the batch is the parent's).
  bool serve_event(const detail::ReadyEvent& event, bool& woken) noexcept;
  bool has_due_work() const noexcept;
  // The timeout until `deadline` (loop clock) from now, saturated, and the same instant
  // on the kernel's monotonic clock for the backend.
  int64_t time_until(int64_t deadline, int64_t& kernel_deadline) const noexcept;
  bool only_wake_ups(int64_t deadline) const noexcept;  // a wait that only a wake-up can end
  void keep_handle_ready() noexcept;
  template <class B>
  static Error open_backend(B& backend, BackendKind kind) noexcept;
  void detach_all() noexcept;

  // What every iteration reads or writes comes first (the core's flags and the backend,
  // the descriptor table's header), packed into a few cache lines: after each system call
  // the caches are cold, and the loop's own cost per event is mostly the lines it touches.
  detail::LoopCore core_;
  bool stop_requested_ = false;
  uint64_t iteration_ = 0;
  detail::DescriptorTable descriptors_;
  detail::TimeKeeper time_;
  detail::HookLists hooks_;
  detail::SignalSources signals_;
  detail::ChildReaper children_;
  detail::PostQueue posts_;
  detail::AsyncSet asyncs_;
  detail::Operations operations_;
  Extension* extension_ = nullptr;
};

}  // namespace evflow
