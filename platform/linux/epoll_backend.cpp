#include "epoll_backend.hpp"

#include <climits>
#include <limits>
#include <new>

#include "../fatal.hpp"
#include "../timer_slack.hpp"

namespace evflow::detail {

namespace {

constexpr int kInitialCapacity = 64;
constexpr int kMaximumCapacity = 4096;
// The wake-up eventfd's data: descriptor -1 (kWakeDescriptor) with tag 0.
constexpr uint64_t kWakeData = 0xffffffffu;
// The sleep timerfd's data: descriptor -2, never shown to the loop (note h).
constexpr uint64_t kTimerData = 0xfffffffeu;
// The instance that replaces this one, nested in it while renewing: descriptor -3, never
// shown (note j).
constexpr uint64_t kNestedInstanceData = 0xfffffffdu;

// A descriptor the kernel could not make for want of resources, as opposed to one this
// kernel cannot make at all.
bool out_of_resources(Error err) noexcept {
  return err.code() == EMFILE || err.code() == ENFILE || err.code() == ENOMEM;
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
  Error err = make_timer();
  Result<int> epfd = err ? Result<int>(err) : create_instance();
  if (!epfd) {
    close();
    return epfd.error();
  }
  epoll_fd_ = epfd.value();
  // Note d: whether epoll_pwait2 exists is asked now, with a zero timeout, so that
  // sleep_path() tells the truth before the first timed sleep too.
  const linux_abi::KernelTimespec zero{0, 0};
  Result<int> probe = linux_abi::epoll_pwait2(epoll_fd_, events_.get(), capacity_, &zero);
  if (!probe && (probe.error().code() == ENOSYS || probe.error().code() == EPERM))
    kernel_floor_ = timer_fd_ >= 0 ? SleepPath::TimerFd : SleepPath::Milliseconds;
  choose_sleep_path();
  return Error();
}

void EpollBackend::choose_sleep_path() noexcept {
  constexpr int64_t kPreciseSlack = 1'000;  // note i
  const SleepPath automatic = thread_timer_slack() > kPreciseSlack ? SleepPath::TimerFd : SleepPath::Nanoseconds;
  const SleepPath preferred = path_requested_ ? requested_path_ : automatic;
  sleep_path_ = preferred > kernel_floor_ ? preferred : kernel_floor_;
}

Error EpollBackend::set_timer_slack(int64_t ns) noexcept {
  if (Error err = set_thread_timer_slack(ns)) return err;
  choose_sleep_path();
  return Error();
}

Error EpollBackend::make_timer() noexcept {
  Result<int> fd = linux_abi::timerfd_create(linux_abi::kClockMonotonic);
  if (!fd) {
    if (out_of_resources(fd.error())) return fd.error();
    kernel_floor_ = SleepPath::Milliseconds;  // note d: no timerfds on this kernel
    return Error();
  }
  timer_fd_ = fd.value();
  armed_deadline_ = -1;
  timer_may_fire_ = false;
  return Error();
}

Result<int> EpollBackend::create_instance() noexcept {
  Result<int> epfd = linux_abi::epoll_create();
  if (!epfd) return epfd;
  linux_abi::EpollEvent wake{linux_abi::kEpollIn | linux_abi::kEpollEt, kWakeData};  // note g
  linux_abi::EpollEvent timer{linux_abi::kEpollIn, kTimerData};
  Error err = linux_abi::epoll_ctl(epfd.value(), linux_abi::kEpollCtlAdd, wake_fd_, &wake);
  if (!err && timer_fd_ >= 0) err = linux_abi::epoll_ctl(epfd.value(), linux_abi::kEpollCtlAdd, timer_fd_, &timer);
  if (err) {
    (void)linux_abi::close(epfd.value());
    return err;
  }
  return epfd;
}

void EpollBackend::close() noexcept {
  close_instances();
  if (timer_fd_ >= 0) (void)linux_abi::close(timer_fd_);
  if (wake_fd_ >= 0) (void)linux_abi::close(wake_fd_);
  timer_fd_ = wake_fd_ = -1;
  armed_deadline_ = -1;
  timer_may_fire_ = false;
}

void EpollBackend::close_instances() noexcept {
  if (new_epoll_fd_ >= 0) (void)linux_abi::close(new_epoll_fd_);
  if (epoll_fd_ >= 0) (void)linux_abi::close(epoll_fd_);
  new_epoll_fd_ = epoll_fd_ = -1;
}

Error EpollBackend::reopen() noexcept {
  // Note f: closing our descriptor never edits a set another process shares; the new
  // instance exists before the old ones go. The wake-up eventfd and the timerfd are
  // kept: other threads may be writing to the eventfd right now (Async::send), and a
  // closed number could be reused by an unrelated file in between.
  Result<int> fresh = create_instance();
  if (!fresh) return fresh.error();
  close_instances();
  epoll_fd_ = fresh.value();
  armed_deadline_ = -1;  // re-armed at the next timed wait, whatever it was
  return Error();
}

Error EpollBackend::renew() noexcept {
  if (renewing()) return Error();
  // The new instance starts empty and is watched from the old one (note j): nesting an
  // empty instance costs nothing, where nesting the old one would make the kernel walk
  // all of its registrations (the loop check of epoll_ctl(2), ELOOP).
  Result<int> fresh = linux_abi::epoll_create();
  if (!fresh) return fresh.error();
  linux_abi::EpollEvent nested{linux_abi::kEpollIn, kNestedInstanceData};
  ++interest_syscalls_;
  if (Error err = linux_abi::epoll_ctl(epoll_fd_, linux_abi::kEpollCtlAdd, fresh.value(), &nested)) {
    (void)linux_abi::close(fresh.value());
    return err;
  }
  new_epoll_fd_ = fresh.value();
  return Error();
}

Error EpollBackend::retire() noexcept {
  if (!renewing()) return Error();
  // The wake-up and the timer join the new instance, which then replaces the old one.
  // Closing the old one drops what could not be taken out of it, the orphan included.
  // If the kernel refuses either (no memory, max_user_watches), the old instance stays,
  // with both, and the caller tries again later.
  linux_abi::EpollEvent wake{linux_abi::kEpollIn | linux_abi::kEpollEt, kWakeData};  // note g
  linux_abi::EpollEvent timer{linux_abi::kEpollIn, kTimerData};
  interest_syscalls_ += 2;
  if (Error err = linux_abi::epoll_ctl(new_epoll_fd_, linux_abi::kEpollCtlAdd, wake_fd_, &wake)) return err;
  if (timer_fd_ >= 0) {
    if (Error err = linux_abi::epoll_ctl(new_epoll_fd_, linux_abi::kEpollCtlAdd, timer_fd_, &timer)) {
      (void)linux_abi::epoll_ctl(new_epoll_fd_, linux_abi::kEpollCtlDel, wake_fd_, nullptr);
      return err;
    }
  }
  armed_deadline_ = -1;  // re-armed at the next timed wait: an expiry may have gone with the old one
  (void)linux_abi::close(epoll_fd_);
  epoll_fd_ = new_epoll_fd_;
  new_epoll_fd_ = -1;
  return Error();
}

Error EpollBackend::after_fork() noexcept {
  // Note f: the inherited epoll instances, eventfd and timerfd are the parent's too; only
  // our references to them go. A fresh eventfd takes over the wake-up's number (dup3), so
  // code that cached the number keeps working. Each step can be taken again: a failure
  // is retried by the next call, from the start.
  close_instances();
  if (timer_fd_ >= 0) (void)linux_abi::close(timer_fd_);
  timer_fd_ = -1;
  if (Error err = linux_abi::renew_eventfd(wake_fd_)) return err;
  unread_wakes_ = 0;  // a fresh counter
  wake_word_.reset();
  if (kernel_floor_ != SleepPath::Milliseconds) {
    if (Error timer = make_timer()) return timer;
  }
  Result<int> epfd = create_instance();
  if (!epfd) return epfd.error();
  epoll_fd_ = epfd.value();
  return Error();
}

Error EpollBackend::control(int op, int fd, Events interest, uint32_t tag) noexcept {
  ++interest_syscalls_;
  linux_abi::EpollEvent ev{interest_mask(interest), (uint64_t{tag} << 32) | static_cast<uint32_t>(fd)};
  return linux_abi::epoll_ctl(renewing() ? new_epoll_fd_ : epoll_fd_, op, fd, &ev);  // note j
}

void EpollBackend::apply(std::span<InterestChange> changes) noexcept {
  for (InterestChange& change : changes) {
    if (change.source != Source::Descriptor) {  // neither kReportsSignals nor kReportsProcesses: a caller's mistake
      change.error = Error(EINVAL);
      continue;
    }
    if (change.to.empty()) {
      change.error = control(linux_abi::kEpollCtlDel, change.fd, change.to, change.tag);
      continue;
    }
    const bool add = change.from.empty();
    if (add && renewing()) {
      // Out of the old instance as it moves to the new one (note j), so that retire()
      // closes an instance holding only what could not be removed: closing one that
      // still holds thousands of registrations takes milliseconds of its own.
      ++interest_syscalls_;
      (void)linux_abi::epoll_ctl(epoll_fd_, linux_abi::kEpollCtlDel, change.fd, nullptr);
    }
    Error err = control(add ? linux_abi::kEpollCtlAdd : linux_abi::kEpollCtlMod, change.fd, change.to, change.tag);
    if (add && err.code() == EEXIST) {  // note e
      err = control(linux_abi::kEpollCtlMod, change.fd, change.to, change.tag);
    } else if (!add && err.code() == ENOENT) {  // note e
      err = control(linux_abi::kEpollCtlAdd, change.fd, change.to, change.tag);
    }
    change.error = err;
  }
}

Result<int> EpollBackend::wait_blocking(int64_t timeout_ns, int64_t deadline_ns) noexcept {
  // Note m: a wait that may block announces itself on the word; a wake-up already there
  // makes it a poll.
  Result<int> count = 0;
  if (wake_word_.announce_wait()) {
    count = wait_on_path(timeout_ns, deadline_ns);
    wake_word_.end_wait();
  } else {
    count = poll();
  }
  if (!count) return count;
  return reported(count.value());
}

int EpollBackend::tidy_events(int count) noexcept {
  if (renewing()) count = collect_nested(count);            // note j
  if (timer_may_fire_) count = remove_timer_events(count);  // on every path (note h)
  if (count == capacity_ && capacity_ < kMaximumCapacity) grow_event_buffer();
  return count;
}

int EpollBackend::report_wake(int count) noexcept {
  for (int i = 0; i < count; ++i)
    if (events_[i].data == kWakeData) return count;
  if (count == capacity_) return count;  // no room: the word stays sent, the next wait reports it
  events_[count] = linux_abi::EpollEvent{linux_abi::kEpollIn, kWakeData};  // as the eventfd reports it
  return count + 1;
}

Result<int> EpollBackend::wait_on_path(int64_t timeout_ns, int64_t deadline_ns) noexcept {
  if (timeout_ns < 0 || sleep_path_ == SleepPath::Milliseconds)
    return wait_milliseconds(timeout_ns);  // exact on every path
  if (sleep_path_ == SleepPath::Nanoseconds) {
    linux_abi::KernelTimespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
    Result<int> count = linux_abi::epoll_pwait2(epoll_fd_, events_.get(), capacity_, &ts);
    if (!count && (count.error().code() == ENOSYS || count.error().code() == EPERM)) {
      sleep_path_ = kernel_floor_ = timer_fd_ >= 0 ? SleepPath::TimerFd : SleepPath::Milliseconds;  // note d
      return wait_on_path(timeout_ns, deadline_ns);
    }
    return count;
  }
  return wait_with_timerfd(deadline_ns);
}

Result<int> EpollBackend::wait_milliseconds(int64_t timeout_ns) noexcept {
  int timeout_ms = -1;
  if (timeout_ns >= 0) {
    const int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0);  // round up: never early
    timeout_ms = ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
  }
  return linux_abi::epoll_pwait(epoll_fd_, events_.get(), capacity_, timeout_ms);
}

Result<int> EpollBackend::wait_with_timerfd(int64_t deadline_ns) noexcept {
  if (Error err = arm_timer(deadline_ns)) return err;
  return linux_abi::epoll_pwait(epoll_fd_, events_.get(), capacity_, -1);
}

Error EpollBackend::arm_timer(int64_t deadline_ns) noexcept {
  if (deadline_ns == armed_deadline_) return Error();
  // An absolute deadline of 0 would disarm the timer: the earliest instant that arms it.
  const int64_t at = deadline_ns < 1 ? 1 : deadline_ns;
  const linux_abi::KernelItimerspec spec{{0, 0}, {at / 1'000'000'000, at % 1'000'000'000}};
  if (Error err = linux_abi::timerfd_settime(timer_fd_, linux_abi::kTimerAbsolute, spec)) return err;
  armed_deadline_ = deadline_ns;
  timer_may_fire_ = true;
  return Error();
}

void EpollBackend::keep_ready_at(int64_t, int64_t deadline_ns) noexcept {
  // Note m: polled by another loop, this one does not wait: every wake-up writes the
  // eventfd from now on, and one sent before is written now.
  if (wake_word_.poll_from_outside()) signal_wake_fd();
  // Note k. Without a timerfd (the millisecond floor) there is nothing to arm.
  if (timer_fd_ < 0 || deadline_ns == std::numeric_limits<int64_t>::max()) return;  // no deadline
  (void)arm_timer(deadline_ns);
}

int EpollBackend::collect_nested(int count) noexcept {
  for (int i = 0; i < count; ++i) {
    if (events_[i].data != kNestedInstanceData) continue;
    // The nested instance stands for its own ready descriptors: read them in its place.
    events_[i] = events_[count - 1];
    --count;
    Result<int> more = linux_abi::epoll_poll(new_epoll_fd_, events_.get() + count, capacity_ - count);
    return more ? count + more.value() : count;
  }
  return count;
}

int EpollBackend::remove_timer_events(int count) noexcept {
  for (int i = 0; i < count; ++i) {
    if (events_[i].data != kTimerData) continue;
    uint64_t expirations;
    (void)linux_abi::read(timer_fd_, &expirations, sizeof expirations);
    armed_deadline_ = -1;  // fired: re-arm next time even for the same deadline
    timer_may_fire_ = false;
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

Result<int> EpollBackend::wait_for_wake(bool block) noexcept {
  if (!(block ? wake_word_.park() : wake_word_.sent())) return 0;
  events_[0] = linux_abi::EpollEvent{linux_abi::kEpollIn, kWakeData};  // as the eventfd reports it
  return 1;
}

void EpollBackend::wake() noexcept {
  // Parked (note l) or at work: the word alone tells the loop (note m).
  if (wake_word_.send()) signal_wake_fd();
}

void EpollBackend::signal_wake_fd() noexcept {
  const uint64_t one = 1;
  (void)linux_abi::write(wake_fd_, &one, sizeof one);  // EAGAIN: counter full, already awake (note g)
}

void EpollBackend::acknowledge_wake() noexcept {
  wake_word_.acknowledge();
  if (++unread_wakes_ < kWakesBetweenReads) return;  // edge-triggered: no read needed (note g)
  unread_wakes_ = 0;
  uint64_t value;
  (void)linux_abi::read(wake_fd_, &value, sizeof value);
}

}  // namespace evflow::detail
