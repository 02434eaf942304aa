// Test helpers: descriptors that close themselves, and small I/O shortcuts.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace evflow::testing {

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
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  OwnedFd read_end, write_end;
};

inline Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
  return Pipe{OwnedFd(fds[0]), OwnedFd(fds[1])};
}

struct SocketPair {
  OwnedFd a, b;
};

inline SocketPair make_socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return {};
  return SocketPair{OwnedFd(fds[0]), OwnedFd(fds[1])};
}

inline bool write_byte(int fd, char c = 'x') { return ::write(fd, &c, 1) == 1; }

// Reads everything available; returns the number of bytes read.
inline long drain(int fd) {
  char buffer[256];
  long total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return total;
    total += n;
  }
}

}  // namespace evflow::testing
