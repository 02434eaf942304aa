// evflow — detail::ChildReaper: the loop's Child watchers and how it learns of exits.
//
// Three paths (ChildPath, loop.hpp): a pidfd per child, watched by an Io watcher inside
// the Child (Linux); SIGCHLD through the loop's own Signal watcher, after which every
// watched pid is asked (waitpid(pid, WNOHANG)); and the backend's own process events
// (kqueue's EVFILT_PROC, IOCP's process waits), one registration per pid shared by its
// watchers. The reaper keeps the list of active Child watchers, makes the registrations
// of the last two paths, and runs the child check: once per iteration when due, every
// watcher that may have something to collect tries (child.cpp reaps and reports).
#pragma once

#include <memory>

#include "../platform/backend.hpp"
#include "change_batch.hpp"
#include "intrusive_list.hpp"
#include "loop_core.hpp"

namespace evflow {

class Child;
class ExitStatus;
class Signal;

// How Child watchers learn that a child exited (see reactor/child.hpp).
enum class ChildPath : uint8_t {
  Pidfd,         // one pidfd per child, readable on exit (Linux >= 5.3)
  SigChld,       // SIGCHLD through the signal layer, then waitpid on each watched pid
  ProcessEvent,  // the backend reports the exit itself (kqueue: EVFILT_PROC, NOTE_EXIT;
                 // IOCP: a wait on the process handle that posts to the port)
};

namespace detail {

class ChildReaper {
 public:
  static constexpr ChildPath kDefaultPath = Backend::kReportsProcesses ? ChildPath::ProcessEvent : ChildPath::Pidfd;

  explicit ChildReaper(LoopCore& core) noexcept;
  ~ChildReaper();
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;

  ChildPath path() const noexcept { return path_; }
  // A path this build lacks means the default (loop.hpp, Loop::request_child_path).
  void request_path(ChildPath path) noexcept;
  // This kernel has no pidfds (ENOSYS, EPERM): SIGCHLD from now on.
  void pidfds_missing() noexcept { path_ = ChildPath::SigChld; }

  // The Child watcher's verbs (child.cpp): the watcher's registration on its path (the
  // pidfd path's Io watcher is the Child's own) and its place in the list. Errors: what
  // the SIGCHLD watch or the backend answers.
  Error start(Child& child) noexcept;
  void stop(Child& child) noexcept;
  // `reaper` collected its process's status: the loop's other watchers of the same pid
  // get it too, at the next child check.
  void share_status(Child& reaper, const ExitStatus& status) noexcept;

  bool check_due() const noexcept { return check_due_; }
  // The child check: every watcher that may have something to collect tries.
  void check() noexcept;
  // A process exit the backend reported (kReportsProcesses).
  void on_backend_report(const ReadyEvent& event) noexcept;
  // The process registrations, again, into a new kernel object.
  void reregister(ChangeBatch& batch) noexcept;
  // The outcome of a process registration applied through a batch.
  Error record(const InterestChange& change) noexcept;
  // In a forked child: every watcher is stopped without a callback (their processes are
  // the parent's children).
  void drop_inherited() noexcept;
  // The loop's own watchers among the active ones (its SIGCHLD one).
  int internal_active() const noexcept;
  // The loop goes away: every watcher becomes inactive and forgets it.
  void detach_all() noexcept;

 private:
  Error watch_sigchld() noexcept;
  void unwatch_sigchld() noexcept;
  Error watch_process(Child& child) noexcept;
  void unwatch_process(Child& child) noexcept;

  LoopCore& core_;
  bool check_due_ = false;
  ChildPath path_ = kDefaultPath;
  IntrusiveList<Child> children_;
  std::unique_ptr<Signal> sigchld_;  // internal: SIGCHLD for ChildPath::SigChld
  int sigchld_children_ = 0;
};

}  // namespace detail
}  // namespace evflow
