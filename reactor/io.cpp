#include "io.hpp"

#include "../platform/descriptor.hpp"

namespace evflow {

Io::~Io() { stop(); }

Error Io::start(int fd, Events interest) noexcept {
  if (Error err = check_loop()) return err;
  if (active_) stop();
  if (fd < 0) return Error(EBADF);
  if (interest.empty() || !detail::kInterestMask.contains(interest) || !callback_) return Error(EINVAL);
  fd_ = fd;
  interest_ = interest;
  if (Error err = loop_->descriptors().start(*this)) return err;
  loop_->core().changed_outside_run();
  return Error();
}

Error Io::set_interest(Events interest) noexcept {
  if (interest.empty() || !detail::kInterestMask.contains(interest)) return Error(EINVAL);
  interest_ = interest;
  if (active_) {
    loop_->core().assert_owner_thread();
    loop_->descriptors().interest_changed(*this);
    loop_->core().changed_outside_run();
  }
  return Error();
}

void Io::stop() noexcept {
  if (!active_) return;
  loop_->core().assert_owner_thread();
  loop_->descriptors().stop(*this);
}

Error Io::close() noexcept {
  if (fd_ < 0) return Error(EBADF);
  if (detached()) {  // the loop was destroyed: nothing of it to undo
    const int fd = fd_;
    fd_ = -1;
    return detail::close_descriptor(fd);
  }
  loop_->core().assert_owner_thread();
  return loop_->descriptors().close(*this);
}

Error Io::start(const Handover& from, Events interest) noexcept {
  if (active_) stop();
  stop_stamp_ = from.stamp;  // what start() compares with the descriptor's last stop
  Error err = start(from.fd, interest);
  if (err) stop_stamp_ = 0;
  return err;
}

Io::Handover Io::hand_over() noexcept {
  stop();
  const Handover handover{fd_, stop_stamp_};
  stop_stamp_ = 0;
  return handover;
}

void Io::forget() noexcept {
  if (!active_) stop_stamp_ = 0;  // the next start() verifies the descriptor with the kernel
}

}  // namespace evflow
