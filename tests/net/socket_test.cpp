#include "net/socket.hpp"

#include <gtest/gtest.h>

#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>
#include "tests/support/descriptors.hpp"
#include "tests/support/run_until.hpp"

// How every socket operation runs (net/socket.hpp): a cancellation point, tried at once,
// a wait only on EAGAIN with the registration handed from one wait to the next, and a
// turn through the ready queue after 64 completions in a row. That is the readiness
// path: these loops are opened on epoll (or the platform's own backend), whatever
// EVFLOW_BACKEND says; completion_test.cpp has the io_uring path.

namespace evflow {
namespace {

class SocketAwaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(loop.open(BackendKind::Epoll));
    testing::SocketPair pair = testing::make_socketpair();
    ASSERT_GE(pair.a.get(), 0);
    ours = StreamSocket(pair.a.release());
    theirs = StreamSocket(pair.b.release());
  }
  void iterate() { ASSERT_FALSE(loop.run(RunMode::NoWait)); }
  Loop loop;
  StreamSocket ours;
  StreamSocket theirs;
};

TEST_F(SocketAwaitTest, AReadOfDataAlreadyThereCompletesWithoutSuspending) {
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'a'));
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'b'));
  int steps = 0;
  std::vector<char> got;
  auto reader = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 2; ++i) {
      char c = 0;
      Result<std::size_t> n = co_await ours.read(&c, 1);
      if (!n || n.value() != 1) co_return;
      got.push_back(c);
      ++steps;
    }
  });
  iterate();  // the task's first step: both reads complete in it
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(got, (std::vector<char>{'a', 'b'}));
  EXPECT_EQ(steps, 2);
}

// A read shorter than its buffer showed the receive buffer empty: the next read waits for
// the loop's poll instead of trying (the call would give EAGAIN in a request-response
// exchange), and still gets the data that came meanwhile.
TEST_F(SocketAwaitTest, AReadAfterAShortReadWaitsForThePollInsteadOfTrying) {
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'a'));
  std::vector<char> got;
  auto reader = spawn(loop, [&]() -> Task<> {
    char buffer[16];
    Result<std::size_t> n = co_await ours.read(buffer, sizeof buffer);  // 1 of 16: drained
    if (!n || n.value() != 1) co_return;
    got.push_back(buffer[0]);
    if (!testing::write_byte(theirs.fd(), 'b')) co_return;  // there before the next read
    n = co_await ours.read(buffer, sizeof buffer);
    if (!n || n.value() != 1) co_return;
    got.push_back(buffer[0]);
  });
  iterate();  // the first step: the first read completes, the second waits
  EXPECT_EQ(got, (std::vector<char>{'a'}));
  EXPECT_FALSE(reader.done());
  ASSERT_TRUE(testing::run_until(loop, [&] { return reader.done(); }));
  EXPECT_EQ(got, (std::vector<char>{'a', 'b'}));
}

// With other tasks ready, a read after a short read also tries once more at the end of
// the task phase, after they have run: data that came meanwhile (here from the task queued
// behind it) completes it in the same iteration, without waiting for the poll.
TEST_F(SocketAwaitTest, ADrainedReadTriesAgainAfterTheOtherReadyTasksInTheSameIteration) {
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'a'));
  std::vector<char> got;
  uint64_t written_in = 0;
  uint64_t completed_in = 0;
  auto reader = spawn(loop, [&]() -> Task<> {
    char buffer[16];
    Result<std::size_t> n = co_await ours.read(buffer, sizeof buffer);  // 1 of 16: drained
    if (!n || n.value() != 1) co_return;
    got.push_back(buffer[0]);
    n = co_await ours.read(buffer, sizeof buffer);  // the writer is ready: tried at the phase's end
    if (!n || n.value() != 1) co_return;
    got.push_back(buffer[0]);
    completed_in = loop.iteration();
  });
  auto writer = spawn(loop, [&]() -> Task<> {  // queued behind the reader
    (void)testing::write_byte(theirs.fd(), 'b');
    written_in = loop.iteration();
    co_return;
  });
  iterate();
  EXPECT_TRUE(writer.done());
  EXPECT_TRUE(reader.done()) << "the second read waited for the poll";
  EXPECT_EQ(got, (std::vector<char>{'a', 'b'}));
  EXPECT_EQ(completed_in, written_in);
}

// A cancellation that reaches a read waiting for that second try withdraws it: the data
// that came meanwhile stays for the next read.
TEST_F(SocketAwaitTest, ACancelledReadWaitingForItsSecondTryTakesNothing) {
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'a'));
  CancellationScope* reading = nullptr;
  Error seen;
  std::vector<char> got;
  auto reader = spawn(loop, [&]() -> Task<> {
    char buffer[16];
    Result<std::size_t> n = co_await ours.read(buffer, sizeof buffer);  // drained
    if (!n || n.value() != 1) co_return;
    got.push_back(buffer[0]);
    CancellationScope scope;
    reading = &scope;
    (void)co_await scope.run([&]() -> Task<> {
      Result<std::size_t> again = co_await ours.read(buffer, sizeof buffer);
      seen = again.error();
    }());
    reading = nullptr;
    n = co_await ours.read(buffer, sizeof buffer);
    if (!n || n.value() != 1) co_return;
    got.push_back(buffer[0]);
  });
  auto canceller = spawn(loop, [&]() -> Task<> {  // queued behind the reader's first step
    (void)testing::write_byte(theirs.fd(), 'b');
    if (reading != nullptr) reading->cancel();
    co_return;
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return reader.done() && canceller.done(); }));
  EXPECT_EQ(seen, Error(ECANCELED));
  EXPECT_EQ(got, (std::vector<char>{'a', 'b'}));
}

TEST_F(SocketAwaitTest, ATaskThatAlwaysFindsDataLetsTheOthersRunAfter64Completions) {
  constexpr int kBytes = 200;
  std::vector<char> data(kBytes, 'x');
  ASSERT_EQ(testing::write_fd(theirs.fd(), data.data(), kBytes), kBytes);
  int read_so_far = 0;
  int seen_by_the_other = -1;
  auto reader = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < kBytes; ++i) {
      char c;
      Result<std::size_t> n = co_await ours.read(&c, 1);
      if (!n) co_return;
      ++read_so_far;
    }
  });
  auto other = spawn(loop, [&]() -> Task<> {
    seen_by_the_other = read_so_far;
    co_return;
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return reader.done() && other.done(); }));
  EXPECT_EQ(read_so_far, kBytes);
  EXPECT_GE(seen_by_the_other, 1);
  EXPECT_LT(seen_by_the_other, kBytes) << "the reader kept the queue for all its reads";
}

TEST_F(SocketAwaitTest, EachWaitAfterTheFirstHandsTheRegistrationOnWithoutASystemCall) {
  std::vector<char> got;
  auto reader = spawn(loop, [&]() -> Task<> {
    for (int i = 0; i < 3; ++i) {
      char c;
      Result<std::size_t> n = co_await ours.read(&c, 1);
      if (!n || n.value() != 1) co_return;
      got.push_back(c);
    }
  });
  iterate();  // the first read waits: the descriptor is registered
  iterate();
  const uint64_t syscalls = loop.stats().interest_syscalls;
  for (char c : {'a', 'b', 'c'}) {
    ASSERT_TRUE(testing::write_byte(theirs.fd(), c));
    ASSERT_TRUE(testing::run_until(loop, [&] { return got.size() == static_cast<std::size_t>(c - 'a' + 1); }));
  }
  EXPECT_EQ(got, (std::vector<char>{'a', 'b', 'c'}));
  // IOCP re-arms its one-shot poll with a call after every report (iocp_backend.hpp, note b).
  if (loop.backend_kind() != BackendKind::Iocp) {
    EXPECT_EQ(loop.stats().interest_syscalls, syscalls) << "each wait handed the registration to the next";
  }
  EXPECT_TRUE(reader.done());
}

TEST_F(SocketAwaitTest, ACancelledReadGivesEcanceledEvenWithDataThereAndLeavesTheData) {
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'z'));
  Error seen;
  char c = 0;
  auto reader = spawn(loop, [&]() -> Task<> {
    CancellationScope scope;
    (void)co_await scope.run([&]() -> Task<> {
      scope.cancel();
      Result<std::size_t> n = co_await ours.read(&c, 1);
      seen = n.error();
    }());
    // Out of the scope: the byte is still there.
    Result<std::size_t> n = co_await ours.read(&c, 1);
    if (!n || n.value() != 1) c = 0;
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return reader.done(); }));
  EXPECT_EQ(seen, Error(ECANCELED));
  EXPECT_EQ(c, 'z');
}

TEST_F(SocketAwaitTest, BadCallsGiveClearErrorsWithoutASystemCall) {
  Result<std::size_t> null_buffer = Error();
  Result<std::size_t> empty = Error();
  Result<std::size_t> closed = std::size_t{0};
  StreamSocket none;
  auto task = spawn(loop, [&]() -> Task<> {
    null_buffer = co_await ours.read(nullptr, 4);
    empty = co_await ours.write(nullptr, 0);
    closed = co_await none.read(&null_buffer, 1);
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return task.done(); }));
  EXPECT_EQ(null_buffer.error(), Error(EINVAL));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.value(), 0u);
  EXPECT_EQ(closed.error(), Error(EBADF));
}

TEST(Socket, AMovedSocketOwnsTheDescriptorAndTheEmptyOneClosesNothing) {
  testing::SocketPair pair = testing::make_socketpair();
  const int fd = pair.a.get();
  Socket first(pair.a.release());
  Socket second(std::move(first));
  EXPECT_EQ(first.fd(), -1);
  EXPECT_EQ(second.fd(), fd);
  EXPECT_FALSE(first.close());
  EXPECT_FALSE(second.close());
  EXPECT_FALSE(second.is_open());
  // The descriptor is gone: the peer reads the end of the stream.
  StreamSocket peer(pair.b.release());
  Loop loop;
  ASSERT_FALSE(loop.open());
  Result<std::size_t> n = Error();
  auto reader = spawn(loop, [&]() -> Task<> {
    char c;
    n = co_await peer.read(&c, 1);
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return reader.done(); }));
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(n.value(), 0u);
}

}  // namespace
}  // namespace evflow
