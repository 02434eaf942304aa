// evflow — spawn_process(): a forked worker process running a task of its own, and
// WorkerProcess, the parent's handle on it: its pid, a MessageChannel to it, its exit.
//
//   auto worker = evflow::spawn_process(loop, [](evflow::MessageChannel& parent) -> evflow::Task<int> {
//     std::string request;
//     while (co_await parent.receive(request)) co_await parent.send(request);   // echo
//     co_return 0;                                                              // exit code
//   });
//   co_await worker.value().channel().send("ping");
//   Result<ExitStatus> status = co_await worker.value().terminate(100ms);
//
// The child: fork() copies the whole process, the parent's loop and tasks included. The
// child never runs them: spawn_process makes a fresh Loop in the child, runs fn(channel)
// there as its only task, and ends with _exit(the value fn gave) — never returning into
// the parent's code, never running the parent's atexit handlers or static destructors
// (nor flushing stdio buffers the parent had filled). A task that ends without a value
// (cancelled) exits with kTaskFailedExitCode. The parent's copy of its loop is left alone in
// the child (Loop::after_fork() would make it usable; nothing calls it).
// Signals: the worker starts with none blocked, and with the dispositions the parent had
// before its loops watched any (the parent's Signal watchers catch nothing there), so that
// SIGTERM ends it unless its own code says otherwise.
// Descriptors: the child keeps what the parent had open (a listener, say), except the
// parent's ends of the channels to its other workers, which it closes (otherwise a worker
// would keep a sibling's channel open past the parent's death).
//
// The parent's death: the parent's end of the channel closes with it, so a worker's next
// receive gives EPIPE (every platform with fork). On Linux the worker is also sent
// options.parent_death_signal (SIGKILL by default) by the kernel (ParentDeathSignal);
// a parent that died before the child could ask for it (getppid() differs afterwards)
// ends the child at once with kParentGoneExitCode.
//
// The handle: wait() and terminate() give the exit status (reaped once, kept); destroying
// a handle whose worker was not seen to exit sends SIGKILL and reaps it, blocking for the
// moment the kernel takes: no worker outlives its handle unreaped.
//
// Windows has no fork(): spawn_process gives ENOTSUP. Errors of spawn_process: EINVAL
// (loop not open), EMFILE/ENFILE (the socket pair), EAGAIN/ENOMEM (fork).
#pragma once

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

#include "../platform/process_fork.hpp"
#include "../reactor/child.hpp"
#include "cancellation.hpp"
#include "child_exit.hpp"
#include "message_channel.hpp"
#include "spawn.hpp"

namespace evflow {

// What spawn_process does besides running fn.
struct ProcessOptions {
  // Sent to the worker by the kernel when the parent dies (Linux only); 0: none.
  int parent_death_signal = detail::ProcessFork::kill_signal();
  // The channel's max_frame() on the parent's side and on the worker's.
  std::size_t max_frame = MessageChannel::kDefaultMaxFrame;
};

// A worker that spawn_process forked: the parent's side.
class WorkerProcess {
 public:
  // The exit code of a worker whose task ended without a value (cancelled, or its frame
  // could not be allocated).
  static constexpr int kTaskFailedExitCode = 70;
  // The exit code of a worker whose parent died before it started.
  static constexpr int kParentGoneExitCode = 71;

  WorkerProcess() noexcept = default;
  WorkerProcess(int pid, MessageChannel channel) noexcept : pid_(pid), channel_(std::move(channel)) {}
  WorkerProcess(WorkerProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, 0)), channel_(std::move(other.channel_)), status_(other.status_) {}
  WorkerProcess& operator=(WorkerProcess&& other) noexcept;
  ~WorkerProcess() { abandon(); }

  // The worker's process id; 0 for an empty handle.
  int pid() const noexcept { return pid_; }
  // The parent's end of the channel to the worker.
  MessageChannel& channel() noexcept { return channel_; }
  // Its exit status once wait() or terminate() saw it.
  std::optional<ExitStatus> status() const noexcept { return status_; }

  // Waits for the worker to exit; gives its status (at once when already seen). Errors:
  // EINVAL (empty handle), ECANCELED, and those of child_exit().
  Task<Result<ExitStatus>> wait();
  // Sends SIGTERM, waits up to `grace` for the exit, then sends SIGKILL and waits again;
  // gives the exit status. A real-time wait (the loop's clock).
  Task<Result<ExitStatus>> terminate(std::chrono::nanoseconds grace);
  // Records the exit that other code saw (a Child watcher of pid()): the handle then
  // neither signals nor reaps the pid again.
  void exited(ExitStatus status) noexcept { status_ = status; }
  // Sends `signal` to the worker. ESRCH once it was reaped (the pid is no longer ours).
  Error send_signal(int signal) noexcept;
  // Kills the worker (SIGKILL), reaps it and closes the channel now, blocking for as long
  // as the kernel takes to end it. What the destructor does; nothing for an empty handle.
  void abandon() noexcept;

 private:
  int pid_ = 0;
  MessageChannel channel_;
  std::optional<ExitStatus> status_;
};

namespace detail {

// The child's side: `run(fn, loop, channel)` runs the task in the child's fresh loop and
// gives the exit code.
using WorkerEntry = int (*)(void* fn, Loop& loop, MessageChannel& channel) noexcept;

// Forks; in the child, prepares it (closes the other channels, the parent-death signal),
// makes a fresh Loop, calls entry(fn, loop, channel) and _exits with what it gives.
Result<WorkerProcess> fork_worker(Loop& loop, const ProcessOptions& options, WorkerEntry entry, void* fn) noexcept;

template <class Fn>
int run_worker(void* fn, Loop& loop, MessageChannel& channel) noexcept {
  Fn& main = *static_cast<Fn*>(fn);
  auto outcome = run_until_complete(loop, [&main, &channel] { return main(channel); });
  if (!outcome) return WorkerProcess::kTaskFailedExitCode;
  return outcome.value();
}

}  // namespace detail

// Defined here, not in the library: see message_channel.hpp.
inline Task<Result<ExitStatus>> WorkerProcess::wait() {
  if (status_) co_return *status_;
  if (pid_ <= 0) co_return Error(EINVAL);
  Result<ExitStatus> exit = co_await child_exit(pid_);
  if (exit) status_ = exit.value();
  co_return exit;
}

inline Task<Result<ExitStatus>> WorkerProcess::terminate(std::chrono::nanoseconds grace) {
  if (status_) co_return *status_;
  if (pid_ <= 0) co_return Error(EINVAL);
  (void)send_signal(detail::ProcessFork::terminate_signal());
  Result<ExitStatus> first = co_await fail_after(grace, wait());
  if (first || first.error() != Error(ETIMEDOUT)) co_return first;
  (void)send_signal(detail::ProcessFork::kill_signal());
  Result<ExitStatus> second = co_await wait();
  co_return second;
}

// Forks a worker that runs fn(channel) (a callable taking MessageChannel& and giving a
// Task<int>, the exit code) as the only task of a fresh loop; see the header comment.
template <class Fn>
Result<WorkerProcess> spawn_process(Loop& loop, Fn&& fn, const ProcessOptions& options = {}) noexcept {
  using Main = std::decay_t<Fn>;  // a function becomes a pointer to it
  static_assert(std::is_invocable_v<Main&, MessageChannel&>, "fn takes the worker's MessageChannel&");
  Main main(std::forward<Fn>(fn));  // what the child calls: its copy of this frame's
  return detail::fork_worker(loop, options, &detail::run_worker<Main>, &main);
}

}  // namespace evflow
