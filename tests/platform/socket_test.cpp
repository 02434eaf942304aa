#include "platform/socket.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/support/descriptors.hpp"

#if !defined(_WIN32)
#include <poll.h>
#include <unistd.h>
#include <csignal>
#endif

namespace evflow::detail {
namespace {

using testing::OwnedFd;

#if defined(_WIN32)
constexpr bool kWindows = true;
#else
constexpr bool kWindows = false;
#endif

Endpoint ipv4_loopback(uint16_t port = 0) {
  Endpoint e;
  e.family = SocketFamily::ipv4;
  e.port = port;
  e.ip[0] = 127;
  e.ip[3] = 1;
  return e;
}

Endpoint ipv6_loopback(uint16_t port = 0) {
  Endpoint e;
  e.family = SocketFamily::ipv6;
  e.port = port;
  e.ip[15] = 1;
  return e;
}

Endpoint local_name(const char* name, std::size_t length) {
  Endpoint e;
  e.family = SocketFamily::local;
  e.path_length = static_cast<uint8_t>(length);
  std::memcpy(e.path, name, length);
  return e;
}

bool same_address(const Endpoint& a, const Endpoint& b) {
  return a.family == b.family && a.port == b.port && std::memcmp(a.ip, b.ip, sizeof a.ip) == 0 &&
         a.path_length == b.path_length && std::memcmp(a.path, b.path, a.path_length) == 0;
}

enum class Readiness { readable, writable };

// Blocks until `fd` is readable or writable (or has an error): readiness, never a delay.
void wait_for(int fd, Readiness what) {
#if defined(_WIN32)
  // select(): a failed connect shows in the exception set (Winsock's select()).
  fd_set wanted;
  fd_set failed;
  FD_ZERO(&wanted);
  FD_ZERO(&failed);
  FD_SET(testing::socket_of(fd), &wanted);
  FD_SET(testing::socket_of(fd), &failed);
  int ready = ::select(0, what == Readiness::readable ? &wanted : nullptr,
                       what == Readiness::writable ? &wanted : nullptr, &failed, nullptr);
  ASSERT_EQ(ready >= 1, true);
#else
  pollfd p{fd, static_cast<short>(what == Readiness::readable ? POLLIN : POLLOUT), 0};
  int ready;
  do {
    ready = ::poll(&p, 1, -1);
  } while (ready < 0 && errno == EINTR);
  ASSERT_EQ(ready, 1);
#endif
}

OwnedFd open_socket(SocketFamily family, SocketType type) {
  Result<int> fd = socket_open(family, type);
  EXPECT_TRUE(fd.ok()) << fd.error().message();
  return OwnedFd(fd.value_or(-1));
}

// A listening socket on `address` (port 0: one the system picks), and its address.
struct Listener {
  OwnedFd fd;
  Endpoint address;
};
Listener listen_on(const Endpoint& address) {
  Listener l{open_socket(address.family, SocketType::stream), {}};
  EXPECT_FALSE(socket_bind(l.fd.get(), address));
  EXPECT_FALSE(socket_listen(l.fd.get(), 8));
  Result<Endpoint> bound = socket_local_address(l.fd.get());
  EXPECT_TRUE(bound.ok());
  l.address = bound.value_or(Endpoint{});
  return l;
}

// A connected pair over `listener`: the client and the accepted end.
struct Connection {
  OwnedFd client;
  OwnedFd server;
  Endpoint accepted_peer;
};
Connection connect_to(const Listener& listener) {
  Connection c;
  c.client = open_socket(listener.address.family, SocketType::stream);
  Error started = socket_connect(c.client.get(), listener.address);
  EXPECT_TRUE(!started || started.code() == EINPROGRESS) << started.message();
  wait_for(c.client.get(), Readiness::writable);
  EXPECT_FALSE(socket_take_error(c.client.get()));
  wait_for(listener.fd.get(), Readiness::readable);
  Result<int> accepted = socket_accept(listener.fd.get(), &c.accepted_peer);
  EXPECT_TRUE(accepted.ok()) << accepted.error().message();
  c.server.reset(accepted.value_or(-1));
  return c;
}

TEST(PlatformSocket, AnUnspecifiedFamilyIsInvalid) {
  EXPECT_EQ(socket_open(SocketFamily::unspecified, SocketType::stream).error().code(), EINVAL);
}

TEST(PlatformSocket, ALoopbackTcpConnectionCarriesBytesAndKnowsBothAddresses) {
  Listener listener = listen_on(ipv4_loopback());
  ASSERT_EQ(listener.address.family, SocketFamily::ipv4);
  EXPECT_NE(listener.address.port, 0);
  EXPECT_TRUE(same_address(listener.address, ipv4_loopback(listener.address.port)));

  Connection c = connect_to(listener);
  ASSERT_GE(c.server.get(), 0);
  Result<Endpoint> client_local = socket_local_address(c.client.get());
  Result<Endpoint> client_peer = socket_peer_address(c.client.get());
  Result<Endpoint> server_peer = socket_peer_address(c.server.get());
  ASSERT_TRUE(client_local.ok() && client_peer.ok() && server_peer.ok());
  EXPECT_TRUE(same_address(client_peer.value(), listener.address));
  EXPECT_TRUE(same_address(server_peer.value(), client_local.value()));
  EXPECT_TRUE(same_address(c.accepted_peer, client_local.value()));

  Result<std::size_t> sent = socket_send(c.client.get(), "hello", 5);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent.value(), 5u);
  wait_for(c.server.get(), Readiness::readable);
  char buffer[16] = {};
  Result<std::size_t> got = socket_receive(c.server.get(), buffer, sizeof buffer);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), 5u);
  EXPECT_EQ(std::memcmp(buffer, "hello", 5), 0);
  EXPECT_EQ(socket_receive(c.server.get(), buffer, sizeof buffer).error().code(), EAGAIN);
}

TEST(PlatformSocket, AcceptWithNothingWaitingReportsEagain) {
  Listener listener = listen_on(ipv4_loopback());
  Endpoint peer;
  EXPECT_EQ(socket_accept(listener.fd.get(), &peer).error().code(), EAGAIN);
}

TEST(PlatformSocket, AConnectToAPortNobodyListensOnEndsRefused) {
  // A socket bound but not listening holds the port, so no other program can take it.
  OwnedFd holder = open_socket(SocketFamily::ipv4, SocketType::stream);
  ASSERT_FALSE(socket_bind(holder.get(), ipv4_loopback()));
  Result<Endpoint> closed_port = socket_local_address(holder.get());
  ASSERT_TRUE(closed_port.ok());

  OwnedFd client = open_socket(SocketFamily::ipv4, SocketType::stream);
  Error started = socket_connect(client.get(), closed_port.value());
  if (started.code() == EINPROGRESS) {
    wait_for(client.get(), Readiness::writable);
    EXPECT_EQ(socket_take_error(client.get()).code(), ECONNREFUSED);
  } else {
    EXPECT_EQ(started.code(), ECONNREFUSED);
  }
}

TEST(PlatformSocket, ARecvOfADatagramLargerThanTheBufferReportsItTruncated) {
  OwnedFd receiver = open_socket(SocketFamily::ipv4, SocketType::datagram);
  OwnedFd sender = open_socket(SocketFamily::ipv4, SocketType::datagram);
  ASSERT_FALSE(socket_bind(receiver.get(), ipv4_loopback()));
  ASSERT_FALSE(socket_bind(sender.get(), ipv4_loopback()));
  Result<Endpoint> to = socket_local_address(receiver.get());
  Result<Endpoint> sender_address = socket_local_address(sender.get());
  ASSERT_TRUE(to.ok() && sender_address.ok());

  ASSERT_EQ(socket_send_to(sender.get(), "0123456789", 10, to.value()).value_or(0), 10u);
  ASSERT_EQ(socket_send_to(sender.get(), "abc", 3, to.value()).value_or(0), 3u);
  wait_for(receiver.get(), Readiness::readable);
  char buffer[4] = {};
  Endpoint from;
  Result<ReceivedDatagram> got = socket_receive_from(receiver.get(), buffer, sizeof buffer, &from);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got.value().size, 4u);
  EXPECT_TRUE(got.value().truncated);
  EXPECT_EQ(std::memcmp(buffer, "0123", 4), 0);
  EXPECT_TRUE(same_address(from, sender_address.value()));

  wait_for(receiver.get(), Readiness::readable);
  got = socket_receive_from(receiver.get(), buffer, sizeof buffer, nullptr);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().size, 3u);
  EXPECT_FALSE(got.value().truncated);
  EXPECT_EQ(socket_receive_from(receiver.get(), buffer, sizeof buffer, nullptr).error().code(), EAGAIN);
}

#if defined(_WIN32)
TEST(PlatformSocket, WindowsHasNoSocketPair) {
  EXPECT_EQ(socket_pair(SocketType::stream).error().code(), EAFNOSUPPORT);
}
#else
TEST(PlatformSocket, AStreamSocketPairCarriesBytesBothWays) {
  Result<SocketPair> pair = socket_pair(SocketType::stream);
  ASSERT_TRUE(pair.ok());
  OwnedFd a(pair.value().first), b(pair.value().second);
  ASSERT_EQ(socket_send(a.get(), "ab", 2).value_or(0), 2u);
  ASSERT_EQ(socket_send(b.get(), "xyz", 3).value_or(0), 3u);
  char buffer[8];
  EXPECT_EQ(socket_receive(b.get(), buffer, sizeof buffer).value_or(0), 2u);
  EXPECT_EQ(socket_receive(a.get(), buffer, sizeof buffer).value_or(0), 3u);
  EXPECT_EQ(socket_receive(a.get(), buffer, sizeof buffer).error().code(), EAGAIN);
}

TEST(PlatformSocket, ADatagramSocketPairKeepsMessageBoundaries) {
  Result<SocketPair> pair = socket_pair(SocketType::datagram);
  ASSERT_TRUE(pair.ok());
  OwnedFd a(pair.value().first), b(pair.value().second);
  ASSERT_EQ(socket_send(a.get(), "one", 3).value_or(0), 3u);
  ASSERT_EQ(socket_send(a.get(), "three", 5).value_or(0), 5u);
  char buffer[16];
  EXPECT_EQ(socket_receive(b.get(), buffer, sizeof buffer).value_or(0), 3u);
  Result<ReceivedDatagram> second = socket_receive_from(b.get(), buffer, 2, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value().size, 2u);
  EXPECT_TRUE(second.value().truncated);
}

TEST(PlatformSocket, SocketsAreCreatedNonBlockingAndCloseOnExec) {
  OwnedFd fd = open_socket(SocketFamily::ipv4, SocketType::stream);
  EXPECT_NE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(PlatformSocket, ASendToAPeerThatClosedFailsWithoutSigpipe) {
  // The suite ignores SIGPIPE (tests/main.cpp); the default disposition would end the
  // process if a send raised it.
  auto previous = std::signal(SIGPIPE, SIG_DFL);
  Result<SocketPair> pair = socket_pair(SocketType::stream);
  ASSERT_TRUE(pair.ok());
  OwnedFd a(pair.value().first);
  testing::close_fd(pair.value().second);
  Result<std::size_t> sent = socket_send(a.get(), "x", 1);
  std::signal(SIGPIPE, previous);
  ASSERT_FALSE(sent.ok());
  EXPECT_TRUE(sent.error().code() == EPIPE || sent.error().code() == ECONNRESET) << sent.error().message();
}
#endif

TEST(PlatformSocket, ASendOnATcpConnectionResetByThePeerFailsWithoutSigpipe) {
#if !defined(_WIN32)
  auto previous = std::signal(SIGPIPE, SIG_DFL);
#endif
  Listener listener = listen_on(ipv4_loopback());
  Connection c = connect_to(listener);
  // Lingering 0 seconds makes close() reset the connection.
  ASSERT_FALSE(socket_set_option(c.server.get(), SocketOption::linger_seconds, 0));
  c.server.reset();
  wait_for(c.client.get(), Readiness::readable);
  Result<std::size_t> sent = socket_send(c.client.get(), "x", 1);
#if !defined(_WIN32)
  std::signal(SIGPIPE, previous);
#endif
  ASSERT_FALSE(sent.ok());
  EXPECT_TRUE(sent.error().code() == EPIPE || sent.error().code() == ECONNRESET) << sent.error().message();
}

TEST(PlatformSocket, ShuttingDownTheWriteSideMakesThePeerReadTheEnd) {
  Listener listener = listen_on(ipv4_loopback());
  Connection c = connect_to(listener);
  ASSERT_FALSE(socket_shutdown(c.client.get(), ShutdownHow::write));
  wait_for(c.server.get(), Readiness::readable);
  char buffer[4];
  Result<std::size_t> got = socket_receive(c.server.get(), buffer, sizeof buffer);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), 0u);
  // The other direction still works.
  EXPECT_EQ(socket_send(c.server.get(), "ok", 2).value_or(0), 2u);
}

TEST(PlatformSocket, ShuttingDownAnUnconnectedSocketReportsNotConnected) {
  OwnedFd fd = open_socket(SocketFamily::ipv4, SocketType::stream);
  EXPECT_EQ(socket_shutdown(fd.get(), ShutdownHow::both).code(), ENOTCONN);
}

TEST(PlatformSocket, OptionsReadBackWhatWasSet) {
  OwnedFd fd = open_socket(SocketFamily::ipv4, SocketType::stream);
  for (SocketOption option : {SocketOption::no_delay, SocketOption::keep_alive, SocketOption::reuse_address}) {
    // Windows sets nothing for reuse_address (platform/win/socket.cpp, note e).
    const int on = kWindows && option == SocketOption::reuse_address ? 0 : 1;
    ASSERT_FALSE(socket_set_option(fd.get(), option, 1));
    EXPECT_EQ(socket_get_option(fd.get(), option).value_or(-1), on);
    ASSERT_FALSE(socket_set_option(fd.get(), option, 0));
    EXPECT_EQ(socket_get_option(fd.get(), option).value_or(-1), 0);
  }
  ASSERT_FALSE(socket_set_option(fd.get(), SocketOption::linger_seconds, 5));
  EXPECT_EQ(socket_get_option(fd.get(), SocketOption::linger_seconds).value_or(0), 5);
  ASSERT_FALSE(socket_set_option(fd.get(), SocketOption::linger_seconds, -1));
  EXPECT_EQ(socket_get_option(fd.get(), SocketOption::linger_seconds).value_or(0), -1);
  // Linux doubles a buffer size it is given (socket(7)): at least what was asked for.
  ASSERT_FALSE(socket_set_option(fd.get(), SocketOption::receive_buffer, 32768));
  EXPECT_GE(socket_get_option(fd.get(), SocketOption::receive_buffer).value_or(0), 32768);

  OwnedFd udp = open_socket(SocketFamily::ipv4, SocketType::datagram);
  ASSERT_FALSE(socket_set_option(udp.get(), SocketOption::broadcast, 1));
  EXPECT_EQ(socket_get_option(udp.get(), SocketOption::broadcast).value_or(0), 1);
}

TEST(PlatformSocket, AnIpv6LoopbackConnectionKnowsItsAddresses) {
  Result<int> probe = socket_open(SocketFamily::ipv6, SocketType::stream);
  if (!probe.ok() && probe.error().code() == EAFNOSUPPORT) GTEST_SKIP() << "no IPv6 on this machine";
  OwnedFd listener_fd(probe.value_or(-1));
  ASSERT_GE(listener_fd.get(), 0);
  ASSERT_FALSE(socket_set_option(listener_fd.get(), SocketOption::ipv6_only, 1));
  EXPECT_EQ(socket_get_option(listener_fd.get(), SocketOption::ipv6_only).value_or(0), 1);
  Error bound = socket_bind(listener_fd.get(), ipv6_loopback());
  if (bound.code() == EADDRNOTAVAIL) GTEST_SKIP() << "no IPv6 loopback address on this machine";
  ASSERT_FALSE(bound) << bound.message();
  ASSERT_FALSE(socket_listen(listener_fd.get(), 8));
  Listener listener{std::move(listener_fd), {}};
  listener.address = socket_local_address(listener.fd.get()).value_or(Endpoint{});
  ASSERT_EQ(listener.address.family, SocketFamily::ipv6);
  EXPECT_TRUE(same_address(listener.address, ipv6_loopback(listener.address.port)));

  Connection c = connect_to(listener);
  Result<Endpoint> client_local = socket_local_address(c.client.get());
  ASSERT_TRUE(client_local.ok());
  EXPECT_TRUE(same_address(client_local.value(), c.accepted_peer));
  EXPECT_EQ(c.accepted_peer.ip[15], 1);
}

// A filesystem path for a local socket, in a directory of its own, removed afterwards.
class SocketPath {
 public:
  SocketPath() {
#if defined(_WIN32)
    char directory[MAX_PATH];
    DWORD size = GetTempPathA(sizeof directory, directory);
    length_ = size == 0 ? 0 : std::snprintf(path_, sizeof path_, "%sevflow-%lu.sock", directory, GetCurrentProcessId());
#else
    if (::mkdtemp(directory_) != nullptr) length_ = std::snprintf(path_, sizeof path_, "%s/s", directory_);
#endif
  }
  ~SocketPath() {
#if defined(_WIN32)
    DeleteFileA(path_);
#else
    ::unlink(path_);
    ::rmdir(directory_);
#endif
  }
  // Empty when no directory could be made, or the path would not fit a sockaddr_un.
  Endpoint endpoint() const {
    if (length_ <= 0 || length_ > static_cast<int>(Endpoint::kMaxPath) - 4) return Endpoint{};
    return local_name(path_, static_cast<std::size_t>(length_));
  }

 private:
#if !defined(_WIN32)
  char directory_[32] = "/tmp/evflow-socket-XXXXXX";
#endif
  char path_[300] = {};
  int length_ = 0;
};

TEST(PlatformSocket, AFilesystemLocalAddressRoundTrips) {
  Result<int> opened = socket_open(SocketFamily::local, SocketType::stream);
#if defined(_WIN32)
  if (!opened.ok() && opened.error().code() == EAFNOSUPPORT)
    GTEST_SKIP() << "this Windows (or wine) has no AF_UNIX provider";
#endif
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  OwnedFd listener(opened.value());
  SocketPath path;
  Endpoint address = path.endpoint();
  ASSERT_EQ(address.family, SocketFamily::local);
  ASSERT_FALSE(socket_bind(listener.get(), address));
  Result<Endpoint> bound = socket_local_address(listener.get());
  ASSERT_TRUE(bound.ok());
  EXPECT_TRUE(same_address(bound.value(), address));
  ASSERT_FALSE(socket_listen(listener.get(), 4));

  OwnedFd client = open_socket(SocketFamily::local, SocketType::stream);
  Error started = socket_connect(client.get(), bound.value());
  EXPECT_TRUE(!started || started.code() == EINPROGRESS) << started.message();
  wait_for(listener.get(), Readiness::readable);
  Endpoint peer;
  Result<int> accepted = socket_accept(listener.get(), &peer);
  ASSERT_TRUE(accepted.ok());
  OwnedFd server(accepted.value());
  EXPECT_EQ(peer.family, SocketFamily::local);
  EXPECT_EQ(peer.path_length, 0);  // an unbound client is unnamed
}

#if !defined(_WIN32)
// The spare is a descriptor of its own, not a duplicate of a listener: closing the
// listener must end the listening socket (net/listener.hpp).
TEST(PlatformSocket, ReserveDescriptorGivesANewCloseOnExecDescriptorOfItsOwn) {
  OwnedFd fd = open_socket(SocketFamily::ipv4, SocketType::stream);
  Result<int> spare = reserve_descriptor();
  ASSERT_TRUE(spare.ok());
  OwnedFd kept(spare.value());
  EXPECT_NE(kept.get(), fd.get());
  EXPECT_NE(::fcntl(kept.get(), F_GETFD) & FD_CLOEXEC, 0);
}
#else
TEST(PlatformSocket, ReserveDescriptorIsNotNeededOnWindows) {
  OwnedFd fd = open_socket(SocketFamily::ipv4, SocketType::stream);
  EXPECT_EQ(reserve_descriptor().error().code(), ENOSYS);
}
#endif

#if defined(__linux__)
TEST(PlatformSocket, AnAbstractLocalAddressRoundTripsOnLinux) {
  char name[32];
  int length = std::snprintf(name, sizeof name, "%cevflow-test-%d", '\0', static_cast<int>(::getpid()));
  Endpoint address = local_name(name, static_cast<std::size_t>(length));
  OwnedFd receiver = open_socket(SocketFamily::local, SocketType::datagram);
  ASSERT_FALSE(socket_bind(receiver.get(), address));
  Result<Endpoint> bound = socket_local_address(receiver.get());
  ASSERT_TRUE(bound.ok());
  EXPECT_TRUE(same_address(bound.value(), address));

  OwnedFd sender = open_socket(SocketFamily::local, SocketType::datagram);
  ASSERT_EQ(socket_send_to(sender.get(), "hi", 2, address).value_or(0), 2u);
  char buffer[4];
  Endpoint from;
  Result<ReceivedDatagram> got = socket_receive_from(receiver.get(), buffer, sizeof buffer, &from);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().size, 2u);
  // An unbound sender is unnamed: a local address of length 0.
  EXPECT_EQ(from.family, SocketFamily::local);
  EXPECT_EQ(from.path_length, 0);
}
#endif

}  // namespace
}  // namespace evflow::detail
