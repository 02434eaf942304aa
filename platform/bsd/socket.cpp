// evflow — the socket calls of platform/socket.hpp on FreeBSD and macOS, through the C
// library (the supported system-call interface there; macOS has no stable raw one). The
// ABI is declared in socket_abi.hpp and the libc entry points below with its types: C
// linkage ignores parameter types, and no system socket header is included, so that the
// FreeBSD/macOS compile check can build this file against glibc's headers.
//
// Notes on BSD sockets, the behaviours handled here:
//
// a) FreeBSD (>= 10.0) takes SOCK_NONBLOCK | SOCK_CLOEXEC in socket(2) and socketpair(2),
//    and has accept4(2): descriptors are made non-blocking and close-on-exec atomically.
//    macOS has neither (XNU's sys/socket.h): the flags are set with fcntl(2) right after
//    the call, so a fork and exec by another thread in between can inherit the socket.
// b) SIGPIPE: FreeBSD takes MSG_NOSIGNAL on every send (send(2)); macOS gets
//    SO_NOSIGPIPE on every socket it makes or accepts (XNU's sys/socket.h), which its send
//    calls then honour.
// c) An interrupted connect() goes on in the background (connect(2), EINTR, on both):
//    reported as EINPROGRESS, as on Linux.
// d) Every sockaddr starts with sa_len. bind() and connect() take the length argument as
//    authoritative (the kernel overwrites sa_len with it), so a local address needs no
//    terminating '\0': its length is offsetof(sun_path) + the path's length. sun_path is
//    104 bytes (sys/un.h): a longer path is ENAMETOOLONG. There are no abstract names.
// e) An unnamed local socket reads back as a sun_path of zeros (FreeBSD's sun_noname) or
//    no address at all (length 0, from recvmsg): a local Endpoint of path_length 0 either
//    way.
// f) Boolean socket options read back as the option's bit (getsockopt(2): "non-zero"),
//    folded to 1 here.
// g) macOS's SO_LINGER counts in clock ticks; SO_LINGER_SEC (XNU's sys/socket.h) counts in
//    seconds and is the one used there.
// h) SO_SNDBUF and SO_RCVBUF read back what was set (no doubling, unlike Linux).
#include "../socket.hpp"

#if defined(__FreeBSD__) || defined(__APPLE__)

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>

#include "socket_abi.hpp"

extern "C" {
using evflow::detail::bsd_socket_abi::MessageHeader;
using evflow::detail::bsd_socket_abi::Sockaddr;
int socket(int domain, int type, int protocol) noexcept;
int socketpair(int domain, int type, int protocol, int* fds) noexcept;
int bind(int fd, const Sockaddr* address, uint32_t length) noexcept;
int listen(int fd, int backlog) noexcept;
int accept(int fd, Sockaddr* address, uint32_t* length) noexcept;
#if !defined(__APPLE__)
int accept4(int fd, Sockaddr* address, uint32_t* length, int flags) noexcept;
#endif
int connect(int fd, const Sockaddr* address, uint32_t length) noexcept;
int getsockname(int fd, Sockaddr* address, uint32_t* length) noexcept;
int getpeername(int fd, Sockaddr* address, uint32_t* length) noexcept;
ssize_t recv(int fd, void* buffer, size_t size, int flags) noexcept;
ssize_t send(int fd, const void* data, size_t size, int flags) noexcept;
ssize_t sendto(int fd, const void* data, size_t size, int flags, const Sockaddr* to, uint32_t length) noexcept;
ssize_t recvmsg(int fd, MessageHeader* message, int flags) noexcept;
int shutdown(int fd, int how) noexcept;
int setsockopt(int fd, int level, int name, const void* value, uint32_t length) noexcept;
int getsockopt(int fd, int level, int name, void* value, uint32_t* length) noexcept;
using evflow::detail::bsd_socket_abi::AddressInfo;
int getaddrinfo(const char* host, const char* service, const AddressInfo* hints, AddressInfo** list) noexcept;
void freeaddrinfo(AddressInfo* list) noexcept;
}

namespace evflow::detail {

namespace {

using namespace bsd_socket_abi;

constexpr uint16_t to_network(uint16_t value) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(value);
  return value;
}
constexpr uint32_t to_network(uint32_t value) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(value);
  return value;
}

Error last_error() noexcept { return Error(errno); }

Result<int> family_number(SocketFamily family) noexcept {
  switch (family) {
    case SocketFamily::ipv4:
      return kFamilyIpv4;
    case SocketFamily::ipv6:
      return kFamilyIpv6;
    case SocketFamily::local:
      return kFamilyLocal;
    case SocketFamily::unspecified:
      break;
  }
  return Error(EINVAL);
}

int type_number(SocketType type) noexcept {
  int number = type == SocketType::stream ? kSocketStream : kSocketDatagram;
#if !defined(__APPLE__)
  number |= kSocketNonBlocking | kSocketCloseOnExec;  // note a
#endif
  return number;
}

// macOS: what FreeBSD's creation flags do, and SO_NOSIGPIPE (notes a, b). On failure the
// descriptor is closed.
Result<int> finish_descriptor(int fd) noexcept {
#if defined(__APPLE__)
  int on = 1;
  int flags = ::fcntl(fd, F_GETFL);
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 || flags == -1 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
      ::setsockopt(fd, kLevelSocket, kNoSigpipe, &on, sizeof on) == -1) {
    Error failure = last_error();
    ::close(fd);
    return failure;
  }
#endif
  return fd;
}

// An Endpoint as a BSD sockaddr, in `storage`; returns its length.
Result<uint32_t> to_sockaddr(const Endpoint& address, SockaddrStorage* storage) noexcept {
  *storage = SockaddrStorage{};
  switch (address.family) {
    case SocketFamily::ipv4: {
      SockaddrIpv4 in{};
      in.length = sizeof in;
      in.family = kFamilyIpv4;
      in.port = to_network(address.port);
      for (int i = 0; i < 4; ++i)
        in.address[i] = address.ip[i];
      __builtin_memcpy(storage, &in, sizeof in);
      return static_cast<uint32_t>(sizeof in);
    }
    case SocketFamily::ipv6: {
      SockaddrIpv6 in6{};
      in6.length = sizeof in6;
      in6.family = kFamilyIpv6;
      in6.port = to_network(address.port);
      in6.flow_info = to_network(address.flow_info);
      for (int i = 0; i < 16; ++i)
        in6.address[i] = address.ip[i];
      in6.scope_id = address.scope_id;
      __builtin_memcpy(storage, &in6, sizeof in6);
      return static_cast<uint32_t>(sizeof in6);
    }
    case SocketFamily::local: {
      if (address.path_length > kLocalPathSize) return Error(ENAMETOOLONG);  // note d
      SockaddrLocal local{};
      uint32_t length = static_cast<uint32_t>(kLocalPathOffset + address.path_length);
      local.length = static_cast<uint8_t>(length);
      local.family = kFamilyLocal;
      __builtin_memcpy(local.path, address.path, address.path_length);
      __builtin_memcpy(storage, &local, sizeof local);
      return length;
    }
    case SocketFamily::unspecified:
      break;
  }
  return Error(EINVAL);
}

// A BSD sockaddr of `length` bytes as an Endpoint.
Endpoint from_sockaddr(const SockaddrStorage& storage, uint32_t length) noexcept {
  Endpoint out;
  if (length == 0) {  // an unnamed local sender (note e)
    out.family = SocketFamily::local;
  } else if (storage.family == kFamilyIpv4 && length >= sizeof(SockaddrIpv4)) {
    SockaddrIpv4 in;
    __builtin_memcpy(&in, &storage, sizeof in);
    out.family = SocketFamily::ipv4;
    out.port = to_network(in.port);
    for (int i = 0; i < 4; ++i)
      out.ip[i] = in.address[i];
  } else if (storage.family == kFamilyIpv6 && length >= sizeof(SockaddrIpv6)) {
    SockaddrIpv6 in6;
    __builtin_memcpy(&in6, &storage, sizeof in6);
    out.family = SocketFamily::ipv6;
    out.port = to_network(in6.port);
    out.flow_info = to_network(in6.flow_info);
    out.scope_id = in6.scope_id;
    for (int i = 0; i < 16; ++i)
      out.ip[i] = in6.address[i];
  } else if (storage.family == kFamilyLocal) {
    SockaddrLocal local;
    __builtin_memcpy(&local, &storage, sizeof local);
    out.family = SocketFamily::local;
    std::size_t size = length > kLocalPathOffset ? length - kLocalPathOffset : 0;
    if (size > kLocalPathSize) size = kLocalPathSize;
    std::size_t end = 0;
    while (end < size && local.path[end] != '\0')
      ++end;  // notes d, e
    __builtin_memcpy(out.path, local.path, end);
    out.path_length = static_cast<uint8_t>(end);
  }
  return out;
}

Result<std::size_t> to_size(ssize_t ret) noexcept {
  if (ret < 0) return last_error();
  return static_cast<std::size_t>(ret);
}

struct OptionName {
  int level = 0;
  int name = 0;
  bool boolean = false;
};

OptionName option_name(SocketOption option) noexcept {
  switch (option) {
    case SocketOption::reuse_address:
      return {kLevelSocket, kReuseAddress, true};
    case SocketOption::reuse_port:
      return {kLevelSocket, kReusePort, true};
    case SocketOption::no_delay:
      return {kLevelTcp, kTcpNoDelay, true};
    case SocketOption::keep_alive:
      return {kLevelSocket, kKeepAlive, true};
    case SocketOption::linger_seconds:
      return {kLevelSocket, kLingerSeconds, false};  // note g
    case SocketOption::send_buffer:
      return {kLevelSocket, kSendBuffer, false};
    case SocketOption::receive_buffer:
      return {kLevelSocket, kReceiveBuffer, false};
    case SocketOption::ipv6_only:
      return {kLevelIpv6, kIpv6Only, true};
    case SocketOption::broadcast:
      return {kLevelSocket, kBroadcast, true};
  }
  return {};
}

Sockaddr* as_sockaddr(SockaddrStorage* storage) noexcept { return reinterpret_cast<Sockaddr*>(storage); }

Error lookup_error(int status) noexcept {
  switch (status) {
    case kLookupNoName:
    case kLookupNoData:
      return Error(ENXIO);
    case kLookupAgain:
      return Error(EAGAIN);
    case kLookupMemory:
      return Error(ENOMEM);
    case kLookupSystem:
      return Error(errno != 0 ? errno : EIO);
    default:
      return Error(EIO);
  }
}

}  // namespace

Result<int> socket_open(SocketFamily family, SocketType type) noexcept {
  Result<int> number = family_number(family);
  if (!number) return number.error();
  int fd = ::socket(number.value(), type_number(type), 0);
  if (fd == -1) return last_error();
  return finish_descriptor(fd);
}

Result<SocketPair> socket_pair(SocketType type) noexcept {
  int fds[2] = {-1, -1};
  if (::socketpair(kFamilyLocal, type_number(type), 0, fds) == -1) return last_error();
  Result<int> first = finish_descriptor(fds[0]);
  if (!first) {
    ::close(fds[1]);
    return first.error();
  }
  Result<int> second = finish_descriptor(fds[1]);
  if (!second) {
    ::close(fds[0]);
    return second.error();
  }
  return SocketPair{fds[0], fds[1]};
}

Error socket_bind(int fd, const Endpoint& address) noexcept {
  SockaddrStorage storage;
  Result<uint32_t> length = to_sockaddr(address, &storage);
  if (!length) return length.error();
  return ::bind(fd, as_sockaddr(&storage), length.value()) == -1 ? last_error() : Error();
}

Error socket_listen(int fd, int backlog) noexcept { return ::listen(fd, backlog) == -1 ? last_error() : Error(); }

Result<int> socket_accept(int fd, Endpoint* peer) noexcept {
  SockaddrStorage storage{};
  uint32_t length = sizeof storage;
  int accepted;
  do {
#if defined(__APPLE__)
    accepted = ::accept(fd, as_sockaddr(&storage), &length);
#else
    accepted = ::accept4(fd, as_sockaddr(&storage), &length, kSocketNonBlocking | kSocketCloseOnExec);
#endif
  } while (accepted == -1 && errno == EINTR);
  if (accepted == -1) return last_error();
  Result<int> finished = finish_descriptor(accepted);
  if (finished && peer != nullptr) *peer = from_sockaddr(storage, length);
  return finished;
}

Error socket_connect(int fd, const Endpoint& address) noexcept {
  SockaddrStorage storage;
  Result<uint32_t> length = to_sockaddr(address, &storage);
  if (!length) return length.error();
  if (::connect(fd, as_sockaddr(&storage), length.value()) == 0) return Error();
  if (errno == EINTR) return Error(EINPROGRESS);  // note c
  return last_error();
}

Error socket_take_error(int fd) noexcept {
  int value = 0;
  uint32_t length = sizeof value;
  if (::getsockopt(fd, kLevelSocket, kSocketError, &value, &length) == -1) return last_error();
  return Error(value);
}

Result<std::size_t> socket_receive(int fd, void* buffer, std::size_t size) noexcept {
  ssize_t ret;
  do {
    ret = ::recv(fd, buffer, size, 0);
  } while (ret == -1 && errno == EINTR);
  return to_size(ret);
}

Result<std::size_t> socket_send(int fd, const void* data, std::size_t size) noexcept {
  ssize_t ret;
  do {
    ret = ::send(fd, data, size, kMessageNoSignal);  // note b
  } while (ret == -1 && errno == EINTR);
  return to_size(ret);
}

Result<ReceivedDatagram> socket_receive_from(int fd, void* buffer, std::size_t size, Endpoint* from) noexcept {
  SockaddrStorage storage{};
  IoVector vector{buffer, size};
  MessageHeader message{};
  message.name = &storage;
  message.name_length = sizeof storage;
  message.iov = &vector;
  message.iov_length = 1;
  ssize_t ret;
  do {
    ret = ::recvmsg(fd, &message, 0);
  } while (ret == -1 && errno == EINTR);
  if (ret < 0) return last_error();
  if (from != nullptr) *from = from_sockaddr(storage, message.name_length);
  ReceivedDatagram received;
  received.size = static_cast<std::size_t>(ret);
  received.truncated = (message.flags & kMessageTruncated) != 0;
  return received;
}

Result<std::size_t> socket_send_to(int fd, const void* data, std::size_t size, const Endpoint& to) noexcept {
  SockaddrStorage storage;
  Result<uint32_t> length = to_sockaddr(to, &storage);
  if (!length) return length.error();
  ssize_t ret;
  do {
    ret = ::sendto(fd, data, size, kMessageNoSignal, as_sockaddr(&storage), length.value());
  } while (ret == -1 && errno == EINTR);
  return to_size(ret);
}

Error socket_shutdown(int fd, ShutdownHow how) noexcept {
  int direction = how == ShutdownHow::read ? kShutdownRead : how == ShutdownHow::write ? kShutdownWrite : kShutdownBoth;
  return ::shutdown(fd, direction) == -1 ? last_error() : Error();
}

Error socket_set_option(int fd, SocketOption option, int value) noexcept {
  OptionName name = option_name(option);
  int result;
  if (option == SocketOption::linger_seconds) {
    Linger linger{value >= 0 ? 1 : 0, value >= 0 ? value : 0};
    result = ::setsockopt(fd, name.level, name.name, &linger, sizeof linger);
  } else {
    result = ::setsockopt(fd, name.level, name.name, &value, sizeof value);
  }
  return result == -1 ? last_error() : Error();
}

Result<int> socket_get_option(int fd, SocketOption option) noexcept {
  OptionName name = option_name(option);
  if (option == SocketOption::linger_seconds) {
    Linger linger{};
    uint32_t length = sizeof linger;
    if (::getsockopt(fd, name.level, name.name, &linger, &length) == -1) return last_error();
    return linger.on != 0 ? linger.seconds : -1;
  }
  int value = 0;
  uint32_t length = sizeof value;
  if (::getsockopt(fd, name.level, name.name, &value, &length) == -1) return last_error();
  return name.boolean ? (value != 0 ? 1 : 0) : value;  // note f
}

Result<Endpoint> socket_local_address(int fd) noexcept {
  SockaddrStorage storage{};
  uint32_t length = sizeof storage;
  if (::getsockname(fd, as_sockaddr(&storage), &length) == -1) return last_error();
  return from_sockaddr(storage, length);
}

Result<Endpoint> socket_peer_address(int fd) noexcept {
  SockaddrStorage storage{};
  uint32_t length = sizeof storage;
  if (::getpeername(fd, as_sockaddr(&storage), &length) == -1) return last_error();
  return from_sockaddr(storage, length);
}

Result<int> reserve_descriptor() noexcept { return socket_open(SocketFamily::local, SocketType::datagram); }

Result<std::size_t> lookup_host(const char* host, uint16_t port, Endpoint* out, std::size_t capacity) noexcept {
  if (host == nullptr || host[0] == '\0') return Error(EINVAL);
  AddressInfo hints{};
  hints.socket_type = kSocketStream;
  AddressInfo* list = nullptr;
  errno = 0;
  if (const int status = ::getaddrinfo(host, nullptr, &hints, &list)) return lookup_error(status);
  std::size_t count = 0;
  for (const AddressInfo* info = list; info != nullptr; info = info->next) {
    if (info->address == nullptr || info->address_length > sizeof(SockaddrStorage)) continue;
    SockaddrStorage storage{};
    __builtin_memcpy(&storage, info->address, info->address_length);
    Endpoint endpoint = from_sockaddr(storage, info->address_length);
    endpoint.port = port;
    append_unique_endpoint(endpoint, out, capacity, count);
  }
  ::freeaddrinfo(list);
  if (count == 0) return Error(ENXIO);
  return count;
}

}  // namespace evflow::detail

#endif
