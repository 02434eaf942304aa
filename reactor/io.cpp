#include "reactor/io.hpp"

namespace evflow {

Io::~Io() { stop(); }

Error Io::start(int fd, Events interest) noexcept {
  if (loop_ == nullptr || !loop_->open_) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (active_) stop();
  if (fd < 0) return Error(EBADF);
  if (interest.empty() || !kInterestMask.contains(interest) || !callback_) return Error(EINVAL);
  fd_ = fd;
  interest_ = interest;
  return loop_->start_io(*this);
}

Error Io::set_interest(Events interest) noexcept {
  if (interest.empty() || !kInterestMask.contains(interest)) return Error(EINVAL);
  interest_ = interest;
  if (active_) {
    loop_->assert_owner_thread();
    if (!failed_) loop_->queue_change(fd_);
  }
  return Error();
}

void Io::stop() noexcept {
  if (!active_) return;
  loop_->assert_owner_thread();
  loop_->stop_io(*this);
}

void Io::forget() noexcept {
  if (!active_) stop_stamp_ = 0;  // the next start() verifies the descriptor with the kernel
}

}  // namespace evflow
