#include "tests/support/kqueue_emulation.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "tests/support/backend_kind.hpp"
#include "tests/support/open_descriptors.hpp"

#include "platform/bsd/kqueue_backend.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/thread_state.hpp"

// The kqueue emulation checked against FreeBSD's kqueue(2) manual, in both ABI flavours,
// then the kqueue backend running on it with real descriptors.
namespace evflow::testing {
namespace {

using namespace evflow::detail::kqueue_abi;

template <class Flavour>
class KqueueEmulationTest : public ::testing::Test {
 protected:
  using Kernel = EmulatedKqueue<Flavour>;
  using Kevent = typename Kernel::Kevent;
  void SetUp() override { ASSERT_GE(kq = Kernel::kqueue(), 0); }
  void TearDown() override { Kernel::close(kq); }

  static Kevent change(int ident, int16_t filter, uint16_t flags, uint32_t fflags = 0, uintptr_t udata = 0) {
    Kevent k{};
    k.ident = static_cast<uintptr_t>(ident);
    k.filter = filter;
    k.flags = flags;
    k.fflags = fflags;
    k.udata = reinterpret_cast<void*>(udata);
    return k;
  }
  static Kevent with_data(Kevent k, int64_t data) {
    k.data = static_cast<decltype(k.data)>(data);
    return k;
  }
  int submit(Kevent k) { return submit_to(kq, k); }
  static int submit_to(int queue, Kevent k) { return Kernel::kevent(queue, &k, 1, nullptr, 0, nullptr); }
  // The errno of a change that fails, or 0.
  int refusal_of(Kevent k) { return submit(k) == 0 ? 0 : errno; }
  int poll(Kevent* out, int n) { return poll_on(kq, out, n); }
  static int poll_on(int queue, Kevent* out, int n) {
    const Timespec zero{0, 0};
    return Kernel::kevent(queue, nullptr, 0, out, n, &zero);
  }
  // Waits for events, but not forever: nothing here should take seconds.
  int wait(Kevent* out, int n) { return wait_on(kq, out, n); }
  static int wait_on(int queue, Kevent* out, int n) {
    const Timespec bound{5, 0};
    return Kernel::kevent(queue, nullptr, 0, out, n, &bound);
  }
  int kq = -1;
};

// A signal's disposition, put back when the test ends, whatever the test did to it.
class SavedDisposition {
 public:
  explicit SavedDisposition(int signo) : signo_(signo) { ::sigaction(signo, nullptr, &saved_); }
  ~SavedDisposition() { ::sigaction(signo_, &saved_, nullptr); }
  SavedDisposition(const SavedDisposition&) = delete;
  SavedDisposition& operator=(const SavedDisposition&) = delete;

 private:
  int signo_;
  struct sigaction saved_ {};
};

int set_handler(int signo, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  return ::sigaction(signo, &action, nullptr);
}

using Handler = void (*)(int);
Handler current_handler(int signo) {
  struct sigaction action {};
  ::sigaction(signo, nullptr, &action);
  return action.sa_handler;
}

std::atomic<int> g_handled{0};
void count_handled(int) { g_handled.fetch_add(1); }
void count_handled_with_info(int signo, siginfo_t* info, void*) {
  if (info != nullptr && info->si_signo == signo) g_handled.fetch_add(1);
}

// How many of the process's descriptors are epoll sets, eventfds and timerfds.
struct AnonDescriptors {
  int eventpoll = 0;
  int eventfd = 0;
  int timerfd = 0;
  bool operator==(const AnonDescriptors&) const = default;
};

AnonDescriptors anon_descriptors() {
  AnonDescriptors found;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return AnonDescriptors{-1, -1, -1};
  while (dirent* entry = ::readdir(dir)) {
    char target[64] = {};
    if (::readlinkat(::dirfd(dir), entry->d_name, target, sizeof target - 1) < 0) continue;
    const std::string name(target);
    if (name == "anon_inode:[eventpoll]") ++found.eventpoll;
    if (name == "anon_inode:[eventfd]") ++found.eventfd;
    if (name == "anon_inode:[timerfd]") ++found.timerfd;
  }
  ::closedir(dir);
  return found;
}

// A child that exits with `code` once `release` (the write end of a pipe) is closed.
pid_t spawn_held_child(Pipe& pipe, int code) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe.write_end.get());
    pollfd p{pipe.read_end.get(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0) {
    }
    ::_exit(code);
  }
  pipe.read_end.reset();
  return pid;
}

using Flavours = ::testing::Types<FreeBsdAbi, MacosAbi>;
TYPED_TEST_SUITE(KqueueEmulationTest, Flavours);

TYPED_TEST(KqueueEmulationTest, ReadIsLevelTriggeredAndReportsTheBytesAvailable) {
  auto pair = make_socketpair();
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltRead, kEvAdd, 0, 42)), 0);
  typename TestFixture::Kevent out[4];
  EXPECT_EQ(this->poll(out, 4), 0);
  ASSERT_EQ(::write(pair.b.get(), "abc", 3), 3);
  for (int round = 0; round < 2; ++round) {  // level: again while unread
    ASSERT_EQ(this->poll(out, 4), 1);
    EXPECT_EQ(out[0].ident, static_cast<uintptr_t>(pair.a.get()));
    EXPECT_EQ(out[0].filter, kEvfiltRead);
    EXPECT_EQ(out[0].data, 3);
    EXPECT_EQ(out[0].udata, reinterpret_cast<void*>(uintptr_t{42}));
  }
  EXPECT_EQ(drain(pair.a.get()), 3);
  EXPECT_EQ(this->poll(out, 4), 0);
}

TYPED_TEST(KqueueEmulationTest, AKeventIsIdentifiedByIdentAndFilterAndReAddingModifiesIt) {
  auto pair = make_socketpair();
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltRead, kEvAdd, 0, 1)), 0);
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltWrite, kEvAdd, 0, 2)), 0);
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltRead, kEvAdd, 0, 3)), 0);  // modifies udata
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  typename TestFixture::Kevent out[4];
  ASSERT_EQ(this->poll(out, 4), 2) << "one read and one write knote";
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(out[i].udata, reinterpret_cast<void*>(uintptr_t{out[i].filter == kEvfiltRead ? 3u : 2u}));
}

TYPED_TEST(KqueueEmulationTest, ReceiptsAnswerEveryChangeInOrderAndErrorsWithoutRoomFailTheCall) {
  auto pair = make_socketpair();
  typename TestFixture::Kevent changes[] = {
      this->change(pair.a.get(), kEvfiltRead, kEvAdd | kEvReceipt),
      this->change(pair.a.get(), kEvfiltWrite, kEvDelete | kEvReceipt),  // never added: ENOENT
      this->change(999, kEvfiltRead, kEvAdd | kEvReceipt),               // not open: EBADF
  };
  typename TestFixture::Kevent out[3];
  ASSERT_EQ(TestFixture::Kernel::kevent(this->kq, changes, 3, out, 3, nullptr), 3);
  const int64_t expected[] = {0, ENOENT, EBADF};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(out[i].flags & kEvError) << i;
    EXPECT_EQ(out[i].data, expected[i]) << i;
    EXPECT_EQ(out[i].filter, changes[i].filter) << i;
  }
  auto missing = this->change(pair.a.get(), kEvfiltWrite, kEvDelete);
  EXPECT_EQ(TestFixture::Kernel::kevent(this->kq, &missing, 1, nullptr, 0, nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
}

TYPED_TEST(KqueueEmulationTest, EofIsReportedWhenThePeerHangsUp) {
  auto pipe = make_pipe();
  ASSERT_EQ(this->submit(this->change(pipe.read_end.get(), kEvfiltRead, kEvAdd)), 0);
  pipe.write_end.reset();
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->poll(out, 2), 1);
  EXPECT_TRUE(out[0].flags & kEvEof);
}

TYPED_TEST(KqueueEmulationTest, OneshotDeletesAndDispatchDisablesUntilEnabled) {
  auto pair = make_socketpair();
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltRead, kEvAdd | kEvOneshot)), 0);
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltWrite, kEvAdd | kEvDispatch)), 0);
  typename TestFixture::Kevent out[4];
  EXPECT_EQ(this->poll(out, 4), 2);
  EXPECT_EQ(this->poll(out, 4), 0) << "the oneshot is gone, the dispatched one disabled";
  EXPECT_EQ(this->submit(this->change(pair.a.get(), kEvfiltRead, kEvDelete)), -1) << "deleted";
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltWrite, kEvEnable)), 0);
  ASSERT_EQ(this->poll(out, 4), 1);
  EXPECT_EQ(out[0].filter, kEvfiltWrite);
}

TYPED_TEST(KqueueEmulationTest, ClearReportsAConditionOnceUntilItChanges) {
  auto pair = make_socketpair();
  ASSERT_EQ(this->submit(this->change(pair.a.get(), kEvfiltRead, kEvAdd | kEvClear)), 0);
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  typename TestFixture::Kevent out[2];
  EXPECT_EQ(this->poll(out, 2), 1);
  EXPECT_EQ(this->poll(out, 2), 0) << "reported: cleared";
  ASSERT_EQ(::write(pair.b.get(), "y", 1), 1);
  EXPECT_EQ(this->poll(out, 2), 1) << "more data: reported again";
}

TYPED_TEST(KqueueEmulationTest, AClosedDescriptorLosesItsKnotes) {
  auto pair = make_socketpair();
  const int number = pair.a.get();
  ASSERT_EQ(this->submit(this->change(number, kEvfiltWrite, kEvAdd)), 0);
  pair.a.reset();
  auto reuse = make_pipe();  // may take the same number: still not the knote's file
  typename TestFixture::Kevent out[2];
  EXPECT_EQ(this->poll(out, 2), 0);
  EXPECT_EQ(this->submit(this->change(number, kEvfiltWrite, kEvDelete)), -1);
  EXPECT_TRUE(errno == ENOENT || errno == EBADF) << "ENOENT if the number was reused, else EBADF";
}

TYPED_TEST(KqueueEmulationTest, AUserEventFiresOnTriggerFromAnotherThreadAndClearResetsIt) {
  const int16_t user = TypeParam::kEvfiltUser;
  ASSERT_EQ(this->submit(this->change(0, user, kEvAdd | kEvClear)), 0);
  typename TestFixture::Kevent out[2];
  EXPECT_EQ(this->poll(out, 2), 0);
  std::atomic<bool> returned{false};
  std::thread trigger([&] {  // until the wait has ended: no guess at when it blocks
    while (!returned.load())
      (void)this->submit(this->change(0, user, 0, kNoteTrigger));
  });
  const int n = TestFixture::Kernel::kevent(this->kq, nullptr, 0, out, 2, nullptr);
  returned.store(true);
  trigger.join();
  ASSERT_EQ(n, 1) << "a wait without a timeout ends on a trigger from another thread";
  EXPECT_EQ(out[0].filter, user);
  (void)this->poll(out, 2);  // a trigger after the wait returned may be pending: take it
  ASSERT_EQ(this->submit(this->change(0, user, 0, kNoteTrigger)), 0);
  EXPECT_EQ(this->poll(out, 2), 1);
  EXPECT_EQ(this->poll(out, 2), 0) << "EV_CLEAR: reset once reported";
}

TYPED_TEST(KqueueEmulationTest, ATimeoutEndsAnEmptyWait) {
  typename TestFixture::Kevent out[2];
  const Timespec short_wait{0, 2'000'000};
  EXPECT_EQ(TestFixture::Kernel::kevent(this->kq, nullptr, 0, out, 2, &short_wait), 0);
}

TYPED_TEST(KqueueEmulationTest, ClosingAKqueueEndsAWaitOnItWithEbadf) {
  const int other = TestFixture::Kernel::kqueue();
  ASSERT_GE(other, 0);
  const pid_t waiter = ::gettid();
  std::atomic<bool> never{false};
  std::thread closer([&] {
    (void)wait_until_asleep(waiter, never);  // the wait has begun
    (void)TestFixture::Kernel::close(other);
  });
  typename TestFixture::Kevent out[2];
  const int n = TestFixture::wait_on(other, out, 2);
  const int error = errno;
  closer.join();
  EXPECT_EQ(n, -1) << "ended by the close: the 5 s timeout would return 0";
  EXPECT_EQ(error, EBADF);
}

TYPED_TEST(KqueueEmulationTest, TheLongestTimeoutStillReturnsAReadyEventAtOnce) {
  const int16_t user = TypeParam::kEvfiltUser;
  ASSERT_EQ(this->submit(this->change(0, user, kEvAdd)), 0);
  ASSERT_EQ(this->submit(this->change(0, user, 0, kNoteTrigger)), 0);
  const Timespec longest{INT64_MAX / 1'000'000'000, 999'999'999};
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(TestFixture::Kernel::kevent(this->kq, nullptr, 0, out, 2, &longest), 1);
  EXPECT_EQ(out[0].filter, user);
}

// EVFILT_SIGNAL (kqueue(2), EVFILT_SIGNAL).

TYPED_TEST(KqueueEmulationTest, SignalIsRecordedEvenWhenIgnored) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvAdd, 0, 5)), 0);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  typename TestFixture::Kevent out[4];
  ASSERT_EQ(this->wait(out, 4), 1) << "two deliveries, one event";
  EXPECT_EQ(out[0].ident, static_cast<uintptr_t>(SIGUSR1));
  EXPECT_EQ(out[0].filter, kEvfiltSignal);
  EXPECT_EQ(out[0].data, 2);
  EXPECT_TRUE(out[0].flags & kEvClear) << "implied by the filter";
  EXPECT_EQ(out[0].udata, reinterpret_cast<void*>(uintptr_t{5}));
}

TYPED_TEST(KqueueEmulationTest, SignalIsCountedOnceReportedThenClears) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].data, 1);
  EXPECT_EQ(this->poll(out, 2), 0) << "reported: cleared";
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].data, 1) << "counted from the last report";
}

TYPED_TEST(KqueueEmulationTest, IgnoredSigchldIsNotRecorded) {
  SavedDisposition saved_child(SIGCHLD), saved_marker(SIGWINCH);
  ASSERT_EQ(set_handler(SIGCHLD, SIG_IGN), 0);
  ASSERT_EQ(set_handler(SIGWINCH, SIG_IGN), 0);
  ASSERT_EQ(this->submit(this->change(SIGCHLD, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(this->submit(this->change(SIGWINCH, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(::raise(SIGCHLD), 0);
  ASSERT_EQ(::raise(SIGWINCH), 0);  // a higher number: delivered after SIGCHLD
  typename TestFixture::Kevent out[4];
  ASSERT_EQ(this->wait(out, 4), 1) << "only the marker";
  EXPECT_EQ(out[0].ident, static_cast<uintptr_t>(SIGWINCH));
  EXPECT_EQ(this->poll(out, 4), 0);
}

TYPED_TEST(KqueueEmulationTest, SignalHandlerStillRunsBesideTheFilter) {
  SavedDisposition saved(SIGUSR2);
  struct sigaction action {};
  action.sa_sigaction = count_handled_with_info;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR2, &action, nullptr), 0);
  g_handled.store(0);
  ASSERT_EQ(this->submit(this->change(SIGUSR2, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(::raise(SIGUSR2), 0);
  EXPECT_EQ(g_handled.load(), 1) << "the handler runs, with its siginfo";
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1) << "and the knote records the delivery too";
  EXPECT_EQ(out[0].data, 1);
}

TYPED_TEST(KqueueEmulationTest, AHandlerWithoutSaRestartStillInterruptsABlockingRead) {
  SavedDisposition saved(SIGUSR2);
  ASSERT_EQ(set_handler(SIGUSR2, count_handled), 0);  // no SA_RESTART
  ASSERT_EQ(this->submit(this->change(SIGUSR2, kEvfiltSignal, kEvAdd)), 0);
  auto pipe = make_pipe();
  ASSERT_EQ(::fcntl(pipe.read_end.get(), F_SETFL, 0), 0);  // a read that blocks
  const pthread_t reader = ::pthread_self();
  const pid_t reader_tid = ::gettid();
  std::atomic<bool> returned{false};
  std::thread sender([&] {  // one signal into the blocked read; data after 2 s ends it otherwise
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    if (wait_until_asleep(reader_tid, returned)) (void)::pthread_kill(reader, SIGUSR2);
    while (!returned.load() && std::chrono::steady_clock::now() < give_up)
      std::this_thread::yield();
    if (!returned.load()) (void)!::write(pipe.write_end.get(), "x", 1);
  });
  char byte = 0;
  const ssize_t n = ::read(pipe.read_end.get(), &byte, 1);
  const int error = errno;
  returned.store(true);
  sender.join();
  EXPECT_EQ(n, -1) << "a restarted read waits for the data";
  EXPECT_EQ(error, EINTR);
}

TYPED_TEST(KqueueEmulationTest, DispositionIsRestoredInTheLibrarysOrder) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, count_handled), 0);  // the application's own
  // Start: the library ignores the signal, then watches it.
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1);
  // Stop: it puts the application's disposition back, then deletes the knote.
  ASSERT_EQ(set_handler(SIGUSR1, count_handled), 0);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvDelete)), 0);
  EXPECT_EQ(current_handler(SIGUSR1), count_handled) << "the delete leaves a disposition set since alone";
  g_handled.store(0);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_EQ(g_handled.load(), 1);
}

TYPED_TEST(KqueueEmulationTest, KnoteDeleteRestoresTheDispositionItFound) {
  SavedDisposition saved(SIGUSR1);
  for (Handler found : {Handler{count_handled}, Handler{SIG_IGN}}) {
    ASSERT_EQ(set_handler(SIGUSR1, found), 0);
    ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
    ASSERT_NE(current_handler(SIGUSR1), found) << "the tap stands in for it while watched";
    ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvDelete)), 0);
    EXPECT_EQ(current_handler(SIGUSR1), found);
  }
}

TYPED_TEST(KqueueEmulationTest, ClosingTheKqueueRestoresTheDispositionItFound) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  const int other = TestFixture::Kernel::kqueue();
  ASSERT_GE(other, 0);
  ASSERT_EQ(TestFixture::submit_to(other, this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(TestFixture::Kernel::close(other), 0);
  EXPECT_EQ(current_handler(SIGUSR1), SIG_IGN);
}

TYPED_TEST(KqueueEmulationTest, SignalsReachEveryKqueueWatchingThem) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  const int other = TestFixture::Kernel::kqueue();
  ASSERT_GE(other, 0);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(TestFixture::submit_to(other, this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].data, 1);
  ASSERT_EQ(TestFixture::wait_on(other, out, 2), 1);
  EXPECT_EQ(out[0].data, 1);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvDelete)), 0);
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_EQ(TestFixture::wait_on(other, out, 2), 1) << "still watched by the other";
  EXPECT_EQ(out[0].data, 1);
  EXPECT_EQ(this->poll(out, 2), 0);
  ASSERT_EQ(TestFixture::Kernel::close(other), 0);
  EXPECT_EQ(current_handler(SIGUSR1), SIG_IGN) << "the last knote gone";
}

TYPED_TEST(KqueueEmulationTest, ASignalNumberOutsideOneToSixtyFourIsEinval) {
  EXPECT_EQ(this->refusal_of(this->change(0, kEvfiltSignal, kEvAdd)), EINVAL);
  EXPECT_EQ(this->refusal_of(this->change(65, kEvfiltSignal, kEvAdd)), EINVAL);
}

TYPED_TEST(KqueueEmulationTest, ABlockedWaitReturnsAnIgnoredSignalItWatchesInsteadOfEintr) {
  SavedDisposition saved(SIGWINCH);  // ignored by default too: a late delivery harms nothing
  ASSERT_EQ(set_handler(SIGWINCH, SIG_IGN), 0);
  ASSERT_EQ(this->submit(this->change(SIGWINCH, kEvfiltSignal, kEvAdd)), 0);
  const pthread_t waiter = ::pthread_self();
  std::atomic<bool> returned{false};
  std::thread sender([&] {  // until the wait has ended: no guess at when it blocks
    while (!returned.load()) {
      (void)::pthread_kill(waiter, SIGWINCH);
      std::this_thread::yield();
    }
  });
  typename TestFixture::Kevent out[2];
  const int n = TestFixture::Kernel::kevent(this->kq, nullptr, 0, out, 2, nullptr);
  returned.store(true);
  sender.join();
  ASSERT_EQ(n, 1) << "FreeBSD does not interrupt a wait for an ignored signal";
  EXPECT_EQ(out[0].filter, kEvfiltSignal);
  EXPECT_GE(out[0].data, 1);
}

TYPED_TEST(KqueueEmulationTest, AnIgnoredSignalWatchedByAnotherKqueueDoesNotEndAWait) {
  if (testing::default_backend_is_io_uring())
    GTEST_SKIP() << "a thread that closed an io_uring ring gets task work from the ring's teardown later, which "
                    "ends the blocking wait this test makes with EINTR (uring_backend.hpp, note j)";
  SavedDisposition saved(SIGWINCH);
  ASSERT_EQ(set_handler(SIGWINCH, SIG_IGN), 0);
  const int other = TestFixture::Kernel::kqueue();
  ASSERT_GE(other, 0);
  ASSERT_EQ(TestFixture::submit_to(other, this->change(SIGWINCH, kEvfiltSignal, kEvAdd)), 0);
  const pthread_t waiter = ::pthread_self();
  const pid_t waiter_tid = ::gettid();
  std::atomic<bool> returned{false};
  std::thread sender([&] {  // each one into the blocked wait, until the wait has ended
    while (wait_until_asleep(waiter_tid, returned))
      (void)::pthread_kill(waiter, SIGWINCH);
  });
  typename TestFixture::Kevent out[2];
  const Timespec bound{0, 100'000'000};
  const int n = TestFixture::Kernel::kevent(this->kq, nullptr, 0, out, 2, &bound);
  const int error = errno;
  returned.store(true);
  sender.join();
  EXPECT_EQ(n, 0) << "neither EINTR nor the other kqueue's event; errno " << error;
  ASSERT_EQ(TestFixture::poll_on(other, out, 2), 1) << "the other kqueue counted them";
  EXPECT_GE(out[0].data, 1);
  ASSERT_EQ(TestFixture::Kernel::close(other), 0);
}

// EVFILT_PROC with NOTE_EXIT (kqueue(2), EVFILT_PROC).

TYPED_TEST(KqueueEmulationTest, ProcExitIsReportedOnceWithTheStatus) {
  constexpr bool kMacos = TestFixture::Kernel::kMacos;
  const uint32_t exit_status = kMacos ? macos::kNoteExitStatus : freebsd::kNoteExitStatus;
  auto pipe = make_pipe();
  const pid_t pid = spawn_held_child(pipe, 7);
  ASSERT_GT(pid, 0);
  const int other = TestFixture::Kernel::kqueue();  // NOTE_EXIT alone
  ASSERT_GE(other, 0);
  ASSERT_EQ(this->submit(this->change(pid, kEvfiltProc, kEvAdd, kNoteExit | exit_status, 3)), 0);
  ASSERT_EQ(TestFixture::submit_to(other, this->change(pid, kEvfiltProc, kEvAdd, kNoteExit)), 0);
  typename TestFixture::Kevent out[2];
  EXPECT_EQ(this->poll(out, 2), 0) << "the child waits for us";
  pipe.write_end.reset();
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].ident, static_cast<uintptr_t>(pid));
  EXPECT_EQ(out[0].filter, kEvfiltProc);
  EXPECT_TRUE(out[0].fflags & kNoteExit);
  if (kMacos) {
    EXPECT_TRUE(out[0].fflags & macos::kNoteExitStatus);
  }
  EXPECT_TRUE(out[0].flags & kEvEof);
  const int status = static_cast<int>(out[0].data);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status;
  EXPECT_EQ(this->poll(out, 2), 0) << "reported once";
  EXPECT_EQ(this->refusal_of(this->change(pid, kEvfiltProc, kEvDelete)), ENOENT) << "gone with the process";
  ASSERT_EQ(TestFixture::wait_on(other, out, 2), 1);
  EXPECT_EQ(out[0].data, kMacos ? 0 : status) << "macOS gives the status only with NOTE_EXITSTATUS";
  ASSERT_EQ(TestFixture::Kernel::close(other), 0);
  int reaped = 0;
  ASSERT_EQ(::waitpid(pid, &reaped, 0), pid) << "never reaped by the emulation";
  EXPECT_TRUE(WIFEXITED(reaped) && WEXITSTATUS(reaped) == 7);
}

TYPED_TEST(KqueueEmulationTest, ProcOnAZombieIsReportedAtOnceOnFreeBsdAndEsrchOnMacos) {
  constexpr bool kMacos = TestFixture::Kernel::kMacos;
  const uint32_t exit_status = kMacos ? macos::kNoteExitStatus : 0;
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(3);
  ASSERT_GT(pid, 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);  // a zombie now
  const auto watch = this->change(pid, kEvfiltProc, kEvAdd, kNoteExit | exit_status);
  if (kMacos) {
    EXPECT_EQ(this->refusal_of(watch), ESRCH) << "xnu does not find a process that has exited";
  } else {
    ASSERT_EQ(this->submit(watch), 0);
    typename TestFixture::Kevent out[2];
    ASSERT_EQ(this->poll(out, 2), 1);
    const int status = static_cast<int>(out[0].data);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
  }
  EXPECT_EQ(::waitpid(pid, nullptr, 0), pid);
}

TYPED_TEST(KqueueEmulationTest, ProcForNoSuchProcessIsEsrch) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);  // reaped: the pid names nothing
  EXPECT_EQ(this->refusal_of(this->change(pid, kEvfiltProc, kEvAdd, kNoteExit)), ESRCH);
}

// EVFILT_TIMER (kqueue(2), EVFILT_TIMER). Timers never fire early; how late they fire is
// not checked.

TYPED_TEST(KqueueEmulationTest, TimerFiresPeriodicallyAndCountsExpirations) {
  // A 1 ms timer, disabled while a 20 ms one runs out: its expirations pile up meanwhile.
  typename TestFixture::Kevent changes[] = {
      this->with_data(this->change(1, kEvfiltTimer, kEvAdd | kEvDisable), 1),
      this->with_data(this->change(2, kEvfiltTimer, kEvAdd | kEvOneshot), 20),
  };
  ASSERT_EQ(TestFixture::Kernel::kevent(this->kq, changes, 2, nullptr, 0, nullptr), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1);
  ASSERT_EQ(out[0].ident, 2u);
  ASSERT_EQ(this->submit(this->change(1, kEvfiltTimer, kEvEnable)), 0);
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].ident, 1u);
  EXPECT_GE(out[0].data, 20) << "every expiration since it was armed, 20 ms or more ago";
  EXPECT_TRUE(out[0].flags & kEvClear) << "implied by the filter";
  ASSERT_EQ(this->wait(out, 2), 1) << "periodic";
  EXPECT_EQ(out[0].ident, 1u);
  EXPECT_GE(out[0].data, 1);
}

TYPED_TEST(KqueueEmulationTest, OneshotTimerFiresOnce) {
  ASSERT_EQ(this->submit(this->with_data(this->change(1, kEvfiltTimer, kEvAdd | kEvOneshot), 1)), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].data, 1);
  EXPECT_EQ(this->refusal_of(this->change(1, kEvfiltTimer, kEvDelete)), ENOENT) << "deleted once reported";
}

TYPED_TEST(KqueueEmulationTest, TimerUnitsFollowTheFlavour) {
  // The same bits name different units: 0x2 is NOTE_MSECONDS on FreeBSD, NOTE_USECONDS on
  // macOS (kqueue_abi.hpp). Probes of 30 ms in their unit must have fired by the time a
  // 300 ms reference has; probes of 30 s or more must not.
  constexpr bool kMacos = TestFixture::Kernel::kMacos;
  const uint32_t seconds = kMacos ? macos::kNoteSeconds : freebsd::kNoteSeconds;
  const uint32_t microseconds = kMacos ? macos::kNoteMicroseconds : freebsd::kNoteMicroseconds;
  const uint32_t nanoseconds = kMacos ? macos::kNoteNanoseconds : freebsd::kNoteNanoseconds;
  const uint32_t raw_two = 0x2;
  const uint32_t milliseconds = kMacos ? 0 : freebsd::kNoteMilliseconds;  // macOS has no such flag
  typename TestFixture::Kevent changes[] = {
      this->with_data(this->change(1, kEvfiltTimer, kEvAdd | kEvOneshot, nanoseconds), 30'000'000),
      this->with_data(this->change(2, kEvfiltTimer, kEvAdd | kEvOneshot, microseconds), 30'000),
      this->with_data(this->change(3, kEvfiltTimer, kEvAdd | kEvOneshot, milliseconds), 30),
      this->with_data(this->change(4, kEvfiltTimer, kEvAdd | kEvOneshot, seconds), 60),
      this->with_data(this->change(5, kEvfiltTimer, kEvAdd | kEvOneshot, raw_two), 30'000),
      this->with_data(this->change(9, kEvfiltTimer, kEvAdd | kEvOneshot), 300),  // armed last
  };
  ASSERT_EQ(TestFixture::Kernel::kevent(this->kq, changes, 6, nullptr, 0, nullptr), 0);
  bool fired[10] = {};
  typename TestFixture::Kevent out[8];
  for (int round = 0; round < 20 && !fired[9]; ++round) {
    const int n = this->wait(out, 8);
    ASSERT_GT(n, 0);
    for (int i = 0; i < n; ++i)
      fired[out[i].ident] = true;
  }
  ASSERT_TRUE(fired[9]);
  const int n = this->poll(out, 8);  // read after the reference: the short probes are due
  for (int i = 0; i < n; ++i)
    fired[out[i].ident] = true;
  EXPECT_TRUE(fired[1]) << "nanoseconds";
  EXPECT_TRUE(fired[2]) << "microseconds";
  EXPECT_TRUE(fired[3]) << "milliseconds";
  EXPECT_FALSE(fired[4]) << "seconds";
  EXPECT_EQ(fired[5], kMacos) << "0x2 with 30000: 30 ms on macOS, 30 s on FreeBSD";
}

TYPED_TEST(KqueueEmulationTest, ReAddingATimerRestartsItWithTheNewPeriod) {
  ASSERT_EQ(this->submit(this->with_data(this->change(1, kEvfiltTimer, kEvAdd), 60'000)), 0);
  ASSERT_EQ(this->submit(this->with_data(this->change(1, kEvfiltTimer, kEvAdd | kEvOneshot), 1)), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1) << "1 ms now, not 60 s";
  EXPECT_EQ(out[0].data, 1);
  EXPECT_EQ(this->poll(out, 2), 0) << "one knote, reported and deleted";
}

TYPED_TEST(KqueueEmulationTest, NegativeTimerPeriodIsEinval) {
  EXPECT_EQ(this->refusal_of(this->with_data(this->change(1, kEvfiltTimer, kEvAdd), -1)), EINVAL);
  const uint32_t two_units = TestFixture::Kernel::kMacos ? macos::kNoteSeconds | macos::kNoteNanoseconds
                                                         : freebsd::kNoteSeconds | freebsd::kNoteNanoseconds;
  EXPECT_EQ(this->refusal_of(this->with_data(this->change(1, kEvfiltTimer, kEvAdd, two_units), 1)), EINVAL);
}

TYPED_TEST(KqueueEmulationTest, AnAbsoluteTimerFiresAtAWallClockDeadline) {
  constexpr bool kMacos = TestFixture::Kernel::kMacos;
  const uint32_t absolute =
      kMacos ? macos::kNoteAbsolute | macos::kNoteNanoseconds : freebsd::kNoteAbsolute | freebsd::kNoteNanoseconds;
  timespec now{};
  ASSERT_EQ(::clock_gettime(CLOCK_REALTIME, &now), 0);
  const int64_t soon = now.tv_sec * 1'000'000'000LL + now.tv_nsec + 10'000'000;
  ASSERT_EQ(this->submit(this->with_data(this->change(1, kEvfiltTimer, kEvAdd, absolute), soon)), 0);
  // In 1970; a oneshot, since a FreeBSD absolute timer stays reported once it has fired.
  ASSERT_EQ(this->submit(this->with_data(this->change(2, kEvfiltTimer, kEvAdd | kEvOneshot, absolute), 1)), 0);
  bool fired[3] = {};
  typename TestFixture::Kevent out[4];
  for (int round = 0; round < 20 && !(fired[1] && fired[2]); ++round) {
    const int n = this->wait(out, 4);
    ASSERT_GT(n, 0);
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(out[i].data, 1);
      fired[out[i].ident] = true;
    }
  }
  EXPECT_TRUE(fired[1] && fired[2]) << "a deadline passed already fires at once";
  // macOS makes an absolute timer a oneshot; FreeBSD keeps the knote.
  EXPECT_EQ(this->refusal_of(this->change(1, kEvfiltTimer, kEvDelete)), kMacos ? ENOENT : 0);
}

// Knotes and fork(2).

TYPED_TEST(KqueueEmulationTest, AKnotesDescriptorIsReleasedOnDeleteOneshotAndClose) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  const int before = open_descriptors();
  auto add_three = [this](int queue) {
    ASSERT_EQ(TestFixture::submit_to(queue, this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
    ASSERT_EQ(TestFixture::submit_to(queue, this->change(::getpid(), kEvfiltProc, kEvAdd, kNoteExit)), 0);
    ASSERT_EQ(TestFixture::submit_to(queue, this->with_data(this->change(1, kEvfiltTimer, kEvAdd), 60'000)), 0);
  };
  add_three(this->kq);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvDelete)), 0);
  ASSERT_EQ(this->submit(this->change(::getpid(), kEvfiltProc, kEvDelete)), 0);
  ASSERT_EQ(this->submit(this->change(1, kEvfiltTimer, kEvDelete)), 0);
  EXPECT_EQ(open_descriptors(), before) << "EV_DELETE";
  ASSERT_EQ(this->submit(this->with_data(this->change(2, kEvfiltTimer, kEvAdd | kEvOneshot), 1)), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(open_descriptors(), before) << "EV_ONESHOT";
  const int other = TestFixture::Kernel::kqueue();
  ASSERT_GE(other, 0);
  add_three(other);
  ASSERT_EQ(TestFixture::Kernel::close(other), 0);
  EXPECT_EQ(open_descriptors(), before) << "close()";
}

TYPED_TEST(KqueueEmulationTest, KqueueIsNotInheritedAcrossFork) {
  SavedDisposition saved(SIGUSR1);
  ASSERT_EQ(set_handler(SIGUSR1, SIG_IGN), 0);
  ASSERT_EQ(TestFixture::Kernel::close(this->kq), 0);
  const AnonDescriptors without = anon_descriptors();  // the process's own, no kqueue open
  ASSERT_GE(this->kq = TestFixture::Kernel::kqueue(), 0);
  ASSERT_EQ(this->submit(this->change(SIGUSR1, kEvfiltSignal, kEvAdd)), 0);
  ASSERT_EQ(this->submit(this->with_data(this->change(1, kEvfiltTimer, kEvAdd), 60'000)), 0);
  const AnonDescriptors with = anon_descriptors();
  ASSERT_GT(with.eventpoll, without.eventpoll);
  ASSERT_GT(with.eventfd, without.eventfd);
  ASSERT_GT(with.timerfd, without.timerfd);
  const int parents = this->kq;
  const int16_t user = TypeParam::kEvfiltUser;
  const pid_t pid = ::fork();
  if (pid == 0) {  // no assertions here: exit codes tell the parent what failed
    typename TestFixture::Kevent out[2];
    if (TestFixture::poll_on(parents, out, 2) != -1 || errno != EBADF) ::_exit(1);
    if (::fcntl(parents, F_GETFD) != -1 || errno != EBADF) ::_exit(2);  // the number is unused
    if (!(anon_descriptors() == without)) ::_exit(3);                   // nor any descriptor the kqueue held
    if (current_handler(SIGUSR1) != SIG_IGN) ::_exit(4);                // the tap gave way to the disposition
    if (::raise(SIGUSR1) != 0) ::_exit(5);
    const int fresh = TestFixture::Kernel::kqueue();
    if (fresh < 0) ::_exit(6);
    if (TestFixture::submit_to(fresh, this->change(0, user, kEvAdd | kEvClear)) != 0) ::_exit(7);
    if (TestFixture::submit_to(fresh, this->change(0, user, 0, kNoteTrigger)) != 0) ::_exit(8);
    if (TestFixture::poll_on(fresh, out, 2) != 1) ::_exit(9);
    // Signal knotes work afresh in the child, and their end puts the disposition back.
    if (TestFixture::submit_to(fresh, this->change(SIGUSR1, kEvfiltSignal, kEvAdd)) != 0) ::_exit(10);
    if (::raise(SIGUSR1) != 0) ::_exit(11);
    if (TestFixture::poll_on(fresh, out, 2) != 1 || out[0].filter != kEvfiltSignal || out[0].data != 1) ::_exit(12);
    if (TestFixture::submit_to(fresh, this->change(SIGUSR1, kEvfiltSignal, kEvDelete)) != 0) ::_exit(13);
    if (current_handler(SIGUSR1) != SIG_IGN) ::_exit(14);
    ::_exit(0);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the step of the child that failed";
  // The child's closing of its copies left the parent's kqueue and knotes alone.
  ASSERT_EQ(::raise(SIGUSR1), 0);
  typename TestFixture::Kevent out[2];
  ASSERT_EQ(this->wait(out, 2), 1);
  EXPECT_EQ(out[0].filter, kEvfiltSignal);
  EXPECT_EQ(out[0].data, 1);
}

// The kqueue backend on the emulation, with real descriptors.
template <class Flavour>
class KqueueBackendOnEmulationTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(backend.open()); }
  detail::BasicKqueueBackend<EmulatedKqueue<Flavour>> backend;
};
TYPED_TEST_SUITE(KqueueBackendOnEmulationTest, Flavours);

TYPED_TEST(KqueueBackendOnEmulationTest, ReportsReadinessWithItsTagAndOneEventPerDescriptor) {
  auto pair = make_socketpair();
  detail::InterestChange change{pair.a.get(), Events(), Readable | Writable, 77};
  this->backend.apply(std::span<detail::InterestChange>(&change, 1));
  ASSERT_FALSE(change.error);
  ASSERT_EQ(::write(pair.b.get(), "x", 1), 1);
  Result<int> n = this->backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(this->backend.event(0).fd, pair.a.get());
  EXPECT_EQ(this->backend.event(0).tag, 77u);
  EXPECT_EQ(this->backend.event(0).events, Readable | Writable);
}

TYPED_TEST(KqueueBackendOnEmulationTest, AClosedDescriptorIsEbadfAndARemovalOfAGoneOneSucceeds) {
  auto pair = make_socketpair();
  detail::InterestChange add{pair.a.get(), Events(), Readable, 1};
  this->backend.apply(std::span<detail::InterestChange>(&add, 1));
  ASSERT_FALSE(add.error);
  const int number = pair.a.get();
  pair.a.reset();
  detail::InterestChange again{number, Readable, Readable | Writable, 2};
  this->backend.apply(std::span<detail::InterestChange>(&again, 1));
  EXPECT_EQ(again.error.code(), EBADF);
  detail::InterestChange remove{number, Readable, Events(), 3};
  this->backend.apply(std::span<detail::InterestChange>(&remove, 1));
  EXPECT_FALSE(remove.error) << "close(2) removed it already";
}

TYPED_TEST(KqueueBackendOnEmulationTest, AWakeFromAnotherThreadEndsABlockingWait) {
  std::atomic<bool> returned{false};
  std::thread waker([&] {  // until the wait has ended: no guess at when it blocks
    while (!returned.load())
      this->backend.wake();
  });
  Result<int> n = this->backend.wait(-1, 0);
  returned.store(true);
  waker.join();
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(this->backend.event(0).fd, detail::kWakeDescriptor);
  (void)this->backend.wait(0, 0);  // a wake after the wait returned may be pending: take it
  this->backend.wake();
  this->backend.wake();
  ASSERT_EQ(this->backend.wait(0, 0).value_or(-1), 1) << "wake-ups coalesce";
  EXPECT_EQ(this->backend.wait(0, 0).value_or(-1), 0) << "EV_CLEAR: acknowledged by being reported";
}

TYPED_TEST(KqueueBackendOnEmulationTest, AWaitWithATimeoutAndNothingReadyReturnsNothing) {
  Result<int> n = this->backend.wait(3'000'000, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);
}

}  // namespace
}  // namespace evflow::testing
