// Test-only: what kqueue_emulation.cpp (the table, changes, waits, fork) and
// kqueue_emulation_filters.cpp (EVFILT_SIGNAL, EVFILT_PROC, EVFILT_TIMER) share.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "platform/bsd/kqueue_abi.hpp"

namespace evflow::testing::kqueue_emulation::detail {

// A kevent in neither layout: what both flavours carry.
struct Record {
  uintptr_t ident = 0;
  int16_t filter = 0;
  uint16_t flags = 0;
  uint32_t fflags = 0;
  int64_t data = 0;
  void* udata = nullptr;
};

struct Knote {
  Record record;  // ident, filter, udata, fflags and data as last added
  bool enabled = true;
  bool triggered = false;  // EVFILT_USER
  bool cleared = false;    // EV_CLEAR on a descriptor: reported, not seen false since
  int64_t cleared_data = 0;
  dev_t device = 0;  // the file the descriptor named when added
  ino_t inode = 0;
  int source_fd = -1;        // the knote's own eventfd, pidfd or timerfd; -1 for READ/WRITE/USER
  int signal_slot = -1;      // EVFILT_SIGNAL: its slot in the tap's table
  bool exit_polled = false;  // EVFILT_PROC without a pidfd: source_fd is a timerfd to look again
  uint64_t expirations = 0;  // EVFILT_TIMER: read from the timerfd, not yet reported
};

// Its descriptors other than epoll_fd belong to the object and are closed with it: a
// kevent() in flight holds the object, so what it waits on and reads stays open, and its
// numbers are never reused under it, while close() gives epoll_fd's number back at once.
struct Kqueue {
  Kqueue() = default;
  Kqueue(const Kqueue&) = delete;
  Kqueue& operator=(const Kqueue&) = delete;
  ~Kqueue() {
    for (int fd : {set_fd, wake_fd, sources_fd})
      if (fd >= 0) ::close(fd);
  }

  int epoll_fd = -1;  // the kqueue's number, as the caller holds it; closed by close()
  int set_fd = -1;    // a duplicate of epoll_fd, the same epoll set: what kevent() uses
  int wake_fd = -1;   // an eventfd in the epoll set: a trigger from another thread ends a wait
  // An epoll set of the knotes' own descriptors, edge-triggered, nested in epoll_fd. Kept
  // apart so that a caller's stale descriptor number, reused by one of ours, never makes a
  // removal from epoll_fd take ours out; edge-triggered so that a disabled knote whose
  // source stays ready does not keep waking every wait.
  int sources_fd = -1;
  bool closed = false;  // close() ran: a kevent() still holding the object answers EBADF
  std::mutex mutex;
  std::map<std::pair<uintptr_t, int16_t>, Knote> knotes;  // (ident, filter): one knote each
};

// Whether `filter` is one of the filters below, whose knotes own a descriptor.
bool is_source_filter(int16_t filter);

// EV_ADD of a new knote, or of an existing one (`fresh` false), for the filters below:
// opens or updates the knote's source, before the caller stores `change` in it. 0 or an
// errno; on an error a fresh knote holds nothing and an existing one is unchanged.
int attach(Kqueue& q, Knote& note, const Record& change, bool fresh, bool macos);

// The flags the filter of `change` sets by itself (EV_CLEAR, and EV_ONESHOT for a macOS
// absolute timer), added to those the caller asked for.
uint16_t implied_flags(const Record& change, bool macos);

// Whether the knote's condition holds, and what it reports; `gone` asks for the knote to be
// deleted without a report. Consumes what it reports when the knote has EV_CLEAR.
bool evaluate_source(Knote& note, bool macos, Record& out, bool& gone);

// Frees the knote's descriptor and signal slot (on EV_DELETE, EV_ONESHOT and close()).
void release(Knote& note);

// Takes its locks before fork(2) and drops them after, in the parent and in the child; the
// child also forgets every signal slot (their eventfds are closed with the knotes) and
// puts back the dispositions the tap stood in for.
void signals_before_fork();
void signals_after_fork_in_parent();
void signals_after_fork_in_child();

// Increases on a thread each time the tap takes a signal that FreeBSD would not let
// interrupt a kevent() on that thread (ignored, or default action): an EINTR seen with a
// change here is the emulation's doing, and the wait goes on.
uint32_t absorbed_signals() noexcept;

}  // namespace evflow::testing::kqueue_emulation::detail
