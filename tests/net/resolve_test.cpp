// resolve() and TcpStream::connect(host, port) (net/resolve.hpp): names from /etc/hosts
// looked up on a pool's thread, numeric addresses parsed without a lookup, connecting to
// each address in turn.
#include "net/resolve.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/net.hpp"
#include "tasks/tasks.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/sockets.hpp"

namespace evflow {
namespace {

// Each test looks names up on a pool of its own, joined when the test ends: a thread left
// running (the default pool's) would make every later fork of the suite a fork of a
// multi-threaded process, in whose child ThreadSanitizer starts no thread.
class ResolveTest : public testing::SocketLoopTest {
 protected:
  ThreadPool pool{1};
};

testing::Returned<std::vector<SocketAddress>> look_up(Loop& loop, std::string_view host, uint16_t port,
                                                      ThreadPool& pool) {
  Result<testing::Returned<std::vector<SocketAddress>>> found =
      run_until_complete(loop, [&]() -> Task<testing::Returned<std::vector<SocketAddress>>> {
        co_return testing::returned(co_await resolve(host, port, pool));
      });
  if (!found) return {{}, found.error()};
  return std::move(found.value());
}

bool is_loopback(const SocketAddress& address) {
  return address.with_port(0) == SocketAddress::ipv4_loopback(0) ||
         address.with_port(0) == SocketAddress::ipv6_loopback(0);
}

TEST_F(ResolveTest, LocalhostFromTheHostsFileGivesLoopbackAddressesWithThePort) {
  testing::Returned<std::vector<SocketAddress>> found = look_up(loop, "localhost", 8080, pool);
  ASSERT_TRUE(found) << found.error.message();
  ASSERT_FALSE(found.value.empty());
  for (const SocketAddress& address : found.value) {
    EXPECT_TRUE(is_loopback(address));
    EXPECT_EQ(address.port(), 8080);
  }
  for (std::size_t i = 0; i < found.value.size(); ++i)  // no duplicates
    for (std::size_t j = i + 1; j < found.value.size(); ++j)
      EXPECT_FALSE(found.value[i] == found.value[j]);
}

TEST_F(ResolveTest, NumericAddressesAreParsedWithoutALookup) {
  testing::Returned<std::vector<SocketAddress>> found = look_up(loop, "::1", 443, pool);
  ASSERT_TRUE(found);
  ASSERT_EQ(found.value.size(), 1u);
  EXPECT_EQ(found.value[0], SocketAddress::ipv6_loopback(443));
}

TEST_F(ResolveTest, AnEmptyNameIsRefused) { EXPECT_EQ(look_up(loop, "", 80, pool).error, Error(EINVAL)); }

TEST_F(ResolveTest, ConnectByNameTriesTheAddressesInTurnUntilOneAccepts) {
  // Only IPv4 listens: where localhost is ::1 first, that connect is refused and the next
  // address is tried.
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  const uint16_t port = listener.value().local_address().value().port();
  Result<testing::Returned<TcpStream>> client = run_until_complete(loop, [&]() -> Task<testing::Returned<TcpStream>> {
    co_return testing::returned(co_await TcpStream::connect("localhost", port, pool));
  });
  ASSERT_TRUE(client);
  ASSERT_TRUE(client.value()) << client.value().error.message();
  EXPECT_EQ(client.value().value.peer_address().value(), SocketAddress::ipv4_loopback(port));
}

}  // namespace
}  // namespace evflow
