#include "hook_lists.hpp"

#include "hook.hpp"

namespace evflow::detail {

void HookLists::detach_all() noexcept {
  auto forget = [](auto& hook) { hook.active_ = false; };
  detach_each(prepares_, forget);
  detach_each(checks_, forget);
  detach_each(idles_, forget);
}

}  // namespace evflow::detail
