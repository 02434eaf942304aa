// evflow — TcpStream and UnixStream: a connected byte stream, read and written from a task.
//
//   evflow::Result<evflow::TcpStream> s = co_await evflow::TcpStream::connect(address);
//   evflow::Result<std::size_t> n = co_await s.value().read(buffer, sizeof buffer);  // 0: the end
//   evflow::Transfer sent = co_await s.value().write_all(reply.data(), reply.size());
//
// Each call runs as net/socket.hpp says: tried at once, waits only on EAGAIN, a
// cancellation point. What each gives:
//
//   call                 gives                     end of stream   cancelled while waiting
//   read(buf, n)         Result<size_t>, >= 1       value 0         ECANCELED, nothing read
//   read_exact(buf, n)   Transfer, bytes == n       end_of_stream   ECANCELED, bytes read so far
//   write(data, n)       Result<size_t>, >= 1       (EPIPE)         ECANCELED, nothing written
//   write_all(data, n)   Transfer, bytes == n       (EPIPE)         ECANCELED, bytes sent so far
//   connect(address)     Result<Stream>                            ECANCELED, the socket closed
//
// Errors: ECONNRESET (the peer reset the connection), EPIPE (writing after shutdown_write()
// or to a peer that is gone; never a SIGPIPE), ETIMEDOUT, ECONNREFUSED and ENETUNREACH from
// connect, EBADF on a closed stream, EINVAL for a null buffer with a non-zero size. A read
// or write of 0 bytes completes at once with 0 (no system call).
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

#include "../platform/descriptor.hpp"
#include "../tasks/task.hpp"
#include "resolve.hpp"
#include "socket.hpp"

namespace evflow {

class StreamSocket;

namespace detail {

struct ReadOperation {
  static constexpr const char* kActivity = "reading a socket";
  static constexpr Events kInterest = Readable;
  Socket* socket;
  void* buffer;
  std::size_t size;
  Result<std::size_t> outcome = std::size_t{0};
  int fd() const noexcept { return socket->fd(); }
  Io::Handover* handover() noexcept { return &SocketAccess::read_handover(*socket); }
  bool wait_first() const noexcept { return SocketAccess::read_drained(*socket) && buffer != nullptr && size != 0; }
  bool attempt() noexcept;
  bool prepare(OperationRequest& request) noexcept;
  bool absorb(OperationRequest& request) noexcept;
  Result<std::size_t> result(Error interrupted) const noexcept {
    if (interrupted) return interrupted;
    return outcome;
  }
};

struct ReadExactOperation {
  static constexpr const char* kActivity = "reading a socket";
  static constexpr Events kInterest = Readable;
  Socket* socket;
  char* buffer;
  std::size_t size;
  Transfer outcome{};
  int fd() const noexcept { return socket->fd(); }
  Io::Handover* handover() noexcept { return &SocketAccess::read_handover(*socket); }
  bool wait_first() const noexcept { return SocketAccess::read_drained(*socket) && buffer != nullptr && size != 0; }
  bool attempt() noexcept;
  bool prepare(OperationRequest& request) noexcept;
  bool absorb(OperationRequest& request) noexcept;
  Transfer result(Error interrupted) const noexcept {
    Transfer t = outcome;
    if (interrupted) t.error = interrupted;
    return t;
  }
};

struct WriteOperation {
  static constexpr const char* kActivity = "writing a socket";
  static constexpr Events kInterest = Writable;
  Socket* socket;
  const void* data;
  std::size_t size;
  Result<std::size_t> outcome = std::size_t{0};
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

struct WriteAllOperation {
  static constexpr const char* kActivity = "writing a socket";
  static constexpr Events kInterest = Writable;
  Socket* socket;
  const char* data;
  std::size_t size;
  Transfer outcome{};
  int fd() const noexcept { return socket->fd(); }
  Io::Handover* handover() noexcept { return &SocketAccess::write_handover(*socket); }
  bool wait_first() const noexcept { return false; }
  bool attempt() noexcept;
  bool prepare(OperationRequest& request) noexcept;
  bool absorb(OperationRequest& request) noexcept;
  Transfer result(Error interrupted) const noexcept {
    Transfer t = outcome;
    if (interrupted) t.error = interrupted;
    return t;
  }
};

// Makes a socket of the address's family and starts connecting it: success,
// EINPROGRESS (wait until writable), or the failure (the socket then closed, `fd` -1).
// EAFNOSUPPORT: a local address for a TCP stream (`local` false) or an IP one for a Unix
// stream.
Error begin_connect(const SocketAddress& address, bool local, int& fd) noexcept;
// Only the socket of begin_connect(), for a connect the kernel performs (io_uring).
Error open_for_connect(const SocketAddress& address, bool local, int& fd) noexcept;

// connect(): owns the new socket until it is connected; closes it on failure or
// cancellation. `Stream` is TcpStream or UnixStream.
template <class Stream>
struct ConnectOperation {
  static constexpr const char* kActivity = "connecting a socket";
  static constexpr Events kInterest = Writable;
  ConnectOperation(const SocketAddress& address, bool local) noexcept : address_(address), local_(local) {}
  ConnectOperation(ConnectOperation&&) = delete;
  ~ConnectOperation() {
    if (fd_ >= 0) (void)close_descriptor(fd_);
  }
  int fd() const noexcept { return fd_; }
  Io::Handover* handover() noexcept { return nullptr; }
  bool wait_first() const noexcept { return false; }
  bool prepare(OperationRequest& request) noexcept {
    started_ = true;
    connect_error_ = open_for_connect(address_, local_, fd_);
    if (connect_error_) return false;
    request.kind = OperationKind::connect;
    request.fd = fd_;
    request.endpoint = &endpoint_;
    endpoint_ = address_.endpoint();
    return true;
  }
  bool absorb(OperationRequest& request) noexcept {
    connect_error_ = request.result < 0 ? Error(-request.result) : Error();
    return true;
  }
  bool attempt() noexcept {
    if (!started_) {
      started_ = true;
      connect_error_ = begin_connect(address_, local_, fd_);
      return connect_error_ != Error(EINPROGRESS);
    }
    connect_error_ = socket_take_error(fd_);
    return true;
  }
  Result<Stream> result(Error interrupted) noexcept {
    const Error error = interrupted ? interrupted : connect_error_;
    if (error) return error;
    return Stream(std::exchange(fd_, -1));
  }

 private:
  SocketAddress address_;
  Endpoint endpoint_;  // the completion path's copy of the address
  bool local_;
  int fd_ = -1;
  bool started_ = false;
  Error connect_error_;
};

}  // namespace detail

// What TcpStream and UnixStream share: reading, writing, shutting down.
class StreamSocket : public Socket {
 public:
  using Socket::Socket;

  // Reads what is there, up to `size` bytes: at least 1, or 0 at the end of the stream.
  detail::SocketAwait<detail::ReadOperation> read(void* buffer, std::size_t size) noexcept {
    return detail::SocketAwait<detail::ReadOperation>(detail::ReadOperation{this, buffer, size});
  }
  // Reads exactly `size` bytes, waiting as often as needed.
  detail::SocketAwait<detail::ReadExactOperation> read_exact(void* buffer, std::size_t size) noexcept {
    return detail::SocketAwait<detail::ReadExactOperation>(
        detail::ReadExactOperation{this, static_cast<char*>(buffer), size});
  }
  // Writes what the kernel takes now, up to `size` bytes (at least 1).
  detail::SocketAwait<detail::WriteOperation> write(const void* data, std::size_t size) noexcept {
    return detail::SocketAwait<detail::WriteOperation>(detail::WriteOperation{this, data, size});
  }
  detail::SocketAwait<detail::WriteOperation> write(std::string_view text) noexcept {
    return write(text.data(), text.size());
  }
  // Writes all `size` bytes, waiting while the send buffer is full.
  detail::SocketAwait<detail::WriteAllOperation> write_all(const void* data, std::size_t size) noexcept {
    return detail::SocketAwait<detail::WriteAllOperation>(
        detail::WriteAllOperation{this, static_cast<const char*>(data), size});
  }
  detail::SocketAwait<detail::WriteAllOperation> write_all(std::string_view text) noexcept {
    return write_all(text.data(), text.size());
  }

  // Ends the stream for writing: the peer reads the end of the stream once it has read
  // what was sent; reading goes on. A later write gives EPIPE.
  Error shutdown_write() noexcept;
  // The address of the other end.
  Result<SocketAddress> peer_address() const noexcept;
};

class TcpStream : public StreamSocket {
 public:
  using StreamSocket::StreamSocket;

  // Connects to an IPv4 or IPv6 address. Under a deadline (with_timeout, fail_after) a
  // connect that never completes is cancelled, and the socket closed.
  static detail::SocketAwait<detail::ConnectOperation<TcpStream>> connect(const SocketAddress& address) noexcept {
    return detail::SocketAwait<detail::ConnectOperation<TcpStream>>(address, false);
  }
  // Looks `host` up (resolve(), net/resolve.hpp) and connects to its addresses in turn,
  // giving the first connection made, or the last address's error (ENXIO and the other
  // lookup errors when there is none). `host` is read when the task starts.
  static Task<Result<TcpStream>> connect(std::string_view host, uint16_t port,
                                         ThreadPool& pool = ThreadPool::default_pool());

  // TCP_NODELAY: send small writes at once instead of coalescing them (Nagle).
  Error set_no_delay(bool on) noexcept { return set_option(detail::SocketOption::no_delay, on ? 1 : 0); }
  // SO_KEEPALIVE: probe an idle connection so that a vanished peer ends it.
  Error set_keep_alive(bool on) noexcept { return set_option(detail::SocketOption::keep_alive, on ? 1 : 0); }
  // Closes with a reset (SO_LINGER 0): the peer's next call fails with ECONNRESET, and
  // unsent data is dropped.
  Error close_with_reset() noexcept;
};

class UnixStream : public StreamSocket {
 public:
  using StreamSocket::StreamSocket;

  // Connects to a local (Unix-domain) address. ENOENT: no socket at that path;
  // ECONNREFUSED: nobody listens on it.
  static detail::SocketAwait<detail::ConnectOperation<UnixStream>> connect(const SocketAddress& address) noexcept {
    return detail::SocketAwait<detail::ConnectOperation<UnixStream>>(address, true);
  }

  // Two connected local streams (socketpair). EAFNOSUPPORT on Windows.
  static Result<std::pair<UnixStream, UnixStream>> pair() noexcept;
};

inline Task<Result<TcpStream>> TcpStream::connect(std::string_view host, uint16_t port, ThreadPool& pool) {
  Result<std::vector<SocketAddress>> addresses = co_await resolve(host, port, pool);
  if (!addresses) co_return addresses.error();
  Error last(ENXIO);
  for (const SocketAddress& address : addresses.value()) {
    Result<TcpStream> stream = co_await connect(address);
    if (stream) co_return std::move(stream.value());
    last = stream.error();
    if (last == Error(ECANCELED)) break;
  }
  co_return last;
}

}  // namespace evflow
