// evflow — the socket system calls net/ needs, for the layers above platform/ that must
// not name an operating system. One implementation per OS:
//   Linux: raw system calls (platform/linux/socket.cpp; no libc, no errno);
//   FreeBSD and macOS: the C library (platform/bsd/socket.cpp);
//   Windows: Winsock (platform/win/socket.cpp), descriptors being SOCKETs there.
//
// Addresses cross this boundary as an Endpoint: plain data in one layout for every OS.
// Each implementation converts it to and from its own sockaddr (the family numbers and
// the BSD sa_len byte differ between systems), so nothing above this file sees one.
//
// Conventions of every call here:
// - Descriptors are created non-blocking and close-on-exec, atomically where the OS
//   can (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4), and never raise SIGPIPE (MSG_NOSIGNAL
//   on Linux and FreeBSD; SO_NOSIGPIPE on macOS, set when the socket is made; Windows
//   has no SIGPIPE).
// - EAGAIN is returned as Error(EAGAIN) (EWOULDBLOCK is the same value on every system
//   evflow supports; Windows' WSAEWOULDBLOCK is mapped to it): the caller waits for
//   readiness. A connect that has begun is Error(EINPROGRESS) (Windows' WSAEWOULDBLOCK
//   from connect() is mapped to EINPROGRESS).
// - EINTR is retried: every descriptor here is non-blocking, so a retry cannot block.
// - Windows errors (WSAECONNREFUSED, ...) are mapped to the errno code of the same name.
#pragma once

#include <cstddef>
#include <cstdint>

#include "result.hpp"

namespace evflow::detail {

enum class SocketFamily : uint8_t { unspecified, ipv4, ipv6, local };  // local: AF_UNIX
enum class SocketType : uint8_t { stream, datagram };

// A socket address in one layout for every OS. `ip` holds the address in network byte
// order (IPv4 in its first 4 bytes); `port` is in host byte order. A local (Unix-domain)
// address is `path_length` bytes of `path`: a filesystem path (no terminating zero
// counted), or, on Linux, an abstract name whose first byte is '\0'; length 0 is an
// unnamed socket (what an unbound client's peer looks like).
struct Endpoint {
  static constexpr std::size_t kMaxPath = 107;  // sun_path is 104 bytes on BSD and macOS, 108 on Linux
  SocketFamily family = SocketFamily::unspecified;
  uint16_t port = 0;
  uint32_t flow_info = 0;  // IPv6 only
  uint32_t scope_id = 0;   // IPv6 only: the interface of a link-local address
  uint8_t ip[16] = {};
  uint8_t path_length = 0;
  char path[kMaxPath] = {};
};

// The options net/ sets. Each maps to one setsockopt() level and name per OS.
enum class SocketOption : uint8_t {
  reuse_address,   // SO_REUSEADDR; Windows: nothing, which already binds over TIME_WAIT (win/socket.cpp, note e)
  reuse_port,      // SO_REUSEPORT (Linux >= 3.9, FreeBSD, macOS); ENOPROTOOPT on Windows
  no_delay,        // TCP_NODELAY
  keep_alive,      // SO_KEEPALIVE
  linger_seconds,  // SO_LINGER: value < 0 turns lingering off; 0 makes close() send a reset
  send_buffer,     // SO_SNDBUF
  receive_buffer,  // SO_RCVBUF
  ipv6_only,       // IPV6_V6ONLY
  broadcast,       // SO_BROADCAST
};

enum class ShutdownHow : uint8_t { read, write, both };

// socket(2): a non-blocking, close-on-exec socket of `family` and `type`. Errors:
// EAFNOSUPPORT (a family the OS lacks, such as local sockets on an old Windows), EMFILE,
// ENFILE, ENOBUFS, ENOMEM; EINVAL for SocketFamily::unspecified.
Result<int> socket_open(SocketFamily family, SocketType type) noexcept;

// socketpair(2) of local sockets, both non-blocking and close-on-exec. Windows has no
// socketpair(): EAFNOSUPPORT there.
struct SocketPair {
  int first = -1;
  int second = -1;
};
Result<SocketPair> socket_pair(SocketType type) noexcept;

// bind(2), listen(2).
Error socket_bind(int fd, const Endpoint& address) noexcept;
Error socket_listen(int fd, int backlog) noexcept;

// accept4(2) (accept() then the flags where there is no accept4): a non-blocking,
// close-on-exec connection, its peer's address in `*peer` when `peer` is not null.
// Error(EAGAIN): nothing is waiting. ECONNABORTED: a connection reset while queued (the
// caller tries again). EMFILE, ENFILE: out of descriptors.
Result<int> socket_accept(int fd, Endpoint* peer) noexcept;

// connect(2) on a non-blocking socket: success, Error(EINPROGRESS) (wait until writable,
// then socket_take_error()), or the failure (ECONNREFUSED, ENOENT for a local path, ...).
Error socket_connect(int fd, const Endpoint& address) noexcept;

// The pending error of a socket (SO_ERROR), cleared by reading it: how a connect that
// returned EINPROGRESS ended. A default Error means it succeeded; the error of
// getsockopt() itself (EBADF, ENOTSOCK) is returned the same way.
Error socket_take_error(int fd) noexcept;

// recv(2): the number of bytes read, 0 at the end of the stream (or an empty datagram).
// Error(EAGAIN): nothing to read yet. ECONNRESET: the peer reset the connection.
Result<std::size_t> socket_receive(int fd, void* buffer, std::size_t size) noexcept;

// send(2) without SIGPIPE: the number of bytes accepted by the kernel (may be fewer
// than `size`). Error(EAGAIN): the send buffer is full. EPIPE: the stream was shut down
// for writing or the peer is gone; ECONNRESET. EMSGSIZE: a datagram too large.
Result<std::size_t> socket_send(int fd, const void* data, std::size_t size) noexcept;

// One datagram received: its full size and whether it was cut to fit the buffer.
struct ReceivedDatagram {
  std::size_t size = 0;  // bytes stored in the buffer
  bool truncated = false;
};
// recvmsg(2)/recvfrom(2): one datagram, its sender in `*from` when `from` is not null.
// A datagram larger than `size` is cut to `size` bytes and reported `truncated` (the rest
// is discarded, as the kernel does). Error(EAGAIN): none waiting.
Result<ReceivedDatagram> socket_receive_from(int fd, void* buffer, std::size_t size, Endpoint* from) noexcept;

// sendto(2) without SIGPIPE to `to`. Error(EAGAIN), EMSGSIZE, EDESTADDRREQ (an
// unconnected socket), ECONNREFUSED (an earlier datagram was refused, on a connected
// socket).
Result<std::size_t> socket_send_to(int fd, const void* data, std::size_t size, const Endpoint& to) noexcept;

// shutdown(2). ENOTCONN when the socket is not connected.
Error socket_shutdown(int fd, ShutdownHow how) noexcept;

// setsockopt(2)/getsockopt(2) with an int value (a bool option reads 0 or 1).
// ENOPROTOOPT: an option this OS or socket lacks.
Error socket_set_option(int fd, SocketOption option, int value) noexcept;
Result<int> socket_get_option(int fd, SocketOption option) noexcept;

// getsockname(2), getpeername(2). ENOTCONN: no peer.
Result<Endpoint> socket_local_address(int fd) noexcept;
Result<Endpoint> socket_peer_address(int fd) noexcept;

// Appends `endpoint` to out[0..count) unless its family is unspecified, it is already
// there (same family, address and scope), or there is no room: lookup_host's filter.
inline void append_unique_endpoint(const Endpoint& endpoint, Endpoint* out, std::size_t capacity,
                                   std::size_t& count) noexcept {
  if (endpoint.family == SocketFamily::unspecified || count == capacity) return;
  for (std::size_t i = 0; i < count; ++i)
    if (out[i].family == endpoint.family && __builtin_memcmp(out[i].ip, endpoint.ip, sizeof endpoint.ip) == 0 &&
        out[i].scope_id == endpoint.scope_id)
      return;
  out[count++] = endpoint;
}

// getaddrinfo(3): the addresses of `host` (a name, or a numeric address) for stream
// connections, with `port`, in the resolver's order (duplicates dropped), at most
// `capacity` of them. Blocks: run it on a pool's thread (net/resolve.hpp). Errors: ENXIO
// when the name has no address, EAGAIN when the resolver could not answer now, EIO when
// it failed for good, ENOMEM, EINVAL for an empty name.
Result<std::size_t> lookup_host(const char* host, uint16_t port, Endpoint* out, std::size_t capacity) noexcept;

// A spare descriptor kept open so that, when accept() fails with EMFILE or ENFILE, one
// can be given back, the waiting connection accepted and closed (so its peer is not left
// hanging and the listener stops being readable), and the spare taken again
// (net/listener.hpp). Linux: an eventfd; FreeBSD and macOS: an unbound local datagram
// socket. Neither touches the file system. Not a duplicate of the listener: a duplicate
// would keep the listening socket open (and its epoll registration alive) after the
// listener's own descriptor is closed. Windows, which has no descriptor limit of that
// kind: ENOSYS.
Result<int> reserve_descriptor() noexcept;

}  // namespace evflow::detail
