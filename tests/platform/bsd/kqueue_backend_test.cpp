#include "platform/bsd/kqueue_backend.hpp"

#include "platform/fork_generation.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

// The kqueue backend's own logic on Linux, over a scripted kernel in each ABI flavour:
// what it submits to kevent() and how it reads the answers. (The backend-parameterised
// suite over a full kqueue emulation is the next step; this pins the translation.)
namespace evflow::detail {
namespace {

using namespace evflow::detail::kqueue_abi;

// A kernel that records every kevent() call and answers from a script.
template <class Flavour>
struct ScriptedKqueue {
  using Kevent = typename Flavour::Kevent;
  static constexpr int16_t kEvfiltUser = Flavour::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = Flavour::kNoteNanoseconds;

  struct Call {
    int kq;
    std::vector<Kevent> changes;
    int nevents;
    bool has_timeout;
    Timespec timeout;
  };
  static inline std::vector<Call> calls;
  static inline std::vector<int> closed;
  static inline int next_kq = 100;
  static inline std::vector<Kevent> answer;  // results of the next kevent() with an eventlist
  static inline int fail_with = 0;           // errno for the next kevent() with an eventlist

  static void reset() {
    calls.clear();
    closed.clear();
    answer.clear();
    fail_with = 0;
  }
  static int kqueue() noexcept { return next_kq++; }
  static int kevent(int kq, const Kevent* changes, int nchanges, Kevent* events, int nevents,
                    const Timespec* timeout) noexcept {
    calls.push_back(Call{kq, std::vector<Kevent>(changes, changes + nchanges), nevents, timeout != nullptr,
                         timeout ? *timeout : Timespec{}});
    if (events == nullptr || nevents == 0) return 0;
    if (fail_with != 0) {
      errno = fail_with;
      fail_with = 0;
      return -1;
    }
    if (nchanges > 0 && answer.empty()) {  // receipts: every change succeeded
      for (int i = 0; i < nchanges; ++i) {
        events[i] = changes[i];
        events[i].flags = kEvError;  // as FreeBSD answers: the change's flags replaced
        events[i].data = 0;
      }
      return nchanges;
    }
    const int n = static_cast<int>(answer.size()) < nevents ? static_cast<int>(answer.size()) : nevents;
    for (int i = 0; i < n; ++i)
      events[i] = answer[i];
    answer.clear();
    return n;
  }
  static int close(int fd) noexcept {
    closed.push_back(fd);
    return 0;
  }
  static int set_cloexec(int) noexcept { return 0; }
  static inline int refuse_with = 0;
  static int refusal(int) noexcept { return refuse_with; }
  static int last_error() noexcept { return errno; }
};

template <class Flavour>
class KqueueBackendTest : public ::testing::Test {
 protected:
  using Kernel = ScriptedKqueue<Flavour>;
  using Kevent = typename Kernel::Kevent;
  void SetUp() override {
    Kernel::reset();
    ASSERT_FALSE(backend.open());
    Kernel::calls.clear();
  }
  static Kevent report(int fd, int16_t filter, uint32_t tag, uint16_t flags = 0) {
    Kevent k{};
    k.ident = static_cast<uintptr_t>(fd);
    k.filter = filter;
    k.flags = flags;
    k.udata = BasicKqueueBackend<Kernel>::pack(fd, tag);
    return k;
  }
  BasicKqueueBackend<Kernel> backend;
};

struct FreeBsd {
  using Kevent = freebsd::Kevent;
  static constexpr int16_t kEvfiltUser = freebsd::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = freebsd::kNoteNanoseconds;
};
struct MacOs {
  using Kevent = macos::Kevent;
  static constexpr int16_t kEvfiltUser = macos::kEvfiltUser;
  static constexpr uint32_t kNoteNanoseconds = macos::kNoteNanoseconds;
};
using Flavours = ::testing::Types<FreeBsd, MacOs>;
TYPED_TEST_SUITE(KqueueBackendTest, Flavours);

TYPED_TEST(KqueueBackendTest, OpenRegistersTheWakeUpAsAClearedUserEventAndWakeTriggersIt) {
  using Scripted = typename TestFixture::Kernel;
  BasicKqueueBackend<Scripted> other;
  Scripted::calls.clear();
  ASSERT_FALSE(other.open());
  ASSERT_EQ(Scripted::calls.size(), 1u);
  const auto& add = Scripted::calls[0].changes.at(0);
  EXPECT_EQ(add.filter, TypeParam::kEvfiltUser);
  EXPECT_EQ(add.flags, kEvAdd | kEvClear);
  other.wake();
  ASSERT_EQ(Scripted::calls.size(), 2u);
  const auto& trigger = Scripted::calls[1].changes.at(0);
  EXPECT_EQ(trigger.filter, TypeParam::kEvfiltUser);
  EXPECT_EQ(trigger.fflags, kNoteTrigger);
  EXPECT_EQ(Scripted::calls[1].kq, other.native_handle());
}

TYPED_TEST(KqueueBackendTest, ApplySubmitsOneBatchWithAReceiptPerFilterAndNoRoomForEvents) {
  using Scripted = typename TestFixture::Kernel;
  InterestChange changes[] = {
      {5, Events(), Readable | Writable, 7},  // new: two adds
      {6, Readable, Writable, 8},             // read -> write: delete read, add write
      {9, Writable, Events(), 9},             // removed: one delete
  };
  this->backend.apply(changes);
  ASSERT_EQ(Scripted::calls.size(), 1u);
  const auto& call = Scripted::calls[0];
  ASSERT_EQ(call.changes.size(), 5u);
  EXPECT_EQ(call.nevents, 5) << "an eventlist as long as the changelist drains no event";
  EXPECT_TRUE(call.has_timeout && call.timeout.tv_sec == 0 && call.timeout.tv_nsec == 0);
  const int16_t filters[] = {kEvfiltRead, kEvfiltWrite, kEvfiltRead, kEvfiltWrite, kEvfiltWrite};
  const uint16_t actions[] = {kEvAdd, kEvAdd, kEvDelete, kEvAdd, kEvDelete};
  const int fds[] = {5, 5, 6, 6, 9};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(call.changes[i].filter, filters[i]) << i;
    EXPECT_EQ(call.changes[i].flags, actions[i] | kEvReceipt) << i;
    EXPECT_EQ(call.changes[i].ident, static_cast<uintptr_t>(fds[i])) << i;
  }
  EXPECT_EQ(call.changes[0].udata, (BasicKqueueBackend<Scripted>::pack(5, 7)));
  for (const InterestChange& change : changes)
    EXPECT_FALSE(change.error);
  EXPECT_EQ(this->backend.interest_syscalls(), 1u);
}

TYPED_TEST(KqueueBackendTest, ReceiptsReportAddErrorsAndTreatAMissingRemovalAsDone) {
  using Scripted = typename TestFixture::Kernel;
  using Event = typename TestFixture::Kevent;
  InterestChange changes[] = {{5, Events(), Readable, 1}, {6, Readable, Events(), 2}};
  Event failed_add = this->report(5, kEvfiltRead, 1, kEvAdd | kEvReceipt | kEvError);
  failed_add.data = EBADF;
  Event missing = this->report(6, kEvfiltRead, 2, kEvDelete | kEvReceipt | kEvError);
  missing.data = ENOENT;  // closed already: close(2) removed it
  // The first change also removes a write filter the caller believes absent (ENOENT).
  Event stray = this->report(5, kEvfiltWrite, 1, kEvDelete | kEvReceipt | kEvError);
  stray.data = ENOENT;
  Scripted::answer = {failed_add, stray, missing};
  this->backend.apply(changes);
  EXPECT_EQ(changes[0].error.code(), EBADF);
  EXPECT_FALSE(changes[1].error);
}

TYPED_TEST(KqueueBackendTest, WhenOneFilterOfAChangeFailsTheOtherIsRemovedAgain) {
  using Scripted = typename TestFixture::Kernel;
  using Event = typename TestFixture::Kevent;
  InterestChange change{5, Events(), Readable | Writable, 1};
  Event read_ok = this->report(5, kEvfiltRead, 1, kEvError);
  Event write_refused = this->report(5, kEvfiltWrite, 1, kEvError);
  write_refused.data = EPIPE;
  Scripted::answer = {read_ok, write_refused};
  this->backend.apply(std::span<InterestChange>(&change, 1));
  EXPECT_EQ(change.error.code(), EPIPE);
  ASSERT_EQ(Scripted::calls.size(), 2u);
  ASSERT_EQ(Scripted::calls[1].changes.size(), 1u);
  EXPECT_EQ(Scripted::calls[1].changes[0].filter, kEvfiltRead);
  EXPECT_EQ(Scripted::calls[1].changes[0].flags, kEvDelete | kEvReceipt);
  EXPECT_EQ(Scripted::calls[1].nevents, 1) << "the undo drains no event either";
}

TYPED_TEST(KqueueBackendTest, ANewRegistrationTheKernelPolicyRefusesIsNeverSubmitted) {
  using Scripted = typename TestFixture::Kernel;
  Scripted::refuse_with = EPERM;
  InterestChange change{5, Events(), Readable, 1};
  this->backend.apply(std::span<InterestChange>(&change, 1));
  Scripted::refuse_with = 0;
  EXPECT_EQ(change.error.code(), EPERM);
  EXPECT_TRUE(Scripted::calls.empty());
}

TYPED_TEST(KqueueBackendTest, WaitMergesTheFiltersOfOneDescriptorAndReportsTheWakeUp) {
  using Scripted = typename TestFixture::Kernel;
  using Event = typename TestFixture::Kevent;
  Event wake{};
  wake.filter = TypeParam::kEvfiltUser;
  InterestChange registered[] = {{5, Events(), Readable | Writable, 3}, {8, Events(), Writable, 4}};
  this->backend.apply(registered);
  ASSERT_FALSE(registered[0].error);
  ASSERT_FALSE(registered[1].error);
  Scripted::answer = {this->report(5, kEvfiltRead, 3), wake, this->report(8, kEvfiltWrite, 4, kEvEof),
                      this->report(5, kEvfiltWrite, 3)};
  Result<int> n = this->backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 3);
  EXPECT_EQ(this->backend.event(0).fd, 5);
  EXPECT_EQ(this->backend.event(0).tag, 3u);
  EXPECT_EQ(this->backend.event(0).events, Readable | Writable) << "one event per descriptor";
  EXPECT_EQ(this->backend.event(1).fd, kWakeDescriptor);
  EXPECT_EQ(this->backend.event(2).fd, 8);
  EXPECT_EQ(this->backend.event(2).events, Writable) << "EV_EOF on write: the next write sees it";
}

TYPED_TEST(KqueueBackendTest, ReportsOfOneDescriptorUnderDifferentTagsStayApart) {
  using Scripted = typename TestFixture::Kernel;
  Scripted::answer = {this->report(5, kEvfiltRead, 3), this->report(5, kEvfiltWrite, 4)};
  Result<int> n = this->backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n.value(), 2) << "the loop drops the stale one by its tag";
}

TYPED_TEST(KqueueBackendTest, TimeoutsAreNanosecondsOrRoundedUpToMilliseconds) {
  using Scripted = typename TestFixture::Kernel;
  (void)this->backend.wait(1'500'000'123, 0);
  ASSERT_EQ(Scripted::calls.size(), 1u);
  EXPECT_EQ(Scripted::calls[0].timeout.tv_sec, 1);
  EXPECT_EQ(Scripted::calls[0].timeout.tv_nsec, 500'000'123);
  this->backend.request_sleep_path(SleepPath::Milliseconds);
  (void)this->backend.wait(1'500'000'123, 0);
  EXPECT_EQ(Scripted::calls[1].timeout.tv_nsec, 501'000'000);
  (void)this->backend.wait(-1, 0);
  EXPECT_FALSE(Scripted::calls[2].has_timeout) << "no deadline: wait without a timeout";
}

TYPED_TEST(KqueueBackendTest, AnInterruptedWaitReportsNothingAndOtherFailuresAreErrors) {
  using Scripted = typename TestFixture::Kernel;
  Scripted::fail_with = EINTR;
  Result<int> n = this->backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0);
  Scripted::fail_with = EBADF;
  EXPECT_EQ(this->backend.wait(0, 0).error().code(), EBADF);
}

TYPED_TEST(KqueueBackendTest, ReopenReplacesTheKqueueAndWakesItOnceSoNoWakeUpIsLost) {
  using Scripted = typename TestFixture::Kernel;
  const int old = this->backend.native_handle();
  ASSERT_FALSE(this->backend.reopen());
  EXPECT_NE(this->backend.native_handle(), old);
  EXPECT_EQ(Scripted::closed, std::vector<int>{old});
  ASSERT_FALSE(Scripted::calls.empty());
  EXPECT_EQ(Scripted::calls.back().changes.at(0).fflags, kNoteTrigger);
  EXPECT_EQ(Scripted::calls.back().kq, this->backend.native_handle());
}

// Note m: an embedded loop's kqueue becomes readable at its deadline through a one-shot
// nanosecond EVFILT_TIMER, added once per deadline and again on each new kqueue.
TYPED_TEST(KqueueBackendTest, KeepReadyAtAddsAOneShotNanosecondTimerOncePerDeadlineAndPerKqueue) {
  using Scripted = typename TestFixture::Kernel;
  using Event = typename TestFixture::Kevent;
  this->backend.keep_ready_at(2'500, 1'000'000);
  ASSERT_EQ(Scripted::calls.size(), 1u);
  const auto& timer = Scripted::calls[0].changes.at(0);
  EXPECT_EQ(timer.filter, kEvfiltTimer);
  EXPECT_EQ(timer.flags, kEvAdd | kEvOneshot);
  EXPECT_EQ(timer.fflags, TypeParam::kNoteNanoseconds);
  EXPECT_EQ(timer.data, 2'500) << "relative: the same instant as the deadline";
  this->backend.keep_ready_at(2'000, 1'000'000);
  EXPECT_EQ(Scripted::calls.size(), 1u) << "armed for that deadline already";
  this->backend.keep_ready_at(-5, 900'000);
  ASSERT_EQ(Scripted::calls.size(), 2u);
  EXPECT_EQ(Scripted::calls[1].changes.at(0).data, 0) << "past: at once";
  ASSERT_FALSE(this->backend.reopen());
  const size_t before = Scripted::calls.size();
  this->backend.keep_ready_at(-5, 900'000);
  EXPECT_EQ(Scripted::calls.size(), before + 1) << "a new kqueue has no timer: armed again";
  EXPECT_EQ(Scripted::calls.back().kq, this->backend.native_handle());
  Event fired{};
  fired.filter = kEvfiltTimer;
  Scripted::answer = {fired};
  Result<int> n = this->backend.wait(0, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 0) << "its reports are the backend's own";
}

TYPED_TEST(KqueueBackendTest, AfterForkNeverClosesTheParentsKqueueNumber) {
  using Scripted = typename TestFixture::Kernel;
  const int old = this->backend.native_handle();
  ASSERT_FALSE(this->backend.after_fork());
  EXPECT_NE(this->backend.native_handle(), old);
  EXPECT_TRUE(Scripted::closed.empty()) << "a kqueue is not inherited: the number is not ours";
}

TYPED_TEST(KqueueBackendTest, InAForkedChildCloseAndReopenLeaveTheUninheritedNumberAlone) {
  using Scripted = typename TestFixture::Kernel;
  const int inherited = this->backend.native_handle();
  detail::fork_generation_counter.fetch_add(1);  // what the atfork child handler does
  ASSERT_FALSE(this->backend.reopen());
  EXPECT_TRUE(Scripted::closed.empty()) << "the number may name the child's own file by now";
  EXPECT_NE(this->backend.native_handle(), inherited);
  this->backend.close();
  EXPECT_EQ(Scripted::closed, std::vector<int>{inherited + 1}) << "the child's own kqueue is closed";
  detail::fork_generation_counter.fetch_sub(1);
}

}  // namespace
}  // namespace evflow::detail
