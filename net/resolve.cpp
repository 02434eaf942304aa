#include "resolve.hpp"

#include "../platform/socket.hpp"

namespace evflow {

namespace detail {

HostLookup look_up_host(const std::string& host, uint16_t port) noexcept {
  HostLookup lookup;
  Result<std::size_t> count = lookup_host(host.c_str(), port, lookup.endpoints, kMaxResolvedAddresses);
  if (count)
    lookup.count = count.value();
  else
    lookup.error = count.error();
  return lookup;
}

}  // namespace detail
}  // namespace evflow
