// evflow — WithCapacity<Watcher, Bytes>: a watcher with room for larger captures.
//
// Every watcher stores its callback inline, in kCallbackCapacity bytes (three pointers;
// a Timer, kTimerCallbackCapacity: one),
// so that starting and firing never allocate. Where a callback must carry more (a few
// values besides `this`), WithCapacity gives one watcher a buffer of `Bytes` instead: set
// the callback with set_callback(), then start without a callback argument.
//
//   evflow::WithCapacity<evflow::Timer, 64> timer(loop);
//   timer.set_callback([a, b, c, d, e](evflow::Timer&) { ... });
//   timer.start(5ms);
//
// The large callable lives beside the watcher; the watcher's own callback is a one-pointer
// forwarder to it (one more indirect call per callback). Giving a callback to start()
// directly replaces the forwarder, and then the inline limit applies.
#pragma once

#include <cstddef>
#include <utility>

#include "callback.hpp"
#include "loop.hpp"

namespace evflow {

namespace detail {
template <class Signature, std::size_t Capacity>
struct ForwardTo;
template <class R, class... Args, std::size_t Capacity>
struct ForwardTo<R(Args...), Capacity> {
  InlineCallback<R(Args...), Capacity>* target;
  R operator()(Args... args) const noexcept { return (*target)(args...); }
};
}  // namespace detail

template <class Watcher, std::size_t Capacity>
class WithCapacity : public Watcher {
  using Signature = typename Watcher::Callback::Signature;

 public:
  static_assert(Capacity > Watcher::Callback::kCapacity,
                "evflow: WithCapacity is for captures larger than the inline buffer");

  explicit WithCapacity(Loop& loop) noexcept : Watcher(loop) {}
  ~WithCapacity() { Watcher::stop(); }  // before the large callable goes

  template <class F>
  void set_callback(F&& callback) noexcept {
    large_.emplace(std::forward<F>(callback));
    if (large_) {
      Watcher::set_callback(detail::ForwardTo<Signature, Capacity>{&large_});
    } else {
      Watcher::set_callback(static_cast<void (*)()>(nullptr));  // no callback: start() says EINVAL
    }
  }

 private:
  detail::InlineCallback<Signature, Capacity> large_;
};

}  // namespace evflow
