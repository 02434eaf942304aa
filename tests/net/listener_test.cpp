#include "net/listener.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

#include "tasks/tasks.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/sockets.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;

using TcpListenerTest = testing::SocketLoopTest;

Task<testing::Returned<TcpStream>> connect_to(SocketAddress address) {
  co_return testing::returned(co_await TcpStream::connect(address));
}

// One accept on `listener`, the peer's address into `peer` unless it is null.
Task<testing::Returned<TcpStream>> accept_from(TcpListener* listener, SocketAddress* peer) {
  co_return testing::returned(co_await listener->accept(peer));
}

TEST_F(TcpListenerTest, PortZeroPicksAFreePortThatLocalAddressTells) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  Result<SocketAddress> bound = listener.value().local_address();
  ASSERT_TRUE(bound);
  EXPECT_NE(bound.value().port(), 0);
  EXPECT_EQ(bound.value().with_port(0), SocketAddress::ipv4_loopback(0));
  EXPECT_EQ(listener.value().shed_connections(), 0u);
}

TEST_F(TcpListenerTest, ASecondListenerOnAPortInUseIsRefused) {
  Result<TcpListener> first = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(first);
  Result<TcpListener> second = TcpListener::bind(first.value().local_address().value());
  EXPECT_EQ(second.error().code(), EADDRINUSE);
}

TEST_F(TcpListenerTest, ListenersThatAskForReusePortShareThePort) {
#if defined(_WIN32)
  GTEST_SKIP() << "Windows has no SO_REUSEPORT";
#else
  Result<TcpListener> first = TcpListener::bind(SocketAddress::ipv4_loopback(0), ListenOptions{.reuse_port = true});
  ASSERT_TRUE(first);
  Result<TcpListener> second =
      TcpListener::bind(first.value().local_address().value(), ListenOptions{.reuse_port = true});
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second.value().local_address().value(), first.value().local_address().value());
#endif
}

// close() is the end of listening, as destroying the listener is: a connect to the
// port is refused, not queued for an accept that will never come.
TEST_F(TcpListenerTest, AClosedListenerNoLongerListens) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  ASSERT_FALSE(listener.value().close());
  EXPECT_FALSE(listener.value().is_open());
  Result<testing::Returned<TcpStream>> client = run_until_complete(loop, connect_to, address);
  ASSERT_TRUE(client);
  EXPECT_EQ(client.value().error.code(), ECONNREFUSED);
}

TEST_F(TcpListenerTest, ALocalAddressIsRefusedWithEinval) {
  EXPECT_EQ(TcpListener::bind(SocketAddress::local("/tmp/evflow-not-tcp").value()).error().code(), EINVAL);
}

TEST_F(TcpListenerTest, AcceptGivesTheConnectionAndItsPeersAddress) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  SocketAddress peer;
  auto accepted = spawn(loop, accept_from, &listener.value(), &peer);
  iterate();
  EXPECT_FALSE(accepted.done()) << "nobody has connected";
  auto connected = spawn(loop, connect_to, address);
  ASSERT_TRUE(testing::run_until(loop, [&] { return accepted.done() && connected.done(); }));
  Result<testing::Returned<TcpStream>> server = accepted.result();
  Result<testing::Returned<TcpStream>> client = connected.result();
  ASSERT_TRUE(server && server.value());
  ASSERT_TRUE(client && client.value());
  EXPECT_EQ(peer, client.value().value.local_address().value());
  EXPECT_EQ(server.value().value.peer_address().value(), peer);
}

TEST_F(TcpListenerTest, ACancelledAcceptTakesNoConnectionAndTheNextAcceptGetsIt) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  auto first = spawn(loop, accept_from, &listener.value(), nullptr);
  iterate();
  ASSERT_FALSE(first.done());
  first.cancel();
  iterate();
  ASSERT_TRUE(first.done());
  EXPECT_EQ(first.result().value().error.code(), ECANCELED);
  Result<testing::Returned<TcpStream>> client = run_until_complete(loop, connect_to, address);
  ASSERT_TRUE(client && client.value());
  SocketAddress peer;
  Result<testing::Returned<TcpStream>> second = run_until_complete(loop, accept_from, &listener.value(), &peer);
  ASSERT_TRUE(second && second.value());
  EXPECT_EQ(peer, client.value().value.local_address().value());
}

TEST_F(TcpListenerTest, AnIpv6ListenerServesAnIpv6Client) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv6_loopback(0), ListenOptions{.ipv6_only = true});
  if (!listener && (listener.error().code() == EADDRNOTAVAIL || listener.error().code() == EAFNOSUPPORT)) {
    GTEST_SKIP() << "no IPv6 loopback here: " << listener.error().message();
  }
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  EXPECT_EQ(address.family(), SocketAddress::Family::ipv6);
  Result<testing::Returned<TcpStream>> client = run_until_complete(loop, connect_to, address);
  ASSERT_TRUE(client && client.value());
  SocketAddress peer;
  Result<testing::Returned<TcpStream>> server = run_until_complete(loop, accept_from, &listener.value(), &peer);
  ASSERT_TRUE(server && server.value());
  EXPECT_EQ(peer.family(), SocketAddress::Family::ipv6);
  EXPECT_TRUE(peer.is_loopback());
}

// An IPv6-only listener on every address leaves the same IPv4 port free: a second
// listener binds it, and an IPv4 client reaches that one. (A connection attempt alone
// would prove nothing: another program may listen on the IPv4 port.) A dual-stack
// listener holds the IPv4 port too, so there the second bind always fails; a few fresh
// ports are tried so that another program taking one cannot fail the test.
TEST_F(TcpListenerTest, AnIpv6OnlyListenerLeavesItsPortToIpv4) {
  Result<TcpListener> ipv6{Error(EADDRINUSE)};
  Result<TcpListener> ipv4{Error(EADDRINUSE)};
  for (int attempt = 0; attempt < 5 && !ipv4; ++attempt) {
    ipv6 = TcpListener::bind(SocketAddress::ipv6_any(0), ListenOptions{.ipv6_only = true});
    if (!ipv6 && (ipv6.error().code() == EADDRNOTAVAIL || ipv6.error().code() == EAFNOSUPPORT)) {
      GTEST_SKIP() << "no IPv6 here: " << ipv6.error().message();
    }
    ASSERT_TRUE(ipv6) << ipv6.error().message();
    ipv4 = TcpListener::bind(SocketAddress::ipv4_loopback(ipv6.value().local_address().value().port()));
    if (!ipv4) {
      ASSERT_EQ(ipv4.error().code(), EADDRINUSE) << ipv4.error().message();
    }
  }
  ASSERT_TRUE(ipv4) << "an IPv6-only listener held its port for IPv4 too";
  const uint16_t port = ipv4.value().local_address().value().port();
  Result<testing::Returned<TcpStream>> client =
      run_until_complete(loop, connect_to, SocketAddress::ipv4_loopback(port));
  ASSERT_TRUE(client && client.value());
  SocketAddress peer;
  Result<testing::Returned<TcpStream>> server = run_until_complete(loop, accept_from, &ipv4.value(), &peer);
  ASSERT_TRUE(server && server.value());
  EXPECT_EQ(peer, client.value().value.local_address().value());
}

// Without ipv6_only, a listener on every IPv6 address takes IPv4 clients as well, and holds
// the IPv4 port against a second listener.
TEST_F(TcpListenerTest, ADualStackListenerTakesAnIpv4Client) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv6_any(0), ListenOptions{.ipv6_only = false});
  if (!listener && (listener.error().code() == EADDRNOTAVAIL || listener.error().code() == EAFNOSUPPORT)) {
    GTEST_SKIP() << "no IPv6 here: " << listener.error().message();
  }
  ASSERT_TRUE(listener) << listener.error().message();
  const uint16_t port = listener.value().local_address().value().port();
  Result<TcpListener> second = TcpListener::bind(SocketAddress::ipv4_loopback(port));
  ASSERT_EQ(second.error().code(), EADDRINUSE);
  Result<testing::Returned<TcpStream>> client =
      run_until_complete(loop, connect_to, SocketAddress::ipv4_loopback(port));
  ASSERT_TRUE(client && client.value());
  Result<testing::Returned<TcpStream>> server = run_until_complete(loop, accept_from, &listener.value(), nullptr);
  ASSERT_TRUE(server && server.value());
}

// The server: one child of a group per connection, each echoing what it reads until the
// end of the stream.
Task<Error> serve_echo(TcpStream stream) {
  char buffer[64];
  for (;;) {
    Result<std::size_t> n = co_await stream.read(buffer, sizeof buffer);
    if (!n) co_return n.error();
    if (n.value() == 0) co_return Error();
    Transfer sent = co_await stream.write_all(buffer, n.value());
    if (!sent) co_return sent.error;
  }
}

Task<Error> accept_into(TcpListener* listener, TaskGroup* group, int* accepted) {
  for (;;) {
    Result<TcpStream> stream = co_await listener->accept();
    if (!stream) co_return stream.error();
    ++*accepted;
    if (!group->spawn(serve_echo, std::move(stream.value())).valid()) co_return Error(ENOMEM);
  }
}

// A client that connects, says its number, reads it back and ends.
Task<Error> numbered_client(SocketAddress address, int number, int* answered) {
  Result<TcpStream> stream = co_await TcpStream::connect(address);
  if (!stream) co_return stream.error();
  char said[16];
  std::snprintf(said, sizeof said, "client %08d", number);
  Transfer sent = co_await stream.value().write_all(said, 15);
  if (!sent) co_return sent.error;
  char heard[15];
  Transfer got = co_await stream.value().read_exact(heard, sizeof heard);
  if (!got) co_return got.error ? got.error : Error(EPROTO);
  if (std::memcmp(said, heard, sizeof heard) != 0) co_return Error(EPROTO);
  ++*answered;
  co_return Error();
}

TEST_F(TcpListenerTest, AThousandConcurrentConnectionsAreEachAcceptedAndEchoed) {
  constexpr int kClients = 1000;
#if !defined(_WIN32)
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 2 * kClients + 100) {
    GTEST_SKIP() << "the descriptor limit (" << limit.rlim_cur << ") is below two per connection";
  }
#endif
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0), ListenOptions{.backlog = 1024});
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  int accepted = 0;
  int answered = 0;
  std::vector<Error> server_failures;
  auto server = spawn(loop, [&]() -> Task<> {
    TaskGroup group;
    auto ended = co_await group.run(accept_into(&listener.value(), &group, &accepted));
    for (Error e : ended.failures())
      server_failures.push_back(e);
  });
  std::vector<TaskHandle<Error>> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(spawn(loop, numbered_client, address, i, &answered));
  ASSERT_TRUE(testing::run_until(loop, [&] {
    for (auto& c : clients) {
      if (!c.done()) return false;
    }
    return true;
  }));
  for (int i = 0; i < kClients; ++i) {
    const Error ended = clients[static_cast<std::size_t>(i)].result();
    ASSERT_FALSE(ended) << "client " << i << ": " << ended.message();
  }
  EXPECT_EQ(answered, kClients);
  EXPECT_EQ(accepted, kClients);
  server.cancel();
  ASSERT_TRUE(testing::run_until(loop, [&] { return server.done(); }));
  EXPECT_TRUE(server_failures.empty()) << server_failures.size() << " failures, the first "
                                       << server_failures[0].message();
}

}  // namespace
}  // namespace evflow
