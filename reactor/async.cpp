#include "reactor/async.hpp"

namespace evflow {

Error Async::start() noexcept {
  if (loop_ == nullptr || !loop_->open_) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (!callback_) {
    stop();  // a start that fails leaves the watcher inactive
    return Error(EINVAL);
  }
  if (active_) return Error();
  loop_->start_async(*this);
  loop_->changed_outside_run();
  return Error();
}

void Async::stop() noexcept {
  if (!active_) return;
  loop_->assert_owner_thread();
  loop_->stop_async(*this);
}

}  // namespace evflow
