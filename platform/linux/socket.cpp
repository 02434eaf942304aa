// evflow — the socket calls of platform/socket.hpp on Linux, as raw system calls (no libc,
// no errno; the ABI is in socket_abi.hpp).
//
// Notes on Linux sockets, the kernel behaviours handled here:
//
// a) socket(2), socketpair(2) and accept4(2) take SOCK_NONBLOCK | SOCK_CLOEXEC, so every
//    descriptor is made non-blocking and close-on-exec atomically (Linux >= 2.6.27).
// b) SIGPIPE is avoided per call with MSG_NOSIGNAL on every send (send(2)); Linux has no
//    per-socket SO_NOSIGPIPE.
// c) An interrupted connect() goes on in the background (connect(2), ERRORS, EINTR); a
//    second connect() would then answer EALREADY. EINTR from connect is reported as
//    EINPROGRESS instead of being retried.
// d) accept() passes on network errors already pending on the new connection (ENETDOWN,
//    EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH) and
//    asks the caller to try again (accept(2), NOTES). They are reported as ECONNABORTED,
//    which platform/socket.hpp already defines as "try again".
// e) A datagram's truncation is read from msg_flags & MSG_TRUNC after recvmsg(2); passing
//    MSG_TRUNC as a flag would instead return the datagram's full length, larger than
//    what was stored (recv(2), MSG_TRUNC).
// f) Local addresses: the length of a sockaddr_un is offsetof(sun_path) + the name's
//    length; a name whose first byte is '\0' is abstract (unix(7), "Address format").
//    getsockname(2) and friends return a filesystem path with its terminating '\0'
//    counted (and, for a path that fills sun_path, without one); it is stripped here.
//    An unnamed socket comes back as just the family (length 2) from getsockname(),
//    getpeername() and accept(), but as no address at all (length 0) from recvmsg() of a
//    datagram: both are a local Endpoint of path_length 0. A name of the full 108 bytes is
//    cut to Endpoint::kMaxPath (107).
// g) SO_SNDBUF and SO_RCVBUF: the kernel doubles the value set, for its bookkeeping, and
//    getsockopt() returns the doubled value (socket(7)).
// h) Boolean options read back as 0 or 1 here; Linux already returns 1 for a set flag,
//    BSD returns the flag's bit, which the BSD implementation folds the same way.
// i) Name lookup is the one call that goes through the C library: the resolver
//    (nsswitch.conf, /etc/hosts, DNS) is glibc's getaddrinfo(3), not a system call. Its
//    EAI_SYSTEM answer leaves the reason in errno. glibc >= 2.34 has the files and dns
//    sources built in, so a static build resolves too.
#include "../socket.hpp"

#include <netdb.h>  // note i

#include <cerrno>

#include <bit>
#include <new>

#include "socket_abi.hpp"
#include "socket_operation.hpp"
#include "sys.hpp"

namespace evflow::detail {

namespace {

using namespace linux_abi;

constexpr uint16_t to_network(uint16_t value) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(value);
  return value;
}
constexpr uint32_t to_network(uint32_t value) noexcept {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(value);
  return value;
}

long pointer(const void* p) noexcept { return reinterpret_cast<long>(p); }

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
  return (type == SocketType::stream ? kSocketStream : kSocketDatagram) | kNonBlocking | kCloseOnExec;
}

// An Endpoint as the kernel's sockaddr, in `storage`; returns its length.
Result<int> to_sockaddr(const Endpoint& address, SockaddrStorage* storage) noexcept {
  *storage = SockaddrStorage{};
  switch (address.family) {
    case SocketFamily::ipv4: {
      SockaddrIpv4 in{};
      in.family = kFamilyIpv4;
      in.port = to_network(address.port);
      for (int i = 0; i < 4; ++i)
        in.address[i] = address.ip[i];
      __builtin_memcpy(storage, &in, sizeof in);
      return static_cast<int>(sizeof in);
    }
    case SocketFamily::ipv6: {
      SockaddrIpv6 in6{};
      in6.family = kFamilyIpv6;
      in6.port = to_network(address.port);
      in6.flow_info = to_network(address.flow_info);
      for (int i = 0; i < 16; ++i)
        in6.address[i] = address.ip[i];
      in6.scope_id = address.scope_id;
      __builtin_memcpy(storage, &in6, sizeof in6);
      return static_cast<int>(sizeof in6);
    }
    case SocketFamily::local: {
      if (address.path_length > Endpoint::kMaxPath) return Error(EINVAL);
      SockaddrLocal local{};
      local.family = kFamilyLocal;
      __builtin_memcpy(local.path, address.path, address.path_length);
      __builtin_memcpy(storage, &local, sizeof local);
      return static_cast<int>(kLocalPathOffset + address.path_length);  // note f
    }
    case SocketFamily::unspecified:
      break;
  }
  return Error(EINVAL);
}

// The kernel's sockaddr of `length` bytes as an Endpoint.
Endpoint from_sockaddr(const SockaddrStorage& storage, int length) noexcept {
  Endpoint out;
  if (storage.family == kFamilyIpv4 && length >= static_cast<int>(sizeof(SockaddrIpv4))) {
    SockaddrIpv4 in;
    __builtin_memcpy(&in, &storage, sizeof in);
    out.family = SocketFamily::ipv4;
    out.port = to_network(in.port);
    for (int i = 0; i < 4; ++i)
      out.ip[i] = in.address[i];
  } else if (storage.family == kFamilyIpv6 && length >= static_cast<int>(sizeof(SockaddrIpv6))) {
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
    std::size_t size =
        length > static_cast<int>(kLocalPathOffset) ? static_cast<std::size_t>(length) - kLocalPathOffset : 0;
    if (size > kLocalPathSize) size = kLocalPathSize;
    if (size > 0 && local.path[0] != '\0') {  // a filesystem path: up to its '\0' (note f)
      std::size_t end = 0;
      while (end < size && local.path[end] != '\0')
        ++end;
      size = end;
    }
    if (size > Endpoint::kMaxPath) size = Endpoint::kMaxPath;
    __builtin_memcpy(out.path, local.path, size);
    out.path_length = static_cast<uint8_t>(size);
  }
  return out;
}

// A system call that may be interrupted, retried (every descriptor is non-blocking).
template <class Call>
long retrying(Call call) noexcept {
  long ret;
  do {
    ret = call();
  } while (ret == -EINTR);
  return ret;
}

Result<std::size_t> to_size(long ret) noexcept {
  if (is_error(ret)) return Error(static_cast<int>(-ret));
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
      return {kLevelSocket, kLinger, false};
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

Result<Endpoint> address_of(int fd, long number) noexcept {
  SockaddrStorage storage{};
  int length = sizeof storage;
  long ret = raw_syscall(number, fd, pointer(&storage), pointer(&length));
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return from_sockaddr(storage, length);
}

Error lookup_error(int status) noexcept {
  switch (status) {
    case EAI_NONAME:
#if defined(EAI_NODATA)
    case EAI_NODATA:
#endif
      return Error(ENXIO);
    case EAI_AGAIN:
      return Error(EAGAIN);
    case EAI_MEMORY:
      return Error(ENOMEM);
    case EAI_SYSTEM:
      return Error(errno != 0 ? errno : EIO);
    default:
      return Error(EIO);
  }
}

}  // namespace

Result<int> socket_open(SocketFamily family, SocketType type) noexcept {
  Result<int> number = family_number(family);
  if (!number) return number.error();
  return linux_abi::detail::to_int(raw_syscall(nr::socket, number.value(), type_number(type), 0));
}

Result<SocketPair> socket_pair(SocketType type) noexcept {
  int fds[2] = {-1, -1};
  long ret = raw_syscall(nr::socketpair, kFamilyLocal, type_number(type), 0, pointer(fds));
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return SocketPair{fds[0], fds[1]};
}

Error socket_bind(int fd, const Endpoint& address) noexcept {
  SockaddrStorage storage;
  Result<int> length = to_sockaddr(address, &storage);
  if (!length) return length.error();
  return linux_abi::detail::to_error(raw_syscall(nr::bind, fd, pointer(&storage), length.value()));
}

Error socket_listen(int fd, int backlog) noexcept {
  return linux_abi::detail::to_error(raw_syscall(nr::listen, fd, backlog));
}

namespace {

// accept4's errors as the caller sees them: the network's errors about the connection
// that was queued are ECONNABORTED (note d), to be skipped like it.
int accept_error(int code) noexcept {
  switch (code) {
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return ECONNABORTED;
    default:
      return code;
  }
}

}  // namespace

Result<int> socket_accept(int fd, Endpoint* peer) noexcept {
  SockaddrStorage storage{};
  int length = sizeof storage;
  long ret = retrying(
      [&] { return raw_syscall(nr::accept4, fd, pointer(&storage), pointer(&length), kNonBlocking | kCloseOnExec); });
  if (is_error(ret)) return Error(accept_error(static_cast<int>(-ret)));
  if (peer != nullptr) *peer = from_sockaddr(storage, length);
  return static_cast<int>(ret);
}

Error socket_connect(int fd, const Endpoint& address) noexcept {
  SockaddrStorage storage;
  Result<int> length = to_sockaddr(address, &storage);
  if (!length) return length.error();
  long ret = raw_syscall(nr::connect, fd, pointer(&storage), length.value());
  if (ret == -EINTR) return Error(EINPROGRESS);  // note c
  return linux_abi::detail::to_error(ret);
}

Error socket_take_error(int fd) noexcept {
  int value = 0;
  int length = sizeof value;
  long ret = raw_syscall(nr::getsockopt, fd, kLevelSocket, kSocketError, pointer(&value), pointer(&length));
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return Error(value);
}

Result<std::size_t> socket_receive(int fd, void* buffer, std::size_t size) noexcept {
  return to_size(
      retrying([&] { return raw_syscall(nr::recvfrom, fd, pointer(buffer), static_cast<long>(size), 0, 0, 0); }));
}

Result<std::size_t> socket_send(int fd, const void* data, std::size_t size) noexcept {
  return to_size(retrying(
      [&] { return raw_syscall(nr::sendto, fd, pointer(data), static_cast<long>(size), kMessageNoSignal, 0, 0); }));
}

Result<ReceivedDatagram> socket_receive_from(int fd, void* buffer, std::size_t size, Endpoint* from) noexcept {
  SockaddrStorage storage{};
  IoVector vector{buffer, size};
  MessageHeader message{};
  message.name = &storage;
  message.name_length = sizeof storage;
  message.iov = &vector;
  message.iov_length = 1;
  long ret = retrying([&] { return raw_syscall(nr::recvmsg, fd, pointer(&message), 0); });
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  if (from != nullptr) {
    *from = from_sockaddr(storage, message.name_length);
    if (message.name_length == 0) from->family = SocketFamily::local;  // an unnamed sender (note f)
  }
  ReceivedDatagram received;
  received.size = static_cast<std::size_t>(ret);
  received.truncated = (message.flags & kMessageTruncated) != 0;  // note e
  return received;
}

Result<std::size_t> socket_send_to(int fd, const void* data, std::size_t size, const Endpoint& to) noexcept {
  SockaddrStorage storage;
  Result<int> length = to_sockaddr(to, &storage);
  if (!length) return length.error();
  return to_size(retrying([&] {
    return raw_syscall(nr::sendto, fd, pointer(data), static_cast<long>(size), kMessageNoSignal, pointer(&storage),
                       length.value());
  }));
}

Error socket_shutdown(int fd, ShutdownHow how) noexcept {
  int direction = how == ShutdownHow::read ? kShutdownRead : how == ShutdownHow::write ? kShutdownWrite : kShutdownBoth;
  return linux_abi::detail::to_error(raw_syscall(nr::shutdown, fd, direction));
}

Error socket_set_option(int fd, SocketOption option, int value) noexcept {
  OptionName name = option_name(option);
  if (option == SocketOption::linger_seconds) {
    Linger linger{value >= 0 ? 1 : 0, value >= 0 ? value : 0};
    return linux_abi::detail::to_error(
        raw_syscall(nr::setsockopt, fd, name.level, name.name, pointer(&linger), sizeof linger));
  }
  return linux_abi::detail::to_error(
      raw_syscall(nr::setsockopt, fd, name.level, name.name, pointer(&value), sizeof value));
}

Result<int> socket_get_option(int fd, SocketOption option) noexcept {
  OptionName name = option_name(option);
  if (option == SocketOption::linger_seconds) {
    Linger linger{};
    int length = sizeof linger;
    long ret = raw_syscall(nr::getsockopt, fd, name.level, name.name, pointer(&linger), pointer(&length));
    if (is_error(ret)) return Error(static_cast<int>(-ret));
    return linger.on != 0 ? linger.seconds : -1;
  }
  int value = 0;
  int length = sizeof value;
  long ret = raw_syscall(nr::getsockopt, fd, name.level, name.name, pointer(&value), pointer(&length));
  if (is_error(ret)) return Error(static_cast<int>(-ret));
  return name.boolean ? (value != 0 ? 1 : 0) : value;  // note h
}

Result<Endpoint> socket_local_address(int fd) noexcept { return address_of(fd, nr::getsockname); }

Result<Endpoint> socket_peer_address(int fd) noexcept { return address_of(fd, nr::getpeername); }

Result<int> reserve_descriptor() noexcept { return linux_abi::eventfd(0); }

Result<std::size_t> lookup_host(const char* host, uint16_t port, Endpoint* out, std::size_t capacity) noexcept {
  if (host == nullptr || host[0] == '\0') return Error(EINVAL);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  errno = 0;
  if (const int status = ::getaddrinfo(host, nullptr, &hints, &list)) return lookup_error(status);
  std::size_t count = 0;
  for (const addrinfo* info = list; info != nullptr; info = info->ai_next) {
    if (info->ai_addr == nullptr || info->ai_addrlen > sizeof(SockaddrStorage)) continue;
    SockaddrStorage storage{};
    __builtin_memcpy(&storage, info->ai_addr, info->ai_addrlen);
    Endpoint endpoint = from_sockaddr(storage, static_cast<int>(info->ai_addrlen));
    endpoint.port = port;
    append_unique_endpoint(endpoint, out, capacity, count);
  }
  ::freeaddrinfo(list);
  if (count == 0) return Error(ENXIO);
  return count;
}

// --- the io_uring form of each call (socket_operation.hpp) ------------------------------

namespace {

// What a request keeps in its scratch space for the kernel.
struct OperationScratch {
  SockaddrStorage address;
  MessageHeader message;
  IoVector vector;
  int address_length;
};
static_assert(sizeof(OperationScratch) <= sizeof(OperationRequest::scratch));
static_assert(alignof(OperationScratch) <= 8);

OperationScratch& scratch_of(OperationRequest& request) noexcept {
  return *reinterpret_cast<OperationScratch*>(request.scratch);
}

}  // namespace

Error prepare_operation(OperationRequest& request, IoUringSqe& sqe) noexcept {
  sqe.fd = request.fd;
  if (request.kind == OperationKind::receive || request.kind == OperationKind::send) {
    // The buffer alone: nothing for the scratch space (the common case, kept short).
    sqe.opcode = request.kind == OperationKind::receive ? kIoringOpRecv : kIoringOpSend;
    sqe.addr = reinterpret_cast<uint64_t>(request.buffer);
    sqe.len = request.size;
    sqe.op_flags = request.kind == OperationKind::send ? static_cast<uint32_t>(kMessageNoSignal) : 0u;
    return Error();
  }
  OperationScratch& scratch = *new (request.scratch) OperationScratch{};
  switch (request.kind) {
    case OperationKind::receive:
    case OperationKind::send:
      break;  // above
    case OperationKind::accept:
      sqe.opcode = kIoringOpAccept;
      scratch.address_length = sizeof scratch.address;
      sqe.addr = reinterpret_cast<uint64_t>(&scratch.address);
      sqe.off = reinterpret_cast<uint64_t>(&scratch.address_length);
      sqe.op_flags = kNonBlocking | kCloseOnExec;
      return Error();
    case OperationKind::connect: {
      if (request.endpoint == nullptr) return Error(EINVAL);
      Result<int> length = to_sockaddr(*request.endpoint, &scratch.address);
      if (!length) return length.error();
      sqe.opcode = kIoringOpConnect;
      sqe.addr = reinterpret_cast<uint64_t>(&scratch.address);
      sqe.off = static_cast<uint64_t>(length.value());
      return Error();
    }
    case OperationKind::receive_from:
    case OperationKind::send_to: {
      scratch.vector = IoVector{request.buffer, request.size};
      scratch.message.iov = &scratch.vector;
      scratch.message.iov_length = 1;
      const bool receiving = request.kind == OperationKind::receive_from;
      if (receiving) {
        scratch.message.name = &scratch.address;
        scratch.message.name_length = sizeof scratch.address;
      } else if (request.endpoint != nullptr) {
        Result<int> length = to_sockaddr(*request.endpoint, &scratch.address);
        if (!length) return length.error();
        scratch.message.name = &scratch.address;
        scratch.message.name_length = length.value();
      }
      sqe.opcode = receiving ? kIoringOpRecvmsg : kIoringOpSendmsg;
      sqe.addr = reinterpret_cast<uint64_t>(&scratch.message);
      sqe.len = 1;
      sqe.op_flags = receiving ? 0u : static_cast<uint32_t>(kMessageNoSignal);
      return Error();
    }
  }
  return Error(EINVAL);
}

void finish_operation(OperationRequest& request, int32_t res, uint32_t) noexcept {
  OperationScratch& scratch = scratch_of(request);
  request.result = res;
  request.truncated = false;
  if (res < 0) {
    if (request.kind == OperationKind::accept) request.result = -accept_error(-res);
    return;
  }
  if (request.kind == OperationKind::accept && request.endpoint != nullptr) {
    *request.endpoint = from_sockaddr(scratch.address, scratch.address_length);
  } else if (request.kind == OperationKind::receive_from) {
    request.truncated = (scratch.message.flags & kMessageTruncated) != 0;  // note e
    if (request.endpoint != nullptr) {
      *request.endpoint = from_sockaddr(scratch.address, scratch.message.name_length);
      if (scratch.message.name_length == 0) request.endpoint->family = SocketFamily::local;  // note f
    }
  }
}

}  // namespace evflow::detail
