// evflow — TcpListener and UnixListener: binding, listening, and accepting with a spare
// descriptor for the days the process runs out of them (net/listener.hpp).
#include "listener.hpp"

#include "../platform/descriptor.hpp"

namespace evflow {

namespace detail {

namespace {

bool out_of_descriptors(Error error) noexcept { return error == Error(EMFILE) || error == Error(ENFILE); }

}  // namespace

ListenerBase& ListenerBase::operator=(ListenerBase&& other) noexcept {
  if (this != &other) {
    if (reserve_ >= 0) (void)close_descriptor(reserve_);
    Socket::operator=(std::move(other));
    reserve_ = std::exchange(other.reserve_, -1);
    shed_ = other.shed_;
  }
  return *this;
}

ListenerBase::~ListenerBase() {
  if (reserve_ >= 0) (void)close_descriptor(reserve_);
}

Error ListenerBase::close() noexcept {
  if (reserve_ >= 0) (void)close_descriptor(std::exchange(reserve_, -1));
  return Socket::close();
}

Error ListenerBase::open(const SocketAddress& address, SocketType type, const ListenOptions& options) noexcept {
  const SocketFamily family = address.endpoint().family;
  Result<int> opened = socket_open(family, type);
  if (!opened) return opened.error();
  Socket socket(opened.value());  // closed again on any failure below
  if (family != SocketFamily::local) {
    if (Error error = socket.set_option(SocketOption::reuse_address, 1)) return error;
  }
  if (options.reuse_port) {
    if (Error error = socket.set_option(SocketOption::reuse_port, 1)) return error;
  }
  if (family == SocketFamily::ipv6) {
    if (Error error = socket.set_option(SocketOption::ipv6_only, options.ipv6_only ? 1 : 0)) return error;
  }
  if (Error error = socket_bind(socket.fd(), address.endpoint())) return error;
  if (Error error = socket_listen(socket.fd(), options.backlog)) return error;
  // The spare: where the system has no such limit (Windows, ENOSYS) there is none.
  Result<int> reserve = reserve_descriptor();
  if (!reserve && reserve.error() != Error(ENOSYS)) return reserve.error();
  Socket::operator=(std::move(socket));
  reserve_ = reserve ? reserve.value() : -1;
  return Error();
}

Result<int> ListenerBase::try_accept(SocketAddress* peer) noexcept {
  if (fd_ < 0) return Error(EBADF);
  Endpoint endpoint;
  for (;;) {
    Result<int> accepted = socket_accept(fd_, peer != nullptr ? &endpoint : nullptr);
    if (accepted) {
      if (peer != nullptr) *peer = SocketAddress::from_endpoint(endpoint);
      return accepted;
    }
    // A connection reset while it waited in the queue: the next one may be fine.
    if (accepted.error() == Error(ECONNABORTED)) continue;
    if (!out_of_descriptors(accepted.error()) || reserve_ < 0) return accepted.error();
    // Out of descriptors: give the spare back, take every waiting connection and close
    // it, so that the peers hear of it and the listener is not readable for nothing.
    (void)close_descriptor(std::exchange(reserve_, -1));
    const uint64_t shed_before = shed_;
    for (;;) {
      Result<int> shed = socket_accept(fd_, nullptr);
      if (!shed) {
        if (shed.error() == Error(ECONNABORTED)) continue;
        break;  // EAGAIN: the queue is empty (or the spare went to another thread)
      }
      (void)close_descriptor(shed.value());
      ++shed_;
    }
    Result<int> reserve = reserve_descriptor();
    if (reserve) reserve_ = reserve.value();
    // Linux's accept4 takes a descriptor number before it looks at the queue, so it says
    // EMFILE even when nothing waits: with nothing shed there is nothing to report, and
    // the accept waits for the next connection instead of failing again at once.
    if (shed_ == shed_before) return Error(EAGAIN);
    return accepted.error();
  }
}

}  // namespace detail

Result<TcpListener> TcpListener::bind(const SocketAddress& address, ListenOptions options) noexcept {
  if (!address.is_ip()) return Error(EINVAL);
  TcpListener listener;
  if (Error error = listener.open(address, detail::SocketType::stream, options)) return error;
  return listener;
}

Result<UnixListener> UnixListener::bind(const SocketAddress& address, ListenOptions options) noexcept {
  if (address.family() != SocketAddress::Family::local) return Error(EINVAL);
  options.reuse_port = false;
  UnixListener listener;
  if (Error error = listener.open(address, detail::SocketType::stream, options)) return error;
  return listener;
}

}  // namespace evflow
