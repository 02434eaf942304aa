#include "net/datagram.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "tasks/tasks.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/sockets.hpp"

namespace evflow {
namespace {

using testing::Returned;
using testing::returned;

using UdpSocketTest = testing::SocketLoopTest;

// One datagram received, as text, with its sender.
struct Received {
  std::string text;
  bool truncated = false;
  SocketAddress from;
  Error error;
};

Task<Received> receive_text(DatagramSocket* socket, std::size_t capacity) {
  std::string buffer(capacity, '\0');
  Result<Datagram> got = co_await socket->receive_from(buffer.data(), buffer.size());
  if (!got) co_return Received{"", false, SocketAddress(), got.error()};
  buffer.resize(got.value().size);
  co_return Received{buffer, got.value().truncated, got.value().from, Error()};
}

Task<Returned<std::size_t>> send_text(DatagramSocket* socket, std::string text, SocketAddress to) {
  co_return returned(co_await socket->send_to(text.data(), text.size(), to));
}

Task<Returned<std::size_t>> send_connected(DatagramSocket* socket, std::string text) {
  co_return returned(co_await socket->send(text.data(), text.size()));
}

TEST_F(UdpSocketTest, ADatagramArrivesWithItsSendersAddress) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  const SocketAddress a_address = a.value().local_address().value();
  const SocketAddress b_address = b.value().local_address().value();
  auto receiving = spawn(loop, receive_text, &b.value(), std::size_t{64});
  iterate();
  EXPECT_FALSE(receiving.done()) << "nothing was sent";
  Result<Returned<std::size_t>> sent = run_until_complete(loop, send_text, &a.value(), "hello", b_address);
  ASSERT_TRUE(sent && sent.value());
  EXPECT_EQ(sent.value().value, 5u) << "a datagram is sent whole";
  ASSERT_TRUE(testing::run_until(loop, [&] { return receiving.done(); }));
  const Received got = receiving.result().value();
  EXPECT_FALSE(got.error);
  EXPECT_EQ(got.text, "hello");
  EXPECT_FALSE(got.truncated);
  EXPECT_EQ(got.from, a_address);
}

TEST_F(UdpSocketTest, EachDatagramIsReceivedApartInTheOrderSent) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  const SocketAddress b_address = b.value().local_address().value();
  for (const char* text : {"one", "two", "three"}) {
    ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), text, b_address).value());
  }
  for (const char* text : {"one", "two", "three"}) {
    Result<Received> got = run_until_complete(loop, receive_text, &b.value(), std::size_t{64});
    ASSERT_TRUE(got);
    EXPECT_EQ(got.value().text, text);
  }
}

TEST_F(UdpSocketTest, ADatagramLongerThanTheBufferIsCutAndSaidToBeTruncated) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  const SocketAddress b_address = b.value().local_address().value();
  ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), "0123456789abcdef", b_address).value());
  ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), "next", b_address).value());
  Result<Received> cut = run_until_complete(loop, receive_text, &b.value(), std::size_t{10});
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut.value().text, "0123456789");
  EXPECT_TRUE(cut.value().truncated);
  Result<Received> next = run_until_complete(loop, receive_text, &b.value(), std::size_t{10});
  ASSERT_TRUE(next);
  EXPECT_EQ(next.value().text, "next") << "the rest of the long one is gone";
  EXPECT_FALSE(next.value().truncated);
}

TEST_F(UdpSocketTest, AnEmptyDatagramIsReceivedAsOneOfSizeZero) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), "", b.value().local_address().value()).value());
  Result<Received> got = run_until_complete(loop, receive_text, &b.value(), std::size_t{10});
  ASSERT_TRUE(got);
  EXPECT_FALSE(got.value().error);
  EXPECT_EQ(got.value().text, "");
  EXPECT_FALSE(got.value().truncated);
}

// Connected mode: no address on send, and only the peer's datagrams arrive.
TEST_F(UdpSocketTest, AConnectedSocketSendsToItsPeerAndReceivesOnlyFromIt) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> stranger = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b && stranger);
  const SocketAddress a_address = a.value().local_address().value();
  const SocketAddress b_address = b.value().local_address().value();
  EXPECT_EQ(a.value().peer_address().error().code(), ENOTCONN);
  ASSERT_FALSE(a.value().connect(b_address));
  EXPECT_EQ(a.value().peer_address().value(), b_address);
  ASSERT_TRUE(run_until_complete(loop, send_connected, &a.value(), "to b").value());
  Result<Received> at_b = run_until_complete(loop, receive_text, &b.value(), std::size_t{64});
  ASSERT_TRUE(at_b);
  EXPECT_EQ(at_b.value().text, "to b");
  EXPECT_EQ(at_b.value().from, a_address);

  ASSERT_TRUE(run_until_complete(loop, send_text, &stranger.value(), "from a stranger", a_address).value());
  ASSERT_TRUE(run_until_complete(loop, send_text, &b.value(), "from b", a_address).value());
  Result<Received> at_a = run_until_complete(loop, [&]() -> Task<Received> {
    char buffer[64];
    Result<Datagram> got = co_await a.value().receive(buffer, sizeof buffer);
    if (!got) co_return Received{"", false, SocketAddress(), got.error()};
    co_return Received{std::string(buffer, got.value().size), got.value().truncated, SocketAddress(), Error()};
  });
  ASSERT_TRUE(at_a);
  EXPECT_EQ(at_a.value().text, "from b");
}

TEST_F(UdpSocketTest, SendWithoutAPeerIsEdestaddrreq) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a);
  Result<Returned<std::size_t>> sent = run_until_complete(loop, send_connected, &a.value(), "nowhere");
  ASSERT_TRUE(sent);
#if defined(_WIN32)
  // Winsock answers WSAENOTCONN (wine: WSAEINVAL) where POSIX says EDESTADDRREQ.
  const int code = sent.value().error.code();
  EXPECT_TRUE(code == ENOTCONN || code == EINVAL) << sent.value().error.message();
#else
  EXPECT_EQ(sent.value().error.code(), EDESTADDRREQ);
#endif
}

// Linux reports the ICMP "port unreachable" of an earlier datagram on the next call of a
// connected socket (other systems may drop it).
TEST_F(UdpSocketTest, AConnectedSocketLearnsThatNobodyListensAsEconnrefused) {
#if !defined(__linux__)
  GTEST_SKIP() << "only Linux promises to report the ICMP error";
#else
  SocketAddress closed;
  {
    Result<UdpSocket> gone = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
    ASSERT_TRUE(gone);
    closed = gone.value().local_address().value();
  }
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a);
  ASSERT_FALSE(a.value().connect(closed));
  ASSERT_TRUE(run_until_complete(loop, send_connected, &a.value(), "anyone?").value());
  Result<Received> answer = run_until_complete(loop, receive_text, &a.value(), std::size_t{64});
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer.value().error.code(), ECONNREFUSED);
#endif
}

TEST_F(UdpSocketTest, AnUnboundSocketIsBoundByItsFirstSend) {
  Result<UdpSocket> a = UdpSocket::open(SocketAddress::Family::ipv4);
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), "first", b.value().local_address().value()).value());
  Result<Received> got = run_until_complete(loop, receive_text, &b.value(), std::size_t{64});
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value().text, "first");
  EXPECT_NE(got.value().from.port(), 0);
  EXPECT_EQ(got.value().from.port(), a.value().local_address().value().port());
  // And it can be answered there.
  ASSERT_TRUE(run_until_complete(loop, send_text, &b.value(), "reply", got.value().from).value());
  Result<Received> reply = run_until_complete(loop, receive_text, &a.value(), std::size_t{64});
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply.value().text, "reply");
}

TEST_F(UdpSocketTest, ACancelledReceiveTakesNoDatagram) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  auto first = spawn(loop, receive_text, &b.value(), std::size_t{64});
  iterate();
  ASSERT_FALSE(first.done());
  first.cancel();
  iterate();
  ASSERT_TRUE(first.done());
  EXPECT_EQ(first.result().value().error.code(), ECANCELED);
  ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), "kept", b.value().local_address().value()).value());
  Result<Received> second = run_until_complete(loop, receive_text, &b.value(), std::size_t{64});
  ASSERT_TRUE(second);
  EXPECT_EQ(second.value().text, "kept");
}

TEST_F(UdpSocketTest, Ipv6LoopbackCarriesDatagramsBothWays) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
  if (!a && (a.error().code() == EADDRNOTAVAIL || a.error().code() == EAFNOSUPPORT)) {
    GTEST_SKIP() << "no IPv6 loopback here: " << a.error().message();
  }
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv6_loopback(0));
  ASSERT_TRUE(a && b);
  const SocketAddress a_address = a.value().local_address().value();
  EXPECT_EQ(a_address.family(), SocketAddress::Family::ipv6);
  ASSERT_TRUE(run_until_complete(loop, send_text, &a.value(), "over v6", b.value().local_address().value()).value());
  Result<Received> got = run_until_complete(loop, receive_text, &b.value(), std::size_t{64});
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value().text, "over v6");
  EXPECT_EQ(got.value().from, a_address);
  EXPECT_TRUE(got.value().from.is_loopback());
  ASSERT_TRUE(run_until_complete(loop, send_text, &b.value(), "back", got.value().from).value());
  Result<Received> back = run_until_complete(loop, receive_text, &a.value(), std::size_t{64});
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().text, "back");
}

}  // namespace
}  // namespace evflow
