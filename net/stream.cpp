// evflow — TcpStream and UnixStream: each operation's attempt, and connecting.
#include "stream.hpp"

#include "../platform/descriptor.hpp"

namespace evflow {

namespace detail {

bool ReadOperation::attempt() noexcept {
  if (const Error error = check_call(*socket, buffer, size)) {
    outcome = error;
    return true;
  }
  if (size == 0) {
    outcome = std::size_t{0};
    return true;
  }
  outcome = socket_receive(socket->fd(), buffer, size);
  // Drained: nothing there, or less than asked for (a stream gives all it holds).
  SocketAccess::read_drained(*socket) =
      outcome ? outcome.value() != 0 && outcome.value() < size : outcome.error() == Error(EAGAIN);
  return outcome || outcome.error() != Error(EAGAIN);
}

bool ReadExactOperation::attempt() noexcept {
  if (const Error error = check_call(*socket, buffer, size)) {
    outcome.error = error;
    return true;
  }
  while (outcome.bytes < size) {
    Result<std::size_t> n = socket_receive(socket->fd(), buffer + outcome.bytes, size - outcome.bytes);
    if (!n) {
      SocketAccess::read_drained(*socket) = n.error() == Error(EAGAIN);
      if (n.error() == Error(EAGAIN)) return false;
      outcome.error = n.error();
      return true;
    }
    if (n.value() == 0) {
      SocketAccess::read_drained(*socket) = false;
      outcome.end_of_stream = true;
      return true;
    }
    outcome.bytes += n.value();
  }
  SocketAccess::read_drained(*socket) = false;
  return true;
}

bool WriteOperation::attempt() noexcept {
  if (const Error error = check_call(*socket, data, size)) {
    outcome = error;
    return true;
  }
  if (size == 0) {
    outcome = std::size_t{0};
    return true;
  }
  outcome = socket_send(socket->fd(), data, size);
  return outcome || outcome.error() != Error(EAGAIN);
}

bool WriteAllOperation::attempt() noexcept {
  if (const Error error = check_call(*socket, data, size)) {
    outcome.error = error;
    return true;
  }
  while (outcome.bytes < size) {
    Result<std::size_t> n = socket_send(socket->fd(), data + outcome.bytes, size - outcome.bytes);
    if (!n) {
      if (n.error() == Error(EAGAIN)) return false;
      outcome.error = n.error();
      return true;
    }
    outcome.bytes += n.value();
  }
  return true;
}

Error open_for_connect(const SocketAddress& address, bool local, int& fd) noexcept {
  fd = -1;
  const SocketFamily family = address.endpoint().family;
  if (family == SocketFamily::unspecified) return Error(EINVAL);
  if ((family == SocketFamily::local) != local) return Error(EAFNOSUPPORT);
  Result<int> opened = socket_open(family, SocketType::stream);
  if (!opened) return opened.error();
  fd = opened.value();
  return Error();
}

Error begin_connect(const SocketAddress& address, bool local, int& fd) noexcept {
  if (Error error = open_for_connect(address, local, fd)) return error;
  const Error error = socket_connect(fd, address.endpoint());
  if (error && error != Error(EINPROGRESS)) {
    (void)close_descriptor(fd);
    fd = -1;
  }
  return error;
}

// --- the completion path (io_uring): each call as a request --------------------------

namespace {

// What read_exact and write_all share: the outcome of one part. True when the transfer
// has finished (all moved, an error, the end of the stream); false after a part, with the
// request made for the rest.
bool absorb_part(OperationRequest& request, Transfer& outcome, const char* base, std::size_t size) noexcept {
  if (request.result == -EAGAIN) return false;
  if (request.result < 0) {
    outcome.error = Error(-request.result);
    return true;
  }
  if (request.result == 0 && request.kind == OperationKind::receive) {
    outcome.end_of_stream = true;
    return true;
  }
  outcome.bytes += static_cast<std::size_t>(request.result);
  if (outcome.bytes == size) return true;
  request.buffer = const_cast<char*>(base) + outcome.bytes;
  request.size = request_bytes(size - outcome.bytes);
  return false;
}

// A call that moves bytes once: false when it finished before any system call (bad
// input: EBADF, EINVAL; 0 bytes), with the outcome set.
bool prepare_once(OperationRequest& request, OperationKind kind, const Socket& socket, const void* buffer,
                  std::size_t size, Result<std::size_t>& outcome) noexcept {
  if (const Error error = check_call(socket, buffer, size)) {
    outcome = error;
    return false;
  }
  if (size == 0) {
    outcome = std::size_t{0};
    return false;
  }
  describe_request(request, kind, socket, buffer, size);
  return true;
}

// The same for a transfer (read_exact, write_all).
bool prepare_transfer(OperationRequest& request, OperationKind kind, const Socket& socket, const void* buffer,
                      std::size_t size, Transfer& outcome) noexcept {
  if (const Error error = check_call(socket, buffer, size)) {
    outcome.error = error;
    return false;
  }
  if (size == 0) return false;
  describe_request(request, kind, socket, buffer, size);
  return true;
}

}  // namespace

bool ReadOperation::prepare(OperationRequest& request) noexcept {
  return prepare_once(request, OperationKind::receive, *socket, buffer, size, outcome);
}
bool ReadOperation::absorb(OperationRequest& request) noexcept { return absorb_bytes(request, outcome); }

bool ReadExactOperation::prepare(OperationRequest& request) noexcept {
  return prepare_transfer(request, OperationKind::receive, *socket, buffer, size, outcome);
}
bool ReadExactOperation::absorb(OperationRequest& request) noexcept {
  return absorb_part(request, outcome, buffer, size);
}

bool WriteOperation::prepare(OperationRequest& request) noexcept {
  return prepare_once(request, OperationKind::send, *socket, data, size, outcome);
}
bool WriteOperation::absorb(OperationRequest& request) noexcept { return absorb_bytes(request, outcome); }

bool WriteAllOperation::prepare(OperationRequest& request) noexcept {
  return prepare_transfer(request, OperationKind::send, *socket, data, size, outcome);
}
bool WriteAllOperation::absorb(OperationRequest& request) noexcept { return absorb_part(request, outcome, data, size); }

}  // namespace detail

Error StreamSocket::shutdown_write() noexcept {
  if (fd_ < 0) return Error(EBADF);
  return detail::socket_shutdown(fd_, detail::ShutdownHow::write);
}

Result<SocketAddress> StreamSocket::peer_address() const noexcept {
  if (fd_ < 0) return Error(EBADF);
  Result<detail::Endpoint> endpoint = detail::socket_peer_address(fd_);
  if (!endpoint) return endpoint.error();
  return SocketAddress::from_endpoint(endpoint.value());
}

Error TcpStream::close_with_reset() noexcept {
  if (fd_ < 0) return Error(EBADF);
  const Error error = set_option(detail::SocketOption::linger_seconds, 0);
  const Error closed = close();
  return error ? error : closed;
}

Result<std::pair<UnixStream, UnixStream>> UnixStream::pair() noexcept {
  Result<detail::SocketPair> pair = detail::socket_pair(detail::SocketType::stream);
  if (!pair) return pair.error();
  return std::pair<UnixStream, UnixStream>(UnixStream(pair.value().first), UnixStream(pair.value().second));
}

}  // namespace evflow
