#include <gtest/gtest.h>

#if defined(__linux__)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#endif

#include <memory>
#include <string>

#include <evflow/evflow.hpp>
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>
#include "tests/support/descriptors.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/sockets.hpp"

// Socket calls on a loop whose backend performs them itself (io_uring; net/socket.hpp,
// reactor/operations.hpp): the call is submitted as it is, the task resumes when the
// kernel has completed it, and a cancellation resumes the task only once the kernel has
// let go of the buffer. These loops ask for io_uring; where the kernel (or the build's
// backend) gives something else, each test skips.

namespace evflow {
namespace {

class CompletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(loop->open(BackendKind::IoUring));
    if (loop->backend_kind() != BackendKind::IoUring) GTEST_SKIP() << "this loop does not run on io_uring here";
    ASSERT_TRUE(loop->operations().available());
    testing::SocketPair pair = testing::make_socketpair();
    ASSERT_GE(pair.a.get(), 0);
    ours = StreamSocket(pair.a.release());
    theirs = StreamSocket(pair.b.release());
  }
  void iterate() { ASSERT_FALSE(loop->run(RunMode::NoWait)); }
  std::unique_ptr<Loop> loop = std::make_unique<Loop>();
  StreamSocket ours;
  StreamSocket theirs;
};

TEST(CompletionAvailability, AnEpollLoopPerformsNoOperationsAndRefusesThemClearly) {
  Loop loop;
  ASSERT_FALSE(loop.open(BackendKind::Epoll));
  EXPECT_FALSE(loop.operations().available());
  detail::OperationRequest request;
  EXPECT_EQ(loop.operations().submit(request), Error(EOPNOTSUPP));
  EXPECT_EQ(loop.active_watchers(), 0);
}

// On io_uring every socket call is a suspension point: even data already there comes
// back through the loop's next wait, with the other tasks' operations.
TEST_F(CompletionTest, AReadIsSubmittedAndCompletesAtTheNextWaitEvenWithDataThere) {
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'a'));
  char c = 0;
  auto reader = spawn(
      *loop, [&]() -> Task<testing::Returned<std::size_t>> { co_return testing::returned(co_await ours.read(&c, 1)); });
  iterate();                      // the task's first step submits the read...
  if (!reader.done()) iterate();  // ...which the wait of this or the next iteration completes
  ASSERT_TRUE(reader.done());
  ASSERT_TRUE(reader.result().value());
  EXPECT_EQ(reader.result().value().value, 1u);
  EXPECT_EQ(c, 'a');
}

TEST_F(CompletionTest, AReadWaitsInTheKernelUntilDataComesAndKeepsTheLoopRunning) {
  char buffer[8] = {};
  auto reader = spawn(*loop, [&]() -> Task<testing::Returned<std::size_t>> {
    co_return testing::returned(co_await ours.read(buffer, sizeof buffer));
  });
  for (int i = 0; i < 3; ++i)
    iterate();
  ASSERT_FALSE(reader.done());
  EXPECT_EQ(loop->operations().pending(), 1);
  EXPECT_GE(loop->active_watchers(), 1);  // run() would not return while the kernel holds it
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'z'));
  ASSERT_TRUE(testing::run_until(*loop, [&] { return reader.done(); }));
  ASSERT_TRUE(reader.result().value());
  EXPECT_EQ(reader.result().value().value, 1u);
  EXPECT_EQ(buffer[0], 'z');
  EXPECT_EQ(loop->operations().pending(), 0);
}

TEST_F(CompletionTest, ManyReadsOnManySocketsCompleteTogether) {
  constexpr int kSockets = 32;
  StreamSocket mine[kSockets];
  StreamSocket peers[kSockets];
  char got[kSockets] = {};
  int completed = 0;
  for (int i = 0; i < kSockets; ++i) {
    testing::SocketPair pair = testing::make_socketpair();
    ASSERT_GE(pair.a.get(), 0);
    mine[i] = StreamSocket(pair.a.release());
    peers[i] = StreamSocket(pair.b.release());
    (void)spawn(*loop, [&, i]() -> Task<> {  // the loop owns it (spawn.hpp)
      Result<std::size_t> n = co_await mine[i].read(&got[i], 1);
      if (n && n.value() == 1) ++completed;
    });
  }
  iterate();
  EXPECT_EQ(loop->operations().pending(), kSockets);
  for (int i = 0; i < kSockets; ++i)
    ASSERT_TRUE(testing::write_byte(peers[i].fd(), static_cast<char>('A' + i)));
  ASSERT_TRUE(testing::run_until(*loop, [&] { return completed == kSockets; }));
  for (int i = 0; i < kSockets; ++i)
    EXPECT_EQ(got[i], static_cast<char>('A' + i));
}

// The task resumes only when the kernel has let go: ECANCELED, and the data written
// afterwards is still in the socket for the next reader.
TEST_F(CompletionTest, ACancelledReadResumesOnceTheKernelLetGoAndTakesNothing) {
  char buffer[8] = {};
  auto reader = spawn(*loop, [&]() -> Task<testing::Returned<std::size_t>> {
    co_return testing::returned(co_await ours.read(buffer, sizeof buffer));
  });
  iterate();
  ASSERT_FALSE(reader.done());
  reader.cancel();
  EXPECT_FALSE(reader.done());  // the kernel has not answered yet
  ASSERT_TRUE(testing::run_until(*loop, [&] { return reader.done(); }));
  EXPECT_EQ(reader.result().value().error.code(), ECANCELED);
  EXPECT_EQ(loop->operations().pending(), 0);
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'q'));
  char c = 0;
  EXPECT_EQ(testing::read_fd(ours.fd(), &c, 1), 1);
  EXPECT_EQ(c, 'q');
  EXPECT_EQ(buffer[0], '\0');
}

// A cancellation that reaches a read whose data has just come: either the read got it,
// or the data is still in the socket. Nothing is lost.
TEST_F(CompletionTest, ACancellationRacingTheDataLosesNothing) {
  char buffer[8] = {};
  auto reader = spawn(*loop, [&]() -> Task<testing::Returned<std::size_t>> {
    co_return testing::returned(co_await ours.read(buffer, sizeof buffer));
  });
  iterate();
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'r'));
  reader.cancel();
  ASSERT_TRUE(testing::run_until(*loop, [&] { return reader.done(); }));
  const testing::Returned<std::size_t> result = reader.result().value();
  if (result) {
    EXPECT_EQ(result.value, 1u);
    EXPECT_EQ(buffer[0], 'r');
  } else {
    EXPECT_EQ(result.error.code(), ECANCELED);
    char c = 0;
    EXPECT_EQ(testing::read_fd(ours.fd(), &c, 1), 1);
    EXPECT_EQ(c, 'r');
  }
}

// A task destroyed with its loop while its read is in the kernel: the read is cancelled
// and waited for as the frame goes, so the kernel never writes into the freed buffer
// (ASan would see it), and the data sent afterwards is still there.
TEST_F(CompletionTest, AFrameDestroyedWhileItsReadIsInTheKernelLeavesTheDataInTheSocket) {
  (void)spawn(*loop, [&]() -> Task<> {  // the loop owns it (spawn.hpp)
    char buffer[64];
    (void)co_await ours.read(buffer, sizeof buffer);
  });
  iterate();
  ASSERT_EQ(loop->operations().pending(), 1);
  loop.reset();
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'd'));
  char c = 0;
  EXPECT_EQ(testing::read_fd(ours.fd(), &c, 1), 1);
  EXPECT_EQ(c, 'd');
}

// A rebuild replaces the ring: the read the old one held is submitted again on the new.
TEST_F(CompletionTest, AReadPendingAcrossARebuildCompletesOnTheNewRing) {
  char c = 0;
  auto reader = spawn(
      *loop, [&]() -> Task<testing::Returned<std::size_t>> { co_return testing::returned(co_await ours.read(&c, 1)); });
  iterate();
  ASSERT_FALSE(reader.done());
  ASSERT_FALSE(loop->rebuild());
  ASSERT_TRUE(testing::write_byte(theirs.fd(), 'n'));
  ASSERT_TRUE(testing::run_until(*loop, [&] { return reader.done(); }));
  ASSERT_TRUE(reader.result().value());
  EXPECT_EQ(c, 'n');
}

// A write_all larger than the socket's buffers goes out in parts, each one submitted
// again for the rest, and the reader gets every byte in order.
TEST_F(CompletionTest, AWriteAllLargerThanTheBuffersGoesOutWholeInParts) {
  constexpr std::size_t kSize = 4 << 20;
  std::string data(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i)
    data[i] = static_cast<char>(i * 7);
  std::string got(kSize, '\0');
  auto writer = spawn(*loop, [&]() -> Task<Transfer> { co_return co_await ours.write_all(data.data(), data.size()); });
  auto reader = spawn(*loop, [&]() -> Task<Transfer> { co_return co_await theirs.read_exact(got.data(), got.size()); });
  ASSERT_TRUE(testing::run_until(*loop, [&] { return writer.done() && reader.done(); }));
  EXPECT_TRUE(writer.result().value());
  EXPECT_EQ(writer.result().value().bytes, kSize);
  EXPECT_TRUE(reader.result().value());
  EXPECT_TRUE(got == data);
}

TEST_F(CompletionTest, UdpSendToAndReceiveFromCarryTheSenderAndTheTruncation) {
  Result<UdpSocket> a = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  Result<UdpSocket> b = UdpSocket::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(a && b);
  const SocketAddress to = b.value().local_address().value();
  const SocketAddress from = a.value().local_address().value();
  char small[4] = {};
  auto receiver = spawn(*loop, [&]() -> Task<testing::Returned<Datagram>> {
    co_return testing::returned(co_await b.value().receive_from(small, 4));
  });
  auto sender = spawn(*loop, [&]() -> Task<testing::Returned<std::size_t>> {
    co_return testing::returned(co_await a.value().send_to("abcdefgh", 8, to));
  });
  ASSERT_TRUE(testing::run_until(*loop, [&] { return receiver.done() && sender.done(); }));
  ASSERT_TRUE(sender.result().value());
  EXPECT_EQ(sender.result().value().value, 8u);
  ASSERT_TRUE(receiver.result().value());
  const Datagram datagram = receiver.result().value().value;
  EXPECT_EQ(datagram.size, 4u);
  EXPECT_TRUE(datagram.truncated);
  EXPECT_EQ(std::string(small, 4), "abcd");
  EXPECT_EQ(datagram.from, from);
}

#if defined(__linux__)  // io_uring's only: POSIX calls for the client
// An accept the kernel completed while its task went with the loop: the connection it
// got belongs to nobody, and is closed (the client sees the end) rather than leaked.
TEST_F(CompletionTest, AConnectionAcceptedAsTheFrameWentIsClosedNotLeaked) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  (void)spawn(*loop, [&]() -> Task<> {  // the loop owns it (spawn.hpp)
    Result<TcpStream> accepted = co_await listener.value().accept();
    (void)accepted;
  });
  iterate();
  ASSERT_EQ(loop->operations().pending(), 1);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(address.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
  loop.reset();                            // the accept completed in the kernel, or is cancelled now
  ASSERT_FALSE(listener.value().close());  // a connection still queued is reset
  char c = 0;
  pollfd p{client, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 60000), 1) << "the accepted connection is open, with nobody to serve it";
  const long n = ::recv(client, &c, 1, 0);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n;
  ::close(client);
}
#endif

}  // namespace
}  // namespace evflow
