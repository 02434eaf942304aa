// evflow — Socket: owning a socket descriptor.
#include "socket.hpp"

#include "../platform/descriptor.hpp"

namespace evflow {

int Socket::release() noexcept {
  read_drained_ = false;
  read_handover_ = {};
  write_handover_ = {};
  return std::exchange(fd_, -1);
}

Error Socket::close() noexcept {
  if (fd_ < 0) return Error();
  read_drained_ = false;
  read_handover_ = {};
  write_handover_ = {};
  return detail::close_descriptor(std::exchange(fd_, -1));
}

Result<SocketAddress> Socket::local_address() const noexcept {
  if (fd_ < 0) return Error(EBADF);
  Result<detail::Endpoint> endpoint = detail::socket_local_address(fd_);
  if (!endpoint) return endpoint.error();
  return SocketAddress::from_endpoint(endpoint.value());
}

Error Socket::set_option(detail::SocketOption option, int value) noexcept {
  if (fd_ < 0) return Error(EBADF);
  return detail::socket_set_option(fd_, option, value);
}

Result<int> Socket::option(detail::SocketOption option) const noexcept {
  if (fd_ < 0) return Error(EBADF);
  return detail::socket_get_option(fd_, option);
}

}  // namespace evflow
