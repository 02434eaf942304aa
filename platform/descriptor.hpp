// evflow — closing and writing a descriptor, for the layers above platform/ that must not
// name an operating system. Linux: the raw system calls of platform/linux/sys.hpp (no libc
// errno, async-signal-safe). FreeBSD and macOS: the C library, their supported interface.
#pragma once

#include <cerrno>

#include "platform/result.hpp"

#if defined(__linux__)
#include "platform/linux/sys.hpp"
#else
#include <unistd.h>
#endif

namespace evflow {

// close(2). The descriptor is released even when an error (EINTR, EIO) is reported.
inline Error close_descriptor(int fd) noexcept {
#if defined(__linux__)
  return linux_abi::close(fd);
#else
  return ::close(fd) == 0 ? Error() : Error(errno);
#endif
}

// write(2) of `size` bytes; async-signal-safe. Returns the bytes written.
inline Result<long> write_descriptor(int fd, const void* buffer, unsigned long size) noexcept {
#if defined(__linux__)
  return linux_abi::write(fd, buffer, size);
#else
  const long written = ::write(fd, buffer, size);
  if (written < 0) return Error(errno);
  return written;
#endif
}

}  // namespace evflow
