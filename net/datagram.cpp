// evflow — UdpSocket and UnixDatagram: each operation's attempt, binding, connecting.
#include "datagram.hpp"

namespace evflow {

namespace detail {

bool ReceiveFromOperation::attempt() noexcept {
  if (const Error error = check_call(*socket, buffer, size)) {
    outcome = error;
    return true;
  }
  Endpoint endpoint;
  Result<ReceivedDatagram> received =
      socket_receive_from(socket->fd(), buffer, size, want_sender ? &endpoint : nullptr);
  if (!received) {
    outcome = received.error();
    return received.error() != Error(EAGAIN);
  }
  Datagram datagram;
  datagram.size = received.value().size;
  datagram.truncated = received.value().truncated;
  if (want_sender) datagram.from = SocketAddress::from_endpoint(endpoint);
  outcome = datagram;
  return true;
}

bool SendToOperation::attempt() noexcept {
  if (const Error error = check_call(*socket, data, size)) {
    outcome = error;
    return true;
  }
  outcome =
      to != nullptr ? socket_send_to(socket->fd(), data, size, to->endpoint()) : socket_send(socket->fd(), data, size);
  return outcome || outcome.error() != Error(EAGAIN);
}

bool ReceiveFromOperation::prepare(OperationRequest& request) noexcept {
  if (const Error error = check_call(*socket, buffer, size)) {
    outcome = error;
    return false;
  }
  describe_request(request, OperationKind::receive_from, *socket, buffer, size);
  request.endpoint = want_sender ? &sender : nullptr;
  return true;
}

bool ReceiveFromOperation::absorb(OperationRequest& request) noexcept {
  if (request.result == -EAGAIN) return false;  // uring_backend.hpp, note l
  if (request.result < 0) {
    outcome = Error(-request.result);
    return true;
  }
  Datagram datagram;
  datagram.size = static_cast<std::size_t>(request.result);
  datagram.truncated = request.truncated;
  if (want_sender) datagram.from = SocketAddress::from_endpoint(sender);
  outcome = datagram;
  return true;
}

bool SendToOperation::prepare(OperationRequest& request) noexcept {
  if (const Error error = check_call(*socket, data, size)) {
    outcome = error;
    return false;
  }
  describe_request(request, OperationKind::send_to, *socket, data, size);
  if (to != nullptr) destination = to->endpoint();
  request.endpoint = to != nullptr ? &destination : nullptr;
  return true;
}

bool SendToOperation::absorb(OperationRequest& request) noexcept { return absorb_bytes(request, outcome); }

namespace {

// A datagram socket of the address's family, bound to it when `bind` says so.
Result<int> open_datagram(SocketFamily family, const SocketAddress* bind_to) noexcept {
  Result<int> opened = socket_open(family, SocketType::datagram);
  if (!opened) return opened;
  Socket socket(opened.value());  // closed again on failure
  if (bind_to != nullptr) {
    if (Error error = socket_bind(socket.fd(), bind_to->endpoint())) return error;
  }
  return socket.release();
}

SocketFamily family_of(SocketAddress::Family family) noexcept { return static_cast<SocketFamily>(family); }

}  // namespace

}  // namespace detail

Error DatagramSocket::connect(const SocketAddress& address) noexcept {
  if (fd_ < 0) return Error(EBADF);
  return detail::socket_connect(fd_, address.endpoint());
}

Result<SocketAddress> DatagramSocket::peer_address() const noexcept {
  if (fd_ < 0) return Error(EBADF);
  Result<detail::Endpoint> endpoint = detail::socket_peer_address(fd_);
  if (!endpoint) return endpoint.error();
  return SocketAddress::from_endpoint(endpoint.value());
}

Result<UdpSocket> UdpSocket::bind(const SocketAddress& address) noexcept {
  if (!address.is_ip()) return Error(EINVAL);
  Result<int> fd = detail::open_datagram(detail::family_of(address.family()), &address);
  if (!fd) return fd.error();
  return UdpSocket(fd.value());
}

Result<UdpSocket> UdpSocket::open(SocketAddress::Family family) noexcept {
  if (family != SocketAddress::Family::ipv4 && family != SocketAddress::Family::ipv6) return Error(EINVAL);
  Result<int> fd = detail::open_datagram(detail::family_of(family), nullptr);
  if (!fd) return fd.error();
  return UdpSocket(fd.value());
}

Result<UnixDatagram> UnixDatagram::bind(const SocketAddress& address) noexcept {
  if (address.family() != SocketAddress::Family::local) return Error(EINVAL);
  Result<int> fd = detail::open_datagram(detail::SocketFamily::local, &address);
  if (!fd) return fd.error();
  return UnixDatagram(fd.value());
}

Result<UnixDatagram> UnixDatagram::open() noexcept {
  Result<int> fd = detail::open_datagram(detail::SocketFamily::local, nullptr);
  if (!fd) return fd.error();
  return UnixDatagram(fd.value());
}

Result<std::pair<UnixDatagram, UnixDatagram>> UnixDatagram::pair() noexcept {
  Result<detail::SocketPair> pair = detail::socket_pair(detail::SocketType::datagram);
  if (!pair) return pair.error();
  return std::pair<UnixDatagram, UnixDatagram>(UnixDatagram(pair.value().first), UnixDatagram(pair.value().second));
}

}  // namespace evflow
