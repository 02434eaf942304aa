// Test-only kqueue emulation; what it emulates, and how, is in kqueue_emulation.hpp.
#include "tests/support/kqueue_emulation.hpp"

#include "tests/support/allocation_control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "tests/support/kqueue_emulation_internal.hpp"

namespace evflow::testing::kqueue_emulation {
namespace {

using namespace evflow::detail::kqueue_abi;
using detail::Knote;
using detail::Kqueue;
using detail::Record;

Record read_record(const void* base, int i, bool macos) {
  Record r;
  if (macos) {
    const auto& k = static_cast<const macos::Kevent*>(base)[i];
    r = Record{k.ident, k.filter, k.flags, k.fflags, k.data, k.udata};
  } else {
    const auto& k = static_cast<const freebsd::Kevent*>(base)[i];
    r = Record{k.ident, k.filter, k.flags, k.fflags, k.data, k.udata};
  }
  return r;
}

void write_record(void* base, int i, bool macos, const Record& r) {
  if (macos) {
    auto& k = static_cast<macos::Kevent*>(base)[i];
    k = macos::Kevent{r.ident, r.filter, r.flags, r.fflags, static_cast<intptr_t>(r.data), r.udata};
  } else {
    auto& k = static_cast<freebsd::Kevent*>(base)[i];
    k = freebsd::Kevent{r.ident, r.filter, r.flags, r.fflags, r.data, r.udata, {0, 0, 0, 0}};
  }
}

// Lock order: the registry's mutex, then a kqueue's, then the signal tap's.
struct Registry {
  std::mutex mutex;
  std::map<int, std::shared_ptr<Kqueue>> kqueues;  // by epoll descriptor
  Registry* abandoned = nullptr;                   // a forked child's parent registry, kept reachable (no leak reports)
};

// Never destroyed: a kqueue may be used during exit, and a forked child replaces it
// without destroying the one it inherited (after_fork_in_child).
Registry*& current_registry() {
  static Registry* instance = new Registry;
  return instance;
}
Registry& registry() { return *current_registry(); }

std::shared_ptr<Kqueue> find(int kq) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.kqueues.find(kq);
  return it == r.kqueues.end() ? nullptr : it->second;
}

bool is_descriptor_filter(int16_t filter) { return filter == kEvfiltRead || filter == kEvfiltWrite; }

// Keeps the epoll set in line with the enabled descriptor knotes, so a wait wakes up.
void sync_epoll(Kqueue& q, int fd) {
  uint32_t events = 0;
  for (int16_t filter : {kEvfiltRead, kEvfiltWrite}) {
    auto it = q.knotes.find({static_cast<uintptr_t>(fd), filter});
    if (it != q.knotes.end() && it->second.enabled) events |= filter == kEvfiltRead ? EPOLLIN | EPOLLRDHUP : EPOLLOUT;
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (events == 0) {
    (void)::epoll_ctl(q.set_fd, EPOLL_CTL_DEL, fd, nullptr);
  } else if (::epoll_ctl(q.set_fd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
    (void)::epoll_ctl(q.set_fd, EPOLL_CTL_ADD, fd, &ev);  // EPERM for regular files: poll() still sees them
  }
}

// One change of the changelist; returns 0 or an errno.
int apply_change(Kqueue& q, const Record& change, int16_t user_filter, bool macos) {
  const auto key = std::make_pair(change.ident, change.filter);
  auto it = q.knotes.find(key);
  const bool user = change.filter == user_filter;
  const bool descriptor = is_descriptor_filter(change.filter);
  const bool source = detail::is_source_filter(change.filter);
  if (!user && !descriptor && !source) return EINVAL;
  struct stat st {};
  if (descriptor && ::fstat(static_cast<int>(change.ident), &st) != 0) {
    // Closed: FreeBSD looks the descriptor up first (EBADF), and close(2) removed its knotes.
    q.knotes.erase({change.ident, kEvfiltRead});
    q.knotes.erase({change.ident, kEvfiltWrite});
    return EBADF;
  }
  if (change.flags & kEvDelete) {
    if (it == q.knotes.end()) return ENOENT;
    detail::release(it->second);
    q.knotes.erase(it);
    if (descriptor) sync_epoll(q, static_cast<int>(change.ident));
    return 0;
  }
  if (change.flags & kEvAdd) {
    const bool fresh = it == q.knotes.end();  // else re-adding modifies the existing knote
    if (fresh) it = q.knotes.emplace(key, Knote{}).first;
    Knote& note = it->second;
    if (const int error = source ? detail::attach(q, note, change, fresh, macos) : 0) {
      if (fresh) q.knotes.erase(it);
      return error;
    }
    note.record = change;
    note.record.flags = static_cast<uint16_t>((change.flags & (kEvOneshot | kEvClear | kEvDispatch)) |
                                              (source ? detail::implied_flags(change, macos) : 0));
    note.enabled = !(change.flags & kEvDisable);
    if (fresh || descriptor) note.cleared = false;
    note.device = st.st_dev;
    note.inode = st.st_ino;
  } else if (it == q.knotes.end()) {
    return ENOENT;  // EV_ENABLE, EV_DISABLE or a trigger on nothing
  }
  if (change.flags & kEvEnable) it->second.enabled = true;
  if (change.flags & kEvDisable) it->second.enabled = false;
  if (user && (change.fflags & kNoteTrigger)) {
    it->second.triggered = true;
    const uint64_t one = 1;
    (void)!::write(q.wake_fd, &one, sizeof one);
  }
  if (descriptor) sync_epoll(q, static_cast<int>(change.ident));
  return 0;
}

// Whether a knote's condition holds now, and what it reports.
bool evaluate(Knote& note, int16_t user_filter, bool macos, Record& out, bool& gone) {
  gone = false;
  out = note.record;
  out.data = 0;
  if (note.record.filter == user_filter) return note.triggered;
  if (detail::is_source_filter(note.record.filter)) return detail::evaluate_source(note, macos, out, gone);
  const int fd = static_cast<int>(note.record.ident);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_dev != note.device || st.st_ino != note.inode) {
    gone = true;  // closed: close(2) removes the knotes of a descriptor
    return false;
  }
  pollfd p{fd, static_cast<short>(note.record.filter == kEvfiltRead ? POLLIN | POLLRDHUP : POLLOUT), 0};
  if (::poll(&p, 1, 0) < 0) return false;
  bool ready = false;
  if (note.record.filter == kEvfiltRead) {
    int available = 0;
    if (::ioctl(fd, FIONREAD, &available) == 0) out.data = available;
    ready = (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
    if (p.revents & (POLLRDHUP | POLLHUP)) out.flags |= kEvEof;
  } else {
    ready = (p.revents & (POLLOUT | POLLHUP | POLLERR)) != 0;
    if (p.revents & (POLLHUP | POLLERR)) out.flags |= kEvEof;
  }
  // FreeBSD puts the socket's pending error in fflags with EV_EOF, and leaves it pending.
  // Linux has no way to read it but SO_ERROR, which clears it: the emulation leaves
  // fflags 0, so that a failed connect or a reset is still there for the caller's own
  // SO_ERROR or recv (evflow's backend does not read fflags for descriptors).
  if (note.record.flags & kEvClear) {
    // Edge: report a condition once, again only when it was seen false or grew.
    if (!ready) {
      note.cleared = false;
      return false;
    }
    if (note.cleared && out.data <= note.cleared_data) return false;
  }
  return ready;
}

// Collects ready knotes into events[first..nevents); returns how many.
int collect(Kqueue& q, void* events, int first, int nevents, bool macos, int16_t user_filter) {
  int count = first;
  for (auto it = q.knotes.begin(); it != q.knotes.end() && count < nevents;) {
    Knote& note = it->second;
    Record out;
    bool gone = false;
    const bool ready = note.enabled && evaluate(note, user_filter, macos, out, gone);
    const bool descriptor = is_descriptor_filter(note.record.filter);
    const int fd = static_cast<int>(it->first.first);
    if (gone) {
      detail::release(note);
      it = q.knotes.erase(it);
      if (descriptor) (void)::epoll_ctl(q.set_fd, EPOLL_CTL_DEL, fd, nullptr);
      continue;
    }
    if (!ready) {
      ++it;
      continue;
    }
    write_record(events, count++, macos, out);
    if (note.record.filter == user_filter && (note.record.flags & kEvClear)) note.triggered = false;
    if (descriptor && (note.record.flags & kEvClear)) {
      note.cleared = true;
      note.cleared_data = out.data;
    }
    if (note.record.flags & kEvDispatch) note.enabled = false;
    if (out.flags & kEvOneshot) {  // asked for, or an exited process's
      detail::release(note);
      it = q.knotes.erase(it);
      if (descriptor) sync_epoll(q, fd);
      continue;
    }
    ++it;
  }
  return count - first;
}

int64_t now_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

// The monotonic time `timeout` from now, in nanoseconds; INT64_MAX when that is beyond
// what an int64_t holds (a wait that long ends with the process, as a bounded one would).
int64_t deadline_after(const Timespec& timeout) {
  constexpr int64_t kPerSecond = 1'000'000'000;
  const int64_t now = now_ns();
  const int64_t seconds = timeout.tv_sec < 0 ? 0 : timeout.tv_sec;
  const int64_t nanoseconds = timeout.tv_nsec < 0 ? 0 : timeout.tv_nsec;
  if (seconds > (INT64_MAX - now - nanoseconds) / kPerSecond) return INT64_MAX;
  return now + seconds * kPerSecond + nanoseconds;
}

// Milliseconds for epoll_wait: `left` nanoseconds rounded up, at most INT_MAX (a longer
// wait is taken in several).
int wait_ms(int64_t left) {
  const int64_t ms = left / 1'000'000 + (left % 1'000'000 != 0);
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// Reads the edges of the kqueue's own descriptors, so the nested set stops waking waits
// until a source changes again; collect() then reads the sources themselves.
void take_edges(int sources_fd) {
  epoll_event ready[16];
  while (::epoll_wait(sources_fd, ready, 16, 0) == 16) {
  }
}

// kqueue(2), DESCRIPTION: a kqueue is not inherited by a child created with fork(2), and
// its number is unused there. The handlers hold every lock across fork, so the child finds
// the tables whole and nobody else's lock taken.
void before_fork() {
  Registry& r = registry();
  r.mutex.lock();
  for (auto& entry : r.kqueues)
    entry.second->mutex.lock();
  detail::signals_before_fork();
}

void after_fork_in_parent() {
  Registry& r = registry();
  detail::signals_after_fork_in_parent();
  for (auto& entry : r.kqueues)
    entry.second->mutex.unlock();
  r.mutex.unlock();
}

void after_fork_in_child() {
  Registry& r = registry();
  for (auto& entry : r.kqueues) {
    Kqueue& q = *entry.second;
    for (auto& knote : q.knotes)
      if (knote.second.source_fd >= 0) ::close(knote.second.source_fd);
    for (int* fd : {&q.sources_fd, &q.wake_fd, &q.set_fd, &q.epoll_fd}) {
      ::close(*fd);
      *fd = -1;
    }
  }
  detail::signals_after_fork_in_child();
  // The forking thread, this child's one thread, holds every lock (before_fork): it lets
  // them go, so that no lock counts as held for ever (ThreadSanitizer would order every
  // lock the child takes later after them). Then the kqueues are forgotten without being
  // destroyed: an empty registry takes over. glibc's malloc is usable in the child of fork(2).
  for (auto& entry : r.kqueues)
    entry.second->mutex.unlock();
  r.mutex.unlock();
  Registry* fresh = new Registry;
  fresh->abandoned = &r;
  current_registry() = fresh;
}

void install_fork_handlers() { (void)::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child); }

}  // namespace

int create() noexcept {
  KernelAllocations kernel;  // a kernel does not take from the program's allocator
  static std::once_flag fork_handlers;
  std::call_once(fork_handlers, install_fork_handlers);
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return -1;
  auto q = std::make_shared<Kqueue>();  // closes what it holds if the rest fails
  q->set_fd = ::fcntl(epoll_fd, F_DUPFD_CLOEXEC, 0);
  q->wake_fd = q->set_fd < 0 ? -1 : ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  q->sources_fd = q->wake_fd < 0 ? -1 : ::epoll_create1(EPOLL_CLOEXEC);
  if (q->sources_fd < 0) {
    const int err = errno;
    ::close(epoll_fd);
    errno = err;
    return -1;
  }
  for (int fd : {q->wake_fd, q->sources_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    (void)::epoll_ctl(q->set_fd, EPOLL_CTL_ADD, fd, &ev);
  }
  q->epoll_fd = epoll_fd;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.kqueues[epoll_fd] = std::move(q);
  return epoll_fd;
}

int close(int kq) noexcept {
  KernelAllocations kernel;  // a kernel does not take from the program's allocator
  std::shared_ptr<Kqueue> q;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.kqueues.find(kq);
    if (it != r.kqueues.end()) {
      q = it->second;
      r.kqueues.erase(it);
    }
  }
  if (q) {
    std::lock_guard<std::mutex> lock(q->mutex);
    q->closed = true;
    for (auto& knote : q->knotes)
      detail::release(knote.second);
    q->knotes.clear();
    const uint64_t one = 1;
    (void)!::write(q->wake_fd, &one, sizeof one);  // a wait in progress ends, with EBADF
  }
  // The number goes now; the object, with the descriptors a wait uses, when its last
  // holder lets go.
  return ::close(kq);
}

int kevent(int kq, const void* changes, int nchanges, void* events, int nevents, const Timespec* timeout,
           int16_t user_filter, bool macos) noexcept {
  KernelAllocations kernel;
  std::shared_ptr<Kqueue> q = find(kq);
  if (!q || nchanges < 0 || nevents < 0) {
    errno = q ? EINVAL : EBADF;
    return -1;
  }
  std::unique_lock<std::mutex> lock(q->mutex);
  if (q->closed) {  // closed by another thread since find()
    errno = EBADF;
    return -1;
  }
  // Changes, in order; an error (or any change under EV_RECEIPT) is answered in the
  // eventlist while room lasts, else fails the call (kqueue(2), RETURN VALUES).
  int answered = 0;
  for (int i = 0; i < nchanges; ++i) {
    Record change = read_record(changes, i, macos);
    const int error = apply_change(*q, change, user_filter, macos);
    if (error == 0 && !(change.flags & kEvReceipt)) continue;
    if (answered < nevents) {
      change.flags = kEvError;  // FreeBSD replaces the flags of an answered change
      change.data = error;
      write_record(events, answered++, macos, change);
    } else if (error != 0) {
      errno = error;
      return -1;
    }
  }
  if (answered > 0 || nevents == 0) return answered;  // answers end the call
  // The wake-up eventfd only makes the descriptor readable (a trigger is recorded in its
  // knote): drained before looking, so that a queue polled without blocking is not left
  // readable for good by one trigger (another loop embedding this one polls it).
  uint64_t drained;
  (void)!::read(q->wake_fd, &drained, sizeof drained);
  const int64_t deadline = timeout ? deadline_after(*timeout) : 0;
  for (;;) {
    const int found = collect(*q, events, 0, nevents, macos, user_filter);
    if (found > 0) return found;
    int milliseconds = -1;
    if (timeout) {
      const int64_t left = deadline - now_ns();
      if (left <= 0) return 0;
      milliseconds = wait_ms(left);
    }
    const uint32_t absorbed = detail::absorbed_signals();
    lock.unlock();
    epoll_event ready[8];
    const int n = ::epoll_wait(q->set_fd, ready, 8, milliseconds);
    const int err = errno;
    (void)!::read(q->wake_fd, &drained, sizeof drained);
    take_edges(q->sources_fd);
    lock.lock();
    if (q->closed) {
      errno = EBADF;
      return -1;
    }
    if (n < 0 && err == EINTR) {
      // kqueue(2), ERRORS: EINTR only when no event is ready. And a signal FreeBSD would
      // not have delivered to a handler (ignored, or default) does not end the wait there.
      const int caught = collect(*q, events, 0, nevents, macos, user_filter);
      if (caught > 0) return caught;
      if (detail::absorbed_signals() == absorbed) {
        errno = EINTR;
        return -1;
      }
    }
  }
}

}  // namespace evflow::testing::kqueue_emulation
