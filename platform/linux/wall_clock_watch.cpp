#include "wall_clock_watch.hpp"

#include "sys.hpp"

namespace evflow::detail {

Error WallClockWatch::open() noexcept {
  if (fd_ >= 0) return Error();
  Result<int> fd = linux_abi::timerfd_create(linux_abi::kClockRealtime);
  if (!fd) return fd.error();
  fd_ = fd.value();
  if (Error err = arm()) {
    close();
    return err;
  }
  return Error();
}

void WallClockWatch::close() noexcept {
  if (fd_ >= 0) (void)linux_abi::close(fd_);
  fd_ = -1;
}

Error WallClockWatch::arm() noexcept {
  // Year ~2262 is the largest whole-second time the kernel accepts for any clock; any
  // far-future instant will do, it is never meant to expire.
  const linux_abi::KernelItimerspec far{{0, 0}, {int64_t{9'000'000'000}, 0}};
  Error err = linux_abi::timerfd_settime(fd_, linux_abi::kTimerAbsolute | linux_abi::kTimerCancelOnSet, far);
  // ECANCELED: the clock was set between creation and arming; the timer is armed anyway.
  return err.code() == ECANCELED ? Error() : err;
}

Error WallClockWatch::after_fork() noexcept {
  if (fd_ < 0) return Error();
  Result<int> fresh = linux_abi::timerfd_create(linux_abi::kClockRealtime);
  if (!fresh) return fresh.error();
  Error err = linux_abi::dup3(fresh.value(), fd_);
  (void)linux_abi::close(fresh.value());
  return err ? err : arm();
}

bool WallClockWatch::acknowledge() noexcept {
  uint64_t expirations;
  Result<long> got = linux_abi::read(fd_, &expirations, sizeof expirations);
  const bool was_set = !got && got.error().code() == ECANCELED;
  (void)arm();
  return was_set;
}

}  // namespace evflow::detail
