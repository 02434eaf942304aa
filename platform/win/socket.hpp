// evflow — closing a socket, the only kind of descriptor an Io watcher takes on Windows
// (platform/win/iocp_backend.hpp, note l), without naming Winsock in a public header.
#pragma once

#include "../result.hpp"

namespace evflow::detail::win {

// closesocket() of a SOCKET given as an evflow descriptor. Errors: EBADF for a value that
// is not a socket (WSAENOTSOCK), what Winsock answers otherwise.
Error close_socket(int fd) noexcept;

}  // namespace evflow::detail::win
