// evflow — closing a descriptor, for the layers above platform/ that must not name an
// operating system. Linux: the raw system call of platform/linux/sys.hpp (no libc errno,
// async-signal-safe). FreeBSD and macOS: the C library, their supported interface.
// Windows: Winsock, descriptors being sockets there.
#pragma once

#include <cerrno>

#include "result.hpp"

#if defined(__linux__)
#include "linux/sys.hpp"
#elif defined(_WIN32)
#include "win/socket.hpp"
#else
#include <unistd.h>
#endif

namespace evflow::detail {

// close(2). The descriptor is released even when an error (EINTR, EIO) is reported.
// Windows: closesocket(), descriptors being sockets there.
inline Error close_descriptor(int fd) noexcept {
#if defined(__linux__)
  return linux_abi::close(fd);
#elif defined(_WIN32)
  return win::close_socket(fd);
#else
  return ::close(fd) == 0 ? Error() : Error(errno);
#endif
}

}  // namespace evflow::detail
