#include "hook_lists.hpp"

#include "hook.hpp"

namespace evflow::detail {

template <class List>
void HookLists::detach(List& list) noexcept {
  while (auto* hook = list.front()) {
    list.remove(*hook);
    hook->active_ = false;
    hook->detach();
  }
}

void HookLists::detach_all() noexcept {
  detach(prepares_);
  detach(checks_);
  detach(idles_);
}

}  // namespace evflow::detail
