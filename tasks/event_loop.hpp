// evflow — EventLoop: call_soon, call_later, call_at, add_reader/add_writer and
// run_forever/stop on a Loop, for code that wants a callback run without keeping a
// watcher object of its own.
//
//   evflow::EventLoop events;                          // owns its Loop (or EventLoop(loop))
//   if (auto err = events.open()) return report(err);
//   (void)events.call_soon([&] { greet(); });
//   auto later = events.call_later(5s, [&] { events.stop(); });
//   (void)events.add_reader(fd, [&] { consume(fd); });
//   events.run_forever();
//
// Where the calls run, relative to the loop's iteration (reactor/loop.hpp, steps 1-7):
// - call_soon: in the posted-work phase (the end of step 5), after the Io, Async, Signal,
//   Child, Timer and Periodic callbacks of that iteration, in call order, as one piece of
//   posted work at the place of the first call_soon of the batch. The phase runs the calls
//   present when it began: a call_soon made by a call_soon callback runs in the next
//   iteration (which does not block); one made by a watcher callback of step 5 (an Io,
//   a Timer, a call_later or reader callback) runs at the end of the same iteration.
// - call_later/call_at: as Timer callbacks (step 5, after Io, Async, Signal and Child),
//   in deadline order, equal deadlines in call order. The base of call_later is the
//   loop's cached now(), as for Timer::start; a deadline already past is due at once.
// - add_reader/add_writer: as Io callbacks (the start of step 5), level-triggered: called
//   in every iteration in which the descriptor is ready, until removed. A descriptor
//   ready both ways calls the reader first, then the writer.
//
// Records and memory: each call_soon/call_later/call_at takes a record (the callable,
// inline, and for the timed ones an embedded Timer) from the EventLoop's pool, and each
// descriptor with a reader or a writer a record with an embedded Io watcher. The pools
// grow to the most records in use at once and are reused: in steady state nothing is
// allocated per call. Out of memory: ENOMEM, and nothing is scheduled.
//
// Decisions:
// - A CallHandle refers to its call by record and generation: cancel() before the call
//   runs prevents it and destroys the callable at once; during the call, after it, a
//   second time, or after the record was reused for another call, it does nothing and
//   returns false (a stale handle never cancels someone else's call).
// - stop() during run_forever(): the current iteration finishes every callback already
//   due, then run_forever() returns. stop() before run_forever(): the next run_forever()
//   runs one iteration that does not block, then returns. run_forever() keeps the loop
//   running with nothing scheduled, until stop() (or Loop::stop() on the loop).
// - Adding a reader (writer) to a descriptor that has one replaces its callback; a
//   callback replaced from inside itself is destroyed while it runs: like `delete this`,
//   it must not touch its captures afterwards. One removed from inside itself lives until
//   it returns. Closing a registered descriptor is misuse (as for Io): remove it first;
//   otherwise, once the loop notices, each side is called once (its read or write then
//   sees the error) and both are dropped.
// - Destroying the EventLoop cancels every pending call and removes every reader and
//   writer; it must not be destroyed from one of its own callbacks, and its loop must
//   outlive it. CallHandles must not be used after their EventLoop is gone.
//
// Thread: the loop's thread only (use Loop::post_from_any_thread or an Async from others).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "../reactor/async.hpp"
#include "../reactor/callback.hpp"
#include "../reactor/io.hpp"
#include "../reactor/loop.hpp"
#include "../reactor/timer.hpp"
#include "spawn.hpp"

namespace evflow {

// Bytes available for the captures of an EventLoop callback: four pointers.
inline constexpr std::size_t kLoopCallCapacity = 4 * sizeof(void*);

class EventLoop;

namespace detail {

// A null function pointer (or member pointer): no callback at all.
template <class F>
constexpr bool is_null_function(const F& fn) noexcept {
  if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
    return fn == nullptr;
  } else {
    return false;
  }
}

// One call_soon, call_later or call_at, in the EventLoop's pool.
struct LoopCall {
  enum class State : uint8_t { Free, Scheduled, Cancelled, Running };
  explicit LoopCall(Loop& loop) noexcept : timer(loop) {}
  LoopCall* next = nullptr;      // the call_soon FIFO, or the free list
  EventLoop* owner = nullptr;    // set when timed: the timer's callback captures the record only
  LoopCall* next_all = nullptr;  // every record of the pool, to free them
  uint32_t generation = 0;       // advances each time the record is freed
  State state = State::Free;
  bool timed = false;
  InlineCallback<void(), kLoopCallCapacity> fn;
  Timer timer;  // call_later/call_at only
};

// The readers and writers of one descriptor: one Io watcher for both.
struct LoopDescriptor {
  explicit LoopDescriptor(Loop& loop) noexcept : io(loop) {}
  LoopDescriptor* next_free = nullptr;
  LoopDescriptor* next_all = nullptr;
  int fd = -1;
  bool want_reader = false;  // registered; a callable removed during dispatch lingers until its end
  bool want_writer = false;
  bool dispatching = false;  // its callbacks are running: the record is freed at their end
  InlineCallback<void(int), kLoopCallCapacity> reader;
  InlineCallback<void(int), kLoopCallCapacity> writer;
  Io io;
};

// The posted work that runs the call_soon batch. It registers its own address with the
// EventLoop when it is built in the loop's post queue, so that an EventLoop destroyed
// before the work runs can disarm it (the loop then runs or drops an empty work).
class LoopCallBatch {
 public:
  explicit LoopCallBatch(EventLoop* owner) noexcept : owner_(owner) {}
  LoopCallBatch(LoopCallBatch&& other) noexcept;
  LoopCallBatch(const LoopCallBatch&) = delete;
  LoopCallBatch& operator=(const LoopCallBatch&) = delete;
  LoopCallBatch& operator=(LoopCallBatch&&) = delete;
  ~LoopCallBatch();
  void operator()() noexcept;
  void disarm() noexcept { owner_ = nullptr; }

 private:
  EventLoop* owner_;
};

}  // namespace detail

// Refers to one call_soon/call_later/call_at; a plain value, copied freely. Valid while
// its EventLoop lives; a default-constructed handle refers to nothing.
class CallHandle {
 public:
  CallHandle() noexcept = default;

  // Prevents the call if it has not run yet, destroying its callable now; true when it
  // did. Harmless at any other time: during or after the call, twice, after the record
  // was reused (false).
  bool cancel() noexcept;
  // The call is scheduled: it has neither run, started nor been cancelled.
  bool pending() const noexcept;
  // cancel() through this handle prevented the call.
  bool cancelled() const noexcept { return cancelled_; }

 private:
  friend class EventLoop;
  CallHandle(EventLoop* owner, detail::LoopCall* call) noexcept
      : owner_(owner), call_(call), generation_(call->generation) {}

  EventLoop* owner_ = nullptr;
  detail::LoopCall* call_ = nullptr;
  uint32_t generation_ = 0;
  bool cancelled_ = false;
};

class EventLoop {
 public:
  using Duration = std::chrono::nanoseconds;

  // An EventLoop with a Loop of its own, not yet open (open()).
  EventLoop() noexcept;
  // An EventLoop on `loop`, which must outlive it; other watchers may share the loop.
  explicit EventLoop(Loop& loop) noexcept;
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Opens the loop unless it is open already. Errors: those of Loop::open().
  Error open() noexcept;
  // The loop the calls run on, for watchers, tasks and run() of its own.
  Loop& loop() noexcept { return loop_; }

  // Runs `fn()` once, at the end of the iteration (see the header comment), after the
  // call_soon calls made before it. `fn` fits in kLoopCallCapacity bytes. Errors: EINVAL
  // when the loop is not open or `fn` is a null function pointer; ENOMEM (nothing scheduled).
  template <class F>
  Result<CallHandle> call_soon(F&& fn) noexcept {
    detail::LoopCall* call = nullptr;
    if (Error err = acquire(call)) return err;
    call->fn.emplace(std::forward<F>(fn));
    if (Error err = schedule_soon(*call)) return err;
    return CallHandle(this, call);
  }
  // Runs `fn()` once, `delay` after now() (a negative delay is zero), as a Timer callback.
  // Errors: EINVAL (loop not open, null function pointer), ENOMEM (nothing scheduled).
  template <class F>
  Result<CallHandle> call_later(Duration delay, F&& fn) noexcept {
    detail::LoopCall* call = nullptr;
    if (Error err = acquire(call)) return err;
    call->fn.emplace(std::forward<F>(fn));
    if (Error err = schedule_later(*call, delay)) return err;
    return CallHandle(this, call);
  }
  // Runs `fn()` once at `deadline` on the loop's monotonic clock (that of now()), as a
  // Timer callback; a deadline already past is due at once. Errors: as call_later().
  template <class F>
  Result<CallHandle> call_at(MonotonicClock::time_point deadline, F&& fn) noexcept {
    detail::LoopCall* call = nullptr;
    if (Error err = acquire(call)) return err;
    call->fn.emplace(std::forward<F>(fn));
    if (Error err = schedule_at(*call, deadline)) return err;
    return CallHandle(this, call);
  }
  // The loop's cached monotonic time: what call_later counts from and call_at compares to.
  MonotonicClock::time_point now() const noexcept { return loop_.now(); }

  // Calls `fn(fd)` (or `fn()`) in every iteration in which `fd` is readable, until
  // remove_reader(fd); a second add replaces the callback. Errors: EBADF for a negative
  // or closed descriptor, EPERM for one the kernel cannot watch, EINVAL (loop not open,
  // null function pointer), ENOMEM; the descriptor's registration is then as before.
  template <class F>
  Error add_reader(int fd, F&& fn) noexcept {
    if (detail::is_null_function(fn)) return Error(EINVAL);
    detail::LoopDescriptor* entry = find(fd);
    if (entry == nullptr) {
      if (Error err = take_descriptor(fd, entry)) return err;
    }
    entry->reader.emplace(std::forward<F>(fn));
    entry->want_reader = true;
    return watch(*entry);
  }
  // The same for writability.
  template <class F>
  Error add_writer(int fd, F&& fn) noexcept {
    if (detail::is_null_function(fn)) return Error(EINVAL);
    detail::LoopDescriptor* entry = find(fd);
    if (entry == nullptr) {
      if (Error err = take_descriptor(fd, entry)) return err;
    }
    entry->writer.emplace(std::forward<F>(fn));
    entry->want_writer = true;
    return watch(*entry);
  }
  // Stops calling the reader of `fd`; true when one was registered. No call runs after;
  // removed from inside its own call, the callable lives until that call returns.
  bool remove_reader(int fd) noexcept { return remove(fd, Readable); }
  // Stops calling the writer of `fd`; true when one was registered. No call runs after.
  bool remove_writer(int fd) noexcept { return remove(fd, Writable); }

  // Runs the loop until stop(), even while nothing is scheduled (see the header comment).
  // Errors: those of Loop::run() (EINVAL when not open, EBUSY from a callback of the loop).
  Error run_forever() noexcept;
  // Ends run_forever() after the current iteration; before it, makes the next one run one
  // non-blocking iteration.
  void stop() noexcept;
  // run_forever() is in progress.
  bool running() const noexcept { return running_; }

  // Runs fn(args...) as a task of the loop until it has finished and gives its value, as
  // evflow::run_until_complete (spawn.hpp) does. From plain code, not from a callback.
  template <class Fn, class... Args>
  auto run_until_complete(Fn&& fn, Args&&... args) {
    return evflow::run_until_complete(loop_, std::forward<Fn>(fn), std::forward<Args>(args)...);
  }

  // call_soon/call_later/call_at calls scheduled and not yet run or cancelled.
  std::size_t pending_calls() const noexcept { return pending_calls_; }
  // Records in the call pool (in use and free): its high-water mark.
  std::size_t call_pool_size() const noexcept { return call_pool_size_; }

 private:
  friend class CallHandle;
  friend class detail::LoopCallBatch;

  Error acquire(detail::LoopCall*& call) noexcept;
  void release(detail::LoopCall& call) noexcept;
  Error schedule_soon(detail::LoopCall& call) noexcept;
  Error schedule_later(detail::LoopCall& call, Duration delay) noexcept;
  Error schedule_at(detail::LoopCall& call, MonotonicClock::time_point deadline) noexcept;
  Error schedule_timed(detail::LoopCall& call, Error started) noexcept;
  void cancel(detail::LoopCall& call) noexcept;
  void run_soon_batch() noexcept;
  void fire_timed(detail::LoopCall& call) noexcept;

  detail::LoopDescriptor* find(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < table_size_ ? table_[fd] : nullptr;
  }
  Error take_descriptor(int fd, detail::LoopDescriptor*& entry) noexcept;
  Error watch(detail::LoopDescriptor& entry) noexcept;
  bool remove(int fd, Events side) noexcept;
  void settle(detail::LoopDescriptor& entry) noexcept;
  void release(detail::LoopDescriptor& entry) noexcept;
  void dispatch(detail::LoopDescriptor& entry, Events ready) noexcept;
  Error enter_in_table(detail::LoopDescriptor& entry) noexcept;

  std::optional<Loop> owned_;  // first: destroyed after every watcher below
  Loop& loop_;
  // call_soon/call_later/call_at
  detail::LoopCall* soon_head_ = nullptr;  // waiting for the next batch, in call order
  detail::LoopCall** soon_tail_ = &soon_head_;
  detail::LoopCallBatch* batch_ = nullptr;  // the posted batch not yet run, if any
  detail::LoopCall* free_calls_ = nullptr;
  detail::LoopCall* all_calls_ = nullptr;
  std::size_t pending_calls_ = 0;
  std::size_t call_pool_size_ = 0;
  // add_reader/add_writer: the record of each descriptor, by number
  detail::LoopDescriptor** table_ = nullptr;
  std::size_t table_size_ = 0;
  detail::LoopDescriptor* free_descriptors_ = nullptr;
  detail::LoopDescriptor* all_descriptors_ = nullptr;
  // run_forever/stop
  Async keep_running_;  // active during run_forever(): the loop runs with nothing else to do
  bool running_ = false;
  bool stop_before_run_ = false;
};

}  // namespace evflow
