#include "tests/support/kqueue_emulation.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "platform/bsd/kqueue_backend.hpp"
#include "tests/support/descriptors.hpp"

// The kqueue emulation checked against FreeBSD's kqueue(2) manual, in both ABI flavours,
// then the kqueue backend running on it with real descriptors.
namespace evflow::testing {
namespace {

using namespace kqueue_abi;

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
  int submit(Kevent k) { return Kernel::kevent(kq, &k, 1, nullptr, 0, nullptr); }
  int poll(Kevent* out, int n) {
    const Timespec zero{0, 0};
    return Kernel::kevent(kq, nullptr, 0, out, n, &zero);
  }
  int kq = -1;
};

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

// The kqueue backend on the emulation, with real descriptors.
template <class Flavour>
class KqueueBackendOnEmulationTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(backend.open()); }
  BasicKqueueBackend<EmulatedKqueue<Flavour>> backend;
};
TYPED_TEST_SUITE(KqueueBackendOnEmulationTest, Flavours);

TYPED_TEST(KqueueBackendOnEmulationTest, ReportsReadinessWithItsTagAndOneEventPerDescriptor) {
  auto pair = make_socketpair();
  InterestChange change{pair.a.get(), Events(), Readable | Writable, 77};
  this->backend.apply(std::span<InterestChange>(&change, 1));
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
  InterestChange add{pair.a.get(), Events(), Readable, 1};
  this->backend.apply(std::span<InterestChange>(&add, 1));
  ASSERT_FALSE(add.error);
  const int number = pair.a.get();
  pair.a.reset();
  InterestChange again{number, Readable, Readable | Writable, 2};
  this->backend.apply(std::span<InterestChange>(&again, 1));
  EXPECT_EQ(again.error.code(), EBADF);
  InterestChange remove{number, Readable, Events(), 3};
  this->backend.apply(std::span<InterestChange>(&remove, 1));
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
  EXPECT_EQ(this->backend.event(0).fd, kWakeDescriptor);
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
