#include "signal.hpp"

#include "../signals/signal_registry.hpp"

namespace evflow {

Error Signal::start(int signo) noexcept {
  if (Error err = check_loop()) return err;
  Error err;
  if (!callback_ || !detail::signals::watchable(signo)) {
    err = Error(EINVAL);
  } else if (active_) {
    err = loop_->signal_sources().restart(*this, signo);
  } else {
    signo_ = signo;
    return loop_->signal_sources().start(*this);
  }
  if (err) stop();  // a start that fails leaves the watcher inactive
  return err;
}

void Signal::stop() noexcept {
  if (!active_) return;
  loop_->core().assert_owner_thread();
  loop_->signal_sources().stop(*this);
}

}  // namespace evflow
