// evflow — Loop: one event loop, owned by one thread.
//
// A Loop multiplexes the watchers started on it: Io (descriptor readiness), Async
// (wake-ups from other threads), and the loop hooks Prepare, Check and Idle. Watchers
// are objects the caller owns; the loop links them in place and never allocates per
// event. A Loop is constructed without system calls; open() creates its kernel objects.
//
// One iteration, always in this order:
//   1. Prepare watchers run (only when the loop is about to wait for events).
//   2. Interest changes recorded by Io::start/stop since the last wait are applied in
//      one batch; an unchanged watcher costs no system call.
//   3. The loop waits for readiness: not at all if Idle watchers are active, a
//      callback is already due, the run mode is NoWait or stop() was called.
//   4. now() is refreshed; the iteration counter advances.
//   5. Io callbacks, in the order the kernel reported the descriptors (watchers of one
//      descriptor in the order they were started); then Async callbacks, in start order.
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
// - run() from inside a callback (a nested run) returns EBUSY.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "platform/backend.hpp"
#include "platform/clock.hpp"
#include "reactor/intrusive_list.hpp"
#include "reactor/thread_check.hpp"

namespace evflow {

class Io;
class Async;
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

// Counters a Loop keeps about itself; cheap to read, useful in tests and dashboards.
struct LoopStats {
  uint64_t iterations;         // completed iterations (== Loop::iteration())
  uint64_t interest_syscalls;  // system calls made to change the kernel's interest set
  uint64_t backend_rebuilds;   // times the kernel object was recreated (stale registrations, fork)
};

class Loop {
 public:
  Loop() noexcept;
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Creates the kernel objects (epoll instance, wake-up eventfd). Errors: EMFILE/ENFILE
  // when no descriptor is left, ENOMEM, EBUSY when already open. The calling thread
  // becomes the owner.
  Error open() noexcept;
  bool is_open() const noexcept { return open_; }

  // Runs iterations as described above. Errors: EINVAL if not open, EBUSY from inside
  // a callback of this loop, or what the kernel answered when waiting failed. The
  // calling thread becomes the owner.
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
  void update_now() noexcept { now_ns_ = monotonic_ns(); }

  uint64_t iteration() const noexcept { return iteration_; }
  // Active watchers; run(RunMode::Default) returns when this reaches 0.
  int active_watchers() const noexcept { return active_; }
  LoopStats stats() const noexcept { return {iteration_, backend_.interest_syscalls(), rebuilds_}; }
  SleepPath sleep_path() const noexcept { return backend_.sleep_path(); }
  // The epoll descriptor (Linux): readable when this loop has work, to embed it in another loop.
  int native_handle() const noexcept { return backend_.native_handle(); }

  // Pre-sizes the descriptor table for descriptors below `count`, so that starting
  // watchers on them never allocates.
  void reserve_descriptors(int count) noexcept;

  // Recreates the kernel object and re-registers every active Io watcher. Call it in a
  // forked child that will keep using this loop; the parent's registrations are never
  // touched. Also used internally when stale registrations are detected. From inside a
  // callback it takes effect before the loop next waits. Errors: EINVAL if not open,
  // EMFILE/ENFILE/ENOMEM when the new kernel object cannot be created.
  Error rebuild() noexcept;

 private:
  friend class Io;
  friend class Async;
  template <detail::HookKind>
  friend class Hook;

  // What the loop knows of one descriptor number.
  struct FdEntry {
    Io* head = nullptr;                // active watchers on this descriptor, in start order
    const Io* last_stopped = nullptr;  // compared, never dereferenced; valid until the next apply
    uint32_t tag = 0;                  // tag of the last change of the kernel registration
    Events registered;                 // interest the kernel has for this descriptor
    bool queued = false;               // in changed_fds_
  };

  void assert_owner_thread() const noexcept;
  FdEntry& entry(int fd) noexcept;
  void queue_change(int fd) noexcept;
  Error start_io(Io& watcher) noexcept;
  void stop_io(Io& watcher) noexcept;
  Error register_now(int fd, Events from, Events to) noexcept;
  Events wanted_interest(int fd) const noexcept;
  void apply_changes() noexcept;
  void record_outcome(const InterestChange& change) noexcept;
  bool tag_is_recent(uint32_t tag) const noexcept { return static_cast<int32_t>(tag - tag_mark_) >= 0; }
  uint32_t next_tag() noexcept { return next_tag_++; }

  Error rebuild_backend() noexcept;
  void dispatch_events(int count) noexcept;
  void dispatch_descriptor(int fd, Events ready) noexcept;
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

  Backend backend_;
  std::vector<FdEntry> fds_;
  std::vector<int> changed_fds_;
  std::vector<InterestChange> change_batch_;
  detail::IntrusiveList<Async> asyncs_;
  detail::IntrusiveList<Hook<detail::HookKind::Prepare>> prepares_;
  detail::IntrusiveList<Hook<detail::HookKind::Check>> checks_;
  detail::IntrusiveList<Hook<detail::HookKind::Idle>> idles_;
  Io* failed_ = nullptr;     // watchers whose descriptor the kernel refused on re-registration
  Io* io_cursor_ = nullptr;  // next watcher of the chain being dispatched
  std::atomic<bool> wake_pending_{false};
  bool async_scan_ = false;  // an Async was started with a send pending
  bool open_ = false;
  bool running_ = false;
  bool stop_requested_ = false;
  bool rebuild_needed_ = false;
  int active_ = 0;
  int dispatched_ = 0;  // callbacks run in the current iteration's step 5
  uint32_t epoch_ = 0;  // advances at each hook phase; hooks started in it wait for the next
  uint32_t next_tag_ = 1;
  uint32_t tag_mark_ = 1;  // next_tag_ when the last wait began
  int64_t now_ns_ = 0;
  uint64_t iteration_ = 0;
  uint64_t rebuilds_ = 0;
  const void* owner_ = nullptr;
};

}  // namespace evflow
