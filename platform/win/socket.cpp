// evflow — the socket calls of platform/socket.hpp on Windows, with Winsock. Descriptors
// are SOCKETs converted to int (iocp_backend.hpp, note l); closing one is
// win::close_socket (socket.hpp here).
//
// Notes on Winsock, the behaviours handled here:
//
// a) No SOCK_NONBLOCK or SOCK_CLOEXEC: a socket is made non-blocking with ioctlsocket
//    (FIONBIO) and kept from child processes with SetHandleInformation
//    (HANDLE_FLAG_INHERIT cleared) right after WSASocketW or accept, so a process that
//    another thread creates in between, inheriting handles, can inherit the socket.
//    Windows has no SIGPIPE.
// b) Winsock reports WSAE* codes (WSAGetLastError), mapped below to the errno code of the
//    same name; WSAEWOULDBLOCK is EAGAIN, except from connect(), where it means the
//    connection has begun: EINPROGRESS. WSAESHUTDOWN (a send after shutdown) is EPIPE,
//    WSAENOTSOCK is EBADF. SO_ERROR holds a WSAE* code too.
// c) A datagram larger than the buffer fills the buffer and fails with WSAEMSGSIZE
//    (recv, recvfrom: "Return value", Microsoft Learn). It is reported as what POSIX
//    gives: the buffer's worth of bytes, marked truncated by socket_receive_from.
// d) A UDP socket that sent to a port nobody listens on gets the ICMP "port
//    unreachable" back as WSAECONNRESET from its next recvfrom, even unconnected, which
//    would fail a server's receive for one client's mistake (Microsoft's KB263823).
//    SIO_UDP_CONNRESET turns that off (WSAIoctl, mswsock.h) on every UDP socket made
//    here; connect() turns it back on, since a connected socket is meant to learn that
//    its peer is gone (ECONNRESET there, where Linux says ECONNREFUSED). Providers that
//    do not know the ioctl (wine) are left as they are.
// e) SO_REUSEADDR on Windows lets a second socket bind an address and port in use, even
//    by a listening socket of another process, which then may receive its connections
//    ("Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE", Microsoft Learn). What a listener asks
//    of reuse_address, binding a port whose old connections are still in TIME_WAIT,
//    Windows allows without it: setting reuse_address is accepted and sets nothing
//    (reading it gives SO_REUSEADDR's value, 0), so no listener of evflow's can be taken
//    over that way.
//    SO_REUSEPORT does not exist: ENOPROTOOPT.
// f) struct linger holds two u_shorts (winsock2.h): a linger time above 65535 seconds is
//    EINVAL. getsockopt of a boolean option may write fewer bytes than an int
//    (TCP_NODELAY writes one on some versions), so the value is zeroed first and read as
//    0 or 1.
// g) AF_UNIX exists since Windows 10 1803 (afunix.h; sun_path of 108 bytes, a filesystem
//    path), without socketpair(): socket_pair is EAFNOSUPPORT. Where the provider lacks
//    AF_UNIX (older Windows, wine), socket_open(local) reports what Winsock says
//    (WSAEAFNOSUPPORT: EAFNOSUPPORT).
// h) Winsock must be started (WSAStartup) before the first call: it is started once per
//    process on first use here, and never stopped (the loop starts and stops its own
//    reference; WSAStartup counts them).
// i) There is no per-process descriptor limit for a spare descriptor to work around:
//    reserve_descriptor is ENOSYS.
#if defined(_WIN32)

#include "../socket.hpp"

#include "socket.hpp"
#include "win_sys.hpp"

#include <afunix.h>
#include <mswsock.h>
#include <ws2tcpip.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>

namespace evflow::detail {

namespace {

SOCKET socket_of(int fd) noexcept { return static_cast<SOCKET>(static_cast<intptr_t>(fd)); }
// SOCKET <-> descriptor: iocp_backend.hpp, note l.
int descriptor_of(SOCKET s) noexcept { return static_cast<int>(static_cast<intptr_t>(s)); }

// A Winsock error code as an errno code (note b).
Error error_from_winsock(int code) noexcept {
  switch (code) {
    case 0:
      return Error();
    case WSAEWOULDBLOCK:
      return Error(EAGAIN);
    case WSAEINPROGRESS:
      return Error(EINPROGRESS);
    case WSAEALREADY:
      return Error(EALREADY);
    case WSAEISCONN:
      return Error(EISCONN);
    case WSAENOTCONN:
      return Error(ENOTCONN);
    case WSAECONNREFUSED:
      return Error(ECONNREFUSED);
    case WSAECONNRESET:
      return Error(ECONNRESET);
    case WSAECONNABORTED:
      return Error(ECONNABORTED);
    case WSAENETRESET:
      return Error(ENETRESET);
    case WSAESHUTDOWN:
      return Error(EPIPE);
    case WSAETIMEDOUT:
      return Error(ETIMEDOUT);
    case WSAEADDRINUSE:
      return Error(EADDRINUSE);
    case WSAEADDRNOTAVAIL:
      return Error(EADDRNOTAVAIL);
    case WSAENETDOWN:
      return Error(ENETDOWN);
    case WSAENETUNREACH:
      return Error(ENETUNREACH);
    case WSAEHOSTUNREACH:
    case WSAEHOSTDOWN:
      return Error(EHOSTUNREACH);
    case WSAEMSGSIZE:
      return Error(EMSGSIZE);
    case WSAEDESTADDRREQ:
      return Error(EDESTADDRREQ);
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT:
      return Error(EAFNOSUPPORT);
    case WSAEPROTONOSUPPORT:
    case WSAESOCKTNOSUPPORT:
      return Error(EPROTONOSUPPORT);
    case WSAEPROTOTYPE:
      return Error(EPROTOTYPE);
    case WSAENOPROTOOPT:
      return Error(ENOPROTOOPT);
    case WSAEOPNOTSUPP:
      return Error(EOPNOTSUPP);
    case WSAENOTSOCK:
    case WSAEBADF:
      return Error(EBADF);
    case WSAEFAULT:
      return Error(EFAULT);
    case WSAEINTR:
      return Error(EINTR);
    default:  // WSAEINVAL, WSAEACCES, WSAEMFILE, WSAENOBUFS and the Win32 codes
      return win_abi::error_from_win32(static_cast<DWORD>(code));
  }
}

Error last_socket_error() noexcept { return error_from_winsock(WSAGetLastError()); }

// Note h.
Error ensure_winsock() noexcept {
  static const Error started = win_abi::start_winsock();
  return started;
}

Result<int> family_number(SocketFamily family) noexcept {
  switch (family) {
    case SocketFamily::ipv4:
      return AF_INET;
    case SocketFamily::ipv6:
      return AF_INET6;
    case SocketFamily::local:
      return AF_UNIX;
    case SocketFamily::unspecified:
      break;
  }
  return Error(EINVAL);
}

// Whether the UDP stack reports an ICMP "port unreachable" to recvfrom (note d).
void report_unreachable_ports(SOCKET s, BOOL on) noexcept {
  DWORD bytes = 0;
  (void)WSAIoctl(s, SIO_UDP_CONNRESET, &on, sizeof on, nullptr, 0, &bytes, nullptr, nullptr);
}

// Note a. On failure the socket is closed.
Result<int> finish_socket(SOCKET s) noexcept {
  u_long non_blocking = 1;
  if (ioctlsocket(s, FIONBIO, &non_blocking) == SOCKET_ERROR) {
    const Error failure = last_socket_error();
    closesocket(s);
    return failure;
  }
  if (!SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0)) {
    const Error failure = win_abi::last_error();
    closesocket(s);
    return failure;
  }
  return descriptor_of(s);
}

using Storage = sockaddr_storage;

// An Endpoint as a Winsock sockaddr, in `storage`; returns its length.
Result<int> to_sockaddr(const Endpoint& address, Storage* storage) noexcept {
  std::memset(storage, 0, sizeof *storage);
  switch (address.family) {
    case SocketFamily::ipv4: {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_port = htons(address.port);
      std::memcpy(&in.sin_addr, address.ip, 4);
      std::memcpy(storage, &in, sizeof in);
      return static_cast<int>(sizeof in);
    }
    case SocketFamily::ipv6: {
      sockaddr_in6 in6{};
      in6.sin6_family = AF_INET6;
      in6.sin6_port = htons(address.port);
      in6.sin6_flowinfo = htonl(address.flow_info);
      std::memcpy(&in6.sin6_addr, address.ip, 16);
      in6.sin6_scope_id = address.scope_id;
      std::memcpy(storage, &in6, sizeof in6);
      return static_cast<int>(sizeof in6);
    }
    case SocketFamily::local: {
      if (address.path_length > Endpoint::kMaxPath) return Error(EINVAL);
      sockaddr_un local{};
      local.sun_family = AF_UNIX;
      std::memcpy(local.sun_path, address.path, address.path_length);
      std::memcpy(storage, &local, sizeof local);
      // The path with its terminating '\0' (the structure is zeroed; kMaxPath < 108).
      const bool named = address.path_length > 0 && address.path[0] != '\0';
      return static_cast<int>(offsetof(sockaddr_un, sun_path) + address.path_length + (named ? 1 : 0));
    }
    case SocketFamily::unspecified:
      break;
  }
  return Error(EINVAL);
}

// A Winsock sockaddr of `length` bytes as an Endpoint.
Endpoint from_sockaddr(const Storage& storage, int length) noexcept {
  Endpoint out;
  if (storage.ss_family == AF_INET && length >= static_cast<int>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, &storage, sizeof in);
    out.family = SocketFamily::ipv4;
    out.port = ntohs(in.sin_port);
    std::memcpy(out.ip, &in.sin_addr, 4);
  } else if (storage.ss_family == AF_INET6 && length >= static_cast<int>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6;
    std::memcpy(&in6, &storage, sizeof in6);
    out.family = SocketFamily::ipv6;
    out.port = ntohs(in6.sin6_port);
    out.flow_info = ntohl(in6.sin6_flowinfo);
    out.scope_id = in6.sin6_scope_id;
    std::memcpy(out.ip, &in6.sin6_addr, 16);
  } else if (storage.ss_family == AF_UNIX) {
    sockaddr_un local;
    std::memcpy(&local, &storage, sizeof local);
    out.family = SocketFamily::local;
    const int offset = static_cast<int>(offsetof(sockaddr_un, sun_path));
    std::size_t size = length > offset ? static_cast<std::size_t>(length - offset) : 0;
    if (size > sizeof local.sun_path) size = sizeof local.sun_path;
    std::size_t end = 0;
    while (end < size && local.sun_path[end] != '\0')
      ++end;
    if (end > Endpoint::kMaxPath) end = Endpoint::kMaxPath;
    std::memcpy(out.path, local.sun_path, end);
    out.path_length = static_cast<uint8_t>(end);
  }
  return out;
}

int clamp(std::size_t size) noexcept { return size > INT_MAX ? INT_MAX : static_cast<int>(size); }

struct OptionName {
  int level = 0;
  int name = 0;
  bool boolean = false;
};

Result<OptionName> option_name(SocketOption option) noexcept {
  switch (option) {
    case SocketOption::reuse_address:
      return OptionName{SOL_SOCKET, SO_REUSEADDR, true};  // note e
    case SocketOption::reuse_port:
      return Error(ENOPROTOOPT);  // note e
    case SocketOption::no_delay:
      return OptionName{IPPROTO_TCP, TCP_NODELAY, true};
    case SocketOption::keep_alive:
      return OptionName{SOL_SOCKET, SO_KEEPALIVE, true};
    case SocketOption::linger_seconds:
      return OptionName{SOL_SOCKET, SO_LINGER, false};
    case SocketOption::send_buffer:
      return OptionName{SOL_SOCKET, SO_SNDBUF, false};
    case SocketOption::receive_buffer:
      return OptionName{SOL_SOCKET, SO_RCVBUF, false};
    case SocketOption::ipv6_only:
      return OptionName{IPPROTO_IPV6, IPV6_V6ONLY, true};
    case SocketOption::broadcast:
      return OptionName{SOL_SOCKET, SO_BROADCAST, true};
  }
  return Error(ENOPROTOOPT);
}

// getaddrinfo's answers are Winsock codes (ws2tcpip.h maps EAI_* onto WSA* values).
Error lookup_error(int status) noexcept {
  switch (status) {
    case EAI_NONAME:
    case WSANO_DATA:
      return Error(ENXIO);
    case EAI_AGAIN:
      return Error(EAGAIN);
    case EAI_MEMORY:
      return Error(ENOMEM);
    default:
      return Error(EIO);
  }
}

}  // namespace

Result<int> socket_open(SocketFamily family, SocketType type) noexcept {
  Result<int> number = family_number(family);
  if (!number) return number.error();
  if (Error error = ensure_winsock()) return error;
  const int kind = type == SocketType::stream ? SOCK_STREAM : SOCK_DGRAM;
  const SOCKET s = WSASocketW(number.value(), kind, 0, nullptr, 0, WSA_FLAG_OVERLAPPED);
  if (s == INVALID_SOCKET) return last_socket_error();
  if (kind == SOCK_DGRAM && family != SocketFamily::local) report_unreachable_ports(s, FALSE);  // note d
  return finish_socket(s);
}

Result<SocketPair> socket_pair(SocketType) noexcept { return Error(EAFNOSUPPORT); }  // note g

Error socket_bind(int fd, const Endpoint& address) noexcept {
  Storage storage;
  Result<int> length = to_sockaddr(address, &storage);
  if (!length) return length.error();
  if (bind(socket_of(fd), reinterpret_cast<const sockaddr*>(&storage), length.value()) == SOCKET_ERROR)
    return last_socket_error();
  return Error();
}

Error socket_listen(int fd, int backlog) noexcept {
  return listen(socket_of(fd), backlog) == SOCKET_ERROR ? last_socket_error() : Error();
}

Result<int> socket_accept(int fd, Endpoint* peer) noexcept {
  Storage storage{};
  int length = sizeof storage;
  const SOCKET s = accept(socket_of(fd), reinterpret_cast<sockaddr*>(&storage), &length);
  if (s == INVALID_SOCKET) return last_socket_error();
  Result<int> finished = finish_socket(s);
  if (finished && peer != nullptr) *peer = from_sockaddr(storage, length);
  return finished;
}

Error socket_connect(int fd, const Endpoint& address) noexcept {
  Storage storage;
  Result<int> length = to_sockaddr(address, &storage);
  if (!length) return length.error();
  const SOCKET s = socket_of(fd);
  int kind = 0;
  int kind_length = sizeof kind;
  if (address.family != SocketFamily::local &&
      getsockopt(s, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&kind), &kind_length) == 0 && kind == SOCK_DGRAM)
    report_unreachable_ports(s, TRUE);  // note d
  if (connect(s, reinterpret_cast<const sockaddr*>(&storage), length.value()) == 0) return Error();
  const int code = WSAGetLastError();
  return code == WSAEWOULDBLOCK ? Error(EINPROGRESS) : error_from_winsock(code);  // note b
}

Error socket_take_error(int fd) noexcept {
  int value = 0;
  int length = sizeof value;
  if (getsockopt(socket_of(fd), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&value), &length) == SOCKET_ERROR)
    return last_socket_error();
  return error_from_winsock(value);
}

Result<std::size_t> socket_receive(int fd, void* buffer, std::size_t size) noexcept {
  const int got = recv(socket_of(fd), static_cast<char*>(buffer), clamp(size), 0);
  if (got != SOCKET_ERROR) return static_cast<std::size_t>(got);
  const int code = WSAGetLastError();
  if (code == WSAEMSGSIZE) return static_cast<std::size_t>(clamp(size));  // note c
  return error_from_winsock(code);
}

Result<std::size_t> socket_send(int fd, const void* data, std::size_t size) noexcept {
  const int sent = send(socket_of(fd), static_cast<const char*>(data), clamp(size), 0);
  if (sent == SOCKET_ERROR) return last_socket_error();
  return static_cast<std::size_t>(sent);
}

Result<ReceivedDatagram> socket_receive_from(int fd, void* buffer, std::size_t size, Endpoint* from) noexcept {
  Storage storage{};
  int length = sizeof storage;
  ReceivedDatagram received;
  const int got = recvfrom(socket_of(fd), static_cast<char*>(buffer), clamp(size), 0,
                           reinterpret_cast<sockaddr*>(&storage), &length);
  if (got == SOCKET_ERROR) {
    const int code = WSAGetLastError();
    if (code != WSAEMSGSIZE) return error_from_winsock(code);
    received.size = static_cast<std::size_t>(clamp(size));  // note c
    received.truncated = true;
  } else {
    received.size = static_cast<std::size_t>(got);
  }
  if (from != nullptr) *from = from_sockaddr(storage, length);
  return received;
}

Result<std::size_t> socket_send_to(int fd, const void* data, std::size_t size, const Endpoint& to) noexcept {
  Storage storage;
  Result<int> length = to_sockaddr(to, &storage);
  if (!length) return length.error();
  const int sent = sendto(socket_of(fd), static_cast<const char*>(data), clamp(size), 0,
                          reinterpret_cast<const sockaddr*>(&storage), length.value());
  if (sent == SOCKET_ERROR) return last_socket_error();
  return static_cast<std::size_t>(sent);
}

Error socket_shutdown(int fd, ShutdownHow how) noexcept {
  const int direction = how == ShutdownHow::read ? SD_RECEIVE : how == ShutdownHow::write ? SD_SEND : SD_BOTH;
  return shutdown(socket_of(fd), direction) == SOCKET_ERROR ? last_socket_error() : Error();
}

Error socket_set_option(int fd, SocketOption option, int value) noexcept {
  Result<OptionName> name = option_name(option);
  if (!name) return name.error();
  if (option == SocketOption::reuse_address) return Error();  // note e
  int result;
  if (option == SocketOption::linger_seconds) {
    if (value > USHRT_MAX) return Error(EINVAL);  // note f
    linger setting{};
    setting.l_onoff = value >= 0 ? 1 : 0;
    setting.l_linger = static_cast<u_short>(value >= 0 ? value : 0);
    result = setsockopt(socket_of(fd), name.value().level, name.value().name, reinterpret_cast<const char*>(&setting),
                        sizeof setting);
  } else {
    result = setsockopt(socket_of(fd), name.value().level, name.value().name, reinterpret_cast<const char*>(&value),
                        sizeof value);
  }
  return result == SOCKET_ERROR ? last_socket_error() : Error();
}

Result<int> socket_get_option(int fd, SocketOption option) noexcept {
  Result<OptionName> name = option_name(option);
  if (!name) return name.error();
  if (option == SocketOption::linger_seconds) {
    linger setting{};
    int length = sizeof setting;
    if (getsockopt(socket_of(fd), name.value().level, name.value().name, reinterpret_cast<char*>(&setting), &length) ==
        SOCKET_ERROR)
      return last_socket_error();
    return setting.l_onoff != 0 ? static_cast<int>(setting.l_linger) : -1;
  }
  int value = 0;  // note f
  int length = sizeof value;
  if (getsockopt(socket_of(fd), name.value().level, name.value().name, reinterpret_cast<char*>(&value), &length) ==
      SOCKET_ERROR)
    return last_socket_error();
  return name.value().boolean ? (value != 0 ? 1 : 0) : value;
}

Result<Endpoint> socket_local_address(int fd) noexcept {
  Storage storage{};
  int length = sizeof storage;
  if (getsockname(socket_of(fd), reinterpret_cast<sockaddr*>(&storage), &length) == SOCKET_ERROR)
    return last_socket_error();
  return from_sockaddr(storage, length);
}

Result<Endpoint> socket_peer_address(int fd) noexcept {
  Storage storage{};
  int length = sizeof storage;
  if (getpeername(socket_of(fd), reinterpret_cast<sockaddr*>(&storage), &length) == SOCKET_ERROR)
    return last_socket_error();
  return from_sockaddr(storage, length);
}

Result<int> reserve_descriptor() noexcept { return Error(ENOSYS); }  // note i

Result<std::size_t> lookup_host(const char* host, uint16_t port, Endpoint* out, std::size_t capacity) noexcept {
  if (host == nullptr || host[0] == '\0') return Error(EINVAL);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (const int status = getaddrinfo(host, nullptr, &hints, &list)) return lookup_error(status);
  std::size_t count = 0;
  for (const addrinfo* info = list; info != nullptr; info = info->ai_next) {
    if (info->ai_addr == nullptr || info->ai_addrlen > sizeof(Storage)) continue;
    Storage storage{};
    std::memcpy(&storage, info->ai_addr, info->ai_addrlen);
    Endpoint endpoint = from_sockaddr(storage, static_cast<int>(info->ai_addrlen));
    endpoint.port = port;
    append_unique_endpoint(endpoint, out, capacity, count);
  }
  freeaddrinfo(list);
  if (count == 0) return Error(ENXIO);
  return count;
}

}  // namespace evflow::detail

#endif
