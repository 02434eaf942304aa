// evflow — Child: a callback with the exit status of a child process.
//
// Linux: one pidfd per watched child (pidfd_open, Linux >= 5.3), readable when the
// child exits; the status is then collected with waitpid(pid, WNOHANG) for that pid
// only. Where pidfd_open is unavailable (ENOSYS, or EPERM under a seccomp filter), or
// when the loop is asked to (Loop::request_child_path), SIGCHLD through the signal layer
// plus waitpid(pid, WNOHANG) for each watched pid. FreeBSD and macOS: the loop's kqueue
// reports the exit (EVFILT_PROC, NOTE_EXIT), then waitpid(pid, WNOHANG) for that pid; a
// child the kqueue refuses to watch (ESRCH: it is already gone) is looked at on the next
// iteration's child check. Either way evflow never reaps a child nobody watches, so it
// does not steal children from other code (semantic 8); for the same reason there is no
// "any child" watcher: pid must name one child.
// Windows: `pid` is a process id. start() opens a handle to the process (which also
// keeps the id from being reused), the loop's completion port hears of its end
// (RegisterWaitForSingleObject, platform/win/iocp_backend.hpp, note i), and the exit
// code is read from the handle: ExitStatus::exited() is true whenever it could be read,
// and code() is the whole 32-bit exit code (TerminateProcess's too). Windows has no reaping and no
// parent-child tie: any process this one may open (SYNCHRONIZE and
// PROCESS_QUERY_LIMITED_INFORMATION) can be watched.
//
// Decisions (README, "Semantics"):
// - Once the exit is reported the watcher is stopped: the process is gone (semantic 15).
// - Several watchers of one child in one loop each get its status (the one that reaped
//   it first, the others at the child check that follows, or when their own pidfd
//   reports).
// - Only termination is reported (exit or death by signal), not stop/continue.
// - If other code reaped the child first, the callback still runs once, with a status
//   whose reaped_elsewhere() is true.
// - In a forked child, Child watchers inherited from the parent are stopped without a
//   callback: those processes are not the forked child's children.
// - Child callbacks run in the Io phase (pidfd) or in the child check that follows the
//   Signal phase (SIGCHLD, process event).
//
// Errors from start() (which leave the watcher inactive, even one that was active):
// EINVAL for pid <= 0, for a watcher without a callback, when the
// loop is not open or was destroyed; ECHILD when pid is not an unreaped child of this
// process (Windows: no such process; EACCES when it may not be opened); EMFILE when no descriptor is left for the pidfd
// (Linux); on kqueue, what kevent() answers for the EVFILT_PROC registration other than ESRCH (e.g. ENOMEM).
#pragma once

#include <sys/types.h>

#include "../platform/child_process.hpp"
#include "../platform/result.hpp"
#include "callback.hpp"
#include "intrusive_list.hpp"
#include "io.hpp"
#include "loop.hpp"
#include "watcher.hpp"

namespace evflow {

// How a child ended, as waitpid(2) reported it.
class ExitStatus {
 public:
  constexpr ExitStatus() noexcept = default;
  static constexpr ExitStatus from_wait_status(int status) noexcept { return ExitStatus(status, true); }
  static constexpr ExitStatus unknown() noexcept { return ExitStatus(0, false); }

  // True if the child called exit() or returned from main.
  bool exited() const noexcept;
  // Its exit code (0-255). Precondition: exited().
  int code() const noexcept;
  // True if a signal killed it.
  bool signaled() const noexcept;
  // The signal that killed it. Precondition: signaled().
  int signal_number() const noexcept;
  bool core_dumped() const noexcept;
  // True if other code collected the status first; nothing else is known then.
  bool reaped_elsewhere() const noexcept { return !known_; }
  // The raw waitpid() status.
  int raw() const noexcept { return status_; }

 private:
  constexpr ExitStatus(int status, bool known) noexcept : status_(status), known_(known) {}
  int status_ = 0;
  bool known_ = false;
};

class Child : public detail::ListNode<Child>, public detail::WatcherBase {
 public:
  using Callback = detail::InlineCallback<void(Child&, ExitStatus)>;

  explicit Child(Loop& loop) noexcept : WatcherBase(loop), pidfd_watch_(loop) {}
  ~Child() { stop(); }

  // Calls `callback(child, status)` (or `callback()`) once `pid` has exited.
  template <class F>
  Error start(pid_t pid, F&& callback) noexcept {
    stop();
    callback_.emplace(std::forward<F>(callback));
    return start(pid);
  }
  // Same, keeping the callback set before.
  Error start(pid_t pid) noexcept;
  // Sets the callback without starting the watcher (libev's ev_init): start() without a
  // callback argument then uses it. On an active watcher it replaces the callback in place;
  // a null function pointer removes it and stops the watcher.
  template <class F>
  void set_callback(F&& callback) noexcept {
    callback_.emplace(std::forward<F>(callback));
    if (!callback_) stop();  // a null function pointer is no callback: nothing left to call
  }

  // No callback runs after this returns. Idempotent. The child is not reaped.
  void stop() noexcept;

  bool active() const noexcept { return active_; }
  pid_t pid() const noexcept { return pid_; }
  // The status reported to the last callback.
  ExitStatus status() const noexcept { return status_; }

 private:
  friend class detail::ChildReaper;

  // Reaps the child if it has exited; then stops and calls back. True if it did.
  bool try_reap() noexcept;

  Error start_pidfd() noexcept;
  void report(ExitStatus result) noexcept;  // stops, then calls back with `result`

  Io pidfd_watch_;  // pidfd path: readable when the child exits
  pid_t pid_ = 0;
  detail::ChildProcess process_;  // the pidfd (Linux) or the process handle (Windows)
  uint32_t tag_ = 0;              // process-event path: the registration's tag
  bool active_ = false;
  bool process_registered_ = false;  // process-event path: the backend still holds it
  ChildPath path_ = ChildPath::Pidfd;
  bool status_shared_ = false;  // another watcher of the pid reaped it: report shared_status_
  ExitStatus status_;
  ExitStatus shared_status_;
  Callback callback_;
};

}  // namespace evflow
