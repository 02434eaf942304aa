// evflow — Loop: one event loop, owned by one thread.
//
// A Loop multiplexes the watchers started on it: Io (descriptor readiness), Async
// (wake-ups from other threads), Timer (monotonic durations), Periodic (wall-clock
// instants), and the loop hooks Prepare, Check and Idle. Watchers
// are objects the caller owns; the loop links them in place and never allocates per
// event. A Loop is constructed without system calls; open() creates its kernel objects.
//
// One iteration, always in this order:
//   1. Prepare watchers run (only when the loop is about to wait for events).
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
//      Periodic callbacks, each in deadline order (ties in start order).
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
// - Callbacks must not throw: each is called through a noexcept function (callback.hpp),
//   so an exception leaving a callback ends the process (std::terminate). A callback may
//   stop, restart or destroy any watcher, but not the loop: destroying a loop while it
//   runs (from one of its own callbacks, or from another thread) aborts with a message,
//   in every build.
// - A start() that fails leaves its watcher inactive, whatever it was before.
// - Memory: open() and the starts that need memory report ENOMEM and change nothing; the
//   dispatch of events and the expiry of timers never allocate.
#pragma once

#include <atomic>
#include <cstdint>

#include <chrono>
#include <memory>

#include "platform/backend.hpp"
#include "platform/clock.hpp"
#include "platform/fork_generation.hpp"
#include "platform/growable_array.hpp"
#include "platform/signal_fd.hpp"
#include "platform/wall_clock_watch.hpp"
#include "reactor/intrusive_list.hpp"
#include "reactor/thread_check.hpp"
#include "timers/timer_wheel.hpp"

namespace evflow {

namespace detail {
// For tags from a wrapping 32-bit counter: true when `tag` lies in [mark, next), i.e.
// was issued after `mark` was taken and before `next`. Correct across the wrap.
constexpr bool issued_since(uint32_t tag, uint32_t mark, uint32_t next) noexcept {
  return static_cast<uint32_t>(tag - mark) < static_cast<uint32_t>(next - mark);
}
}  // namespace detail

class Io;
class Async;
class Timer;
class Periodic;
class Signal;
class Child;
namespace detail {
enum class HookKind : uint8_t { Prepare, Check, Idle };
}
template <detail::HookKind>
class Hook;

enum class RunMode : uint8_t {
  Default,  // iterate until stop() or until no watcher is active
  Once,     // one iteration, waiting for at least one event if watchers are active
  NoWait,   // one iteration that does not wait
};

// How Child watchers learn that a child exited (see reactor/child.hpp).
enum class ChildPath : uint8_t {
  Pidfd,         // one pidfd per child, readable on exit (Linux >= 5.3)
  SigChld,       // SIGCHLD through the signal layer, then waitpid on each watched pid
  ProcessEvent,  // the backend reports the exit itself (kqueue: EVFILT_PROC, NOTE_EXIT;
                 // IOCP: a wait on the process handle that posts to the port)
};

// Where a Loop reads time. The default reads the kernel's clocks; tests and simulations
// install their own (a fake clock), and then drive the loop with RunMode::NoWait, since
// a blocking wait still sleeps in real time.
struct ClockSource {
  int64_t (*monotonic)(void* context);  // nanoseconds, never decreasing
  int64_t (*realtime)(void* context);   // nanoseconds since the Unix epoch
  void* context;
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
  Error open() noexcept;
  bool is_open() const noexcept { return open_; }

  // Runs iterations as described above. Errors: EINVAL if not open, EBUSY from inside
  // a callback of this loop, EMFILE/ENFILE/ENOMEM when the kernel objects had to be
  // replaced and could not be (a forked child, a stale registration: the next call tries
  // again), or what the kernel answered when waiting failed. The calling thread becomes
  // the owner.
  Error run(RunMode mode = RunMode::Default) noexcept;

  // Asks the run() in progress to return after the current iteration.
  void stop() noexcept;

  // Makes a waiting run() return soon from any thread, or from a signal handler.
  // Coalesced: many calls before the loop wakes cost one system call.
  void wake() noexcept;

  // The time at the start of the current iteration's callbacks (cached, monotonic).
  MonotonicClock::time_point now() const noexcept {
    return MonotonicClock::time_point(MonotonicClock::duration(now_ns_));
  }
  // Re-reads the clock, for a callback that ran long and wants an exact now().
  void update_now() noexcept { now_ns_ = read_monotonic(); }
  // The wall-clock time, read now (not cached): what Periodic instants are compared to.
  WallClock::time_point wall_now() const noexcept {
    return WallClock::time_point(WallClock::duration(read_realtime()));
  }

  // Reschedules every Periodic against the current wall time, as when the wall clock is
  // set. The loop notices clock changes by itself where the kernel reports them (Linux);
  // call this where it cannot, or after moving a fake clock's wall time.
  void wall_clock_changed() noexcept;

  // Installs a clock source (nullptr: the kernel's clocks). Errors: EBUSY while any
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
  SleepPath sleep_path() const noexcept { return backend_.sleep_path(); }
  // The kernel mechanism this loop runs on (epoll, kqueue, IOCP; io_uring later).
  BackendKind backend_kind() const noexcept { return backend_.kind(); }
  // Uses this sleep path instead of the automatic choice, where the kernel allows it
  // (tests, benchmarks, embedding).
  void request_sleep_path(SleepPath path) noexcept;

  uint64_t iteration() const noexcept { return iteration_; }
  // Active watchers; run(RunMode::Default) returns when this reaches 0.
  int active_watchers() const noexcept;
  LoopStats stats() const noexcept { return {iteration_, backend_.interest_syscalls(), rebuilds_}; }
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

  // Pre-sizes the descriptor table for descriptors below `count`, so that starting
  // watchers on them never allocates. Errors: ENOMEM (the table is left as it was).
  Error reserve_descriptors(int count) noexcept;

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
  void request_child_path(ChildPath path) noexcept;
  ChildPath child_path() const noexcept { return child_path_; }
  static constexpr ChildPath kDefaultChildPath =
      Backend::kReportsProcesses ? ChildPath::ProcessEvent : ChildPath::Pidfd;

 private:
  friend class Io;
  friend class Async;
  friend class Timer;
  friend class Periodic;
  friend class Signal;
  friend class Child;
  template <detail::HookKind>
  friend class Hook;

  // What the loop knows of one descriptor number.
  struct FdEntry {
    Io* head = nullptr;   // active watchers on this descriptor, in start order
    uint32_t tag = 0;     // tag of the last change of the kernel registration
    Events registered;    // interest the kernel has for this descriptor
    bool queued = false;  // in changed_fds_
  };
  // Four to a cache line: dispatching an event reads its descriptor's entry, and ready
  // descriptors are often neighbours. (The stop stamps, needed only by start and stop,
  // live apart in stop_stamps_.)
  static_assert(sizeof(void*) != 8 || sizeof(FdEntry) == 16);

  // Inline so that a release build (no thread checks) pays nothing, not even a call.
  void assert_owner_thread() const noexcept {
    if constexpr (detail::kThreadChecks) check_owner_thread();
  }
  void check_owner_thread() const noexcept;
  // Interest changes gathered for the backend, at most kMaxChangesPerApply per call, in a
  // fixed array: applying them never allocates. Each outcome is recorded as it comes.
  class ChangeBatch {
   public:
    explicit ChangeBatch(Loop& loop) noexcept : loop_(loop) {}
    ~ChangeBatch() { submit(); }
    ChangeBatch(const ChangeBatch&) = delete;
    ChangeBatch& operator=(const ChangeBatch&) = delete;
    void add(const InterestChange& change) noexcept;
    // Applies what is left; the first error of a signal or process registration.
    Error finish() noexcept {
      submit();
      return first_error_;
    }

   private:
    void submit() noexcept;
    Loop& loop_;
    size_t count_ = 0;
    Error first_error_;
    InterestChange changes_[kMaxChangesPerApply];
  };

  // Grows the descriptor table (and what must keep pace with it) to `count` entries.
  // ENOMEM leaves it as it was.
  Error cover_descriptors(size_t count) noexcept;
  void queue_change(int fd) noexcept;
  Error start_io(Io& watcher) noexcept;
  void stop_io(Io& watcher) noexcept;
  Error close_io(Io& watcher) noexcept;
  // True in a forked child until the loop rebuilt itself: its kernel objects are still
  // the parent's, and nothing may touch them.
  bool forked() const noexcept { return fork_generation() != fork_generation_.load(std::memory_order_relaxed); }
  // In a forked child, rebuilds first; the error when that fails (nothing else may then
  // touch a kernel object).
  Error check_fork() noexcept;
  void abandon_orphaned_run() noexcept;
  void deregister_now(int fd) noexcept;
  Error register_now(int fd, Events from, Events to) noexcept;
  Events wanted_interest(int fd) const noexcept;
  void apply_changes() noexcept;
  void record_outcome(const InterestChange& change) noexcept;
  void fail_watchers(FdEntry& e) noexcept;  // e's watchers to failed_, for an Invalid callback
  // True when `tag` was handed out after the last wait began.
  bool tag_is_recent(uint32_t tag) const noexcept { return detail::issued_since(tag, tag_mark_, next_tag_); }
  uint32_t next_tag() noexcept { return next_tag_++; }

  Error rebuild_backend() noexcept;
  void note_stale_report() noexcept;
  Error start_renewal() noexcept;
  void continue_renewal() noexcept;
  // While the backend is renewed (kRenewsGradually), whether `e`'s registration is in the
  // new kernel object: registered (or changed) since the renewal began.
  bool in_current_set(const FdEntry& e) const noexcept {
    return !renewing_ || detail::issued_since(e.tag, renewal_mark_, next_tag_);
  }
  // What the current kernel object has for `e`.
  Events kernel_interest(const FdEntry& e) const noexcept { return in_current_set(e) ? e.registered : Events(); }
  // The timeout until `deadline` (loop clock) from now, saturated, and the same instant
  // on the kernel's monotonic clock for the backend.
  int64_t time_until(int64_t deadline, int64_t& kernel_deadline) const noexcept;
  void keep_handle_ready() noexcept;
  // For a change made outside run() to a loop embedded in another (native_handle()).
  void changed_outside_run() noexcept {
    if (embedded_ && !running_) keep_handle_ready();
  }
  Error reregister_all() noexcept;
  Error record_process_outcome(const InterestChange& change) noexcept;
  void collect_process_events() noexcept;
  Error start_signal(Signal& watcher) noexcept;
  Error restart_signal(Signal& watcher, int signo) noexcept;
  Error watch_signal(int signo) noexcept;
  void unwatch_signal(int signo) noexcept;
  void stop_signal(Signal& watcher) noexcept;
  void release_unused_signal_slot() noexcept;
  Error update_signalfd(uint64_t mask) noexcept;
  void read_signalfd() noexcept;
  Error change_signal_filter(int signo, bool watch) noexcept;
  Error watch_process(Child& child) noexcept;
  void unwatch_process(Child& child) noexcept;
  void dispatch_process_event(const ReadyEvent& event) noexcept;
  void dispatch_signals() noexcept;
  Error start_sigchld_child() noexcept;
  void stop_sigchld_child() noexcept;
  void check_children() noexcept;
  void dispatch_events(int count) noexcept;
  void dispatch_descriptor(Io* head, Events ready) noexcept;
  void dispatch_failed() noexcept;
  void start_async(Async& watcher) noexcept;
  void stop_async(Async& watcher) noexcept;
  template <detail::HookKind K>
  auto& hooks() noexcept;
  void dispatch_asyncs() noexcept;
  template <detail::HookKind K>
  void run_hooks() noexcept;
  bool has_due_work() const noexcept;
  void detach_all() noexcept;
  int64_t read_monotonic() const noexcept {
    return clock_ == nullptr ? monotonic_ns() : clock_->monotonic(clock_->context);
  }
  int64_t read_realtime() const noexcept {
    return clock_ == nullptr ? realtime_ns() : clock_->realtime(clock_->context);
  }
  int64_t next_wake_deadline() noexcept;
  void expire_timers() noexcept;
  void expire_periodics() noexcept;
  Error start_periodic(Periodic& watcher, int64_t at) noexcept;
  void stop_periodic(Periodic& watcher) noexcept;

  // What every iteration reads or writes comes first, packed into a few cache lines: after
  // each system call the caches are cold, and the loop's own cost per event is mostly the
  // lines it touches. The timer wheel's header follows; cold state and the wheels' slots
  // come last.
  bool open_ = false;
  bool running_ = false;
  bool stop_requested_ = false;
  bool rebuild_needed_ = false;
  bool renewal_needed_ = false;  // a stale report: replace the kernel object gradually
  bool renewing_ = false;        // between Backend::renew() and retire()
  bool embedded_ = false;        // native_handle() was asked for
  bool async_scan_ = false;      // an Async was started with a send pending
  bool children_check_due_ = false;
  bool io_snapshot_live_ = false;
  int signal_slot_ = -1;  // mailbox in the process-wide signal layer
  int active_ = 0;        // active watchers, the loop's own included (see active_watchers())
  int dispatched_ = 0;    // callbacks run in the current iteration's step 5
  uint32_t next_tag_ = 1;
  uint32_t tag_mark_ = 1;  // next_tag_ when the last wait began
  int64_t now_ns_ = 0;
  uint64_t iteration_ = 0;
  const void* owner_ = nullptr;
  std::atomic<uint64_t> fork_generation_{0};  // the process generation the kernel objects belong to; read by wake()
  const ClockSource* clock_ = nullptr;
  Io* failed_ = nullptr;  // watchers whose descriptor the kernel refused on re-registration
  Backend backend_;
  detail::GrowableArray<FdEntry> fds_;
  detail::GrowableArray<uint32_t> stop_stamps_;  // per descriptor: Io::stop_stamp_ of the watcher that
                                                 // stopped last; 0 after apply. Always as long as fds_.
  detail::GrowableArray<int> changed_fds_;       // room for every descriptor of fds_
  detail::IntrusiveList<Async> asyncs_;
  detail::IntrusiveList<Hook<detail::HookKind::Prepare>> prepares_;
  detail::IntrusiveList<Hook<detail::HookKind::Check>> checks_;
  detail::IntrusiveList<Hook<detail::HookKind::Idle>> idles_;
  detail::IntrusiveList<Periodic> periodic_list_;  // active Periodic watchers
  TimerWheel timers_;                              // Timer watchers, on the monotonic clock

  WallClockWatch wall_clock_watch_;
  std::unique_ptr<Io> wall_clock_io_;  // internal: does not count as an active watcher
  uint16_t signal_watchers_[65] = {};  // active Signal watchers per signal number
  detail::IntrusiveList<Signal> signals_;
  uint64_t filtered_signals_ = 0;          // signals registered in the backend (CatchMode::KernelFilter)
  uint64_t filtered_signals_pending_ = 0;  // reported by the backend, not yet dispatched
  SignalFd signal_fd_;                     // the signals this loop reads from a signalfd (its mask)
  std::unique_ptr<Io> signalfd_io_;        // internal: not counted as active
  detail::IntrusiveList<Child> children_;
  std::unique_ptr<Signal> sigchld_;  // internal: SIGCHLD for ChildPath::SigChld
  int sigchld_children_ = 0;
  ChildPath child_path_ = kDefaultChildPath;
  Io* io_cursor_ = nullptr;                 // next watcher of the failed list being dispatched
  detail::GrowableArray<Io*> io_snapshot_;  // watchers of the descriptor being dispatched (several);
                                            // room for the most watchers any descriptor has
  uint32_t next_stop_stamp_ = 1;
  uint64_t rebuilds_ = 0;
  uint32_t renewal_mark_ = 0;                          // next_tag_ when the renewal began
  size_t renewal_cursor_ = 0;                          // next descriptor to move to the new kernel object
  alignas(64) std::atomic<bool> wake_pending_{false};  // written by other threads: own line
  TimerWheel periodics_;                               // Periodic watchers, on the wall clock
};

}  // namespace evflow
