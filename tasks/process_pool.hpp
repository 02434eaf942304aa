// evflow — ProcessPool: N forked workers (spawn_process) that answer requests, one at a
// time each, restarted when they die.
//
//   evflow::ProcessPool pool(loop, 4, [](evflow::MessageChannel& parent) -> evflow::Task<int> {
//     std::string request;
//     while (co_await parent.receive(request)) co_await parent.send(handle(request));
//     co_return 0;
//   });
//   if (Error err = pool.start()) ...
//   std::string reply;                                  // reused: no allocation once grown
//   Result<std::size_t> size = co_await pool.submit("request", reply);
//   co_await pool.close(100ms);
//
// A worker's protocol is one reply frame per request frame. submit() hands the request to
// an idle worker (the next one round the ring after the last chosen), waits for its reply
// and gives the worker back. With every worker busy, submitters wait in FIFO order, each in
// its own frame (no allocation). Each worker has a Child watcher: the pool hears of every
// exit, reports it to the on_exit() callback (slot, pid, ExitStatus) and starts a new worker
// in the slot (restarts() counts them).
//
// Decisions:
// - A request in flight on a worker that dies fails with ECONNRESET, never hangs: its
//   receive sees the channel end with the worker; the slot is restarted once both the
//   exit and the failure are seen, in either order.
// - A submit cancelled while its worker holds the request (ECANCELED) costs that worker:
//   its reply would be left unread in the channel, so it is killed (SIGKILL) and restarted.
//   One cancelled while waiting for a worker costs nothing.
// - A worker that cannot be restarted (fork failed) leaves its slot empty; when no slot
//   is left, waiting and later submits fail with the fork's error.
// - close() fails waiting submits with EPIPE, stops restarting, and terminates every worker
//   (SIGTERM, SIGKILL after the grace); the destructor kills and reaps those left, at once.
//   Destroy the pool after every submit has finished.
//
// Errors of submit: ECONNRESET (the worker died or its channel broke), ECANCELED, EMSGSIZE
// (a request larger than the channel's max_frame(): nothing was sent, the worker is kept),
// EPIPE (the pool is closed or not started), and a fork's error (no worker left).
// Windows: start() gives ENOTSUP.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "process.hpp"
#include "wait_queue.hpp"

namespace evflow {

// A worker of a pool that exited: its slot, its pid, how it ended.
struct WorkerExit {
  std::size_t slot;
  int pid;
  ExitStatus status;
};

class ProcessPool {
 public:
  // What each worker runs (spawn_process's fn): its exit code.
  using WorkerMain = std::function<Task<int>(MessageChannel&)>;
  // Told of each worker's exit, in the loop's thread (a Child callback).
  using ExitCallback = std::function<void(const WorkerExit&)>;

  // A pool of `workers` workers of `loop` running `main`; none is started before start().
  ProcessPool(Loop& loop, std::size_t workers, WorkerMain main, ProcessOptions options = {});
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  // Forks the workers. On an error none is left running. EINVAL for 0 workers or a second
  // start; ENOTSUP on Windows; what spawn_process gives.
  Error start() noexcept;
  // Sends `request` to an idle worker and receives its reply into `reply` (resized to it);
  // gives the reply's size. Await it at once: `request` is referred to until it completes.
  Task<Result<std::size_t>> submit(std::string_view request, std::string& reply);
  // Terminates every worker (WorkerProcess::terminate with `grace`) and restarts none.
  Task<> close(std::chrono::nanoseconds grace);
  // Sets the callback told of each worker's exit (replacing the one before).
  void on_exit(ExitCallback callback) { on_exit_ = std::move(callback); }

  // The number of slots.
  std::size_t size() const noexcept { return slots_.size(); }
  // Workers waiting for a request now.
  std::size_t idle() const noexcept;
  // Workers started in place of one that exited.
  uint64_t restarts() const noexcept { return restarts_; }
  // The pid of the worker in `slot` now; 0 when the slot is empty.
  int pid(std::size_t slot) const noexcept;

 private:
  struct Slot;

  // A submitter waiting for an idle worker, first come first served.
  class Acquire : public detail::QueuedWaiter {
   public:
    static constexpr const char* kActivity = "waiting for an idle worker";
    explicit Acquire(ProcessPool& pool) noexcept : pool_(pool) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
      if (!begin<Acquire>(awaiting)) return false;
      if (pool_.take_idle(slot_)) return done_at_once();
      if (!pool_.any_usable()) {
        error_ = pool_.unusable_error();
        return done_at_once();
      }
      return wait_in(pool_.waiters_);
    }
    Result<std::size_t> await_resume() const noexcept {
      if (error_) return error_;
      return slot_;
    }
    // Hands `slot` to this waiter and wakes its task.
    void grant(std::size_t slot) noexcept {
      slot_ = slot;
      pool_.waiters_.grant(*this);
    }

   private:
    ProcessPool& pool_;
    std::size_t slot_ = 0;
  };

  bool take_idle(std::size_t& slot) noexcept;
  bool any_usable() const noexcept;
  Error unusable_error() const noexcept;
  MessageChannel& channel_of(std::size_t slot) noexcept;
  // The request on `slot` ended: `error` none (answered), EMSGSIZE (nothing sent) or what
  // broke the exchange; gives what submit() reports.
  Error finish(std::size_t slot, Error error) noexcept;
  void make_idle(Slot& slot) noexcept;
  void lose(Slot& slot) noexcept;
  void respawn(Slot& slot) noexcept;
  void worker_exited(Slot& slot, ExitStatus status) noexcept;
  // close(): no more restarts, waiters failed, SIGTERM to every worker; gives each slot's
  // worker to terminate.
  void begin_close() noexcept;
  WorkerProcess* live_worker(std::size_t slot) noexcept;
  void worker_closed(std::size_t slot, Result<ExitStatus> ended) noexcept;

  Loop& loop_;
  WorkerMain main_;
  ProcessOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  detail::WaitQueue waiters_;
  ExitCallback on_exit_;
  std::size_t next_ = 0;  // where the search for an idle worker starts
  uint64_t restarts_ = 0;
  Error last_spawn_error_;
  bool started_ = false;
  bool closing_ = false;
};

// Defined here, not in the library: see message_channel.hpp.
inline Task<Result<std::size_t>> ProcessPool::submit(std::string_view request, std::string& reply) {
  Result<std::size_t> acquired = co_await Acquire(*this);
  if (!acquired) co_return acquired.error();
  const std::size_t slot = acquired.value();
  Error sent = co_await channel_of(slot).send(request);
  if (sent) co_return finish(slot, sent);
  Result<std::size_t> got = co_await channel_of(slot).receive(reply);
  if (!got) co_return finish(slot, got.error());
  (void)finish(slot, Error());
  co_return got;
}

inline Task<> ProcessPool::close(std::chrono::nanoseconds grace) {
  begin_close();
  for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
    WorkerProcess* worker = live_worker(slot);
    if (worker == nullptr) continue;
    Result<ExitStatus> ended = co_await worker->terminate(grace);
    worker_closed(slot, ended);
  }
}

}  // namespace evflow
