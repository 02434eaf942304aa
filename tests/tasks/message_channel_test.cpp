// MessageChannel (tasks/message_channel.hpp) over a socket pair in one process: frames of
// 0 bytes and of the largest size, one over it, the end of the messages, a truncated
// frame, and cancelled receives and sends.
#include "tasks/message_channel.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/process.hpp>
#include <evflow/tasks.hpp>

namespace evflow {
namespace {

class MessageChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(loop.open());
    auto pair = UnixStream::pair();
    ASSERT_TRUE(pair);
    one = MessageChannel(std::move(pair.value().first));
    other = MessageChannel(std::move(pair.value().second));
  }
  // Makes `channel` one end of a new pair and gives the other end as a plain stream, for a
  // test that writes or reads the bytes of frames itself.
  UnixStream raw_peer_of(MessageChannel& channel) {
    auto pair = UnixStream::pair();
    if (!pair) return UnixStream();  // the caller's is_open() check fails
    channel = MessageChannel(std::move(pair.value().first));
    return std::move(pair.value().second);
  }
  // Runs the loop until `handle`'s task has finished.
  template <class T>
  void finish(TaskHandle<T>& handle) {
    for (int i = 0; i < 1000 && !handle.done(); ++i)
      ASSERT_FALSE(loop.run(RunMode::Once));
    ASSERT_TRUE(handle.done());
  }

  Loop loop;
  MessageChannel one;
  MessageChannel other;
};

TEST_F(MessageChannelTest, FramesOfNoBytesAndOfTheLargestSizeArriveWhole) {
  ASSERT_FALSE(one.set_max_frame(4096));
  ASSERT_FALSE(other.set_max_frame(4096));
  const std::string largest(4096, 'x');
  auto sender = spawn(loop, [&]() -> Task<int> {
    Error empty = co_await one.send("");
    if (empty) co_return 1;
    Error full = co_await one.send(largest);
    if (full) co_return 2;
    co_return 0;
  });
  std::string first = "not empty";
  std::string second;
  auto receiver = spawn(loop, [&]() -> Task<int> {
    auto a = co_await other.receive(first);
    if (!a || a.value() != 0) co_return 1;
    auto b = co_await other.receive(second);
    if (!b || b.value() != 4096) co_return 2;
    co_return 0;
  });
  finish(sender);
  finish(receiver);
  EXPECT_EQ(sender.result().value(), 0);
  EXPECT_EQ(receiver.result().value(), 0);
  EXPECT_TRUE(first.empty());
  EXPECT_EQ(second, largest);
}

TEST_F(MessageChannelTest, AFrameOverTheLargestSizeIsRefusedWithEmsgsizeAndNothingIsSent) {
  ASSERT_FALSE(one.set_max_frame(4096));
  const std::string too_large(4097, 'x');
  auto refused = run_until_complete(loop, [&]() -> Task<Error> { co_return co_await one.send(too_large); });
  EXPECT_EQ(refused, Error(EMSGSIZE));
  std::string frame;
  auto next = run_until_complete(loop, [&]() -> Task<Error> {
    Error sent = co_await one.send("after");
    if (sent) co_return sent;
    auto got = co_await other.receive(frame);
    co_return got ? Error() : got.error();
  });
  EXPECT_FALSE(next);
  EXPECT_EQ(frame, "after") << "the refused frame sent nothing";
}

TEST_F(MessageChannelTest, APeerClosedBetweenFramesEndsTheMessagesWithEpipe) {
  auto outcome = run_until_complete(loop, [&]() -> Task<Error> {
    Error sent = co_await one.send("last");
    if (sent) co_return sent;
    (void)one.close();
    std::string frame;
    auto last = co_await other.receive(frame);
    if (!last || frame != "last") co_return Error(EINVAL);
    auto after = co_await other.receive(frame);
    co_return after ? Error() : after.error();
  });
  EXPECT_EQ(outcome, Error(EPIPE));
}

TEST_F(MessageChannelTest, APeerClosedInsideAFrameGivesEprotoNotAShortFrame) {
  UnixStream raw = raw_peer_of(other);
  ASSERT_TRUE(raw.is_open());
  const unsigned char header[4] = {10, 0, 0, 0};  // announces 10 bytes, sends 3
  auto outcome = run_until_complete(loop, [&]() -> Task<Error> {
    Transfer head = co_await raw.write_all(header, sizeof header);
    if (!head) co_return head.error;
    Transfer part = co_await raw.write_all("abc", 3);
    if (!part) co_return part.error;
    (void)raw.close();
    std::string frame;
    auto got = co_await other.receive(frame);
    co_return got ? Error() : got.error();
  });
  EXPECT_EQ(outcome, Error(EPROTO));
}

TEST_F(MessageChannelTest, ACancelledReceiveLeavesTheChannelUsable) {
  UnixStream raw = raw_peer_of(other);
  ASSERT_TRUE(raw.is_open());
  std::string frame;
  // Cancelled while nothing of a frame had come.
  auto idle = spawn(loop, [&]() -> Task<Error> {
    auto got = co_await other.receive(frame);
    co_return got ? Error() : got.error();
  });
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  idle.cancel();
  finish(idle);
  EXPECT_EQ(idle.result(), Error(ECANCELED));
  // Cancelled in the middle of a frame: its header and 2 of its 5 bytes.
  const unsigned char start[6] = {5, 0, 0, 0, 'h', 'e'};
  auto written = run_until_complete(loop, [&]() -> Task<Error> {
    Transfer t = co_await raw.write_all(start, sizeof start);
    co_return t.error;
  });
  ASSERT_FALSE(written);
  auto midway = spawn(loop, [&]() -> Task<Error> {
    auto got = co_await other.receive(frame);
    co_return got ? Error() : got.error();
  });
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  midway.cancel();
  finish(midway);
  EXPECT_EQ(midway.result(), Error(ECANCELED));
  // The next receive goes on with that frame, then the channel carries the next one.
  std::string rest;
  auto outcome = run_until_complete(loop, [&]() -> Task<Error> {
    Transfer t = co_await raw.write_all("llo", 3);
    if (!t) co_return t.error;
    auto got = co_await other.receive(rest);
    if (!got || rest != "hello") co_return Error(EPROTO);
    MessageChannel sender(std::move(raw));
    Error sent = co_await sender.send("next");
    if (sent) co_return sent;
    auto next = co_await other.receive(rest);
    co_return next ? Error() : next.error();
  });
  EXPECT_FALSE(outcome) << outcome.message();
  EXPECT_EQ(rest, "next");
}

// A send cancelled before any byte of its frame went out leaves nothing behind: the
// channel carries the next frame as if the cancelled one had never been.
TEST_F(MessageChannelTest, ASendCancelledBeforeAnyByteWentOutLeavesTheChannelUsable) {
  UnixStream raw = raw_peer_of(one);
  ASSERT_TRUE(raw.is_open());
  // Fills the socket's buffers, so that the send waits before its first byte.
  std::size_t filler = 0;
  const std::vector<char> block(4096, 'f');
  for (;;) {
    const ssize_t n = ::send(one.fd(), block.data(), block.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    filler += static_cast<std::size_t>(n);
  }
  ASSERT_GT(filler, 0u);
  auto waiting = spawn(loop, [&]() -> Task<Error> { co_return co_await one.send("cancelled"); });
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  waiting.cancel();
  finish(waiting);
  EXPECT_EQ(waiting.result(), Error(ECANCELED));
  // The reader drains the filler; the next frame follows it at once.
  std::string after(filler + 4 + 4, '\0');
  auto outcome = run_until_complete(loop, [&]() -> Task<Error> {
    Error sent;
    auto sender = spawn(loop, [&]() -> Task<> { sent = co_await one.send("next"); });
    Transfer t = co_await raw.read_exact(after.data(), after.size());
    (void)co_await sender.join();
    co_return t.error ? t.error : sent;
  });
  EXPECT_FALSE(outcome) << outcome.message();
  const unsigned char header[4] = {4, 0, 0, 0};
  EXPECT_EQ(std::memcmp(after.data() + filler, header, 4), 0);
  EXPECT_EQ(after.substr(filler + 4), "next");
}

// A send cancelled after part of its frame went out cannot take it back: the writing side
// ends, the reader sees a truncated frame (EPROTO, never the start of the next frame read
// as the rest of this one), and later sends give EPIPE.
TEST_F(MessageChannelTest, ASendCancelledInsideAFrameEndsTheWritingSide) {
  const std::size_t size = MessageChannel::kDefaultMaxFrame;  // more than the socket holds
  const std::string big(size, 'b');
  auto sending = spawn(loop, [&]() -> Task<Error> { co_return co_await one.send(big); });
  ASSERT_FALSE(loop.run(RunMode::NoWait));  // part of the frame is out; the rest waits
  ASSERT_FALSE(sending.done());
  sending.cancel();
  finish(sending);
  EXPECT_EQ(sending.result(), Error(ECANCELED));
  std::string frame;
  auto received = run_until_complete(loop, [&]() -> Task<Error> {
    auto got = co_await other.receive(frame);
    co_return got ? Error() : got.error();
  });
  EXPECT_EQ(received, Error(EPROTO));
  auto later = run_until_complete(loop, [&]() -> Task<Error> { co_return co_await one.send("later"); });
  EXPECT_EQ(later, Error(EPIPE));
}

TEST_F(MessageChannelTest, ASecondReceiveWhileOneIsInFlightGivesEbusy) {
  std::string a;
  std::string b;
  auto first = spawn(loop, [&]() -> Task<> { (void)co_await other.receive(a); });
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  auto second = run_until_complete(loop, [&]() -> Task<Error> {
    auto got = co_await other.receive(b);
    co_return got ? Error() : got.error();
  });
  EXPECT_EQ(second, Error(EBUSY));
  first.cancel();
  finish(first);
}

}  // namespace
}  // namespace evflow
