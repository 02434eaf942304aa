// Test support for net/: counting open descriptors, payloads whose every byte can be
// checked, a connected pair of TCP streams, and fixtures that check every socket a test
// made was closed.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "net/net.hpp"
#include "tasks/tasks.hpp"
#include "tests/support/fake_clock.hpp"
#include "tests/support/open_descriptors.hpp"

namespace evflow::testing {

// Byte `i` of the payload `seed` names. Its period (65,521, a prime) is no multiple of a
// buffer or chunk size, so a byte lost, repeated or moved does not go unnoticed.
inline char pattern_byte(std::size_t i, unsigned seed = 0) {
  return static_cast<char>((i % 65521) * 7 + (i / 65521) * 13 + seed);
}
inline std::vector<char> pattern(std::size_t size, unsigned seed = 0) {
  std::vector<char> bytes(size);
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = pattern_byte(i, seed);
  return bytes;
}
// The index of the first byte of `got` that differs from the payload at `offset`, or
// got.size() when all agree.
inline std::size_t first_difference(const char* got, std::size_t size, std::size_t offset = 0, unsigned seed = 0) {
  for (std::size_t i = 0; i < size; ++i) {
    if (got[i] != pattern_byte(offset + i, seed)) return i;
  }
  return size;
}

// What a test task gives back through its handle in place of a Result<T>: the handle's
// Result<Result<T>> does not build (a Result has no default value), so the value and the
// error come side by side.
template <class T>
struct Returned {
  T value{};
  Error error;
  explicit operator bool() const noexcept { return !error; }
};
template <class T>
Returned<T> returned(Result<T>&& result) {
  if (!result) return Returned<T>{T{}, result.error()};
  return Returned<T>{std::move(result.value()), Error()};
}

// A client stream and the server's end of it, over IPv4 loopback; both closed (fd -1)
// when something failed.
struct TcpPair {
  TcpStream client;
  TcpStream server;
};
inline Task<TcpPair> connect_tcp_pair() {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!listener) co_return TcpPair{};
  Result<SocketAddress> address = listener.value().local_address();
  if (!address) co_return TcpPair{};
  // The handshake completes in the kernel's queue: connect, then accept.
  Result<TcpStream> client = co_await TcpStream::connect(address.value());
  if (!client) co_return TcpPair{};
  Result<TcpStream> server = co_await listener.value().accept();
  if (!server) co_return TcpPair{};
  co_return TcpPair{std::move(client.value()), std::move(server.value())};
}

// Checks, at the end of a test, that the descriptors open at its start (after the loop
// and its scheduler had made theirs) are all that is open.
class DescriptorCheck {
 public:
  void start() { at_start_ = open_descriptors(); }
  void check() const {
    if (at_start_ >= 0) {
      EXPECT_EQ(open_descriptors(), at_start_) << "a socket was left open";
    }
  }

 private:
  int at_start_ = -1;
};

// An open loop on the real clock; the test's sockets must be closed by its end.
class SocketLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(loop.open());
    // The scheduler makes its own descriptors at the first spawn: before the count.
    ASSERT_FALSE(run_until_complete(loop, []() -> Task<> { co_return; }));
    descriptors.start();
  }
  void TearDown() override { descriptors.check(); }
  // One iteration that does not wait.
  void iterate() { ASSERT_FALSE(loop.run(RunMode::NoWait)); }
  // A connected pair of TCP streams, made by a task of the loop.
  TcpPair tcp_pair() {
    Result<TcpPair> pair = run_until_complete(loop, connect_tcp_pair);
    if (!pair) return TcpPair{};
    return std::move(pair.value());
  }

  Loop loop;
  DescriptorCheck descriptors;
};

// The same on a fake clock (FakeClockLoopTest: step() moves it and runs one iteration).
class FakeClockSocketTest : public FakeClockLoopTest {
 protected:
  void SetUp() override {
    FakeClockLoopTest::SetUp();
    if (HasFatalFailure()) return;
    auto first = spawn(loop, []() -> Task<> { co_return; });
    step(std::chrono::nanoseconds(0));
    ASSERT_TRUE(first.done());
    descriptors.start();
  }
  void TearDown() override { descriptors.check(); }

  DescriptorCheck descriptors;
};

}  // namespace evflow::testing
