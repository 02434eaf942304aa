#include "platform/linux/epoll_backend.hpp"

#include <climits>
#include <new>

#include "platform/fatal.hpp"

namespace evflow {

namespace {

constexpr int kInitialCapacity = 64;
constexpr int kMaximumCapacity = 4096;
// The wake-up eventfd's data: descriptor -1 (kWakeDescriptor) with tag 0.
constexpr uint64_t kWakeData = 0xffffffffu;
// The sleep timerfd's data: descriptor -2, never shown to the loop (note h).
constexpr uint64_t kTimerData = 0xfffffffeu;

uint32_t epoll_mask(Events interest) noexcept {
  uint32_t mask = 0;
  if (interest.readable()) mask |= linux_abi::kEpollIn;
  if (interest.writable()) mask |= linux_abi::kEpollOut;
  return mask;
}

}  // namespace

Error EpollBackend::open() noexcept {
  if (epoll_fd_ >= 0) return Error(EBUSY);
  if (!events_) {
    events_.reset(new (std::nothrow) linux_abi::EpollEvent[kInitialCapacity]);
    if (!events_) return Error(ENOMEM);
    capacity_ = kInitialCapacity;
  }
  Result<int> wakefd = linux_abi::eventfd(0);
  if (!wakefd) return wakefd.error();
  wake_fd_ = wakefd.value();
  if (Error err = create_instance()) {
    close();
    return err;
  }
  return Error();
}

Error EpollBackend::create_instance() noexcept {
  Result<int> epfd = linux_abi::epoll_create();
  if (!epfd) return epfd.error();
  linux_abi::EpollEvent ev{linux_abi::kEpollIn | linux_abi::kEpollEt, kWakeData};  // note g
  if (Error err = linux_abi::epoll_ctl(epfd.value(), linux_abi::kEpollCtlAdd, wake_fd_, &ev)) {
    (void)linux_abi::close(epfd.value());
    return err;
  }
  epoll_fd_ = epfd.value();
  return Error();
}

void EpollBackend::close() noexcept {
  close_instance();
  if (wake_fd_ >= 0) (void)linux_abi::close(wake_fd_);
  wake_fd_ = -1;
}

void EpollBackend::close_instance() noexcept {
  if (timer_fd_ >= 0) (void)linux_abi::close(timer_fd_);
  if (epoll_fd_ >= 0) (void)linux_abi::close(epoll_fd_);
  timer_fd_ = epoll_fd_ = -1;
  armed_deadline_ = -1;
}

Error EpollBackend::reopen() noexcept {
  // Note f: closing our descriptor never edits a set another process shares. The wake-up
  // eventfd is kept: other threads may be writing to it right now (Async::send), and a
  // closed number could be reused by an unrelated file in between. The timerfd, if its
  // path is in use, is recreated on demand.
  close_instance();
  return create_instance();
}

Error EpollBackend::after_fork() noexcept {
  // Note f: the inherited epoll instance and timerfd are the parent's too; only our
  // references are closed. The inherited eventfd is shared with the parent as well: a
  // fresh one takes over its number (dup3), so code that cached the number keeps working.
  close_instance();
  Result<int> fresh = linux_abi::eventfd(0);
  if (!fresh) return fresh.error();
  if (Error err = linux_abi::dup3(fresh.value(), wake_fd_)) {
    (void)linux_abi::close(fresh.value());
    return err;
  }
  (void)linux_abi::close(fresh.value());
  unread_wakes_ = 0;  // a fresh counter
  return create_instance();
}

Error EpollBackend::control(int op, int fd, Events interest, uint32_t tag) noexcept {
  ++interest_syscalls_;
  linux_abi::EpollEvent ev{epoll_mask(interest), (uint64_t{tag} << 32) | static_cast<uint32_t>(fd)};
  return linux_abi::epoll_ctl(epoll_fd_, op, fd, &ev);
}

void EpollBackend::apply(std::span<InterestChange> changes) noexcept {
  for (InterestChange& change : changes) {
    if (change.source != Source::Descriptor) {  // not kReportsProcesses: a caller's mistake
      change.error = Error(EINVAL);
      continue;
    }
    if (change.to.empty()) {
      change.error = control(linux_abi::kEpollCtlDel, change.fd, change.to, change.tag);
      continue;
    }
    const bool add = change.from.empty();
    Error err = control(add ? linux_abi::kEpollCtlAdd : linux_abi::kEpollCtlMod, change.fd, change.to, change.tag);
    if (add && err.code() == EEXIST) {  // note e
      err = control(linux_abi::kEpollCtlMod, change.fd, change.to, change.tag);
    } else if (!add && err.code() == ENOENT) {  // note e
      err = control(linux_abi::kEpollCtlAdd, change.fd, change.to, change.tag);
    }
    change.error = err;
  }
}

Result<int> EpollBackend::wait(int64_t timeout_ns, int64_t deadline_ns) noexcept {
  Result<int> count = 0;
  if (timeout_ns == 0) {
    count = linux_abi::epoll_pwait(epoll_fd_, events_.get(), capacity_, 0);  // a poll: the busy path
  } else if (timeout_ns < 0 || sleep_path_ == SleepPath::Milliseconds) {
    count = wait_milliseconds(timeout_ns);  // a poll or a forever: exact on every path
  } else if (sleep_path_ == SleepPath::Nanoseconds) {
    linux_abi::KernelTimespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
    count = linux_abi::epoll_pwait2(epoll_fd_, events_.get(), capacity_, &ts);
    if (!count && (count.error().code() == ENOSYS || count.error().code() == EPERM)) {
      sleep_path_ = kernel_floor_ = SleepPath::TimerFd;  // note d
      return wait(timeout_ns, deadline_ns);
    }
  } else {
    count = wait_with_timerfd(timeout_ns, deadline_ns);
  }
  if (count && timer_fd_ >= 0) count = remove_timer_events(count.value());  // on every path (note h)
  if (count && count.value() == capacity_ && capacity_ < kMaximumCapacity) grow_event_buffer();
  return count;
}

Result<int> EpollBackend::wait_milliseconds(int64_t timeout_ns) noexcept {
  int timeout_ms = -1;
  if (timeout_ns >= 0) {
    const int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0);  // round up: never early
    timeout_ms = ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
  }
  return linux_abi::epoll_pwait(epoll_fd_, events_.get(), capacity_, timeout_ms);
}

Result<int> EpollBackend::wait_with_timerfd(int64_t timeout_ns, int64_t deadline_ns) noexcept {
  if (timer_fd_ < 0) {
    Result<int> fd = linux_abi::timerfd_create(linux_abi::kClockMonotonic);
    linux_abi::EpollEvent ev{linux_abi::kEpollIn, kTimerData};
    if (fd && linux_abi::epoll_ctl(epoll_fd_, linux_abi::kEpollCtlAdd, fd.value(), &ev)) {
      (void)linux_abi::close(fd.value());
      fd = Error(EMFILE);
    }
    if (!fd) {
      sleep_path_ = kernel_floor_ = SleepPath::Milliseconds;  // note d: the last resort
      return wait_milliseconds(timeout_ns);
    }
    timer_fd_ = fd.value();
  }
  if (deadline_ns != armed_deadline_) {
    const linux_abi::KernelItimerspec spec{{0, 0}, {deadline_ns / 1'000'000'000, deadline_ns % 1'000'000'000}};
    if (Error err = linux_abi::timerfd_settime(timer_fd_, linux_abi::kTimerAbsolute, spec)) return err;
    armed_deadline_ = deadline_ns;
  }
  return linux_abi::epoll_pwait(epoll_fd_, events_.get(), capacity_, -1);
}

int EpollBackend::remove_timer_events(int count) noexcept {
  for (int i = 0; i < count; ++i) {
    if (events_[i].data != kTimerData) continue;
    uint64_t expirations;
    (void)linux_abi::read(timer_fd_, &expirations, sizeof expirations);
    armed_deadline_ = -1;  // fired: re-arm next time even for the same deadline
    events_[i] = events_[count - 1];
    return count - 1;  // registered once, so reported at most once
  }
  return count;
}

void EpollBackend::grow_event_buffer() noexcept {
  // Called only when a wait filled the whole buffer, before its events are read: the
  // reported events are copied across. Amortised: at most log2(4096 / 64) times per loop.
  const int capacity = capacity_ * 2;
  auto bigger = std::unique_ptr<linux_abi::EpollEvent[]>(new (std::nothrow) linux_abi::EpollEvent[capacity]);
  if (!bigger) return;  // keep the old buffer: fewer events per wait, nothing lost
  for (int i = 0; i < capacity_; ++i)
    bigger[i] = events_[i];
  events_ = std::move(bigger);
  capacity_ = capacity;
}

void EpollBackend::wake() noexcept {
  const uint64_t one = 1;
  (void)linux_abi::write(wake_fd_, &one, sizeof one);  // EAGAIN: counter full, already awake (note g)
}

void EpollBackend::acknowledge_wake() noexcept {
  if (++unread_wakes_ < kWakesBetweenReads) return;  // edge-triggered: no read needed (note g)
  unread_wakes_ = 0;
  uint64_t value;
  (void)linux_abi::read(wake_fd_, &value, sizeof value);
}

}  // namespace evflow
