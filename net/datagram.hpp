// evflow — UdpSocket and UnixDatagram: datagrams sent and received from a task.
//
//   auto udp = evflow::UdpSocket::bind(evflow::SocketAddress::ipv4_loopback(0));
//   evflow::Result<evflow::Datagram> d = co_await udp.value().receive_from(buffer, sizeof buffer);
//   if (d && d.value().truncated) ...           // the datagram was longer than the buffer
//   co_await udp.value().send_to(reply, n, d.value().from);
//
// Each call runs as net/socket.hpp says: tried at once, waits only on EAGAIN, a
// cancellation point; a cancelled receive takes no datagram, a cancelled send sends
// none. A datagram is sent whole or not at all (EMSGSIZE when it is larger than the
// system allows).
//
// Connected mode: connect(address) fixes the peer; send() and receive() then need no
// address, only the peer's datagrams are received, and an ICMP "port unreachable" for an
// earlier datagram shows as ECONNREFUSED on a later call (Linux; others may drop it).
#pragma once

#include <cstddef>

#include "socket.hpp"

namespace evflow {

// One datagram received.
struct Datagram {
  std::size_t size = 0;    // bytes stored in the buffer
  bool truncated = false;  // the datagram was longer than the buffer: the rest is lost
  SocketAddress from;      // the sender (receive_from only)
};

namespace detail {

struct ReceiveFromOperation {
  static constexpr const char* kActivity = "receiving a datagram";
  static constexpr Events kInterest = Readable;
  Socket* socket;
  void* buffer;
  std::size_t size;
  bool want_sender;
  Result<Datagram> outcome = Datagram{};
  Endpoint sender{};  // the completion path's
  int fd() const noexcept { return socket->fd(); }
  Io::Handover* handover() noexcept { return &SocketAccess::read_handover(*socket); }
  bool wait_first() const noexcept { return false; }
  bool attempt() noexcept;
  bool prepare(OperationRequest& request) noexcept;
  bool absorb(OperationRequest& request) noexcept;
  Result<Datagram> result(Error interrupted) const noexcept {
    if (interrupted) return interrupted;
    return outcome;
  }
};

struct SendToOperation {
  static constexpr const char* kActivity = "sending a datagram";
  static constexpr Events kInterest = Writable;
  Socket* socket;
  const void* data;
  std::size_t size;
  const SocketAddress* to;  // null: the connected peer
  Result<std::size_t> outcome = std::size_t{0};
  Endpoint destination{};  // the completion path's copy of *to
  int fd() const noexcept { return socket->fd(); }
  Io::Handover* handover() noexcept { return &SocketAccess::write_handover(*socket); }
  bool wait_first() const noexcept { return false; }
  bool attempt() noexcept;
  bool prepare(OperationRequest& request) noexcept;
  bool absorb(OperationRequest& request) noexcept;
  Result<std::size_t> result(Error interrupted) const noexcept {
    if (interrupted) return interrupted;
    return outcome;
  }
};

}  // namespace detail

class DatagramSocket : public Socket {
 public:
  using Socket::Socket;

  // The next datagram and its sender.
  detail::SocketAwait<detail::ReceiveFromOperation> receive_from(void* buffer, std::size_t size) noexcept {
    return detail::SocketAwait<detail::ReceiveFromOperation>(detail::ReceiveFromOperation{this, buffer, size, true});
  }
  // The next datagram (connected mode, or when the sender does not matter).
  detail::SocketAwait<detail::ReceiveFromOperation> receive(void* buffer, std::size_t size) noexcept {
    return detail::SocketAwait<detail::ReceiveFromOperation>(detail::ReceiveFromOperation{this, buffer, size, false});
  }
  // Sends one datagram to `to`; `to` must outlive the await. Gives the bytes sent (all).
  detail::SocketAwait<detail::SendToOperation> send_to(const void* data, std::size_t size,
                                                       const SocketAddress& to) noexcept {
    return detail::SocketAwait<detail::SendToOperation>(detail::SendToOperation{this, data, size, &to});
  }
  // Sends one datagram to the connected peer (EDESTADDRREQ when not connected; Windows:
  // ENOTCONN).
  detail::SocketAwait<detail::SendToOperation> send(const void* data, std::size_t size) noexcept {
    return detail::SocketAwait<detail::SendToOperation>(detail::SendToOperation{this, data, size, nullptr});
  }

  // Fixes the peer (connected mode). Never waits.
  Error connect(const SocketAddress& address) noexcept;
  // The connected peer (ENOTCONN when not connected).
  Result<SocketAddress> peer_address() const noexcept;
};

class UdpSocket : public DatagramSocket {
 public:
  using DatagramSocket::DatagramSocket;
  // A UDP socket bound to `address` (port 0: any free port).
  static Result<UdpSocket> bind(const SocketAddress& address) noexcept;
  // An unbound UDP socket of the family (ipv4 or ipv6): the first send binds it.
  static Result<UdpSocket> open(SocketAddress::Family family) noexcept;
};

class UnixDatagram : public DatagramSocket {
 public:
  using DatagramSocket::DatagramSocket;
  // A local datagram socket bound to a path or abstract name.
  static Result<UnixDatagram> bind(const SocketAddress& address) noexcept;
  // An unbound local datagram socket (it can send, and receive replies only when bound).
  static Result<UnixDatagram> open() noexcept;
  // Two connected local datagram sockets (socketpair). EAFNOSUPPORT on Windows.
  static Result<std::pair<UnixDatagram, UnixDatagram>> pair() noexcept;
};

}  // namespace evflow
