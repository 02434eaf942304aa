// evflow — TcpListener and UnixListener: a listening socket that accepts connections from
// a task.
//
//   auto listener = evflow::TcpListener::bind(evflow::SocketAddress::ipv4_any(8080));
//   for (;;) {
//     evflow::Result<evflow::TcpStream> s = co_await listener.value().accept();
//     if (!s) continue;                      // EMFILE (see below), ...
//     group.spawn(serve, std::move(s.value()));
//   }
//
// accept() runs as net/socket.hpp says: tried at once, waits only on EAGAIN, a
// cancellation point; a cancelled accept takes no connection. Each accepted stream is
// non-blocking and close-on-exec (accept4 where the system has it). A connection the peer
// aborted before it was taken (ECONNABORTED, and the errors Linux reports for it) is
// skipped: accept() goes on with the next one.
//
// Out of descriptors (EMFILE, ENFILE). A listener whose queue holds a connection stays
// readable, so a server that cannot accept it would wake at once forever and leave the
// peer hanging. Each listener keeps one spare descriptor (platform/socket.hpp,
// reserve_descriptor: an eventfd on Linux, an unbound local socket on FreeBSD and
// macOS). When accept fails for want of descriptors, the listener gives the spare back,
// accepts the waiting connections and closes them (their peers see the end of the stream
// at once), takes the spare again, and accept() gives EMFILE (or ENFILE) once for each
// such pass, however many connections it shed, for the server to log or shed load. With nothing waiting (Linux's
// accept4 says EMFILE even then: it takes a descriptor number first) the accept waits for
// the next connection as usual: nothing spins. shed_connections() counts those closed.
// When even the spare cannot be taken back (another thread took the descriptor), the
// connections wait in the queue and accept() gives the error each time it is called;
// Windows has no such limit and no spare.
#pragma once

#include <cstdint>

#include "stream.hpp"

namespace evflow {

struct ListenOptions {
  int backlog = 1024;       // the kernel caps it (net.core.somaxconn on Linux)
  bool reuse_port = false;  // SO_REUSEPORT: several listeners (one per loop) share the port
  bool ipv6_only = false;   // an IPv6 listener takes no IPv4 connection (IPV6_V6ONLY)
};

namespace detail {

class ListenerBase;

template <class Stream>
struct AcceptOperation {
  static constexpr const char* kActivity = "accepting a connection";
  static constexpr Events kInterest = Readable;
  ListenerBase* listener;
  SocketAddress* peer;  // may be null
  Result<int> outcome = Error(EAGAIN);
  Endpoint peer_endpoint{};  // the completion path's
  int fd() const noexcept;
  Io::Handover* handover() noexcept;
  bool wait_first() const noexcept { return false; }
  bool attempt() noexcept;
  bool prepare(OperationRequest& request) noexcept;
  bool absorb(OperationRequest& request) noexcept;
  // After an accept that found no descriptor and nothing to shed: the kernel's accept
  // would fail again at once (it takes a descriptor before it looks at the queue), so
  // the next try waits for readiness instead.
  bool wants_readiness() const noexcept { return out_of_descriptors; }
  bool out_of_descriptors = false;
  Result<Stream> result(Error interrupted) noexcept {
    if (interrupted) return interrupted;
    if (!outcome) return outcome.error();
    return Stream(outcome.value());
  }
};

class ListenerBase : public Socket {
 public:
  ListenerBase() noexcept = default;
  ListenerBase(ListenerBase&& other) noexcept
      : Socket(std::move(other)), reserve_(std::exchange(other.reserve_, -1)), shed_(other.shed_) {}
  ListenerBase& operator=(ListenerBase&& other) noexcept;
  ~ListenerBase();

  // Closes the listening socket and the spare: connections to the address are refused
  // from now on. The error close(2) reported for the listening socket.
  Error close() noexcept;

  // Connections accepted and closed at once for want of descriptors (see above).
  uint64_t shed_connections() const noexcept { return shed_; }

  // One accept attempt: a descriptor, Error(EAGAIN), or the failure (the EMFILE shedding
  // above done). `peer` may be null.
  Result<int> try_accept(SocketAddress* peer) noexcept;

 protected:
  // Makes, binds and listens a socket of the address's family.
  Error open(const SocketAddress& address, SocketType type, const ListenOptions& options) noexcept;

 private:
  int reserve_ = -1;  // the spare descriptor, -1 when there is none
  uint64_t shed_ = 0;
};

template <class Stream>
bool AcceptOperation<Stream>::attempt() noexcept {
  outcome = listener->try_accept(peer);
  return outcome || outcome.error() != Error(EAGAIN);
}
template <class Stream>
bool AcceptOperation<Stream>::prepare(OperationRequest& request) noexcept {
  if (listener->fd() < 0) {
    outcome = Error(EBADF);
    return false;
  }
  request.kind = OperationKind::accept;
  request.fd = listener->fd();
  request.endpoint = peer != nullptr ? &peer_endpoint : nullptr;
  return true;
}
template <class Stream>
bool AcceptOperation<Stream>::absorb(OperationRequest& request) noexcept {
  const int result = request.result;
  if (result >= 0) {
    if (peer != nullptr) *peer = SocketAddress::from_endpoint(peer_endpoint);
    outcome = result;
    return true;
  }
  if (result == -EAGAIN || result == -ECONNABORTED) return false;  // the next connection
  if (result == -EMFILE || result == -ENFILE) {
    // Out of descriptors: the system call, which sheds the connection (above), or takes
    // it if a descriptor came free meanwhile.
    outcome = listener->try_accept(peer);
    out_of_descriptors = !outcome && outcome.error() == Error(EAGAIN);
    return !out_of_descriptors;
  }
  outcome = Error(-result);
  return true;
}
template <class Stream>
int AcceptOperation<Stream>::fd() const noexcept {
  return listener->fd();
}
template <class Stream>
Io::Handover* AcceptOperation<Stream>::handover() noexcept {
  return &SocketAccess::read_handover(*listener);
}

}  // namespace detail

class TcpListener : public detail::ListenerBase {
 public:
  // Binds to `address` (SO_REUSEADDR set, so a restarted server gets its port back while
  // old connections linger in TIME_WAIT) and listens. Port 0 picks a free port:
  // local_address() tells which. Errors: EADDRINUSE, EACCES (a privileged port),
  // EADDRNOTAVAIL (an address of no interface), EINVAL for a local address.
  static Result<TcpListener> bind(const SocketAddress& address, ListenOptions options = {}) noexcept;

  // The next connection; its peer's address in `*peer` when given.
  detail::SocketAwait<detail::AcceptOperation<TcpStream>> accept(SocketAddress* peer = nullptr) noexcept {
    return detail::SocketAwait<detail::AcceptOperation<TcpStream>>(detail::AcceptOperation<TcpStream>{this, peer});
  }
};

class UnixListener : public detail::ListenerBase {
 public:
  // Binds to a local path or abstract name and listens. A path that exists is EADDRINUSE:
  // remove a stale socket file first (the listener does not remove it on close).
  static Result<UnixListener> bind(const SocketAddress& address, ListenOptions options = {}) noexcept;

  detail::SocketAwait<detail::AcceptOperation<UnixStream>> accept(SocketAddress* peer = nullptr) noexcept {
    return detail::SocketAwait<detail::AcceptOperation<UnixStream>>(detail::AcceptOperation<UnixStream>{this, peer});
  }
};

}  // namespace evflow
