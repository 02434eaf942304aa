#include "reactor/io.hpp"

#include <gtest/gtest.h>

#if !defined(_WIN32)
#include <fcntl.h>
#include <unistd.h>
#endif

#include <memory>
#include <vector>

#include <climits>
#include <evflow/evflow.hpp>
#include "tests/support/backend_kind.hpp"
#include "tests/support/descriptors.hpp"

namespace evflow {
namespace {

using testing::drain;
using testing::make_pipe;
using testing::make_socketpair;
using testing::OwnedFd;
using testing::write_byte;

class IoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(loop.open()); }
  Loop loop;
};

TEST_F(IoTest, ReadableFiresWhenDataArrivesAndReportsWhatIsReady) {
  auto p = make_pipe();
  std::vector<Events> seen;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events ready) {
    seen.push_back(ready);
    drain(self.fd());
  }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_TRUE(seen.empty());
  ASSERT_TRUE(write_byte(p.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], Readable);
}

TEST_F(IoTest, IsLevelTriggeredUntilTheDataIsConsumed) {
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&] { ++calls; }));
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 3);
}

TEST_F(IoTest, WritableAndBothInterests) {
  auto s = make_socketpair();
  ASSERT_TRUE(write_byte(s.b.get()));
  Events seen;
  Io io(loop);
  ASSERT_FALSE(io.start(s.a.get(), Readable | Writable, [&](Io&, Events ready) { seen = ready; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(seen, Readable | Writable);
  ASSERT_FALSE(io.set_interest(Writable));
  seen = Events();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(seen, Writable) << "only what the watcher asks for is reported";
}

TEST_F(IoTest, InterestChangeWhileActiveTakesEffectNextIteration) {
  auto s = make_socketpair();
  int reads = 0, writes = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(s.a.get(), Readable, [&](Io&, Events ready) {
    reads += ready.readable();
    writes += ready.writable();
  }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(writes, 0);
  ASSERT_FALSE(io.set_interest(Readable | Writable));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(reads, 0);
}

TEST_F(IoTest, HangUpIsReportedAsReadableSoTheReadSeesEndOfFile) {
  auto p = make_pipe();
  Events seen;
  long got = -1;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events ready) {
    seen = ready;
    char c;
    got = testing::read_fd(self.fd(), &c, 1);
    self.stop();
  }));
  p.write_end.reset();
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(seen, Readable);
  EXPECT_EQ(got, 0);
}

TEST_F(IoTest, PeerResetIsReportedAsWritableSoTheWriteSeesTheError) {
  auto s = make_socketpair();
  Events seen;
  Io io(loop);
  ASSERT_FALSE(io.start(s.a.get(), Writable, [&](Io& self, Events ready) {
    seen = ready;
    self.stop();
  }));
  s.b.reset();
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(seen, Writable);
#if !defined(_WIN32)  // a Unix socket pair fails the write at once; TCP (Windows) only after the peer's reset
  char c = 'x';
  EXPECT_EQ(::write(s.a.get(), &c, 1), -1);
  EXPECT_EQ(errno, EPIPE);
#endif
}

// --- bad input --------------------------------------------------------------------

TEST_F(IoTest, NegativeDescriptorIsEbadf) {
  Io io(loop);
  EXPECT_EQ(io.start(-1, Readable, [] {}).code(), EBADF);
  EXPECT_FALSE(io.active());
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(IoTest, ClosedDescriptorIsEbadf) {
  auto p = make_pipe();
  const int fd = p.read_end.release();
  testing::close_fd(fd);
  Io io(loop);
  EXPECT_EQ(io.start(fd, Readable, [] {}).code(), EBADF);
  EXPECT_FALSE(io.active());
}

#if !defined(_WIN32)  // Windows refuses every handle but a socket: tests/platform/win/iocp_backend_test.cpp
TEST_F(IoTest, RegularFileIsRefusedWithEperm) {
  char path[] = "/tmp/evflow-io-XXXXXX";
  OwnedFd file(::mkstemp(path));
  ASSERT_GE(file.get(), 0);
  ::unlink(path);
  Io io(loop);
  Error err = io.start(file.get(), Readable, [] {});
  EXPECT_EQ(err.code(), EPERM) << err.message();
  EXPECT_FALSE(io.active());
}

TEST_F(IoTest, DirectoryIsRefusedWithEperm) {
  OwnedFd dir(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dir.get(), 0);
  Io io(loop);
  EXPECT_EQ(io.start(dir.get(), Readable, [] {}).code(), EPERM);
}
#endif

TEST_F(IoTest, EmptyOrUnknownInterestIsEinval) {
  auto p = make_pipe();
  Io io(loop);
  EXPECT_EQ(io.start(p.read_end.get(), Events(), [] {}).code(), EINVAL);
  EXPECT_EQ(io.start(p.read_end.get(), Invalid, [] {}).code(), EINVAL);
  EXPECT_EQ(io.start(p.read_end.get(), Events(0x80), [] {}).code(), EINVAL);
  EXPECT_EQ(io.set_interest(Events()).code(), EINVAL);
}

TEST_F(IoTest, StartWithoutACallbackIsEinval) {
  auto p = make_pipe();
  Io io(loop);
  EXPECT_EQ(io.start(p.read_end.get(), Readable).code(), EINVAL);
}

// Semantics 6: two watchers on one descriptor are both served, in start order.
TEST_F(IoTest, TwoWatchersOnOneDescriptorAreBothServedInStartOrder) {
  auto s = make_socketpair();
  ASSERT_TRUE(write_byte(s.b.get()));
  std::vector<int> order;
  Io reader(loop), writer(loop), both(loop);
  ASSERT_FALSE(reader.start(s.a.get(), Readable, [&](Io&, Events e) { order.push_back(e == Readable ? 1 : -1); }));
  ASSERT_FALSE(writer.start(s.a.get(), Writable, [&](Io&, Events e) { order.push_back(e == Writable ? 2 : -2); }));
  ASSERT_FALSE(both.start(s.a.get(), Readable | Writable,
                          [&](Io&, Events e) { order.push_back(e == (Readable | Writable) ? 3 : -3); }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  // Stopping one leaves the others registered and served.
  writer.stop();
  order.clear();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
}

// Semantics 14: start() on an active watcher restarts it with the new parameters.
TEST_F(IoTest, StartOnAnActiveWatcherRestartsWithNewParameters) {
  auto a = make_pipe();
  auto b = make_pipe();
  ASSERT_TRUE(write_byte(a.write_end.get()));
  ASSERT_TRUE(write_byte(b.write_end.get()));
  std::vector<int> fds;
  Io io(loop);
  ASSERT_FALSE(io.start(a.read_end.get(), Readable, [&](Io& self, Events) { fds.push_back(self.fd()); }));
  ASSERT_FALSE(io.start(b.read_end.get(), Readable, [&](Io& self, Events) { fds.push_back(-self.fd()); }));
  EXPECT_EQ(loop.active_watchers(), 1);
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(fds, (std::vector<int>{-b.read_end.get()}));
}

// --- the cost of re-registration ----------------------------------------------------

TEST_F(IoTest, StopThenStartInOneIterationMakesNoSystemCall) {
  std::vector<testing::Pipe> pipes(50);
  std::vector<std::unique_ptr<Io>> watchers;
  for (auto& p : pipes) {
    p = make_pipe();
    watchers.push_back(std::make_unique<Io>(loop));
    ASSERT_FALSE(watchers.back()->start(p.read_end.get(), Readable, [] {}));
  }
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  const uint64_t before = loop.stats().interest_syscalls;
  for (int round = 0; round < 10; ++round) {
    for (auto& w : watchers) {
      w->stop();
      ASSERT_FALSE(w->start());
    }
    EXPECT_FALSE(loop.run(RunMode::NoWait));
  }
  EXPECT_EQ(loop.stats().interest_syscalls - before, 0u);
}

TEST_F(IoTest, AFreshWatcherTakingOverAHandedOverRegistrationMakesNoSystemCall) {
  // A coroutine awaiter has a new Io per await: each round, 50 fresh watchers take over
  // the registrations of the 50 before them, and one descriptor is made readable.
  std::vector<testing::Pipe> pipes(50);
  std::vector<Io::Handover> handovers;
  {
    std::vector<std::unique_ptr<Io>> first;
    for (auto& p : pipes) {
      p = make_pipe();
      first.push_back(std::make_unique<Io>(loop));
      ASSERT_FALSE(first.back()->start(p.read_end.get(), Readable, [] {}));
    }
    EXPECT_FALSE(loop.run(RunMode::NoWait));
    for (auto& w : first)
      handovers.push_back(w->hand_over());
  }
  // Counted over the starts and the iteration that applies them, with nothing ready (IOCP
  // re-arms a socket's poll after it reported, a call that is not the starts').
  uint64_t syscalls = 0;
  std::vector<int> served;
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<Io>> fresh;
    const uint64_t before = loop.stats().interest_syscalls;
    for (size_t i = 0; i < pipes.size(); ++i) {
      fresh.push_back(std::make_unique<Io>(loop));
      ASSERT_FALSE(
          fresh.back()->start(handovers[i], Readable, [&served, i] { served.push_back(static_cast<int>(i)); }));
    }
    EXPECT_FALSE(loop.run(RunMode::NoWait));
    syscalls += loop.stats().interest_syscalls - before;
    ASSERT_TRUE(write_byte(pipes[static_cast<size_t>(round)].write_end.get()));
    EXPECT_FALSE(loop.run(RunMode::NoWait));
    drain(pipes[static_cast<size_t>(round)].read_end.get());
    EXPECT_FALSE(loop.run(RunMode::NoWait));  // (where a poll is re-armed after it reported)
    for (size_t i = 0; i < pipes.size(); ++i)
      handovers[i] = fresh[i]->hand_over();
    EXPECT_FALSE(fresh.front()->active()) << "hand_over() stops the watcher";
  }
  EXPECT_EQ(syscalls, 0u);
  EXPECT_EQ(served, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(IoTest, AFreshWatcherWithoutAHandoverIsVerifiedWithTheKernel) {
  // What the handover saves, and why it must be explicit: without it the number may name
  // another file by now (AnotherWatcherOnAReusedNumberIsRegisteredForTheNewFile).
  if (testing::kLoopUsesIocp)
    GTEST_SKIP() << "IOCP: a change that asks for no new bits keeps the socket's pending poll, a call-free "
                    "update (iocp_backend.hpp, note b); a closed socket is reported by AFD itself (note e)";
  if (testing::loop_uses_io_uring())
    GTEST_SKIP() << "io_uring: the new poll replacing the old one is queued for the next wait, no call of its own "
                    "(uring_backend.hpp, note c); it binds whatever file the number names then";
  std::vector<testing::Pipe> pipes(20);
  std::vector<std::unique_ptr<Io>> old_watchers;
  for (auto& p : pipes) {
    p = make_pipe();
    old_watchers.push_back(std::make_unique<Io>(loop));
    ASSERT_FALSE(old_watchers.back()->start(p.read_end.get(), Readable, [] {}));
  }
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  const uint64_t before = loop.stats().interest_syscalls;
  std::vector<std::unique_ptr<Io>> fresh;
  for (size_t i = 0; i < pipes.size(); ++i) {
    old_watchers[i]->stop();
    fresh.push_back(std::make_unique<Io>(loop));
    ASSERT_FALSE(fresh.back()->start(pipes[i].read_end.get(), Readable, [] {}));
  }
  EXPECT_GE(loop.stats().interest_syscalls - before, pipes.size());
}

TEST_F(IoTest, AHandoverFromAWatcherThatClosedItsDescriptorHasNone) {
  auto p = make_pipe();
  Io first(loop), second(loop);
  ASSERT_FALSE(first.start(p.read_end.release(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_FALSE(first.close());
  const Io::Handover handover = first.hand_over();
  EXPECT_EQ(handover.fd, -1);
  EXPECT_EQ(second.start(handover, Readable, [] {}).code(), EBADF);
  EXPECT_FALSE(second.active());
  const Io::Handover never_started = Io(loop).hand_over();
  EXPECT_EQ(never_started.fd, -1);
}

TEST_F(IoTest, AHandoverIsSpentByTheFirstStartThatUsesIt) {
  // The stamp vouches for one restart: once the loop applied the stop, or once the watcher
  // that took it over stopped again, a start with the old handover is verified.
  auto p = make_pipe();
  Io first(loop), second(loop);
  ASSERT_FALSE(first.start(p.read_end.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  const Io::Handover handover = first.hand_over();
  EXPECT_FALSE(loop.run(RunMode::NoWait));  // the stop is applied: the registration is gone
  const uint64_t before = loop.stats().interest_syscalls;
  ASSERT_FALSE(second.start(handover, Readable, [] {}));
  EXPECT_GE(loop.stats().interest_syscalls - before, 1u) << "registered anew";
  int calls = 0;
  second.stop();
  ASSERT_FALSE(second.start(handover, Readable, [&] { ++calls; })) << "a stale stamp is verified, not refused";
  ASSERT_TRUE(write_byte(p.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(IoTest, StopAppliedAtTheNextIterationRemovesTheRegistration) {
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&] { ++calls; }));
  const uint64_t before = loop.stats().interest_syscalls;
  io.stop();
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 0);
  // io_uring: the removal goes with the wait's io_uring_enter (uring_backend.hpp, note c).
  EXPECT_EQ(loop.stats().interest_syscalls - before, testing::loop_uses_io_uring() ? 0u : 1u) << "one EPOLL_CTL_DEL";
}

TEST_F(IoTest, ChangingInterestCostsOneSystemCall) {
  auto s = make_socketpair();
  Io io(loop);
  ASSERT_FALSE(io.start(s.a.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  const uint64_t before = loop.stats().interest_syscalls;
  ASSERT_FALSE(io.set_interest(Writable));
  ASSERT_FALSE(io.set_interest(Readable | Writable));  // coalesced with the previous change
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  // epoll and kqueue: one modification; IOCP: a cancel and a new poll (note b); io_uring:
  // none, the change goes with the wait's io_uring_enter (uring_backend.hpp, note c).
  EXPECT_EQ(loop.stats().interest_syscalls - before, testing::kLoopUsesIocp          ? 2u
                                                     : testing::loop_uses_io_uring() ? 0u
                                                                                     : 1u);
}

// --- callbacks that change watchers --------------------------------------------------

TEST_F(IoTest, CallbackMayStopItself) {
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events) {
    ++calls;
    self.stop();
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(io.active());
}

TEST_F(IoTest, CallbackMayStopTheNextWatcherOfTheSameDescriptor) {
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  int first_calls = 0, second_calls = 0;
  Io first(loop), second(loop);
  ASSERT_FALSE(first.start(p.read_end.get(), Readable, [&] {
    ++first_calls;
    second.stop();
  }));
  ASSERT_FALSE(second.start(p.read_end.get(), Readable, [&] { ++second_calls; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(second_calls, 0) << "no callback after stop() returned";
}

TEST_F(IoTest, CallbackMayDestroyOtherWatchersPendingInTheSameIteration) {
  // Two ready descriptors; whichever callback runs first destroys the other watcher.
  auto a = make_pipe();
  auto b = make_pipe();
  ASSERT_TRUE(write_byte(a.write_end.get()));
  ASSERT_TRUE(write_byte(b.write_end.get()));
  auto wa = std::make_unique<Io>(loop);
  auto wb = std::make_unique<Io>(loop);
  int calls = 0;
  ASSERT_FALSE(wa->start(a.read_end.get(), Readable, [&] {
    ++calls;
    wb.reset();
  }));
  ASSERT_FALSE(wb->start(b.read_end.get(), Readable, [&] {
    ++calls;
    wa.reset();
  }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop.active_watchers(), 1);
}

TEST_F(IoTest, CallbackMayDestroyItsOwnWatcher) {
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  auto io = std::make_unique<Io>(loop);
  int calls = 0;
  ASSERT_FALSE(io->start(p.read_end.get(), Readable, [&] {
    ++calls;
    io.reset();  // the callable lives inside *io: touch nothing captured after this
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(io, nullptr);
}

TEST_F(IoTest, CallbackMayRestartItselfOnAnotherDescriptorWithANewCallback) {
  auto a = make_pipe();
  auto b = make_pipe();
  ASSERT_TRUE(write_byte(a.write_end.get()));
  ASSERT_TRUE(write_byte(b.write_end.get()));
  std::vector<char> log;
  Io io(loop);
  ASSERT_FALSE(io.start(a.read_end.get(), Readable, [&log, &b](Io& self, Events) {
    log.push_back('a');
    std::vector<char>* out = &log;
    (void)self.start(b.read_end.get(), Readable, [out](Io& again, Events) {
      out->push_back('b');
      again.stop();
    });
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(log, (std::vector<char>{'a', 'b'}));
}

TEST_F(IoTest, CallbackMayStartNewWatchers) {
  auto a = make_pipe();
  auto b = make_pipe();
  ASSERT_TRUE(write_byte(a.write_end.get()));
  ASSERT_TRUE(write_byte(b.write_end.get()));
  int b_calls = 0;
  Io wa(loop), wb(loop);
  ASSERT_FALSE(wa.start(a.read_end.get(), Readable, [&](Io& self, Events) {
    self.stop();
    EXPECT_FALSE(wb.start(b.read_end.get(), Readable, [&](Io& s2, Events) {
      ++b_calls;
      s2.stop();
    }));
  }));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(b_calls, 1);
}

// --- closed and reused descriptors ------------------------------------------------------

TEST_F(IoTest, DescriptorClosedUnderAnActiveWatcherGetsOneInvalidCallback) {
  auto p = make_pipe();
  std::vector<Events> seen;
  bool active_in_callback = true;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&](Io& self, Events ready) {
    seen.push_back(ready);
    active_in_callback = self.active();
  }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  testing::close_fd(p.read_end.release());             // misuse: closed while watched
  ASSERT_FALSE(io.set_interest(Readable | Writable));  // forces a re-registration
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], Invalid);
  EXPECT_FALSE(active_in_callback) << "the watcher is stopped before its Invalid callback";
  EXPECT_FALSE(io.active());
  EXPECT_EQ(loop.active_watchers(), 0);
}

TEST_F(IoTest, AnotherWatcherOnAReusedNumberIsRegisteredForTheNewFile) {
  auto old_pipe = make_pipe();
  Io old_watcher(loop), new_watcher(loop);
  ASSERT_FALSE(old_watcher.start(old_pipe.read_end.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  // In one iteration: stop, close, get the same number for a new pipe, watch it.
  old_watcher.stop();
  const int number = old_pipe.read_end.get();
  old_pipe.read_end.reset();
  auto new_pipe = make_pipe();
  ASSERT_EQ(new_pipe.read_end.get(), number) << "the kernel hands out the lowest free number";
  int calls = 0;
  ASSERT_FALSE(
      new_watcher.start(new_pipe.read_end.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  ASSERT_TRUE(write_byte(new_pipe.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(IoTest, ForgetMakesTheSameWatcherSafeOnAReusedNumber) {
  auto old_pipe = make_pipe();
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(old_pipe.read_end.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  io.stop();
  const int number = old_pipe.read_end.get();
  old_pipe.read_end.reset();
  io.forget();
  auto new_pipe = make_pipe();
  ASSERT_EQ(new_pipe.read_end.get(), number);
  ASSERT_FALSE(io.start(new_pipe.read_end.get(), Readable));
  ASSERT_TRUE(write_byte(new_pipe.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

#if !defined(_WIN32)  // dup() is POSIX's (a socket's duplicate is WSADuplicateSocket there)
// Regression guard for epoll's dup quirk (epoll_backend.hpp, note a): a registration
// outlives close() while a duplicate is open, and keeps reporting under the old number.
TEST_F(IoTest, ReadinessOfAClosedDescriptorWithALiveDuplicateNeverReachesItsSuccessor) {
  auto p = make_pipe();
  Io old_watcher(loop);
  ASSERT_FALSE(old_watcher.start(p.read_end.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  OwnedFd duplicate(::dup(p.read_end.get()));
  ASSERT_GE(duplicate.get(), 0);
  const int number = p.read_end.get();
  old_watcher.stop();
  p.read_end.reset();                       // the registration survives inside the kernel: `duplicate` holds the file
  EXPECT_FALSE(loop.run(RunMode::NoWait));  // the DEL fails with EBADF: the loop cannot remove it

  auto successor = make_pipe();  // gets `number`, never written to
  ASSERT_EQ(successor.read_end.get(), number);
  int successor_calls = 0;
  Io new_watcher(loop);
  ASSERT_FALSE(new_watcher.start(successor.read_end.get(), Readable, [&] { ++successor_calls; }));
  ASSERT_TRUE(write_byte(p.write_end.get()));  // makes the orphaned registration fire
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(successor_calls, 0) << "the old file's readiness must not be delivered to the new one";
  if (testing::loop_uses_epoll()) {  // kqueue: close(2) already removed the registration
    EXPECT_GE(loop.stats().backend_rebuilds, 1u) << "the orphaned registration is removed by a rebuild";
  }
  // And the successor still works after the rebuild.
  ASSERT_TRUE(write_byte(successor.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(successor_calls, 1);
}
#endif

// --- closing with Io::close -------------------------------------------------------------

TEST_F(IoTest, CloseStopsTheWatcherAndClosesItsDescriptor) {
  auto p = make_pipe();
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [&] { ++calls; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  (void)p.read_end.release();  // the watcher closes it
  EXPECT_FALSE(io.close());
  EXPECT_FALSE(io.active());
  EXPECT_EQ(io.fd(), -1);
  EXPECT_EQ(loop.active_watchers(), 0);
  EXPECT_EQ(io.close().code(), EBADF) << "no descriptor left to close";
#if !defined(_WIN32)  // a TCP pair (Windows) accepts a first send after the peer closed
  char c = 'x';
  EXPECT_EQ(testing::write_fd(p.write_end.get(), &c, 1), -1) << "the reading end is closed";
#endif
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 0);
}

TEST_F(IoTest, CloseGivesTheOtherWatchersOfTheDescriptorOneInvalidCallback) {
  auto s = make_socketpair();
  std::vector<Events> seen;
  Io closing(loop), reader(loop), writer(loop);
  ASSERT_FALSE(closing.start(s.a.get(), Readable, [] {}));
  ASSERT_FALSE(reader.start(s.a.get(), Readable, [&](Io&, Events e) { seen.push_back(e); }));
  ASSERT_FALSE(writer.start(s.a.get(), Writable, [&](Io&, Events e) { seen.push_back(e); }));
  (void)s.a.release();
  EXPECT_FALSE(closing.close());
  EXPECT_FALSE(closing.active());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(seen, (std::vector<Events>{Invalid, Invalid}));
  EXPECT_FALSE(reader.active());
  EXPECT_FALSE(writer.active());
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(seen.size(), 2u) << "once each";
}

TEST_F(IoTest, CloseLetsTheSameWatcherStartOnTheReusedNumberWithoutForget) {
  auto old_pipe = make_pipe();
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(old_pipe.read_end.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  const int number = old_pipe.read_end.release();
  EXPECT_FALSE(io.close());
  auto new_pipe = make_pipe();
  ASSERT_EQ(new_pipe.read_end.get(), number);
  ASSERT_FALSE(io.start(new_pipe.read_end.get(), Readable));
  ASSERT_TRUE(write_byte(new_pipe.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

#if !defined(_WIN32)  // dup() is POSIX's
// Regression (a stall): stopping a watcher, then closing its descriptor while a duplicate
// keeps the file open (a forked child, an SCM_RIGHTS hand-off, dup and move) left a
// registration in the kernel that the loop could no longer remove. Io::close takes it out
// first: nothing stale is reported and the loop never replaces its kernel set.
TEST_F(IoTest, CloseLeavesNoRegistrationBehindWhenADuplicateKeepsTheFileOpen) {
  auto p = make_pipe();
  Io io(loop);
  ASSERT_FALSE(io.start(p.read_end.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  OwnedFd duplicate(::dup(p.read_end.get()));
  ASSERT_GE(duplicate.get(), 0);
  (void)p.read_end.release();
  EXPECT_FALSE(io.close());
  ASSERT_TRUE(write_byte(p.write_end.get()));  // the duplicate's file is readable now
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(loop.stats().backend_rebuilds, 0u);
}
#endif

// What still holds after the misuse Io::close exists to avoid (closing a descriptor under
// an active watcher, row 7 of the README): once the stale watcher is stopped, a watcher
// started on the reused number is registered for the new file.
TEST_F(IoTest, AfterACloseUnderAnActiveWatcherStoppingItLetsTheReusedNumberBeWatched) {
  auto old_pipe = make_pipe();
  Io stale(loop), fresh(loop);
  ASSERT_FALSE(stale.start(old_pipe.read_end.get(), Readable, [] {}));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  const int number = old_pipe.read_end.get();
  old_pipe.read_end.reset();  // misuse: closed while watched
  auto new_pipe = make_pipe();
  ASSERT_EQ(new_pipe.read_end.get(), number);
  stale.stop();
  int calls = 0;
  ASSERT_FALSE(fresh.start(new_pipe.read_end.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  ASSERT_TRUE(write_byte(new_pipe.write_end.get()));
  EXPECT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

TEST_F(IoTest, DestroyingAnActiveWatcherStopsIt) {
  auto p = make_pipe();
  ASSERT_TRUE(write_byte(p.write_end.get()));
  {
    Io io(loop);
    ASSERT_FALSE(io.start(p.read_end.get(), Readable, [] { ADD_FAILURE() << "destroyed watcher called"; }));
    EXPECT_EQ(loop.active_watchers(), 1);
  }
  EXPECT_EQ(loop.active_watchers(), 0);
  EXPECT_FALSE(loop.run(RunMode::NoWait));
}

TEST(IoLayout, AWatcherFitsInOneCacheLineOn64BitTargets) {
  static_assert(sizeof(void*) != 8 || sizeof(Io) <= 64, "Io outgrew a cache line");
  EXPECT_LE(sizeof(Io), 8 * sizeof(void*));
}

TEST_F(IoTest, SocketpairPingPongDeliversEveryByte) {
  auto s = make_socketpair();
  constexpr int kRounds = 1000;
  int a_reads = 0, b_reads = 0;
  Io a(loop), b(loop);
  ASSERT_FALSE(a.start(s.a.get(), Readable, [&](Io& self, Events) {
    char c;
    if (testing::read_fd(self.fd(), &c, 1) != 1) return;
    if (++a_reads == kRounds) {
      self.stop();
      b.stop();
      return;
    }
    write_byte(self.fd());
  }));
  ASSERT_FALSE(b.start(s.b.get(), Readable, [&](Io& self, Events) {
    char c;
    if (testing::read_fd(self.fd(), &c, 1) != 1) return;
    ++b_reads;
    write_byte(self.fd());
  }));
  ASSERT_TRUE(write_byte(s.b.get()));
  EXPECT_FALSE(loop.run());
  EXPECT_EQ(a_reads, kRounds);
  EXPECT_EQ(b_reads, kRounds - 1);
}

}  // namespace
}  // namespace evflow

namespace evflow {
namespace {

// Regression: the loop recognised "the watcher that just stopped" by its address, so a
// connection destroyed and re-created at the same address on a reused descriptor number
// (close, accept, new connection from the same allocator slot) was never registered.
TEST(IoRegression, AWatcherRecreatedAtTheSameAddressOnAReusedNumberIsRegistered) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  alignas(Io) unsigned char storage[sizeof(Io)];
  auto old_pipe = testing::make_pipe();
  Io* old_watcher = ::new (storage) Io(loop);
  ASSERT_FALSE(old_watcher->start(old_pipe.read_end.get(), Readable, [] {}));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  old_watcher->~Io();  // stops it; the kernel keeps the registration until the next apply
  const int number = old_pipe.read_end.get();
  old_pipe.read_end.reset();  // ...which the close removes
  auto new_pipe = testing::make_pipe();
  ASSERT_EQ(new_pipe.read_end.get(), number);
  int calls = 0;
  Io* new_watcher = ::new (storage) Io(loop);
  ASSERT_FALSE(
      new_watcher->start(new_pipe.read_end.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  ASSERT_TRUE(testing::write_byte(new_pipe.write_end.get()));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
  new_watcher->~Io();
}

// Found by fuzz/reactor_io_fuzz: a watcher kept the stop stamp of an earlier stop after
// it had been started elsewhere, so stop on N, start on M, stop, then start on a new file
// that reused N looked like "restarted unchanged" and the new file was never registered.
TEST(IoRegression, AWatcherStartedElsewhereInBetweenIsRegisteredOnAReusedNumber) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto first = testing::make_socketpair();
  auto elsewhere = testing::make_socketpair();
  int calls = 0;
  Io io(loop), neighbour(loop);
  ASSERT_FALSE(neighbour.start(elsewhere.a.get(), Readable, [] {}));
  ASSERT_FALSE(io.start(first.a.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  ASSERT_FALSE(io.start(elsewhere.a.get(), Readable));  // leaves N: the kernel keeps N until the next apply
  io.stop();                                            // not the last watcher of M: the stamp of the stop on N stays
  const int number = first.a.get();
  first.a.reset();
  auto second = testing::make_socketpair();
  ASSERT_EQ(second.a.get(), number);
  ASSERT_FALSE(io.start(second.a.get(), Readable));
  ASSERT_TRUE(testing::write_byte(second.b.get()));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

// Regression: a restarted watcher was re-appended to the chain being dispatched and
// called again in the same pass; two of them on one descriptor never finished the pass.
TEST(IoRegression, WatchersThatRestartThemselvesRunOncePerIteration) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto s = testing::make_socketpair();
  ASSERT_TRUE(testing::write_byte(s.b.get()));
  int reads = 0, writes = 0;
  Io reader(loop), writer(loop);
  ASSERT_FALSE(reader.start(s.a.get(), Readable, [&](Io& self, Events) {
    ++reads;
    EXPECT_FALSE(self.start(self.fd(), self.interest()));
  }));
  ASSERT_FALSE(writer.start(s.a.get(), Writable, [&](Io& self, Events) {
    ++writes;
    EXPECT_FALSE(self.start(self.fd(), self.interest()));
  }));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(writes, 1);
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(reads, 2);
  EXPECT_EQ(writes, 2);
}

// Regression: closing a descriptor under an active watcher while Linux reused the number at
// once left a second watcher of the same interest on the new file never registered, never
// called. The promise is now what holds (README row 7), and Io::close is the safe way: a
// different watcher on the number it freed is registered for the new file.
TEST(IoRegression, ADifferentWatcherOnANumberFreedByIoCloseIsServed) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto old_pipe = testing::make_pipe();
  Io old_watcher(loop), new_watcher(loop);
  ASSERT_FALSE(old_watcher.start(old_pipe.read_end.get(), Readable, [] {}));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  const int number = old_pipe.read_end.release();
  ASSERT_FALSE(old_watcher.close());
  auto new_pipe = testing::make_pipe();
  ASSERT_EQ(new_pipe.read_end.get(), number);
  int calls = 0;
  ASSERT_FALSE(
      new_watcher.start(new_pipe.read_end.get(), Readable, [&](Io&, Events ready) { calls += ready == Readable; }));
  ASSERT_TRUE(testing::write_byte(new_pipe.write_end.get()));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(calls, 1);
}

// Regression: the descriptor table grew to twice the descriptor's number before the
// kernel was asked, so a wild number aborted on allocation instead of being refused.
TEST(IoRegression, AHugeDescriptorNumberIsEbadfNotAnAllocation) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  Io io(loop);
  EXPECT_EQ(io.start(INT_MAX - 1, Readable, [] {}).code(), EBADF);
  EXPECT_EQ(io.start(1 << 30, Readable, [] {}).code(), EBADF);
}

}  // namespace
}  // namespace evflow

#if defined(__linux__)
#include <sys/eventfd.h>

namespace evflow {
namespace {

// Regression (a 36-91 ms stall at 9,000 descriptors): a registration orphaned by a closed
// descriptor whose duplicate lives on made the loop register every descriptor again in
// one iteration. The kernel set is now replaced a batch at a time (epoll_backend.hpp,
// note j), and every watcher keeps its events throughout.
TEST(IoRegression, AnOrphanedRegistrationAmongManyIsReplacedABatchAtATimeWithNothingLost) {
  if (!testing::loop_uses_epoll()) GTEST_SKIP() << "epoll's orphaned registrations (kqueue and IOCP have none)";
  constexpr int kQuiet = 600;
  Loop loop;
  ASSERT_FALSE(loop.open());
  std::vector<OwnedFd> counters;
  std::vector<std::unique_ptr<Io>> watchers;
  std::vector<int> calls(kQuiet);
  for (int i = 0; i < kQuiet; ++i) {
    counters.emplace_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    ASSERT_GE(counters.back().get(), 0);
    watchers.push_back(std::make_unique<Io>(loop));
    ASSERT_FALSE(watchers.back()->start(counters.back().get(), Readable, [&calls, i](Io& self, Events) {
      uint64_t value;
      if (::read(self.fd(), &value, sizeof value) == sizeof value) ++calls[static_cast<size_t>(i)];
    }));
  }
  auto p = testing::make_pipe();
  Io orphaned(loop);
  ASSERT_FALSE(orphaned.start(p.read_end.get(), Readable, [] {}));
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  orphaned.stop();
  OwnedFd duplicate(::dup(p.read_end.get()));
  p.read_end.reset();  // after stop(), as documented, but the duplicate keeps the registration
  ASSERT_TRUE(testing::write_byte(p.write_end.get()));
  uint64_t most = 0;
  int iterations = 0;
  int written = 0;
  while (loop.stats().backend_rebuilds == 0 && iterations < 100) {
    // Every iteration, one counter is written: it must be called in that very iteration,
    // whether its registration has moved to the new kernel set yet or not.
    const int i = (iterations * 37) % kQuiet;
    const uint64_t one = 1;
    ASSERT_EQ(::write(counters[static_cast<size_t>(i)].get(), &one, sizeof one), 8);
    ++written;
    const uint64_t before = loop.stats().interest_syscalls;
    ASSERT_FALSE(loop.run(RunMode::NoWait));
    most = std::max(most, loop.stats().interest_syscalls - before);
    ASSERT_EQ(calls[static_cast<size_t>(i)], 1) << "counter " << i << " in iteration " << iterations;
    calls[static_cast<size_t>(i)] = 0;
    ++iterations;
  }
  EXPECT_EQ(loop.stats().backend_rebuilds, 1u);
  EXPECT_GE(iterations, kQuiet / static_cast<int>(detail::kMaxChangesPerApply)) << "spread over several iterations";
  // A batch moves 64 registrations (an add to the new set, a removal from the old), plus
  // the renewal's own few calls: never all 600 at once.
  EXPECT_LE(most, 2 * detail::kMaxChangesPerApply + 4);
  EXPECT_GT(written, 0);
  // Afterwards every watcher is served from the new set, and the orphan is gone.
  const uint64_t one = 1;
  for (auto& counter : counters)
    ASSERT_EQ(::write(counter.get(), &one, sizeof one), 8);
  for (int i = 0; i < 20; ++i)  // a wait reports 64 descriptors at first, more as its buffer grows
    ASSERT_FALSE(loop.run(RunMode::NoWait));
  for (int i = 0; i < kQuiet; ++i)
    EXPECT_EQ(calls[static_cast<size_t>(i)], 1) << "counter " << i;
  ASSERT_FALSE(loop.run(RunMode::NoWait));
  EXPECT_EQ(loop.stats().backend_rebuilds, 1u) << "no second replacement: the orphan went with the old set";
}

}  // namespace
}  // namespace evflow
#endif
