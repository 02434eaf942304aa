#include "platform/linux/uring.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tests/support/open_descriptors.hpp"

#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#define EVFLOW_HAVE_SYSTEM_URING_HEADER 1
#endif

namespace evflow::detail {
namespace {

using namespace linux_abi;

// The numbers in syscall_numbers.hpp, against the C library's for this architecture.
static_assert(nr::io_uring_setup == SYS_io_uring_setup);
static_assert(nr::io_uring_enter == SYS_io_uring_enter);
static_assert(nr::io_uring_register == SYS_io_uring_register);
static_assert(nr::mmap == SYS_mmap);
static_assert(nr::munmap == SYS_munmap);

#if defined(EVFLOW_HAVE_SYSTEM_URING_HEADER)
// The declarations in uring_abi.hpp, against the system's copy of the kernel's header.
static_assert(sizeof(IoUringParams) == sizeof(io_uring_params));
static_assert(offsetof(IoUringParams, features) == offsetof(io_uring_params, features));
static_assert(offsetof(IoUringParams, sq_off) == offsetof(io_uring_params, sq_off));
static_assert(offsetof(IoUringParams, cq_off) == offsetof(io_uring_params, cq_off));
static_assert(sizeof(IoSqringOffsets) == sizeof(io_sqring_offsets));
static_assert(offsetof(IoSqringOffsets, flags) == offsetof(io_sqring_offsets, flags));
static_assert(offsetof(IoSqringOffsets, array) == offsetof(io_sqring_offsets, array));
static_assert(sizeof(IoCqringOffsets) == sizeof(io_cqring_offsets));
static_assert(offsetof(IoCqringOffsets, cqes) == offsetof(io_cqring_offsets, cqes));
static_assert(offsetof(IoCqringOffsets, flags) == offsetof(io_cqring_offsets, flags));
static_assert(sizeof(IoUringSqe) == sizeof(io_uring_sqe));
static_assert(offsetof(IoUringSqe, fd) == offsetof(io_uring_sqe, fd));
static_assert(offsetof(IoUringSqe, off) == offsetof(io_uring_sqe, off));
static_assert(offsetof(IoUringSqe, addr) == offsetof(io_uring_sqe, addr));
static_assert(offsetof(IoUringSqe, len) == offsetof(io_uring_sqe, len));
static_assert(offsetof(IoUringSqe, op_flags) == offsetof(io_uring_sqe, poll32_events));
static_assert(offsetof(IoUringSqe, op_flags) == offsetof(io_uring_sqe, msg_flags));
static_assert(offsetof(IoUringSqe, user_data) == offsetof(io_uring_sqe, user_data));
static_assert(offsetof(IoUringSqe, buf_index) == offsetof(io_uring_sqe, buf_index));
static_assert(offsetof(IoUringSqe, personality) == offsetof(io_uring_sqe, personality));
static_assert(offsetof(IoUringSqe, file_index) == offsetof(io_uring_sqe, file_index));
static_assert(offsetof(IoUringSqe, addr3) == offsetof(io_uring_sqe, addr3));
static_assert(sizeof(IoUringCqe) == sizeof(io_uring_cqe));
static_assert(offsetof(IoUringCqe, res) == offsetof(io_uring_cqe, res));
static_assert(offsetof(IoUringCqe, flags) == offsetof(io_uring_cqe, flags));
static_assert(sizeof(IoUringGeteventsArg) == sizeof(io_uring_getevents_arg));
static_assert(offsetof(IoUringGeteventsArg, ts) == offsetof(io_uring_getevents_arg, ts));
static_assert(sizeof(IoUringProbeHeader) == sizeof(io_uring_probe));
static_assert(sizeof(IoUringProbeOp) == sizeof(io_uring_probe_op));

static_assert(kIoringOpNop == IORING_OP_NOP);
static_assert(kIoringOpReadv == IORING_OP_READV);
static_assert(kIoringOpWritev == IORING_OP_WRITEV);
static_assert(kIoringOpPollAdd == IORING_OP_POLL_ADD);
static_assert(kIoringOpPollRemove == IORING_OP_POLL_REMOVE);
static_assert(kIoringOpSendmsg == IORING_OP_SENDMSG);
static_assert(kIoringOpRecvmsg == IORING_OP_RECVMSG);
static_assert(kIoringOpTimeout == IORING_OP_TIMEOUT);
static_assert(kIoringOpTimeoutRemove == IORING_OP_TIMEOUT_REMOVE);
static_assert(kIoringOpAccept == IORING_OP_ACCEPT);
static_assert(kIoringOpAsyncCancel == IORING_OP_ASYNC_CANCEL);
static_assert(kIoringOpLinkTimeout == IORING_OP_LINK_TIMEOUT);
static_assert(kIoringOpConnect == IORING_OP_CONNECT);
static_assert(kIoringOpClose == IORING_OP_CLOSE);
static_assert(kIoringOpRead == IORING_OP_READ);
static_assert(kIoringOpWrite == IORING_OP_WRITE);
static_assert(kIoringOpSend == IORING_OP_SEND);
static_assert(kIoringOpRecv == IORING_OP_RECV);
static_assert(kIoringOpShutdown == IORING_OP_SHUTDOWN);
static_assert(kIosqeIoLink == IOSQE_IO_LINK);
static_assert(kIosqeAsync == IOSQE_ASYNC);
static_assert(kIosqeCqeSkipSuccess == IOSQE_CQE_SKIP_SUCCESS);
static_assert(kIoringSetupCqsize == IORING_SETUP_CQSIZE);
static_assert(kIoringSetupClamp == IORING_SETUP_CLAMP);
static_assert(kIoringSetupSubmitAll == IORING_SETUP_SUBMIT_ALL);
static_assert(kIoringSetupCoopTaskrun == IORING_SETUP_COOP_TASKRUN);
static_assert(kIoringSetupSingleIssuer == IORING_SETUP_SINGLE_ISSUER);
static_assert(kIoringFeatSingleMmap == IORING_FEAT_SINGLE_MMAP);
static_assert(kIoringFeatNodrop == IORING_FEAT_NODROP);
static_assert(kIoringFeatSubmitStable == IORING_FEAT_SUBMIT_STABLE);
static_assert(kIoringFeatFastPoll == IORING_FEAT_FAST_POLL);
static_assert(kIoringFeatPoll32Bits == IORING_FEAT_POLL_32BITS);
static_assert(kIoringFeatExtArg == IORING_FEAT_EXT_ARG);
static_assert(kIoringFeatNativeWorkers == IORING_FEAT_NATIVE_WORKERS);
static_assert(kIoringFeatCqeSkip == IORING_FEAT_CQE_SKIP);
static_assert(kIoringEnterGetevents == IORING_ENTER_GETEVENTS);
static_assert(kIoringEnterExtArg == IORING_ENTER_EXT_ARG);
static_assert(kIoringSqNeedWakeup == IORING_SQ_NEED_WAKEUP);
static_assert(kIoringSqCqOverflow == IORING_SQ_CQ_OVERFLOW);
static_assert(kIoringSqTaskrun == IORING_SQ_TASKRUN);
static_assert(kIoringCqEventfdDisabled == IORING_CQ_EVENTFD_DISABLED);
static_assert(kIoringOffSqRing == IORING_OFF_SQ_RING);
static_assert(kIoringOffCqRing == IORING_OFF_CQ_RING);
static_assert(kIoringOffSqes == IORING_OFF_SQES);
static_assert(kIoringTimeoutAbs == IORING_TIMEOUT_ABS);
static_assert(kIoringTimeoutUpdate == IORING_TIMEOUT_UPDATE);
static_assert(kIoringPollAddMulti == IORING_POLL_ADD_MULTI);
static_assert(kIoringPollUpdateEvents == IORING_POLL_UPDATE_EVENTS);
static_assert(kIoringPollUpdateUserData == IORING_POLL_UPDATE_USER_DATA);
static_assert(kIoringAsyncCancelAll == IORING_ASYNC_CANCEL_ALL);
static_assert(kIoringAsyncCancelFd == IORING_ASYNC_CANCEL_FD);
static_assert(kIoringCqeFBuffer == IORING_CQE_F_BUFFER);
static_assert(kIoringCqeFMore == IORING_CQE_F_MORE);
static_assert(kIoringCqeFSockNonempty == IORING_CQE_F_SOCK_NONEMPTY);
static_assert(kIoringRegisterProbe == IORING_REGISTER_PROBE);
static_assert(kIoringRegisterRingFds == IORING_REGISTER_RING_FDS);
static_assert(kIoUringOpSupported == IO_URING_OP_SUPPORTED);
#endif

// Opens `ring`, or skips the test where io_uring is missing or refused (an old kernel,
// kernel.io_uring_disabled, a seccomp filter, qemu-user, valgrind).
#define OPEN_OR_SKIP(ring, entries)                                          \
  do {                                                                       \
    Error open_error = (ring).open(entries);                                 \
    if (open_error.code() == ENOSYS || open_error.code() == EPERM)           \
      GTEST_SKIP() << "io_uring unavailable here: " << open_error.message(); \
    ASSERT_FALSE(open_error) << open_error.message();                        \
  } while (0)

using testing::open_descriptors;

// Mappings of an io_uring descriptor in this process.
int ring_mappings() {
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return -1;
  int count = 0;
  char line[512];
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    if (std::strstr(line, "io_uring") != nullptr) ++count;
  }
  std::fclose(maps);
  return count;
}

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void put() const {
    const char byte = 'x';
    EXPECT_EQ(::write(fds[1], &byte, 1), 1);
  }
};

void prepare_poll(IoUringSqe* sqe, int fd, uint32_t events, uint64_t user_data, uint32_t poll_flags = 0) {
  sqe->opcode = kIoringOpPollAdd;
  sqe->fd = fd;
  sqe->op_flags = events;
  sqe->len = poll_flags;
  sqe->user_data = user_data;
}

TEST(Uring, OpensAClosedOnExecRingWithAtLeastTheEntriesAsked) {
  Uring ring;
  OPEN_OR_SKIP(ring, 8);
  EXPECT_TRUE(ring.is_open());
  EXPECT_GE(ring.fd(), 0);
  EXPECT_TRUE(::fcntl(ring.fd(), F_GETFD) & FD_CLOEXEC);
  EXPECT_GE(ring.sq_entries(), 8u);
  EXPECT_GE(ring.cq_entries(), ring.sq_entries());
  EXPECT_EQ(ring.pending(), 0u);
  EXPECT_EQ(ring.peek(), nullptr);
  EXPECT_EQ(ring.ready(), 0u);
}

TEST(Uring, RefusesZeroEntriesAndStaysClosed) {
  const int before = open_descriptors();
  Uring ring;
  Error err = ring.open(0);
  if (err.code() == ENOSYS || err.code() == EPERM) GTEST_SKIP() << "io_uring unavailable here";
  EXPECT_EQ(err.code(), EINVAL);
  EXPECT_FALSE(ring.is_open());
  EXPECT_EQ(ring.get_sqe(), nullptr);
  EXPECT_EQ(ring.submit_and_wait(0, nullptr).error().code(), EBADF);
  EXPECT_EQ(open_descriptors(), before);
}

TEST(Uring, NopComesBackWithItsUserDataAndResultZero) {
  Uring ring;
  OPEN_OR_SKIP(ring, 4);
  IoUringSqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  sqe->opcode = kIoringOpNop;
  sqe->user_data = 0x0123456789abcdefu;
  EXPECT_EQ(ring.pending(), 1u);
  Result<int> submitted = ring.submit_and_wait(1, nullptr);
  ASSERT_TRUE(submitted.ok()) << submitted.error().message();
  EXPECT_EQ(submitted.value(), 1);
  EXPECT_EQ(ring.pending(), 0u);
  ASSERT_EQ(ring.ready(), 1u);
  const IoUringCqe* cqe = ring.peek();
  ASSERT_NE(cqe, nullptr);
  EXPECT_EQ(cqe->user_data, 0x0123456789abcdefu);
  EXPECT_EQ(cqe->res, 0);
  EXPECT_EQ(cqe->flags & kIoringCqeFMore, 0u);
  ring.advance(1);
  EXPECT_EQ(ring.peek(), nullptr);
  EXPECT_EQ(ring.ready(), 0u);
}

TEST(Uring, PollAddCompletesWhenThePipeBecomesReadable) {
  Uring ring;
  OPEN_OR_SKIP(ring, 4);
  Pipe pipe;
  prepare_poll(ring.get_sqe(), pipe.fds[0], POLLIN, 7);
  Result<int> submitted = ring.submit_and_wait(0, nullptr);
  ASSERT_TRUE(submitted.ok()) << submitted.error().message();
  EXPECT_EQ(submitted.value(), 1);
  EXPECT_EQ(ring.peek(), nullptr) << "an empty pipe is not readable";

  pipe.put();
  ASSERT_TRUE(ring.submit_and_wait(1, nullptr).ok());
  const IoUringCqe* cqe = ring.peek();
  ASSERT_NE(cqe, nullptr);
  EXPECT_EQ(cqe->user_data, 7u);
  ASSERT_GT(cqe->res, 0);
  EXPECT_TRUE(cqe->res & POLLIN);
  EXPECT_EQ(cqe->flags & kIoringCqeFMore, 0u) << "a single-shot poll ends with its completion";
  ring.advance(1);
  EXPECT_EQ(ring.peek(), nullptr);
}

TEST(Uring, MultishotPollReportsEachWakeUpAndEndsWhenRemoved) {
  Uring ring;
  OPEN_OR_SKIP(ring, 4);
  Pipe pipe;
  prepare_poll(ring.get_sqe(), pipe.fds[0], POLLIN, 11, kIoringPollAddMulti);
  ASSERT_TRUE(ring.submit_and_wait(0, nullptr).ok());

  for (int round = 0; round < 2; ++round) {
    pipe.put();
    ASSERT_TRUE(ring.submit_and_wait(1, nullptr).ok());
    const IoUringCqe* cqe = ring.peek();
    ASSERT_NE(cqe, nullptr);
    EXPECT_EQ(cqe->user_data, 11u);
    if (round == 0 && cqe->res == -EINVAL) GTEST_SKIP() << "no multishot poll (Linux < 5.13)";
    ASSERT_GT(cqe->res, 0) << "round " << round;
    EXPECT_TRUE(cqe->res & POLLIN);
    EXPECT_NE(cqe->flags & kIoringCqeFMore, 0u) << "round " << round << ": the poll stays armed";
    ring.advance(1);
    EXPECT_EQ(ring.peek(), nullptr);
  }

  // POLL_REMOVE names the poll by its user_data: one completion for the removal, and a
  // last one for the poll, without F_MORE.
  IoUringSqe* remove = ring.get_sqe();
  ASSERT_NE(remove, nullptr);
  remove->opcode = kIoringOpPollRemove;
  remove->addr = 11;
  remove->user_data = 12;
  ASSERT_TRUE(ring.submit_and_wait(2, nullptr).ok());
  ASSERT_EQ(ring.ready(), 2u);
  bool removed = false;
  bool ended = false;
  for (int i = 0; i < 2; ++i) {
    const IoUringCqe* cqe = ring.peek();
    ASSERT_NE(cqe, nullptr);
    if (cqe->user_data == 12) {
      EXPECT_EQ(cqe->res, 0);
      removed = true;
    } else {
      EXPECT_EQ(cqe->user_data, 11u);
      EXPECT_EQ(cqe->res, -ECANCELED);
      EXPECT_EQ(cqe->flags & kIoringCqeFMore, 0u);
      ended = true;
    }
    ring.advance(1);
  }
  EXPECT_TRUE(removed);
  EXPECT_TRUE(ended);
}

TEST(Uring, TimedWaitWithoutEventsEndsWithEtime) {
  Uring ring;
  OPEN_OR_SKIP(ring, 4);
  const KernelTimespec timeout{0, 1'000'000};
  Result<int> waited = ring.submit_and_wait(1, &timeout);
  if ((ring.features() & kIoringFeatExtArg) == 0) {
    EXPECT_EQ(waited.error().code(), EOPNOTSUPP);
    GTEST_SKIP() << "no IORING_FEAT_EXT_ARG (Linux < 5.11)";
  }
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.error().code(), ETIME);
  EXPECT_EQ(ring.peek(), nullptr);

  // The same timed wait with a completion to find submits and returns it.
  IoUringSqe* sqe = ring.get_sqe();
  ASSERT_NE(sqe, nullptr);
  sqe->opcode = kIoringOpNop;
  sqe->user_data = 3;
  const KernelTimespec long_timeout{60, 0};
  waited = ring.submit_and_wait(1, &long_timeout);
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(waited.value(), 1);
  const IoUringCqe* cqe = ring.peek();
  ASSERT_NE(cqe, nullptr);
  EXPECT_EQ(cqe->user_data, 3u);
  ring.advance(1);
}

TEST(Uring, GetSqeReturnsNullWhenTheSubmissionRingIsFull) {
  Uring ring;
  OPEN_OR_SKIP(ring, 8);
  const unsigned entries = ring.sq_entries();
  for (unsigned i = 0; i < entries; ++i) {
    IoUringSqe* sqe = ring.get_sqe();
    ASSERT_NE(sqe, nullptr) << i;
    sqe->opcode = kIoringOpNop;
    sqe->user_data = i;
  }
  EXPECT_EQ(ring.get_sqe(), nullptr);
  EXPECT_EQ(ring.pending(), entries);

  Result<int> submitted = ring.submit_and_wait(entries, nullptr);
  ASSERT_TRUE(submitted.ok()) << submitted.error().message();
  EXPECT_EQ(submitted.value(), static_cast<int>(entries));
  ASSERT_EQ(ring.ready(), entries);
  for (unsigned i = 0; i < entries; ++i) {
    const IoUringCqe* cqe = ring.peek();
    ASSERT_NE(cqe, nullptr);
    EXPECT_EQ(cqe->user_data, i) << "NOPs complete in order";
    ring.advance(1);
  }
  // The kernel consumed them all: the ring has room again, across the wrap.
  for (unsigned i = 0; i < entries; ++i)
    ASSERT_NE(ring.get_sqe(), nullptr) << i;
  EXPECT_EQ(ring.get_sqe(), nullptr);
}

TEST(Uring, CloseAndReopenLeakNoDescriptorAndNoMapping) {
  const int descriptors = open_descriptors();
  const int mappings = ring_mappings();
  ASSERT_GT(descriptors, 0);
  {
    Uring ring;
    OPEN_OR_SKIP(ring, 8);
    EXPECT_EQ(open_descriptors(), descriptors + 1);
    EXPECT_GT(ring_mappings(), mappings);
    ring.close();
    EXPECT_FALSE(ring.is_open());
    EXPECT_EQ(open_descriptors(), descriptors);
    EXPECT_EQ(ring_mappings(), mappings);

    ASSERT_FALSE(ring.open(8));
    ASSERT_FALSE(ring.open(16)) << "open() on an open ring replaces it";
    EXPECT_EQ(open_descriptors(), descriptors + 1);
    IoUringSqe* sqe = ring.get_sqe();
    ASSERT_NE(sqe, nullptr);
    sqe->opcode = kIoringOpNop;
    ASSERT_TRUE(ring.submit_and_wait(1, nullptr).ok());
    EXPECT_NE(ring.peek(), nullptr);
  }  // the destructor closes
  EXPECT_EQ(open_descriptors(), descriptors);
  EXPECT_EQ(ring_mappings(), mappings);
}

TEST(Uring, ProbeKnowsTheOperationsEvflowUses) {
  Uring ring;
  OPEN_OR_SKIP(ring, 4);
  Result<bool> nop = ring.supports(kIoringOpNop);
  if (!nop.ok() && nop.error().code() == EINVAL) GTEST_SKIP() << "no IORING_REGISTER_PROBE (Linux < 5.6)";
  ASSERT_TRUE(nop.ok()) << nop.error().message();
  EXPECT_TRUE(nop.value());
  EXPECT_TRUE(ring.supports(kIoringOpPollAdd).value());
  EXPECT_TRUE(ring.supports(kIoringOpRecv).value());
  EXPECT_FALSE(ring.supports(255).value()) << "no such opcode";
}

}  // namespace
}  // namespace evflow::detail
