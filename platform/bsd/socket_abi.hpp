// evflow — the socket ABI of FreeBSD and macOS that platform/bsd/socket.cpp needs, declared
// by the project: the FreeBSD/macOS compile check (make bsd-check) builds against the
// host's glibc headers, whose sockaddr layouts and constants are Linux's. Values come from
// FreeBSD 14's sys/sys/socket.h, sys/sys/un.h, sys/netinet/in.h, sys/netinet6/in6.h,
// sys/netinet/tcp.h and XNU's bsd/sys/socket.h, bsd/sys/un.h, bsd/netinet/in.h,
// bsd/netinet6/in6.h, bsd/netinet/tcp.h (macOS 13 SDK); where the two differ, both are given.
//
// Every BSD sockaddr starts with a length byte (sa_len) and a family byte, where Linux has
// a 16-bit family.
#pragma once

#include <cstddef>
#include <cstdint>

namespace evflow::detail::bsd_socket_abi {

// Address families (sys/socket.h).
inline constexpr int kFamilyLocal = 1;  // AF_UNIX
inline constexpr int kFamilyIpv4 = 2;   // AF_INET
#if defined(__APPLE__)
inline constexpr int kFamilyIpv6 = 30;  // AF_INET6, XNU
#else
inline constexpr int kFamilyIpv6 = 28;            // AF_INET6, FreeBSD
#endif

// Socket types (sys/socket.h). The creation flags are FreeBSD's (>= 10.0); macOS has none.
inline constexpr int kSocketStream = 1;    // SOCK_STREAM
inline constexpr int kSocketDatagram = 2;  // SOCK_DGRAM
#if !defined(__APPLE__)
inline constexpr int kSocketCloseOnExec = 0x10000000;  // SOCK_CLOEXEC
inline constexpr int kSocketNonBlocking = 0x20000000;  // SOCK_NONBLOCK
#endif

// Option levels and names (sys/socket.h, netinet/in.h, netinet6/in6.h, netinet/tcp.h).
inline constexpr int kLevelSocket = 0xffff;    // SOL_SOCKET
inline constexpr int kLevelTcp = 6;            // IPPROTO_TCP
inline constexpr int kLevelIpv6 = 41;          // IPPROTO_IPV6
inline constexpr int kReuseAddress = 0x0004;   // SO_REUSEADDR
inline constexpr int kKeepAlive = 0x0008;      // SO_KEEPALIVE
inline constexpr int kBroadcast = 0x0020;      // SO_BROADCAST
inline constexpr int kReusePort = 0x0200;      // SO_REUSEPORT
inline constexpr int kSendBuffer = 0x1001;     // SO_SNDBUF
inline constexpr int kReceiveBuffer = 0x1002;  // SO_RCVBUF
inline constexpr int kSocketError = 0x1007;    // SO_ERROR
#if defined(__APPLE__)
// XNU's SO_LINGER (0x0080) counts in clock ticks; SO_LINGER_SEC counts in seconds.
inline constexpr int kLingerSeconds = 0x1080;  // SO_LINGER_SEC
inline constexpr int kNoSigpipe = 0x1022;      // SO_NOSIGPIPE
#else
inline constexpr int kLingerSeconds = 0x0080;     // SO_LINGER (seconds on FreeBSD)
#endif
inline constexpr int kTcpNoDelay = 1;  // TCP_NODELAY
inline constexpr int kIpv6Only = 27;   // IPV6_V6ONLY

// Message flags (sys/socket.h).
inline constexpr int kMessageTruncated = 0x10;  // MSG_TRUNC
#if defined(__APPLE__)
inline constexpr int kMessageNoSignal = 0;  // none used: SO_NOSIGPIPE is set on every socket
#else
inline constexpr int kMessageNoSignal = 0x20000;  // MSG_NOSIGNAL
#endif

// shutdown(2) directions (sys/socket.h).
inline constexpr int kShutdownRead = 0;   // SHUT_RD
inline constexpr int kShutdownWrite = 1;  // SHUT_WR
inline constexpr int kShutdownBoth = 2;   // SHUT_RDWR

// struct sockaddr: the header every address starts with.
struct Sockaddr {
  uint8_t length;
  uint8_t family;
  char data[14];
};

// struct sockaddr_in (netinet/in.h). Port and address in network byte order.
struct SockaddrIpv4 {
  uint8_t length;
  uint8_t family;
  uint16_t port;
  uint8_t address[4];
  uint8_t zero[8];
};
static_assert(sizeof(SockaddrIpv4) == 16);

// struct sockaddr_in6 (netinet6/in6.h). Flow info in network byte order, the scope id in
// host byte order.
struct SockaddrIpv6 {
  uint8_t length;
  uint8_t family;
  uint16_t port;
  uint32_t flow_info;
  uint8_t address[16];
  uint32_t scope_id;
};
static_assert(sizeof(SockaddrIpv6) == 28);

// struct sockaddr_un (sys/un.h): 104 bytes of path on both.
inline constexpr std::size_t kLocalPathSize = 104;
struct SockaddrLocal {
  uint8_t length;
  uint8_t family;
  char path[kLocalPathSize];
};
static_assert(sizeof(SockaddrLocal) == 106);
inline constexpr std::size_t kLocalPathOffset = offsetof(SockaddrLocal, path);

// struct sockaddr_storage (sys/socket.h): 128 bytes, 8-byte aligned.
struct alignas(8) SockaddrStorage {
  uint8_t length;
  uint8_t family;
  uint8_t data[126];
};
static_assert(sizeof(SockaddrStorage) == 128);

// struct addrinfo (netdb.h), the same on FreeBSD and macOS: the canonical name comes
// before the address, where glibc has them the other way round.
struct AddressInfo {
  int flags;
  int family;
  int socket_type;
  int protocol;
  uint32_t address_length;
  char* canonical_name;
  Sockaddr* address;
  AddressInfo* next;
};
// getaddrinfo's answers (netdb.h), the same numbers on both.
inline constexpr int kLookupAgain = 2;    // EAI_AGAIN
inline constexpr int kLookupMemory = 6;   // EAI_MEMORY
inline constexpr int kLookupNoData = 7;   // EAI_NODATA (macOS; unused on FreeBSD)
inline constexpr int kLookupNoName = 8;   // EAI_NONAME
inline constexpr int kLookupSystem = 11;  // EAI_SYSTEM: errno says why

// struct linger (sys/socket.h).
struct Linger {
  int on;
  int seconds;
};

// struct iovec (sys/uio.h) and struct msghdr (sys/socket.h) of a 64-bit process: the
// counts are int and socklen_t there, where Linux has size_t.
struct IoVector {
  void* base;
  std::size_t length;
};
struct MessageHeader {
  void* name;
  uint32_t name_length;
  IoVector* iov;
  int iov_length;
  void* control;
  uint32_t control_length;
  int flags;
};
static_assert(sizeof(MessageHeader) == 48);
static_assert(offsetof(MessageHeader, flags) == 44);

}  // namespace evflow::detail::bsd_socket_abi
