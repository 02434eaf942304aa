// evflow — the Linux socket ABI platform/linux/socket.cpp needs, declared here rather than
// taken from libc headers (as sys.hpp does for epoll). The values are the same on x86_64
// and aarch64; each names the kernel header it comes from.
#pragma once

#include <cstddef>
#include <cstdint>

namespace evflow::detail::linux_abi {

// Address families: include/linux/socket.h.
inline constexpr int kFamilyLocal = 1;  // AF_UNIX
inline constexpr int kFamilyIpv4 = 2;   // AF_INET
inline constexpr int kFamilyIpv6 = 10;  // AF_INET6

// Socket types: include/linux/net.h (enum sock_type; MIPS differs, evflow has no MIPS).
// SOCK_NONBLOCK and SOCK_CLOEXEC are O_NONBLOCK and O_CLOEXEC (sys.hpp).
inline constexpr int kSocketStream = 1;    // SOCK_STREAM
inline constexpr int kSocketDatagram = 2;  // SOCK_DGRAM

// Option levels and names: include/uapi/asm-generic/socket.h (x86_64 and aarch64 use the
// generic file), include/uapi/linux/in.h, include/uapi/linux/in6.h, include/uapi/linux/tcp.h.
inline constexpr int kLevelSocket = 1;    // SOL_SOCKET
inline constexpr int kLevelTcp = 6;       // IPPROTO_TCP
inline constexpr int kLevelIpv6 = 41;     // IPPROTO_IPV6
inline constexpr int kReuseAddress = 2;   // SO_REUSEADDR
inline constexpr int kSocketError = 4;    // SO_ERROR
inline constexpr int kBroadcast = 6;      // SO_BROADCAST
inline constexpr int kSendBuffer = 7;     // SO_SNDBUF
inline constexpr int kReceiveBuffer = 8;  // SO_RCVBUF
inline constexpr int kKeepAlive = 9;      // SO_KEEPALIVE
inline constexpr int kLinger = 13;        // SO_LINGER
inline constexpr int kReusePort = 15;     // SO_REUSEPORT
inline constexpr int kTcpNoDelay = 1;     // TCP_NODELAY
inline constexpr int kIpv6Only = 26;      // IPV6_V6ONLY

// Message flags: include/linux/socket.h.
inline constexpr int kMessageTruncated = 0x20;   // MSG_TRUNC
inline constexpr int kMessageNoSignal = 0x4000;  // MSG_NOSIGNAL

// shutdown(2) directions: include/linux/net.h.
inline constexpr int kShutdownRead = 0;   // SHUT_RD
inline constexpr int kShutdownWrite = 1;  // SHUT_WR
inline constexpr int kShutdownBoth = 2;   // SHUT_RDWR

// struct sockaddr_in: include/uapi/linux/in.h. Port and address in network byte order.
struct SockaddrIpv4 {
  uint16_t family;
  uint16_t port;
  uint8_t address[4];
  uint8_t zero[8];
};
static_assert(sizeof(SockaddrIpv4) == 16);

// struct sockaddr_in6: include/uapi/linux/in6.h. Flow info in network byte order, the
// scope id in host byte order.
struct SockaddrIpv6 {
  uint16_t family;
  uint16_t port;
  uint32_t flow_info;
  uint8_t address[16];
  uint32_t scope_id;
};
static_assert(sizeof(SockaddrIpv6) == 28);

// struct sockaddr_un: include/uapi/linux/un.h.
inline constexpr std::size_t kLocalPathSize = 108;  // UNIX_PATH_MAX
struct SockaddrLocal {
  uint16_t family;
  char path[kLocalPathSize];
};
static_assert(sizeof(SockaddrLocal) == 110);
inline constexpr std::size_t kLocalPathOffset = offsetof(SockaddrLocal, path);

// struct __kernel_sockaddr_storage: include/uapi/linux/socket.h. Large and aligned enough
// for every address above.
struct alignas(8) SockaddrStorage {
  uint16_t family;
  uint8_t data[126];
};
static_assert(sizeof(SockaddrStorage) == 128);

// struct linger: include/linux/socket.h.
struct Linger {
  int on;
  int seconds;
};

// struct iovec (include/uapi/linux/uio.h) and struct user_msghdr (include/linux/socket.h)
// of a 64-bit process.
struct IoVector {
  void* base;
  std::size_t length;
};
struct MessageHeader {
  void* name;
  int name_length;
  IoVector* iov;
  std::size_t iov_length;
  void* control;
  std::size_t control_length;
  unsigned flags;
};
static_assert(sizeof(MessageHeader) == 56);
static_assert(offsetof(MessageHeader, flags) == 48);

}  // namespace evflow::detail::linux_abi
