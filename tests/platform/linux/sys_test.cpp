#include "platform/linux/sys.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "platform/clock.hpp"

namespace evflow::detail::linux_abi {
namespace {

TEST(RawSyscall, ReadAndWriteMoveBytesAndReportEagainAsAnErrorValue) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  const char out[3] = {'a', 'b', 'c'};
  Result<long> written = write(fds[1], out, sizeof out);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written.value(), 3);
  char in[8] = {};
  Result<long> got = read(fds[0], in, sizeof in);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), 3);
  EXPECT_EQ(std::string(in, 3), "abc");
  // Empty and non-blocking: EAGAIN comes back as an error value, not a hang.
  got = read(fds[0], in, sizeof in);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), EAGAIN);
  EXPECT_FALSE(close(fds[0]));
  EXPECT_FALSE(close(fds[1]));
}

TEST(RawSyscall, ErrorsCarryTheKernelErrno) {
  char c;
  Result<long> got = read(-1, &c, 1);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), EBADF);
  EXPECT_EQ(close(-1).code(), EBADF);
  EpollEvent ev{kEpollIn, 0};
  EXPECT_EQ(epoll_ctl(-1, kEpollCtlAdd, 0, &ev).code(), EBADF);
  EXPECT_EQ(epoll_ctl(-1, kEpollCtlAdd, 0, nullptr).code(), EFAULT) << "the event is copied in first";
}

TEST(RawSyscall, EventfdCountsAndDrainsInOneRead) {
  Result<int> efd = eventfd(0);
  ASSERT_TRUE(efd.ok());
  EXPECT_TRUE(::fcntl(efd.value(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(efd.value(), F_GETFD) & FD_CLOEXEC);
  const uint64_t one = 1;
  ASSERT_TRUE(write(efd.value(), &one, sizeof one).ok());
  ASSERT_TRUE(write(efd.value(), &one, sizeof one).ok());
  uint64_t value = 0;
  ASSERT_TRUE(read(efd.value(), &value, sizeof value).ok());
  EXPECT_EQ(value, 2u);
  EXPECT_EQ(read(efd.value(), &value, sizeof value).error().code(), EAGAIN);
  EXPECT_FALSE(close(efd.value()));
}

TEST(RawSyscall, EpollReportsAReadyPipeWithItsData) {
  Result<int> epfd = epoll_create();
  ASSERT_TRUE(epfd.ok());
  EXPECT_TRUE(::fcntl(epfd.value(), F_GETFD) & FD_CLOEXEC);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  EpollEvent ev{kEpollIn, 0x1234567890abcdefULL};
  ASSERT_FALSE(epoll_ctl(epfd.value(), kEpollCtlAdd, fds[0], &ev));

  EpollEvent out[4];
  Result<int> n = epoll_pwait(epfd.value(), out, 4, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);
  n = epoll_poll(epfd.value(), out, 4);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);

  const char c = 'x';
  ASSERT_TRUE(write(fds[1], &c, 1).ok());
  n = epoll_pwait(epfd.value(), out, 4, 0);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  const uint64_t data = out[0].data;  // a copy: the packed x86_64 field is misaligned
  EXPECT_EQ(data, 0x1234567890abcdefULL);
  EXPECT_TRUE(out[0].events & kEpollIn);

  // The non-blocking form (epoll_wait where the architecture has it) sees the same.
  n = epoll_poll(epfd.value(), out, 4);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  const uint64_t polled = out[0].data;
  EXPECT_EQ(polled, 0x1234567890abcdefULL);

  // epoll_pwait2 either works (nanosecond timeout) or is absent (ENOSYS, e.g. qemu-user).
  KernelTimespec zero{0, 0};
  Result<int> n2 = epoll_pwait2(epfd.value(), out, 4, &zero);
  if (n2.ok()) {
    EXPECT_EQ(n2.value(), 1);
  } else {
    EXPECT_TRUE(n2.error().code() == ENOSYS || n2.error().code() == EPERM) << n2.error().message();
  }
  EXPECT_FALSE(close(fds[0]));
  EXPECT_FALSE(close(fds[1]));
  EXPECT_FALSE(close(epfd.value()));
}

TEST(RawSyscall, ClockSyscallAgreesWithTheVdsoClock) {
  const int64_t before = monotonic_ns();
  KernelTimespec ts{};
  ASSERT_FALSE(clock_gettime_syscall(kClockMonotonic, &ts));
  const int64_t raw = ts.seconds * 1'000'000'000 + ts.nanoseconds;
  const int64_t after = monotonic_ns();
  EXPECT_LE(before, raw);
  EXPECT_LE(raw, after);
}

}  // namespace
}  // namespace evflow::detail::linux_abi
