// Test-only kqueue emulation; what it emulates, and how, is in kqueue_emulation.hpp.
#include "tests/support/kqueue_emulation.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace evflow::testing::kqueue_emulation {
namespace {

using namespace kqueue_abi;

// A kevent in neither layout: what both flavours carry.
struct Record {
  uintptr_t ident = 0;
  int16_t filter = 0;
  uint16_t flags = 0;
  uint32_t fflags = 0;
  int64_t data = 0;
  void* udata = nullptr;
};

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

struct Knote {
  Record record;  // ident, filter, udata, fflags as last added
  bool enabled = true;
  bool triggered = false;  // EVFILT_USER
  bool cleared = false;    // EV_CLEAR on a descriptor: reported, not seen false since
  int64_t cleared_data = 0;
  dev_t device = 0;  // the file the descriptor named when added
  ino_t inode = 0;
};

struct Kqueue {
  int epoll_fd = -1;
  int wake_fd = -1;  // an eventfd in the epoll set: a trigger from another thread ends a wait
  std::mutex mutex;
  std::map<std::pair<uintptr_t, int16_t>, Knote> knotes;  // (ident, filter): one knote each
};

std::mutex g_registry_mutex;
std::map<int, std::shared_ptr<Kqueue>> g_registry;

std::shared_ptr<Kqueue> find(int kq) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  auto it = g_registry.find(kq);
  return it == g_registry.end() ? nullptr : it->second;
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
    (void)::epoll_ctl(q.epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  } else if (::epoll_ctl(q.epoll_fd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) {
    (void)::epoll_ctl(q.epoll_fd, EPOLL_CTL_ADD, fd, &ev);  // EPERM for regular files: poll() still sees them
  }
}

// One change of the changelist; returns 0 or an errno.
int apply_change(Kqueue& q, const Record& change, int16_t user_filter) {
  const auto key = std::make_pair(change.ident, change.filter);
  auto it = q.knotes.find(key);
  const bool user = change.filter == user_filter;
  if (!user && !is_descriptor_filter(change.filter)) return EINVAL;
  struct stat st {};
  if (!user && ::fstat(static_cast<int>(change.ident), &st) != 0) {
    // Closed: FreeBSD looks the descriptor up first (EBADF), and close(2) removed its knotes.
    q.knotes.erase({change.ident, kEvfiltRead});
    q.knotes.erase({change.ident, kEvfiltWrite});
    return EBADF;
  }
  if (change.flags & kEvDelete) {
    if (it == q.knotes.end()) return ENOENT;
    q.knotes.erase(it);
    if (!user) sync_epoll(q, static_cast<int>(change.ident));
    return 0;
  }
  if (change.flags & kEvAdd) {
    Knote& note = q.knotes[key];  // re-adding modifies the existing knote
    const bool fresh = it == q.knotes.end();
    note.record = change;
    note.record.flags = static_cast<uint16_t>(change.flags & (kEvOneshot | kEvClear | kEvDispatch));
    note.enabled = !(change.flags & kEvDisable);
    if (fresh || !user) note.cleared = false;
    note.device = st.st_dev;
    note.inode = st.st_ino;
    it = q.knotes.find(key);
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
  if (!user) sync_epoll(q, static_cast<int>(change.ident));
  return 0;
}

// Whether a knote's condition holds now, and what it reports.
bool evaluate(Knote& note, int16_t user_filter, Record& out, bool& gone) {
  gone = false;
  out = note.record;
  out.flags = note.record.flags;
  out.data = 0;
  if (note.record.filter == user_filter) return note.triggered;
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
  if (out.flags & kEvEof) {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0) out.fflags = static_cast<uint32_t>(error);
  }
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
    const bool ready = note.enabled && evaluate(note, user_filter, out, gone);
    if (gone) {
      const int fd = static_cast<int>(it->first.first);
      it = q.knotes.erase(it);
      (void)::epoll_ctl(q.epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
      continue;
    }
    if (!ready) {
      ++it;
      continue;
    }
    write_record(events, count++, macos, out);
    if (note.record.filter == user_filter && (note.record.flags & kEvClear)) note.triggered = false;
    if (note.record.flags & kEvClear) {
      note.cleared = true;
      note.cleared_data = out.data;
    }
    if (note.record.flags & kEvDispatch) note.enabled = false;
    if (note.record.flags & kEvOneshot) {
      const bool descriptor = is_descriptor_filter(note.record.filter);
      const int fd = static_cast<int>(it->first.first);
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

}  // namespace

int create() noexcept {
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return -1;
  const int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    const int err = errno;
    ::close(epoll_fd);
    errno = err;
    return -1;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd;
  (void)::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  auto q = std::make_shared<Kqueue>();
  q->epoll_fd = epoll_fd;
  q->wake_fd = wake_fd;
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  g_registry[epoll_fd] = std::move(q);
  return epoll_fd;
}

int refusal(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? EPERM : 0;
}

int close(int kq) noexcept {
  std::shared_ptr<Kqueue> q;
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    auto it = g_registry.find(kq);
    if (it != g_registry.end()) {
      q = it->second;
      g_registry.erase(it);
    }
  }
  if (q) ::close(q->wake_fd);
  return ::close(kq);
}

int kevent(int kq, const void* changes, int nchanges, void* events, int nevents, const Timespec* timeout,
           int16_t user_filter, bool macos) noexcept {
  std::shared_ptr<Kqueue> q = find(kq);
  if (!q || nchanges < 0 || nevents < 0) {
    errno = q ? EINVAL : EBADF;
    return -1;
  }
  std::unique_lock<std::mutex> lock(q->mutex);
  // Changes, in order; an error (or any change under EV_RECEIPT) is answered in the
  // eventlist while room lasts, else fails the call (kqueue(2), RETURN VALUES).
  int answered = 0;
  for (int i = 0; i < nchanges; ++i) {
    Record change = read_record(changes, i, macos);
    const int error = apply_change(*q, change, user_filter);
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
  const int64_t deadline = timeout ? now_ns() + timeout->tv_sec * 1'000'000'000LL + timeout->tv_nsec : -1;
  for (;;) {
    const int found = collect(*q, events, 0, nevents, macos, user_filter);
    if (found > 0) return found;
    int64_t left = -1;
    if (deadline >= 0) {
      left = deadline - now_ns();
      if (left <= 0) return 0;
    }
    lock.unlock();
    epoll_event ready[8];
    const int wait_ms = left < 0 ? -1 : static_cast<int>((left + 999'999) / 1'000'000);
    const int n = ::epoll_wait(q->epoll_fd, ready, 8, wait_ms);
    const int err = errno;
    uint64_t drained;
    (void)!::read(q->wake_fd, &drained, sizeof drained);
    lock.lock();
    if (n < 0 && err == EINTR) {
      errno = EINTR;
      return -1;
    }
  }
}

}  // namespace evflow::testing::kqueue_emulation
