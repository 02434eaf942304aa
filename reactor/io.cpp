#include "reactor/io.hpp"

#include "platform/descriptor.hpp"

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
  if (Error err = loop_->start_io(*this)) return err;
  loop_->changed_outside_run();
  return Error();
}

Error Io::set_interest(Events interest) noexcept {
  if (interest.empty() || !kInterestMask.contains(interest)) return Error(EINVAL);
  interest_ = interest;
  if (active_) {
    loop_->assert_owner_thread();
    if (!failed_) loop_->queue_change(fd_);
    loop_->changed_outside_run();
  }
  return Error();
}

void Io::stop() noexcept {
  if (!active_) return;
  loop_->assert_owner_thread();
  loop_->stop_io(*this);
}

Error Io::close() noexcept {
  if (fd_ < 0) return Error(EBADF);
  if (loop_ == nullptr) {  // the loop was destroyed: nothing of it to undo
    const int fd = fd_;
    fd_ = -1;
    return close_descriptor(fd);
  }
  loop_->assert_owner_thread();
  return loop_->close_io(*this);
}

void Io::forget() noexcept {
  if (!active_) stop_stamp_ = 0;  // the next start() verifies the descriptor with the kernel
}

}  // namespace evflow
