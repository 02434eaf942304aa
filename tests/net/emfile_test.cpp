// TcpListener out of descriptors (net/listener.hpp, "Out of descriptors"): the waiting
// connection is accepted and closed with the listener's spare descriptor, accept() gives
// EMFILE once, and the loop neither spins nor stops serving.
#include "net/listener.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#endif

#include "reactor/timer.hpp"
#include "tasks/tasks.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/sockets.hpp"

namespace evflow {
namespace {

using namespace std::chrono_literals;
using testing::Returned;
using testing::returned;

#if defined(__linux__)

// The highest descriptor number open in this process, or -1.
int highest_descriptor() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int highest = -1;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != ::dirfd(dir) && fd > highest) highest = fd;
  }
  ::closedir(dir);
  return highest;
}

// Lowers the soft RLIMIT_NOFILE to just above the descriptors in use and takes every
// number left below it, so that the next descriptor anyone asks for is EMFILE. The
// destructor gives them back and restores the limit, whatever the test did.
class DescriptorShortage {
 public:
  DescriptorShortage() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) return;
    const int highest = highest_descriptor();
    if (highest < 0) return;
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 8;
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) return;
    lowered_ = true;
    for (;;) {
      const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        full_ = errno == EMFILE;
        errno_ = errno;
        break;
      }
      taken_.push_back(fd);
    }
  }
  ~DescriptorShortage() {
    for (int fd : taken_)
      ::close(fd);
    if (lowered_) ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorShortage(const DescriptorShortage&) = delete;
  DescriptorShortage& operator=(const DescriptorShortage&) = delete;

  // Every number below the limit is taken.
  bool full() const { return full_; }
  // What the last attempt to take one failed with.
  int failure() const { return errno_; }
  // Gives `count` descriptors back.
  void give_back(int count) {
    for (; count > 0 && !taken_.empty(); --count) {
      ::close(taken_.back());
      taken_.pop_back();
    }
  }

 private:
  rlimit saved_{};
  bool lowered_ = false;
  bool full_ = false;
  int errno_ = 0;
  std::vector<int> taken_;
};

using TcpListenerOutOfDescriptors = testing::SocketLoopTest;

Task<Returned<TcpStream>> connect_to(SocketAddress address) {
  co_return returned(co_await TcpStream::connect(address));
}

TEST_F(TcpListenerOutOfDescriptors, AcceptShedsTheWaitingConnectionGivesEmfileOnceAndServesTheNext) {
  Result<TcpListener> listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  ASSERT_TRUE(listener);
  const SocketAddress address = listener.value().local_address().value();
  // The first client's connection waits in the listener's queue: its own socket exists
  // before descriptors run out.
  Result<Returned<TcpStream>> first = run_until_complete(loop, connect_to, address);
  ASSERT_TRUE(first && first.value());

  DescriptorShortage shortage;
  if (!shortage.full() && RUNNING_ON_VALGRIND) {
    GTEST_SKIP() << "valgrind keeps the descriptors near the limit for itself: taking them failed with "
                 << std::strerror(shortage.failure());
  }
  ASSERT_TRUE(shortage.full()) << "could not take every descriptor: " << std::strerror(shortage.failure());

  // The server accepts for ever and counts how its accepts ended.
  int out_of_descriptors = 0;
  int other_failures = 0;
  std::vector<TcpStream> served;
  auto server = spawn(loop, [&]() -> Task<> {
    for (;;) {
      Result<TcpStream> stream = co_await listener.value().accept();
      if (stream.error() == Error(ECANCELED)) co_return;
      if (stream) {
        served.push_back(std::move(stream.value()));
      } else if (stream.error() == Error(EMFILE)) {
        if (++out_of_descriptors > 1) co_return;  // the accept after it did not wait: failed below
      } else {
        ++other_failures;
      }
    }
  });
  ASSERT_TRUE(testing::run_until(loop, [&] { return out_of_descriptors > 0 || other_failures > 0; }));
  EXPECT_EQ(other_failures, 0);
  EXPECT_TRUE(served.empty());
  EXPECT_EQ(listener.value().shed_connections(), 1u);

  // The shed client sees the end of the stream or a reset at once.
  Result<Returned<std::size_t>> ended = run_until_complete(loop, [&]() -> Task<Returned<std::size_t>> {
    char c;
    co_return returned(co_await first.value().value.read(&c, 1));
  });
  ASSERT_TRUE(ended);
  EXPECT_TRUE((ended.value() && ended.value().value == 0) || ended.value().error.code() == ECONNRESET)
      << ended.value().error.message();

  // Nothing spins: the listener is not readable any more, so the server's next accept
  // waits (EMFILE came once), and the idle loop sleeps through 20 ms in a few iterations.
  // (A few: in a full run of the suite it was seen to wake up to 12 times there, from
  // outside this test. An accept that spins makes thousands of iterations in 20 ms.)
  // (loop.run, not the fixture's iterate(): with no descriptor left, UBSan's check of a
  // call on a polymorphic object cannot make the pipe it probes memory with, and reports
  // the fixture's vptr as invalid.)
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  }
  ASSERT_EQ(out_of_descriptors, 1) << "the accepts after the first did not wait";
  const uint64_t before = loop.iteration();
  bool fired = false;
  Timer idle(loop);
  ASSERT_FALSE(idle.start(20ms, [&] { fired = true; }));
  ASSERT_TRUE(testing::run_until(loop, [&] { return fired; }));
  EXPECT_LE(loop.iteration() - before, 50u) << "the loop spun while idle";

  // With two descriptors back (the next client's socket and its accepted end), the
  // listener serves as before.
  shortage.give_back(2);
  Result<Returned<TcpStream>> second = run_until_complete(loop, connect_to, address);
  ASSERT_TRUE(second && second.value());
  ASSERT_TRUE(testing::run_until(loop, [&] { return !served.empty(); }));
  EXPECT_EQ(served[0].peer_address().value(), second.value().value.local_address().value());
  EXPECT_EQ(listener.value().shed_connections(), 1u);

  server.cancel();
  ASSERT_TRUE(testing::run_until(loop, [&] { return server.done(); }));
}

#endif  // __linux__

}  // namespace
}  // namespace evflow
