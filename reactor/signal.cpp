#include "reactor/signal.hpp"

#include "signals/signal_registry.hpp"

namespace evflow {

Error Signal::start(int signo) noexcept {
  if (loop_ == nullptr || !loop_->open_ || !callback_) return Error(EINVAL);
  loop_->assert_owner_thread();
  if (!signals::watchable(signo)) return Error(EINVAL);
  if (active_) return loop_->restart_signal(*this, signo);
  signo_ = signo;
  return loop_->start_signal(*this);
}

void Signal::stop() noexcept {
  if (!active_) return;
  loop_->assert_owner_thread();
  loop_->stop_signal(*this);
}

}  // namespace evflow
