// The IOCP backend's own behaviours (platform/win/iocp_backend.hpp, notes a-l), on
// Windows; the contract every backend shares is in tests/platform/backend_test.cpp.
#include "platform/win/iocp_backend.hpp"

#if defined(_WIN32)

#include <gtest/gtest.h>
#include <winsock2.h>  // before windows.h, which would include the older winsock.h

#include <windows.h>

#include <climits>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>
#include "platform/clock.hpp"
#include "platform/win/console_events.hpp"
#include "platform/win/win_sys.hpp"
#include "tests/support/backend_harness.hpp"
#include "tests/support/descriptors.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/spawned_process.hpp"

namespace evflow::detail {
namespace {

using testing::descriptor_of;
using testing::make_socketpair;
using testing::OwnedFd;
using testing::socket_of;
using testing::write_byte;

class IocpBackendTest : public testing::BackendHarness<IocpBackend> {};

TEST(IocpTranslation, AfdBitsBecomeReadinessAsEpollWouldReportIt) {
  using namespace evflow::detail::win_abi;
  EXPECT_EQ(IocpBackend::translate(kAfdPollReceive), Readable);
  EXPECT_EQ(IocpBackend::translate(kAfdPollAccept), Readable);
  EXPECT_EQ(IocpBackend::translate(kAfdPollDisconnect), Readable) << "recv() then returns 0";
  EXPECT_EQ(IocpBackend::translate(kAfdPollSend), Writable);
  EXPECT_EQ(IocpBackend::translate(kAfdPollAbort), Readable | Writable) << "the next call sees the reset";
  EXPECT_EQ(IocpBackend::translate(kAfdPollConnectFail), Readable | Writable);
  EXPECT_EQ(IocpBackend::translate(0), Events());
}

TEST(IocpTranslation, ErrorsAndTheLocalCloseAreAlwaysAskedFor) {
  using namespace evflow::detail::win_abi;
  const uint32_t always = kAfdPollAbort | kAfdPollConnectFail | kAfdPollLocalClose;
  EXPECT_EQ(IocpBackend::afd_interest(Readable) & always, always);
  EXPECT_EQ(IocpBackend::afd_interest(Writable) & always, always);
  EXPECT_EQ(IocpBackend::afd_interest(Writable) & kAfdPollReceive, 0u);
  EXPECT_EQ(IocpBackend::afd_interest(Readable) & kAfdPollSend, 0u);
}

// Note d: a handle that is no socket is ENOTSOCK; a value that is no handle, EBADF.
TEST_F(IocpBackendTest, AFileHandleIsRefusedWithEnotsock) {
  wchar_t directory[MAX_PATH], path[MAX_PATH];
  ASSERT_NE(GetTempPathW(MAX_PATH, directory), 0u);
  ASSERT_NE(GetTempFileNameW(directory, L"evf", 0, path), 0u);
  HANDLE file = CreateFileW(path, GENERIC_READ, 0, nullptr, OPEN_EXISTING, FILE_FLAG_DELETE_ON_CLOSE, nullptr);
  ASSERT_NE(file, INVALID_HANDLE_VALUE);
  EXPECT_EQ(apply_one(static_cast<int>(reinterpret_cast<intptr_t>(file)), Events(), Readable, 1).code(), ENOTSOCK);
  CloseHandle(file);
}

TEST_F(IocpBackendTest, AValueThatIsNoHandleIsEbadfWithoutGrowingATable) {
  EXPECT_EQ(apply_one(INT_MAX - 1, Events(), Readable, 1).code(), EBADF);
  EXPECT_EQ(apply_one(-1, Events(), Readable, 1).code(), EBADF);
}

// Note a: level-triggered. A report whose condition still holds comes again at the next
// wait; once the data is read, the next poll stays pending.
TEST_F(IocpBackendTest, AnUnreadConditionIsReportedAgainAndAReadOneIsNot) {
  auto s = make_socketpair();
  ASSERT_FALSE(apply_one(s.a.get(), Events(), Readable, 3));
  ASSERT_TRUE(write_byte(s.b.get()));
  auto first = poll_expecting_events();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].events, Readable);
  auto again = poll_expecting_events();
  ASSERT_EQ(again.size(), 1u) << "still unread: reported again";
  EXPECT_EQ(again[0].tag, 3u);
  EXPECT_EQ(testing::drain(s.a.get()), 1);
  EXPECT_TRUE(poll(0).empty());
  EXPECT_TRUE(poll(20'000'000).empty()) << "nothing to read: the resubmitted poll stays pending";
}

// Note b: an interest that shrinks keeps the poll in flight, and what it reports beyond
// the interest is masked off; one that grows cancels it and asks again.
TEST_F(IocpBackendTest, AShrunkInterestCostsNoCallAndReportsNothingBeyondIt) {
  auto s = make_socketpair();
  ASSERT_FALSE(apply_one(s.a.get(), Events(), Readable | Writable, 1));
  const uint64_t before = backend.interest_syscalls();
  ASSERT_FALSE(apply_one(s.a.get(), Readable | Writable, Readable, 2));
  EXPECT_EQ(backend.interest_syscalls(), before) << "no cancel for fewer bits";
  for (const ReadyEvent& event : poll(0))  // the writable poll's packet was queued at submission
    EXPECT_FALSE(event.events.writable()) << "writable, though only readability is wanted";
  ASSERT_TRUE(write_byte(s.b.get()));
  auto events = poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, Readable);
  EXPECT_EQ(events[0].tag, 2u);
}

TEST_F(IocpBackendTest, AGrownInterestIsReportedWholeInOneWait) {
  auto s = make_socketpair();
  ASSERT_TRUE(write_byte(s.b.get()));
  ASSERT_FALSE(apply_one(s.a.get(), Events(), Readable, 1));
  ASSERT_FALSE(apply_one(s.a.get(), Readable, Readable | Writable, 2));
  auto events = poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, Readable | Writable) << "not the old poll's half";
  EXPECT_EQ(events[0].tag, 2u);
}

// Note e: closing a watched socket ends its registration and is reported as Invalid.
TEST_F(IocpBackendTest, ClosingAWatchedSocketIsReportedAsInvalid) {
  auto s = make_socketpair();
  const int fd = s.a.release();
  ASSERT_FALSE(apply_one(fd, Events(), Readable, 8));
  ::closesocket(socket_of(fd));
  auto events = poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fd, fd);
  EXPECT_EQ(events[0].tag, 8u);
  EXPECT_EQ(events[0].events, Invalid);
  EXPECT_FALSE(apply_one(fd, Readable, Events(), 9)) << "already gone: removing it is not an error";
}

// Note e: a number closed and reused by a new socket, registered again before the old
// poll's close report came, is polled for the new socket, not reported Invalid.
TEST_F(IocpBackendTest, ANumberReusedByANewSocketIsPolledForIt) {
  auto s = make_socketpair();
  const int number = s.a.release();
  ASSERT_FALSE(apply_one(number, Events(), Readable, 1));
  ::closesocket(socket_of(number));
  // Handle values are reused, lowest first; wine's socket() may take another handle on the
  // way, so open sockets until one gets the number.
  std::vector<OwnedFd> sockets;
  for (int i = 0; i < 16 && (sockets.empty() || sockets.back().get() != number); ++i)
    sockets.emplace_back(descriptor_of(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)));
  if (sockets.back().get() != number) GTEST_SKIP() << "no new socket got the closed number";
  // The new socket listens, and a connection waits: it is readable (AFD_POLL_ACCEPT).
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int length = sizeof address;
  ASSERT_EQ(::bind(socket_of(number), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(socket_of(number), 1), 0);
  ASSERT_EQ(::getsockname(socket_of(number), reinterpret_cast<sockaddr*>(&address), &length), 0);
  OwnedFd client(descriptor_of(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)));
  ASSERT_EQ(::connect(socket_of(client.get()), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  // The loop registers a number again when it saw it stopped and started in one
  // iteration: a change from what it believes registered.
  ASSERT_FALSE(apply_one(number, Readable, Readable | Writable, 2));
  auto events = poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tag, 2u);
  EXPECT_EQ(events[0].events, Readable) << "the old socket's close must not be reported for the new one";
}

TEST(IocpLoop, ClosingAWatchedSocketCallsItsWatcherWithInvalidAndStopsIt) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto s = make_socketpair();
  const int fd = s.a.release();
  Events seen;
  Io io(loop);
  ASSERT_FALSE(io.start(fd, Readable, [&](Io&, Events ready) { seen = ready; }));
  ::closesocket(socket_of(fd));
  EXPECT_TRUE(testing::run_until(loop, [&] { return !io.active(); }));
  EXPECT_EQ(seen, Invalid);
  EXPECT_FALSE(io.active());
}

TEST_F(IocpBackendTest, AListeningSocketIsReadableWhenAConnectionWaits) {
  OwnedFd listener(descriptor_of(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int length = sizeof address;
  ASSERT_EQ(::bind(socket_of(listener.get()), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(socket_of(listener.get()), 4), 0);
  ASSERT_EQ(::getsockname(socket_of(listener.get()), reinterpret_cast<sockaddr*>(&address), &length), 0);
  ASSERT_FALSE(apply_one(listener.get(), Events(), Readable, 5));
  EXPECT_TRUE(poll(0).empty());
  OwnedFd client(descriptor_of(::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)));
  ASSERT_EQ(::connect(socket_of(client.get()), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  auto events = poll_expecting_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].events, Readable) << "AFD_POLL_ACCEPT";
  OwnedFd accepted(descriptor_of(::accept(socket_of(listener.get()), nullptr, nullptr)));
  EXPECT_GE(accepted.get(), 0);
}

// Note g: many wake() calls, from many threads, queue one packet until it is taken.
TEST_F(IocpBackendTest, WakesFromManyThreadsQueueOnePacket) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([this] {
      for (int i = 0; i < 1000; ++i)
        backend.wake();
    });
  for (std::thread& thread : threads)
    thread.join();
  Result<int> n = backend.wait(-1, 0);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 1);
  EXPECT_EQ(backend.event(0).fd, kWakeDescriptor);
  n = backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);
  backend.wake();  // taken: the next wake() posts again
  n = backend.wait(-1, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 1);
}

// Note h: a finite wait never returns before its timeout, whatever the millisecond
// rounding and the kernel's clock tick do. (A lower bound only, never an upper one.)
TEST_F(IocpBackendTest, AFiniteWaitNeverReturnsBeforeItsTimeout) {
  EXPECT_EQ(backend.sleep_path(), SleepPath::Milliseconds);
  for (int64_t timeout : {int64_t{1}, int64_t{300'000}, int64_t{1'000'000}, int64_t{2'500'000}}) {
    const int64_t start = monotonic_ns();
    EXPECT_TRUE(poll(timeout).empty());
    EXPECT_GE(monotonic_ns() - start, timeout) << "returned before its timeout";
  }
}

// Note i: the exit of a process is reported once, with its pid and the registration's tag.
TEST_F(IocpBackendTest, AProcessExitIsReportedWithItsPidAndTag) {
  testing::Spawned process(L"cmd.exe /c exit 4", CREATE_NO_WINDOW);
  ASSERT_NE(process.pid(), 0) << process.error();
  const int pid = static_cast<int>(process.pid());
  InterestChange change{pid, Events(), Readable, 21, {}, Source::Process};
  backend.apply(std::span<InterestChange>(&change, 1));
  ASSERT_FALSE(change.error);
  ReadyEvent exit_report{};
  for (int round = 0; round < 60 && exit_report.fd == 0; ++round) {
    Result<int> n = backend.wait(1'000'000'000, 0);
    ASSERT_TRUE(n.ok());
    for (int i = 0; i < n.value(); ++i) {
      if (backend.event(i).source == Source::Process) exit_report = backend.event(i);
    }
  }
  EXPECT_EQ(exit_report.fd, pid);
  EXPECT_EQ(exit_report.tag, 21u);
  EXPECT_EQ(WaitForSingleObject(process.handle(), 0), WAIT_OBJECT_0);
}

TEST_F(IocpBackendTest, SignalsAreNotTheBackendsToWatch) {
  InterestChange change{2, Events(), Readable, 1, {}, Source::Signal};
  backend.apply(std::span<InterestChange>(&change, 1));
  EXPECT_EQ(change.error.code(), ENOTSUP);
}

TEST_F(IocpBackendTest, AfterForkIsNotSupported) { EXPECT_EQ(backend.after_fork().code(), ENOTSUP); }

TEST(IocpLoop, AfterForkIsRefusedAndTheLoopKeepsWorking) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  EXPECT_EQ(loop.after_fork().code(), ENOTSUP) << "no fork() on Windows";
  auto s = make_socketpair();
  int calls = 0;
  Io io(loop);
  ASSERT_FALSE(io.start(s.a.get(), Readable, [&](Io& self, Events) {
    ++calls;
    self.stop();
  }));
  ASSERT_TRUE(write_byte(s.b.get()));
  EXPECT_TRUE(testing::run_until(loop, [&] { return calls == 1; }));
}

TEST(IocpLoop, ARebuildKeepsEveryWatcherAndAPendingWakeUp) {
  Loop loop;
  ASSERT_FALSE(loop.open());
  auto s = make_socketpair();
  int reads = 0, sends = 0;
  Io io(loop);
  ASSERT_FALSE(
      io.start(s.a.get(), Readable, [&](Io&, Events) { reads += static_cast<int>(testing::drain(s.a.get())); }));
  Async async(loop);
  ASSERT_FALSE(async.start([&] { ++sends; }));
  ASSERT_TRUE(write_byte(s.b.get()));
  ASSERT_TRUE(testing::run_until(loop, [&] { return reads == 1; }));
  async.send();                  // its wake-up packet is queued in the port...
  ASSERT_FALSE(loop.rebuild());  // ...which a rebuild keeps (a new AFD handle only, note g)
  EXPECT_EQ(loop.stats().backend_rebuilds, 1u);
  EXPECT_TRUE(testing::run_until(loop, [&] { return sends == 1; }));
  ASSERT_TRUE(write_byte(s.b.get()));
  EXPECT_TRUE(testing::run_until(loop, [&] { return reads == 2; })) << "registered again in the new AFD handle";
}

// The whole path a real Ctrl+C takes: the console sends CTRL_C_EVENT to the handler the
// signal layer installed, in a thread of the system's, and the loop runs the callback.
// A process started without a console (as under a CI runner) gets one of its own first.
TEST(ConsoleEvents, ARealCtrlCReachesASigintWatcher) {
  (void)FreeConsole();
  ASSERT_TRUE(AllocConsole());
  Loop loop;
  ASSERT_FALSE(loop.open());
  int calls = 0;
  Signal sigint(loop);
  ASSERT_FALSE(sigint.start(win::kSigInt, [&] {
    ++calls;
    sigint.stop();
  }));
  ASSERT_TRUE(SetConsoleCtrlHandler(nullptr, FALSE));  // Ctrl+C not ignored by this process
  ASSERT_TRUE(GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0)) << GetLastError();
  EXPECT_TRUE(testing::run_until(loop, [&] { return calls == 1; }));
  EXPECT_FALSE(win::dispatch_console_event(CTRL_C_EVENT)) << "unwatched again: left to the default handler";
  (void)FreeConsole();
}

TEST(ConsoleEvents, EachEventHasItsSignalAndOthersHaveNone) {
  EXPECT_EQ(win::signal_of_console_event(CTRL_C_EVENT), win::kSigInt);
  EXPECT_EQ(win::signal_of_console_event(CTRL_BREAK_EVENT), win::kSigBreak);
  EXPECT_EQ(win::signal_of_console_event(CTRL_CLOSE_EVENT), win::kSigHup);
  EXPECT_EQ(win::signal_of_console_event(CTRL_LOGOFF_EVENT), 0);
  EXPECT_EQ(win::signal_of_console_event(CTRL_SHUTDOWN_EVENT), 0);
}

}  // namespace
}  // namespace evflow::detail

#endif
