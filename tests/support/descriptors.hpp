// Test helpers: descriptors that close themselves, and small I/O shortcuts.
//
// On Windows, where Io watchers take sockets only, a "pipe" and a "socket pair" are both
// a connected pair of loopback TCP sockets (non-blocking, Nagle off), and the helpers
// read, write and close with Winsock, so that a test written against these helpers runs
// on every backend.
#pragma once

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <utility>

namespace evflow::testing {

#if defined(_WIN32)
// A SOCKET as an evflow descriptor (platform/win/iocp_backend.hpp, note l).
inline int descriptor_of(SOCKET s) { return static_cast<int>(static_cast<intptr_t>(s)); }
inline SOCKET socket_of(int fd) { return static_cast<SOCKET>(static_cast<intptr_t>(fd)); }
inline void close_fd(int fd) { ::closesocket(socket_of(fd)); }
inline long write_fd(int fd, const void* data, int size) {
  return ::send(socket_of(fd), static_cast<const char*>(data), size, 0);
}
inline long read_fd(int fd, void* data, int size) { return ::recv(socket_of(fd), static_cast<char*>(data), size, 0); }
#else
inline void close_fd(int fd) { ::close(fd); }
inline long write_fd(int fd, const void* data, int size) { return ::write(fd, data, static_cast<size_t>(size)); }
inline long read_fd(int fd, void* data, int size) { return ::read(fd, data, static_cast<size_t>(size)); }
#endif

class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() { reset(); }
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) close_fd(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  OwnedFd read_end, write_end;
};

struct SocketPair {
  OwnedFd a, b;
};

#if defined(_WIN32)
// A connected pair of non-blocking loopback TCP sockets, or two -1s.
inline SocketPair make_socketpair() {
  OwnedFd listener(descriptor_of(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)));
  if (socket_of(listener.get()) == INVALID_SOCKET) return {};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int length = sizeof address;
  if (::bind(socket_of(listener.get()), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(socket_of(listener.get()), 1) != 0 ||
      ::getsockname(socket_of(listener.get()), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return {};
  OwnedFd a(descriptor_of(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)));
  if (socket_of(a.get()) == INVALID_SOCKET ||
      ::connect(socket_of(a.get()), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    return {};
  OwnedFd b(descriptor_of(::accept(socket_of(listener.get()), nullptr, nullptr)));
  if (socket_of(b.get()) == INVALID_SOCKET) return {};
  for (int fd : {a.get(), b.get()}) {
    u_long non_blocking = 1;
    BOOL no_delay = TRUE;
    if (::ioctlsocket(socket_of(fd), FIONBIO, &non_blocking) != 0 ||
        ::setsockopt(socket_of(fd), IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&no_delay),
                     sizeof no_delay) != 0)
      return {};
  }
  return SocketPair{std::move(a), std::move(b)};
}

// Windows has no pipes an Io watcher accepts: a socket pair stands in (header comment).
inline Pipe make_pipe() {
  SocketPair pair = make_socketpair();
  return Pipe{std::move(pair.a), std::move(pair.b)};
}
#else
inline Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
  return Pipe{OwnedFd(fds[0]), OwnedFd(fds[1])};
}

inline SocketPair make_socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return {};
  return SocketPair{OwnedFd(fds[0]), OwnedFd(fds[1])};
}
#endif

inline bool write_byte(int fd, char c = 'x') { return write_fd(fd, &c, 1) == 1; }

// Reads everything available; returns the number of bytes read.
inline long drain(int fd) {
  char buffer[256];
  long total = 0;
  for (;;) {
    const long n = read_fd(fd, buffer, sizeof buffer);
    if (n <= 0) return total;
    total += n;
  }
}

}  // namespace evflow::testing
