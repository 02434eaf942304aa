#include "reactor/signal.hpp"

#include "signals/signal_registry.hpp"

namespace evflow {

Error Signal::start(int signo) noexcept {
  if (loop_ == nullptr || !loop_->open_) return Error(EINVAL);
  loop_->assert_owner_thread();
  Error err;
  if (!callback_ || !signals::watchable(signo)) {
    err = Error(EINVAL);
  } else if (active_) {
    err = loop_->restart_signal(*this, signo);
  } else {
    signo_ = signo;
    return loop_->start_signal(*this);
  }
  if (err) stop();  // a start that fails leaves the watcher inactive
  return err;
}

void Signal::stop() noexcept {
  if (!active_) return;
  loop_->assert_owner_thread();
  loop_->stop_signal(*this);
}

}  // namespace evflow
