#include "async_set.hpp"

#include "async.hpp"

namespace evflow::detail {

void AsyncSet::start(Async& watcher) noexcept {
  asyncs_.push_back(watcher);
  watcher.active_ = true;
  ++core_.active;
  if (watcher.pending_.load()) scan_ = true;  // a send that arrived while stopped
}

void AsyncSet::stop(Async& watcher) noexcept {
  asyncs_.remove(watcher);
  watcher.active_ = false;
  --core_.active;
}

void AsyncSet::dispatch_scan() noexcept {
  scan_ = false;
  asyncs_.for_each([this](Async& watcher) {
    if (watcher.pending_.exchange(false)) {
      ++core_.dispatched;
      watcher.notify();
    }
  });
}

void AsyncSet::detach_all() noexcept {
  detach_each(asyncs_, [](Async& w) { w.active_ = false; });
}

}  // namespace evflow::detail
