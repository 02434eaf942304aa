// The io_uring readiness backend (platform/linux/uring_backend.hpp) and the Linux slot's
// choice of it (linux_backend.hpp): what the rest of the suite cannot show by running on
// it (make test-run-io-uring): the fall back to epoll, fork, the queued changes, and the
// descriptors let go at close.
#include "platform/linux/uring_backend.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include <cstddef>
#include <thread>
#include <utility>

#include "evflow/evflow.hpp"
#include "tests/support/backend_kind.hpp"

namespace evflow {
namespace {

// Whether this kernel (and whatever runs the tests: qemu-user answers ENOSYS) gives a
// ring to the backend.
bool io_uring_available() {
  detail::UringBackend probe;
  return !probe.open();
}

struct Fds {
  int a = -1, b = -1;
  Fds() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0) {
      a = sv[0];
      b = sv[1];
    }
  }
  ~Fds() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

bool peer_sees_end(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  char c;
  return ::read(fd, &c, 1) == 0;
}

// In a child: io_uring_setup answers `error` from now on (a seccomp filter, as a container
// runtime installs one, or as the kernel.io_uring_disabled sysctl answers EPERM).
bool refuse_io_uring_setup(int error) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

int exit_code_of(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(LinuxBackendChoice, ALoopAskedForIoUringRunsOnItOrSaysItFellBackToEpoll) {
  if (!testing::kLinuxSlot) GTEST_SKIP() << "the loop runs on another backend in this build (the kqueue emulation)";
  Loop loop;
  ASSERT_FALSE(loop.open(BackendKind::IoUring));
  EXPECT_EQ(loop.backend_kind(), io_uring_available() ? BackendKind::IoUring : BackendKind::Epoll);
  Fds s;
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(s.a, Readable, [&] { ++calls; }));
  ASSERT_EQ(::write(s.b, "x", 1), 1);
  EXPECT_FALSE(loop.run(RunMode::Once));
  EXPECT_EQ(calls, 1);
  Loop plain;
  ASSERT_FALSE(plain.open(BackendKind::Epoll));
  EXPECT_EQ(plain.backend_kind(), BackendKind::Epoll) << "asked for by name, whatever EVFLOW_BACKEND says";
}

// Each answer a kernel may give when io_uring is not to be had: the loop opens on epoll,
// says so, and works.
TEST(LinuxBackendChoice, IoUringRefusedWithEachErrorFallsBackToEpoll) {
  if (!testing::kLinuxSlot) GTEST_SKIP() << "the loop runs on another backend in this build (the kqueue emulation)";
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here: the test above checks the fall back already";
  for (int error : {ENOSYS, EPERM, ENOMEM}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (!refuse_io_uring_setup(error)) _exit(10);
      detail::UringBackend direct;
      if (direct.open().code() != error) _exit(11);  // the backend passes the refusal on
      Loop loop;
      if (loop.open(BackendKind::IoUring)) _exit(12);
      if (loop.backend_kind() != BackendKind::Epoll) _exit(13);
      Fds s;
      int calls = 0;
      Io io(loop);
      if (io.start(s.a, Readable, [&] { ++calls; }) || ::write(s.b, "x", 1) != 1) _exit(14);
      if (loop.run(RunMode::Once) || calls != 1) _exit(15);
      _exit(0);
    }
    EXPECT_EQ(exit_code_of(child), 0) << "refused with " << error;
  }
}

// A forked child inherits the ring's mappings: it must neither submit to the parent's ring
// nor reap from it. It gets a ring of its own; the parent's heads do not move.
TEST(UringBackend, AForkedChildWorksOnARingOfItsOwnAndLeavesTheParentsUntouched) {
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  detail::UringBackend backend;
  ASSERT_FALSE(backend.open());
  Fds parent_pair, child_pair;
  detail::InterestChange add{parent_pair.a, Events(), Readable, 7};
  backend.apply(std::span<detail::InterestChange>(&add, 1));
  ASSERT_FALSE(add.error);
  ASSERT_EQ(backend.wait(0, 0).value(), 0);
  const int parent_ring = backend.native_handle();
  const uint32_t sq_head = backend.ring().kernel_sq_head();
  const uint32_t cq_tail = backend.ring().kernel_cq_tail();

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (backend.after_fork()) _exit(10);
    detail::InterestChange mine{child_pair.a, Events(), Readable, 9};
    backend.apply(std::span<detail::InterestChange>(&mine, 1));
    if (mine.error) _exit(11);
    if (::write(child_pair.b, "c", 1) != 1 || ::write(parent_pair.b, "p", 1) != 1) _exit(12);
    Result<int> n = backend.wait(1'000'000'000, INT64_MAX);
    if (!n || n.value() != 1) _exit(13);  // its own registration only: the parent's is not in its ring
    const detail::ReadyEvent event = backend.event(0);
    if (event.fd != child_pair.a || event.tag != 9 || !event.events.readable()) _exit(14);
    backend.close();
    _exit(0);
  }
  ASSERT_EQ(exit_code_of(child), 0);
  EXPECT_EQ(backend.native_handle(), parent_ring);
  EXPECT_EQ(backend.ring().kernel_sq_head(), sq_head) << "the child submitted to the parent's ring";
  // The child's write to the parent's pair made the parent's poll complete in the parent's ring.
  Result<int> n = backend.wait(1'000'000'000, INT64_MAX);
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(backend.event(0).fd, parent_pair.a);
  EXPECT_EQ(backend.event(0).tag, 7u);
  EXPECT_GT(backend.ring().kernel_cq_tail(), cq_tail) << "the parent's poll completed in the parent's ring";
}

// Note g: the eventfd is written only for a thread that waits in io_uring_enter. A
// wake-up while the loop runs its callbacks changes the word alone (no completion is
// posted for it), and the next wait reports it at once, even one that would block.
TEST(UringBackend, AWakeWhileTheLoopRunsWritesNothingAndItsNextWaitReportsItAtOnce) {
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  detail::UringBackend backend;
  ASSERT_FALSE(backend.open());
  ASSERT_EQ(backend.wait(0, 0).value(), 0);
  const uint32_t cq_tail = backend.ring().kernel_cq_tail();
  backend.wake();
  backend.wake();
  Result<int> n = backend.wait(10'000'000'000, detail::monotonic_ns() + 10'000'000'000);  // would sleep 10 s
  ASSERT_TRUE(n);
  ASSERT_EQ(n.value(), 1) << "the wake-up in the word turns the wait into a poll, reported once";
  EXPECT_EQ(backend.event(0).fd, detail::kWakeDescriptor);
  EXPECT_EQ(backend.ring().kernel_cq_tail(), cq_tail) << "the eventfd was written: its poll completed";
  backend.acknowledge_wake();
  n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 0);
}

TEST(UringBackend, AWakeFromAnotherThreadEndsAWaitWhetherItCameBeforeOrDuringIt) {
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  // Under valgrind 3.19, which runs one thread at a time, the waker does not run while
  // this thread waits in io_uring_enter: every wait lasts its whole 10 s.
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "valgrind runs no other thread during io_uring_enter";
  detail::UringBackend backend;
  ASSERT_FALSE(backend.open());
  for (int round = 0; round < 200; ++round) {
    std::thread waker([&] { backend.wake(); });  // before the wait, or while the thread waits
    Result<int> n = backend.wait(10'000'000'000, detail::monotonic_ns() + 10'000'000'000);
    while (n && n.value() == 0)
      n = backend.wait(10'000'000'000, detail::monotonic_ns() + 10'000'000'000);  // 10 s: lost
    waker.join();
    ASSERT_TRUE(n);
    ASSERT_GE(n.value(), 1) << "round " << round;
    EXPECT_EQ(backend.event(0).fd, detail::kWakeDescriptor);
    backend.acknowledge_wake();
  }
}

// A ring polled by another loop (keep_ready_at) is not the one that waits: every wake-up
// writes the eventfd, so that the ring's descriptor becomes readable, and one sent before
// is written when the polling begins.
TEST(UringBackend, ARingPolledByAnotherLoopBecomesReadableAtEveryWake) {
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  detail::UringBackend backend;
  ASSERT_FALSE(backend.open());
  ASSERT_EQ(backend.wait(0, 0).value(), 0);
  auto readable = [&] {
    pollfd p{backend.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 1000) == 1 && (p.revents & POLLIN) != 0;  // the completion may be task work
  };
  backend.wake();  // before anyone polls it: the word alone
  backend.keep_ready_at(-1, INT64_MAX);
  EXPECT_TRUE(readable()) << "a wake-up sent before the ring was polled from outside";
  Result<int> n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  ASSERT_GE(n.value(), 1);
  EXPECT_EQ(backend.event(0).fd, detail::kWakeDescriptor);
  backend.acknowledge_wake();
  for (int round = 0; round < 3; ++round) {
    backend.wake();
    EXPECT_TRUE(readable()) << "round " << round;
    n = backend.wait(0, 0);
    ASSERT_TRUE(n);
    ASSERT_GE(n.value(), 1);
    backend.acknowledge_wake();
  }
}

// Interest changes of descriptors already registered cost no system call of their own:
// they wait in the submission ring and go with the next wait's io_uring_enter.
TEST(UringBackend, ChangesWaitInTheSubmissionRingForTheNextWait) {
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  detail::UringBackend backend;
  ASSERT_FALSE(backend.open());
  Fds pairs[4];
  for (int i = 0; i < 4; ++i) {
    detail::InterestChange add{pairs[i].a, Events(), Readable, static_cast<uint32_t>(10 + i)};
    backend.apply(std::span<detail::InterestChange>(&add, 1));
    ASSERT_FALSE(add.error);
  }
  const uint64_t calls = backend.interest_syscalls();
  detail::InterestChange changes[4] = {
      {pairs[0].a, Readable, Readable | Writable, 20},
      {pairs[1].a, Readable, Events(), 21},
      {pairs[2].a, Readable, Writable, 22},
      {pairs[3].a, Readable, Events(), 23},
  };
  backend.apply(changes);
  for (const auto& change : changes)
    EXPECT_FALSE(change.error);
  EXPECT_EQ(backend.interest_syscalls(), calls);
  EXPECT_GT(backend.ring().pending(), 0u);
  ASSERT_EQ(::write(pairs[1].b, "x", 1), 1);  // removed: never reported
  Result<int> n = backend.wait(0, 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(backend.ring().pending(), 0u);
  // Both writable ones (a socket with room), under their new tags; nothing else.
  ASSERT_EQ(n.value(), 2);
  for (int i = 0; i < 2; ++i) {
    const detail::ReadyEvent event = backend.event(i);
    EXPECT_TRUE(event.fd == pairs[0].a || event.fd == pairs[2].a) << event.fd;
    EXPECT_EQ(event.tag, event.fd == pairs[0].a ? 20u : 22u);
    EXPECT_TRUE(event.events.writable());
  }
}

// A poll holds its file: closing the number alone would not close the file while the
// poll is in the ring. Io::close() and the loop's end let go of it at once.
TEST(LoopOnIoUring, IoCloseAndTheLoopsEndLetGoOfTheFileAtOnce) {
  if (!testing::kLinuxSlot) GTEST_SKIP() << "the loop runs on another backend in this build (the kqueue emulation)";
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  Fds first, second;
  {
    Loop loop;
    ASSERT_FALSE(loop.open(BackendKind::IoUring));
    Io io(loop), other(loop);
    ASSERT_FALSE(io.start(first.a, Readable, [] {}));
    ASSERT_FALSE(other.start(second.a, Readable, [] {}));
    ASSERT_FALSE(loop.run(RunMode::NoWait));
    EXPECT_FALSE(peer_sees_end(first.b));
    ASSERT_FALSE(io.close());
    first.a = -1;
    EXPECT_TRUE(peer_sees_end(first.b)) << "Io::close() closed the file, without another iteration";
    other.stop();  // still registered until the next iteration: the loop's end removes it
    ::close(std::exchange(second.a, -1));
    EXPECT_FALSE(peer_sees_end(second.b)) << "the poll still holds the file";
  }
  EXPECT_TRUE(peer_sees_end(second.b)) << "the loop's end let go of it";
}

// A watcher started on a descriptor whose watcher stopped in this iteration is registered
// again at once (descriptor_table.cpp: the number may be a new file). Its poll names the
// file by number, so it must reach the kernel at once too: queued for the next wait, it
// would attach to whatever file the number names by then, and hold it open.
TEST(LoopOnIoUring, ARegistrationAgainReachesTheKernelBeforeTheNumberCanBeReused) {
  if (!testing::kLinuxSlot) GTEST_SKIP() << "the loop runs on another backend in this build (the kqueue emulation)";
  if (!io_uring_available()) GTEST_SKIP() << "no io_uring here";
  Loop loop;
  ASSERT_FALSE(loop.open(BackendKind::IoUring));
  Fds first, other;
  Io io(loop), again(loop), trigger(loop);
  ASSERT_FALSE(io.start(first.a, Readable, [] {}));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  io.stop();
  ASSERT_FALSE(again.start(first.a, Readable, [] {}));  // registered again now
  again.stop();
  const int number = std::exchange(first.a, -1);
  ::close(number);  // every watcher of it stopped: allowed
  Fds second;       // the lowest free number: `number` again
  ASSERT_EQ(second.a, number);
  ASSERT_FALSE(trigger.start(other.a, Readable, [] {}));  // a new registration: the ring is entered
  ::close(std::exchange(second.a, -1));
  EXPECT_TRUE(peer_sees_end(second.b)) << "a poll meant for the old file holds the new one";
}

}  // namespace
}  // namespace evflow
