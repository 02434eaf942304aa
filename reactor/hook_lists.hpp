// evflow — detail::HookLists: the loop's Prepare, Check and Idle watchers.
//
// One list per kind, each run in start order at its phase of the iteration (loop.hpp);
// a hook started during its own phase first runs in the next iteration.
#pragma once

#include <cstdint>
#include <utility>

#include "intrusive_list.hpp"
#include "loop_core.hpp"

namespace evflow {

namespace detail {
enum class HookKind : uint8_t { Prepare, Check, Idle };
}
template <detail::HookKind>
class Hook;

namespace detail {

class HookLists {
 public:
  explicit HookLists(LoopCore& core) noexcept : core_(core) {}
  HookLists(const HookLists&) = delete;
  HookLists& operator=(const HookLists&) = delete;

  template <HookKind K>
  auto& list() noexcept {
    return const_cast<IntrusiveList<Hook<K>>&>(std::as_const(*this).list<K>());
  }
  template <HookKind K>
  const auto& list() const noexcept {
    if constexpr (K == HookKind::Prepare) {
      return prepares_;
    } else if constexpr (K == HookKind::Check) {
      return checks_;
    } else {
      return idles_;
    }
  }
  template <HookKind K>
  bool empty() const noexcept {
    return list<K>().empty();
  }
  // The Hook watcher's verbs (hook.hpp).
  template <HookKind K>
  void start(Hook<K>& hook) noexcept {
    list<K>().push_back(hook);
    ++core_.active;
  }
  template <HookKind K>
  void stop(Hook<K>& hook) noexcept {
    list<K>().remove(hook);
    --core_.active;
  }
  // Runs the hooks of kind K present now, in start order.
  template <HookKind K>
  void run() noexcept {
    list<K>().for_each([](Hook<K>& hook) { hook.notify(); });
  }
  // The loop goes away: every hook becomes inactive and forgets it (hook_lists.cpp).
  void detach_all() noexcept;

 private:
  LoopCore& core_;
  IntrusiveList<Hook<HookKind::Prepare>> prepares_;
  IntrusiveList<Hook<HookKind::Check>> checks_;
  IntrusiveList<Hook<HookKind::Idle>> idles_;
};

}  // namespace detail
}  // namespace evflow
