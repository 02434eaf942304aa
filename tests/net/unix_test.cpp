// UnixListener, UnixStream and UnixDatagram: local sockets at paths, at Linux abstract
// names, and in pairs.
#include "net/net.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#if !defined(_WIN32)
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "tasks/tasks.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/sockets.hpp"

namespace evflow {
namespace {

using testing::Returned;
using testing::returned;

#if defined(_WIN32)

TEST(UnixStream, PairsAreRefusedWithEafnosupportOnWindows) {
  EXPECT_EQ(UnixStream::pair().error().code(), EAFNOSUPPORT);
  EXPECT_EQ(UnixDatagram::pair().error().code(), EAFNOSUPPORT);
}

#else

// A directory of its own for each test's socket files, removed with what is left in it.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    char name[] = "/tmp/evflow-net-XXXXXX";
    if (::mkdtemp(name) != nullptr) path_ = name;
  }
  ~TemporaryDirectory() {
    for (const std::string& file : files_)
      ::unlink(file.c_str());
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  bool made() const { return !path_.empty(); }
  // The path of `name` in the directory, removed at the end.
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

// A unique abstract name for this process.
std::string abstract_name(const char* what) { return "evflow-test-" + std::to_string(::getpid()) + "-" + what; }

class UnixSocketTest : public testing::SocketLoopTest {
 protected:
  void SetUp() override {
    testing::SocketLoopTest::SetUp();
    ASSERT_TRUE(directory.made());
  }
  TemporaryDirectory directory;
};

Task<Returned<UnixStream> > connect_local(SocketAddress address) {
  co_return returned(co_await UnixStream::connect(address));
}

// Sends `text`, ends the stream, and reads the peer's answer to its end.
Task<std::string> ask(StreamSocket* stream, std::string text) {
  Transfer sent = co_await stream->write_all(text);
  if (!sent) co_return "write: " + std::string(sent.error.message());
  if (Error e = stream->shutdown_write()) co_return "shutdown: " + std::string(e.message());
  std::string answer;
  char buffer[64];
  for (;;) {
    Result<std::size_t> n = co_await stream->read(buffer, sizeof buffer);
    if (!n) co_return "read: " + std::string(n.error().message());
    if (n.value() == 0) co_return answer;
    answer.append(buffer, n.value());
  }
}

// Reads to the end of the stream, answers with the text in upper case, and ends.
Task<Error> answer_in_capitals(StreamSocket* stream) {
  std::string question;
  char buffer[64];
  for (;;) {
    Result<std::size_t> n = co_await stream->read(buffer, sizeof buffer);
    if (!n) co_return n.error();
    if (n.value() == 0) break;
    question.append(buffer, n.value());
  }
  for (char& c : question)
    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  Transfer sent = co_await stream->write_all(question);
  if (!sent) co_return sent.error;
  co_return stream->shutdown_write();
}

// Serves one connection of `listener`.
Task<Error> serve_one(UnixListener* listener, SocketAddress* peer) {
  Result<UnixStream> stream = co_await listener->accept(peer);
  if (!stream) co_return stream.error();
  co_return co_await answer_in_capitals(&stream.value());
}

TEST_F(UnixSocketTest, AListenerAtAPathServesAClientAndLeavesItsFileBehind) {
  const std::string path = directory.file("server.sock");
  const SocketAddress address = SocketAddress::local(path).value();
  {
    Result<UnixListener> listener = UnixListener::bind(address);
    ASSERT_TRUE(listener) << listener.error().message();
    EXPECT_TRUE(exists(path));
    EXPECT_EQ(listener.value().local_address().value(), address);
    SocketAddress peer;
    auto server = spawn(loop, serve_one, &listener.value(), &peer);
    Result<Returned<UnixStream> > client = run_until_complete(loop, connect_local, address);
    ASSERT_TRUE(client && client.value());
    Result<std::string> answer = run_until_complete(loop, ask, &client.value().value, "hello");
    ASSERT_TRUE(testing::run_until(loop, [&] { return server.done(); }));
    EXPECT_FALSE(server.result());
    EXPECT_EQ(answer.value(), "HELLO");
    EXPECT_EQ(peer.family(), SocketAddress::Family::local);
    EXPECT_EQ(peer.to_string(), "(unnamed)") << "the client is bound to nothing";
    EXPECT_EQ(client.value().value.peer_address().value(), address);
  }
  EXPECT_TRUE(exists(path)) << "the listener does not remove its file";
  EXPECT_EQ(UnixListener::bind(address).error().code(), EADDRINUSE) << "a stale file is in the way";
  ASSERT_EQ(::unlink(path.c_str()), 0);
  EXPECT_TRUE(UnixListener::bind(address)) << "once removed, the path can be bound again";
}

TEST_F(UnixSocketTest, ConnectingWhereNoSocketIsGivesEnoentAndWhereNobodyListensEconnrefused) {
  const std::string path = directory.file("nobody.sock");
  const SocketAddress address = SocketAddress::local(path).value();
  Result<Returned<UnixStream> > nothing_there = run_until_complete(loop, connect_local, address);
  ASSERT_TRUE(nothing_there);
  EXPECT_EQ(nothing_there.value().error.code(), ENOENT);
  {
    Result<UnixListener> listener = UnixListener::bind(address);
    ASSERT_TRUE(listener);
  }  // closed: the file stays, nobody listens
  Result<Returned<UnixStream> > nobody = run_until_complete(loop, connect_local, address);
  ASSERT_TRUE(nobody);
  EXPECT_EQ(nobody.value().error.code(), ECONNREFUSED);
}

TEST_F(UnixSocketTest, AUnixStreamCannotConnectToAnIpAddress) {
  Result<Returned<UnixStream> > connected = run_until_complete(loop, connect_local, SocketAddress::ipv4_loopback(1));
  ASSERT_TRUE(connected);
  EXPECT_EQ(connected.value().error.code(), EAFNOSUPPORT);
}

TEST_F(UnixSocketTest, AnAbstractNameIsServedWithoutAFile) {
#if !defined(__linux__)
  GTEST_SKIP() << "abstract names are Linux's";
#else
  const SocketAddress address = SocketAddress::local_abstract(abstract_name("stream")).value();
  Result<UnixListener> listener = UnixListener::bind(address);
  ASSERT_TRUE(listener) << listener.error().message();
  EXPECT_EQ(listener.value().local_address().value(), address);
  EXPECT_TRUE(listener.value().local_address().value().is_abstract());
  EXPECT_EQ(UnixListener::bind(address).error().code(), EADDRINUSE);
  SocketAddress peer;
  auto server = spawn(loop, serve_one, &listener.value(), &peer);
  Result<Returned<UnixStream> > client = run_until_complete(loop, connect_local, address);
  ASSERT_TRUE(client && client.value());
  Result<std::string> answer = run_until_complete(loop, ask, &client.value().value, "abstract");
  ASSERT_TRUE(testing::run_until(loop, [&] { return server.done(); }));
  EXPECT_EQ(answer.value(), "ABSTRACT");
  // Gone with its last socket: the name can be bound again.
  ASSERT_FALSE(listener.value().close());
  EXPECT_TRUE(UnixListener::bind(address));
#endif
}

TEST_F(UnixSocketTest, AStreamPairCarriesBytesBothWaysAndEachEndCanEndItsSide) {
  Result<std::pair<UnixStream, UnixStream> > pair = UnixStream::pair();
  ASSERT_TRUE(pair) << pair.error().message();
  auto server = spawn(loop, answer_in_capitals, &pair.value().second);
  Result<std::string> answer = run_until_complete(loop, ask, &pair.value().first, "pair");
  ASSERT_TRUE(testing::run_until(loop, [&] { return server.done(); }));
  EXPECT_FALSE(server.result());
  EXPECT_EQ(answer.value(), "PAIR");
}

TEST_F(UnixSocketTest, AClosedPeerEndsALocalStreamForTheOtherEnd) {
  Result<std::pair<UnixStream, UnixStream> > pair = UnixStream::pair();
  ASSERT_TRUE(pair);
  ASSERT_FALSE(pair.value().first.close());
  Result<Returned<std::size_t> > read = run_until_complete(loop, [&]() -> Task<Returned<std::size_t> > {
    char c;
    co_return returned(co_await pair.value().second.read(&c, 1));
  });
  ASSERT_TRUE(read && read.value());
  EXPECT_EQ(read.value().value, 0u) << "the end of the stream";
}

// A datagram between two bound paths names its sender.
TEST_F(UnixSocketTest, ADatagramBetweenTwoPathsArrivesWithItsSendersPath) {
  const SocketAddress a_address = SocketAddress::local(directory.file("a.sock")).value();
  const SocketAddress b_address = SocketAddress::local(directory.file("b.sock")).value();
  Result<UnixDatagram> a = UnixDatagram::bind(a_address);
  Result<UnixDatagram> b = UnixDatagram::bind(b_address);
  ASSERT_TRUE(a && b);
  Result<Returned<std::size_t> > sent = run_until_complete(loop, [&]() -> Task<Returned<std::size_t> > {
    co_return returned(co_await a.value().send_to("local", 5, b_address));
  });
  ASSERT_TRUE(sent && sent.value());
  char buffer[3];
  Result<Returned<Datagram> > got = run_until_complete(loop, [&]() -> Task<Returned<Datagram> > {
    co_return returned(co_await b.value().receive_from(buffer, sizeof buffer));
  });
  ASSERT_TRUE(got && got.value());
  EXPECT_EQ(got.value().value.from, a_address);
  EXPECT_EQ(got.value().value.size, 3u);
  EXPECT_TRUE(got.value().value.truncated);
  EXPECT_EQ(std::string(buffer, 3), "loc");
}

TEST_F(UnixSocketTest, AnUnboundDatagramSocketSendsAndItsSenderIsUnnamed) {
  const SocketAddress b_address = SocketAddress::local(directory.file("b.sock")).value();
  Result<UnixDatagram> a = UnixDatagram::open();
  Result<UnixDatagram> b = UnixDatagram::bind(b_address);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(run_until_complete(loop, [&]() -> Task<Returned<std::size_t> > {
                co_return returned(co_await a.value().send_to("x", 1, b_address));
              }).value());
  char c = 0;
  Result<Returned<Datagram> > got = run_until_complete(
      loop, [&]() -> Task<Returned<Datagram> > { co_return returned(co_await b.value().receive_from(&c, 1)); });
  ASSERT_TRUE(got && got.value());
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(got.value().value.from.family(), SocketAddress::Family::local);
  EXPECT_EQ(got.value().value.from.to_string(), "(unnamed)");
}

TEST_F(UnixSocketTest, ADatagramPairKeepsEachDatagramApart) {
  Result<std::pair<UnixDatagram, UnixDatagram> > pair = UnixDatagram::pair();
  ASSERT_TRUE(pair) << pair.error().message();
  for (std::string_view text : {"first", "second"}) {
    ASSERT_TRUE(run_until_complete(loop, [&]() -> Task<Returned<std::size_t> > {
                  co_return returned(co_await pair.value().first.send(text.data(), text.size()));
                }).value());
  }
  for (std::string_view text : {"first", "second"}) {
    char buffer[16];
    Result<Returned<Datagram> > got = run_until_complete(loop, [&]() -> Task<Returned<Datagram> > {
      co_return returned(co_await pair.value().second.receive(buffer, sizeof buffer));
    });
    ASSERT_TRUE(got && got.value());
    EXPECT_EQ(std::string_view(buffer, got.value().value.size), text);
  }
}

TEST_F(UnixSocketTest, AnAbstractDatagramNameReceives) {
#if !defined(__linux__)
  GTEST_SKIP() << "abstract names are Linux's";
#else
  const SocketAddress address = SocketAddress::local_abstract(abstract_name("datagram")).value();
  Result<UnixDatagram> receiver = UnixDatagram::bind(address);
  Result<UnixDatagram> sender = UnixDatagram::open();
  ASSERT_TRUE(receiver && sender);
  ASSERT_TRUE(run_until_complete(loop, [&]() -> Task<Returned<std::size_t> > {
                co_return returned(co_await sender.value().send_to("abc", 3, address));
              }).value());
  char buffer[8];
  Result<Returned<Datagram> > got = run_until_complete(loop, [&]() -> Task<Returned<Datagram> > {
    co_return returned(co_await receiver.value().receive(buffer, sizeof buffer));
  });
  ASSERT_TRUE(got && got.value());
  EXPECT_EQ(std::string(buffer, got.value().value.size), "abc");
#endif
}

#endif  // !_WIN32

}  // namespace
}  // namespace evflow
