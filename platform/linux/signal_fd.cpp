#include "signal_fd.hpp"

#include "sys.hpp"

namespace evflow::detail {

Error SignalFd::set_mask(uint64_t mask) noexcept {
  Result<int> fd = linux_abi::signalfd(fd_, mask);  // fd_ -1 creates, else changes the mask
  if (!fd) return fd.error();
  fd_ = fd.value();
  mask_ = mask;
  return Error();
}

void SignalFd::close() noexcept {
  if (fd_ >= 0) (void)linux_abi::close(fd_);
  forget();
}

Error SignalFd::after_fork() noexcept {
  if (fd_ < 0) return Error();
  Result<int> fresh = linux_abi::signalfd(-1, mask_);
  if (!fresh) return fresh.error();
  Error err = linux_abi::dup3(fresh.value(), fd_);
  (void)linux_abi::close(fresh.value());
  return err;
}

uint64_t SignalFd::take() noexcept {
  uint64_t taken = 0;
  linux_abi::SignalfdSiginfo records[8];
  for (;;) {
    Result<long> got = linux_abi::read(fd_, records, sizeof records);
    if (!got || got.value() <= 0) return taken;
    const long count = got.value() / static_cast<long>(sizeof records[0]);
    for (long i = 0; i < count; ++i) {
      const uint32_t signo = records[i].signo;
      if (signo >= 1 && signo <= 64) taken |= uint64_t{1} << (signo - 1);
    }
    if (got.value() < static_cast<long>(sizeof records)) return taken;
  }
}

}  // namespace evflow::detail
