#include "async.hpp"

namespace evflow {

Error Async::start() noexcept {
  if (Error err = check_loop()) return err;
  if (!callback_) {
    stop();  // a start that fails leaves the watcher inactive
    return Error(EINVAL);
  }
  if (active_) return Error();
  loop_->asyncs().start(*this);
  loop_->core().changed_outside_run();
  return Error();
}

void Async::stop() noexcept {
  if (!active_) return;
  loop_->core().assert_owner_thread();
  loop_->asyncs().stop(*this);
}

}  // namespace evflow
