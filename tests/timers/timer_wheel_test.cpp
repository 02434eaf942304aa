#include "timers/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

namespace evflow::detail {
namespace {

// A test timer: a node that knows its id.
struct Probe : TimerNode {
  int id = 0;
};

// Fires everything due at `now` and returns the ids in firing order.
std::vector<int> expire_ids(TimerWheel& wheel, int64_t now) {
  std::vector<int> ids;
  wheel.expire(now, [&](TimerNode& node) { ids.push_back(static_cast<Probe&>(node).id); });
  return ids;
}

// The ids of timers in the order they must fire: by deadline, then by start number.
// Each entry is (deadline, start number, id).
std::vector<int> firing_order(std::vector<std::tuple<int64_t, int, int>> timers) {
  std::sort(timers.begin(), timers.end());
  std::vector<int> ids;
  for (const auto& t : timers)
    ids.push_back(std::get<2>(t));
  return ids;
}

TEST(SaturatingAdd, ClampsInsteadOfWrapping) {
  EXPECT_EQ(saturating_add(5, 7), 12);
  EXPECT_EQ(saturating_add(kNoDeadline - 1, 10), kNoDeadline);
  EXPECT_EQ(saturating_add(kNoDeadline, kNoDeadline), kNoDeadline);
  EXPECT_EQ(saturating_add(std::numeric_limits<int64_t>::min() + 1, -10), std::numeric_limits<int64_t>::min());
}

TEST(TimerWheel, EmptyWheelHasNoDeadlineAndFiresNothing) {
  TimerWheel wheel(100);
  EXPECT_EQ(wheel.next_deadline(), kNoDeadline);
  EXPECT_TRUE(expire_ids(wheel, 1'000'000).empty());
  EXPECT_EQ(wheel.elapsed(), 1'000'000);
}

TEST(TimerWheel, NeverFiresBeforeTheDeadline) {
  TimerWheel wheel(0);
  Probe p;
  p.id = 1;
  wheel.insert(p, 1'000);
  EXPECT_TRUE(wheel.expire(999, [](TimerNode&) { ADD_FAILURE() << "fired early"; }) == 0);
  EXPECT_TRUE(p.linked());
  EXPECT_EQ(expire_ids(wheel, 1'000), (std::vector<int>{1}));
  EXPECT_FALSE(p.linked());
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, ANodeIs32BytesAndKnowsWhetherItWasEverInserted) {
  static_assert(sizeof(void*) != 8 || sizeof(TimerNode) == 32, "two links, a deadline and a sequence");
  TimerWheel wheel(0);
  Probe p;
  EXPECT_EQ(p.sequence(), 0u) << "never inserted";
  wheel.insert(p, 10);
  wheel.remove(p);
  EXPECT_NE(p.sequence(), 0u);
  EXPECT_FALSE(p.linked());
}

// Removing the nodes of a slot in any order (first, middle, last) keeps the others
// linked and empties the slot only with the last: the slot is found from the node's
// back link alone.
TEST(TimerWheel, RemovingFromAnyPlaceOfASlotKeepsTheRestAndEmptiesItWithTheLast) {
  for (int first_removed = 0; first_removed < 3; ++first_removed) {
    TimerWheel wheel(0);
    Probe p[3];
    for (int i = 0; i < 3; ++i) {
      p[i].id = i;
      wheel.insert(p[i], 5'000 + i);  // one level-2 slot
    }
    wheel.remove(p[first_removed]);
    EXPECT_EQ(wheel.size(), 2u);
    EXPECT_LE(wheel.next_deadline(), 5'002) << "a lower bound of what is left";
    std::vector<int> rest;
    for (int i = 0; i < 3; ++i)
      if (i != first_removed) rest.push_back(i);
    wheel.remove(p[rest[0]]);
    EXPECT_NE(wheel.next_deadline(), kNoDeadline) << "one left";
    wheel.remove(p[rest[1]]);
    EXPECT_EQ(wheel.next_deadline(), kNoDeadline) << "the slot is empty, and marked so";
    EXPECT_TRUE(expire_ids(wheel, 10'000).empty());
  }
}

// A node moved later in place sits in a slot chosen for its earlier deadline; moved back
// earlier again it must be filed anew, even where its new deadline maps to that slot's
// neighbourhood, and fire exactly then.
TEST(TimerWheel, ANodeMovedLaterInPlaceThenEarlierFiresAtItsDeadline) {
  TimerWheel wheel(0);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(a, 100);  // level 1
  wheel.insert(b, 100);
  wheel.insert(a, 1'000'000);  // later: stays in its level-1 slot
  wheel.insert(a, 70);         // earlier than the slot it sits in was made for
  EXPECT_LE(wheel.next_deadline(), 70);
  EXPECT_EQ(expire_ids(wheel, 69), std::vector<int>{});
  EXPECT_EQ(expire_ids(wheel, 70), std::vector<int>{1});
  EXPECT_EQ(expire_ids(wheel, 100), std::vector<int>{2});
  // Moved later across slots and back into the slot it was in: fires at the new deadline.
  wheel.insert(a, 200);
  wheel.insert(a, 5'000);
  wheel.insert(a, 250);
  EXPECT_EQ(expire_ids(wheel, 249), std::vector<int>{});
  EXPECT_EQ(expire_ids(wheel, 250), std::vector<int>{1});
  EXPECT_TRUE(wheel.empty());
}

// Restarts within the slot a node sits in keep it there; after the wheel's time moved,
// the slot a deadline maps to is computed from the new time, and a restart earlier
// still fires on time.
TEST(TimerWheel, RestartsWithinASlotAfterTheWheelMovedFireOnTime) {
  TimerWheel wheel(0);
  Probe p[64];
  for (int i = 0; i < 64; ++i) {
    p[i].id = i;
    wheel.insert(p[i], 1'000'000 + i * 1'000);
  }
  EXPECT_EQ(expire_ids(wheel, 900'000), std::vector<int>{});  // moves the wheel's time
  for (int i = 0; i < 64; ++i)
    wheel.insert(p[i], 1'000'000 + (63 - i) * 1'000 - 500);  // earlier and later, within and across slots
  std::vector<int> expected;
  for (int i = 63; i >= 0; --i)
    expected.push_back(i);
  EXPECT_EQ(expire_ids(wheel, 1'000'000 + 61'600), std::vector<int>(expected.begin(), expected.end() - 1));
  EXPECT_EQ(expire_ids(wheel, 1'000'000 + 62'499), std::vector<int>{});
  EXPECT_EQ(expire_ids(wheel, 1'000'000 + 62'500), std::vector<int>{0});
}

TEST(TimerWheel, EqualDeadlinesFireInStartOrder) {
  TimerWheel wheel(0);
  Probe p[5];
  const int order[5] = {3, 0, 4, 1, 2};
  for (int i : order) {
    p[i].id = i;
    wheel.insert(p[i], 5'000);
  }
  EXPECT_EQ(expire_ids(wheel, 5'000), (std::vector<int>{3, 0, 4, 1, 2}));
}

TEST(TimerWheel, ARestartCountsAsANewStart) {
  TimerWheel wheel(0);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(a, 100);
  wheel.insert(b, 100);
  wheel.insert(a, 100);  // restarted: now after b
  EXPECT_EQ(expire_ids(wheel, 100), (std::vector<int>{2, 1}));
}

// Start sequences are 54 bits wide: before they run out, the linked timers are numbered
// again from 1 in their start order, which equal deadlines still fire in.
TEST(TimerWheel, StartSequencesAreRenumberedInOrderBeforeTheyRunOut) {
  TimerWheel wheel(0);
  Probe p[6];
  for (int i = 0; i < 6; ++i)
    p[i].id = i;
  wheel.insert(p[0], 1'000);
  wheel.insert(p[1], 1'000);
  wheel.insert(p[2], 1'000);
  wheel.insert(p[3], 70'000);
  wheel.advance_sequence_for_testing(TimerWheel::kRenumberFrom - 1);
  wheel.insert(p[4], 1'000);
  EXPECT_EQ(p[4].sequence(), TimerWheel::kRenumberFrom - 1);
  wheel.insert(p[5], 1'000);  // renumbers the five linked, then takes the sixth
  EXPECT_EQ(p[0].sequence(), 1u);
  EXPECT_EQ(p[3].sequence(), 4u);
  EXPECT_EQ(p[4].sequence(), 5u);
  EXPECT_EQ(p[5].sequence(), 6u);
  wheel.insert(p[1], 1'000);  // a restart in place: a new start, after the others
  EXPECT_EQ(p[1].sequence(), 7u);
  EXPECT_EQ(expire_ids(wheel, 1'000), (std::vector<int>{0, 2, 4, 5, 1}));
  EXPECT_EQ(expire_ids(wheel, 70'000), (std::vector<int>{3}));
}

// A restart that leaves the node in its slot renumbers too when it is due.
TEST(TimerWheel, ARestartInPlaceRenumbersWhenDue) {
  TimerWheel wheel(0);
  Probe p[3];
  for (int i = 0; i < 3; ++i) {
    p[i].id = i;
    wheel.insert(p[i], 1'000);
  }
  wheel.advance_sequence_for_testing(TimerWheel::kRenumberFrom);
  wheel.insert(p[0], 1'010);  // later: in place
  EXPECT_EQ(p[1].sequence(), 1u);
  EXPECT_EQ(p[2].sequence(), 2u);
  EXPECT_EQ(p[0].sequence(), 3u) << "the others renumbered, then the restart";
  wheel.insert(p[1], 1'010);
  EXPECT_EQ(p[1].sequence(), 4u);
  EXPECT_EQ(expire_ids(wheel, 1'010), (std::vector<int>{2, 0, 1}));
}

// Inside expire() the batch being fired holds the memory renumbering uses: it waits for
// the next start after it, and the order still holds.
TEST(TimerWheel, RenumberingWaitsUntilTheBatchBeingFiredIsDone) {
  TimerWheel wheel(0);
  Probe first, q[3];
  first.id = 9;
  for (int i = 0; i < 3; ++i)
    q[i].id = i;
  wheel.insert(first, 100);
  std::size_t fired = wheel.expire(100, [&](TimerNode&) {
    wheel.advance_sequence_for_testing(TimerWheel::kRenumberFrom + 5);
    wheel.insert(q[0], 2'000);
    wheel.insert(q[1], 2'000);
  });
  EXPECT_EQ(fired, 1u);
  EXPECT_GT(q[1].sequence(), TimerWheel::kRenumberFrom) << "not renumbered inside expire()";
  wheel.insert(q[2], 2'000);
  EXPECT_EQ(q[0].sequence(), 1u);
  EXPECT_EQ(q[1].sequence(), 2u);
  EXPECT_EQ(q[2].sequence(), 3u);
  EXPECT_EQ(expire_ids(wheel, 2'000), (std::vector<int>{0, 1, 2}));
}

TEST(TimerWheel, FiresInDeadlineOrderAcrossLevels) {
  TimerWheel wheel(0);
  std::mt19937_64 rng(7);
  std::vector<Probe> probes(2000);
  std::vector<std::tuple<int64_t, int, int>> started;
  for (int i = 0; i < 2000; ++i) {
    probes[i].id = i;
    const int64_t deadline = static_cast<int64_t>(rng() % 10'000'000'000ULL);  // up to 10 s
    wheel.insert(probes[i], deadline);
    started.emplace_back(deadline, i, i);
  }
  std::vector<int> fired;
  for (int64_t now = 0; fired.size() < probes.size(); now += 3'000'000) {  // 3 ms steps
    for (int id : expire_ids(wheel, now)) {
      EXPECT_LE(probes[id].deadline(), now) << "fired early";
      EXPECT_GT(probes[id].deadline(), now - 3'000'000) << "fired late: a whole step after its deadline";
      fired.push_back(id);
    }
  }
  EXPECT_EQ(fired, firing_order(started));
}

// A batch beyond the bucket sort's 65,536 (sorted in place by radix): 100,000 timers due
// at once, deadlines drawn from few values so that most tie, started in random order and
// some restarted later in place first. They fire in (deadline, last start) order.
TEST(TimerWheel, AHundredThousandDueAtOnceFireInDeadlineThenStartOrder) {
  constexpr int kCount = 100'000;
  TimerWheel wheel(0);
  std::vector<Probe> probes(kCount);
  std::mt19937_64 rng(11);
  std::vector<int> order(kCount);
  for (int i = 0; i < kCount; ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int64_t> deadline(kCount);
  int started = 0;
  for (int i : order) {
    probes[i].id = i;
    deadline[i] = 1'000 + static_cast<int64_t>(rng() % 5'000) * 37;  // 5,000 values over ~185 us
    if (rng() % 4 == 0) wheel.insert(probes[i], deadline[i] / 2);    // earlier first: moved later below
    wheel.insert(probes[i], deadline[i]);
    ++started;
  }
  // Start numbers follow `order`: the last start of order[k] is the k-th.
  std::vector<std::tuple<int64_t, int, int>> last_starts;
  for (int k = 0; k < kCount; ++k)
    last_starts.emplace_back(deadline[order[k]], k, order[k]);
  EXPECT_EQ(started, kCount);
  EXPECT_EQ(expire_ids(wheel, 1'000'000), firing_order(last_starts));
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, EveryLevelBoundaryFiresExactlyAtItsDeadline) {
  // Deadlines at 2^(6L) - 1, 2^(6L) and 2^(6L) + 1 past `start` for every level: the
  // slot edges where a timer changes level or cascades.
  const int64_t start = 1'234'567;
  for (int level = 1; level < TimerWheel::kLevels && 6 * level < 62; ++level) {
    for (int64_t delta : {int64_t{-1}, int64_t{0}, int64_t{1}}) {
      TimerWheel wheel(start);
      Probe p;
      p.id = level;
      const int64_t deadline = start + (int64_t{1} << (6 * level)) + delta;
      wheel.insert(p, deadline);
      // Walk time towards the deadline through every intermediate wake-up the wheel asks for.
      int64_t now = start;
      int steps = 0;
      while (p.linked()) {
        const int64_t next = wheel.next_deadline();
        ASSERT_GT(next, now - 1) << "next_deadline went backwards";
        ASSERT_LE(next, deadline) << "next_deadline past the only timer's deadline";
        if (next < deadline) {
          EXPECT_TRUE(expire_ids(wheel, next - 1 > now ? next - 1 : now).empty());
        }
        now = next;
        const auto ids = expire_ids(wheel, now);
        if (now < deadline) {
          EXPECT_TRUE(ids.empty()) << "fired early at level " << level;
        } else {
          EXPECT_EQ(ids, std::vector<int>{level});
        }
        ASSERT_LT(++steps, 2 * TimerWheel::kLevels + 2) << "too many cascades";
      }
      EXPECT_EQ(now, deadline) << "level " << level << " delta " << delta;
    }
  }
}

TEST(TimerWheel, NextDeadlineIsExactForNearTimersAndALowerBoundForFarOnes) {
  TimerWheel wheel(0);
  Probe near, far;
  wheel.insert(near, 40);
  wheel.insert(far, 5'000'000'000);
  EXPECT_EQ(wheel.next_deadline(), 40);
  wheel.remove(near);
  const int64_t bound = wheel.next_deadline();
  EXPECT_GT(bound, 0);
  EXPECT_LE(bound, 5'000'000'000);
}

TEST(TimerWheel, HugeDeadlinesDoNotWrap) {
  TimerWheel wheel(1'000);
  Probe max, years;
  max.id = 1;
  years.id = 2;
  wheel.insert(max, kNoDeadline);
  wheel.insert(years, saturating_add(1'000, int64_t{5} * 365 * 24 * 3600 * 1'000'000'000));
  EXPECT_TRUE(expire_ids(wheel, 1'000'000'000'000).empty());  // 1000 s later: nothing
  EXPECT_EQ(expire_ids(wheel, int64_t{6} * 365 * 24 * 3600 * 1'000'000'000), (std::vector<int>{2}));
  EXPECT_TRUE(expire_ids(wheel, kNoDeadline - 1).empty());
  EXPECT_EQ(expire_ids(wheel, kNoDeadline), (std::vector<int>{1}));
}

TEST(TimerWheel, NegativeTimesWork) {
  TimerWheel wheel(-5'000);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(b, 10);
  wheel.insert(a, -100);
  EXPECT_EQ(expire_ids(wheel, -100), (std::vector<int>{1}));
  EXPECT_EQ(expire_ids(wheel, 10), (std::vector<int>{2}));
}

TEST(TimerWheel, PastDeadlinesFireAtTheNextExpireInDeadlineOrder) {
  TimerWheel wheel(0);
  EXPECT_TRUE(expire_ids(wheel, 10'000).empty());
  Probe a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  wheel.insert(c, 10'500);  // in the future
  wheel.insert(a, 9'000);   // in the past
  wheel.insert(b, 5);       // further in the past, started later
  EXPECT_EQ(wheel.next_deadline(), 10'000) << "due now";
  EXPECT_EQ(expire_ids(wheel, 10'000), (std::vector<int>{2, 1}));
  EXPECT_EQ(expire_ids(wheel, 10'500), (std::vector<int>{3}));
}

TEST(TimerWheel, TimeGoingBackwardsIsTreatedAsNoTimePassing) {
  TimerWheel wheel(1'000);
  Probe a;
  a.id = 1;
  wheel.insert(a, 1'500);
  EXPECT_TRUE(expire_ids(wheel, 500).empty());
  EXPECT_EQ(wheel.elapsed(), 1'000);
  EXPECT_EQ(expire_ids(wheel, 1'500), (std::vector<int>{1}));
}

TEST(TimerWheel, RemovedTimersNeverFire) {
  TimerWheel wheel(0);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(a, 100);
  wheel.insert(b, 100'000'000);
  wheel.remove(a);
  wheel.remove(b);
  wheel.remove(b);  // idempotent
  EXPECT_TRUE(wheel.empty());
  EXPECT_TRUE(expire_ids(wheel, kNoDeadline).empty());
}

TEST(TimerWheel, CallbackMayRemoveALaterTimerOfTheSameBatch) {
  TimerWheel wheel(0);
  Probe a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  wheel.insert(a, 10);
  wheel.insert(b, 20);
  wheel.insert(c, 30);
  std::vector<int> fired;
  wheel.expire(100, [&](TimerNode& node) {
    fired.push_back(static_cast<Probe&>(node).id);
    if (&node == &a) wheel.remove(b);
  });
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
  EXPECT_TRUE(wheel.empty());
}

// Found by fuzz/timer_wheel_fuzz: expire() fetched ahead the node eight places further
// in the batch without checking that it was still there, and a removed one is null
// (UBSan: "applying non-zero offset 64 to null pointer").
TEST(TimerWheel, RemovingATimerEightPlacesAheadInTheBatchIsSafe) {
  TimerWheel wheel(0);
  Probe probes[12];
  for (int i = 0; i < 12; ++i) {
    probes[i].id = i;
    wheel.insert(probes[i], 10 + i);
  }
  std::vector<int> fired;
  wheel.expire(100, [&](TimerNode& node) {
    fired.push_back(static_cast<Probe&>(node).id);
    if (&node == &probes[0]) wheel.remove(probes[9]);  // fetched ahead while 1 fires
  });
  EXPECT_EQ(fired, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11}));
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, CallbackMayDestroyALaterTimerOfTheSameBatch) {
  // The batch is unsorted when collected (deadlines 30 then 10), exercising the
  // sorted-position map used to find a destroyed node's entry.
  TimerWheel wheel(0);
  auto doomed = std::make_unique<Probe>();
  Probe first;
  doomed->id = 2;
  first.id = 1;
  wheel.insert(*doomed, 30);
  wheel.insert(first, 10);
  std::vector<int> fired;
  wheel.expire(100, [&](TimerNode& node) {
    fired.push_back(static_cast<Probe&>(node).id);
    if (&node == &first) {
      wheel.remove(*doomed);
      doomed.reset();
    }
  });
  EXPECT_EQ(fired, (std::vector<int>{1}));
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, ATimerReinsertedByItsCallbackFiresAtTheNextExpireNotTwice) {
  TimerWheel wheel(0);
  Probe a;
  a.id = 1;
  wheel.insert(a, 10);
  int calls = 0;
  auto again = [&](TimerNode& node) {
    ++calls;
    wheel.insert(node, 10);  // already due: must wait for the next expire()
  };
  wheel.expire(50, again);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(a.linked());
  wheel.expire(50, again);
  EXPECT_EQ(calls, 2);
}

TEST(TimerWheel, CallbackMayReinsertAnotherTimerOfTheSameBatch) {
  TimerWheel wheel(0);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(a, 10);
  wheel.insert(b, 20);
  std::vector<int> fired;
  wheel.expire(100, [&](TimerNode& node) {
    fired.push_back(static_cast<Probe&>(node).id);
    if (&node == &a) wheel.insert(b, 1'000);  // moved out of this batch
  });
  EXPECT_EQ(fired, (std::vector<int>{1}));
  EXPECT_EQ(expire_ids(wheel, 1'000), (std::vector<int>{2}));
}

TEST(TimerWheel, RebaseKeepsDeadlinesAndOrder) {
  TimerWheel wheel(1'000'000);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(a, 2'000'000);
  wheel.insert(b, 2'000'000);
  wheel.rebase(10);  // the clock jumped backwards
  EXPECT_EQ(wheel.elapsed(), 10);
  EXPECT_TRUE(expire_ids(wheel, 1'999'999).empty());
  EXPECT_EQ(expire_ids(wheel, 2'000'000), (std::vector<int>{1, 2}));
}

// Differential test: random operations against an ordered multimap keyed by
// (deadline, start sequence); the firing sequences must match exactly.
TEST(TimerWheel, ATimerMovedLaterFiresAtItsNewDeadlineOnly) {
  // A move to a later deadline leaves the node in its old slot (insert()); when that
  // slot comes due it must be re-filed, not fired.
  TimerWheel wheel(0);
  Probe a, b;
  a.id = 1;
  b.id = 2;
  wheel.insert(a, 1000);  // level 1, slot 15
  wheel.insert(b, 2000);  // level 1, slot 31
  wheel.insert(a, 1'000'000);
  EXPECT_EQ(a.deadline(), 1'000'000);
  EXPECT_EQ(wheel.size(), 2u);
  EXPECT_TRUE(expire_ids(wheel, 1500).empty()) << "the old slot is due, the timer is not";
  EXPECT_EQ(expire_ids(wheel, 2000), std::vector<int>{2});
  EXPECT_TRUE(expire_ids(wheel, 999'999).empty());
  EXPECT_EQ(expire_ids(wheel, 1'000'000), std::vector<int>{1});
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, NextDeadlineStaysALowerBoundWhenTheFirstSlotHoldsATimerMovedLater) {
  // The first occupied slot holds only a timer moved far later; the next slot holds an
  // earlier one. next_deadline() must not answer the moved timer's deadline.
  TimerWheel wheel(0);
  Probe a, b;
  wheel.insert(a, 1000);
  wheel.insert(b, 2000);
  wheel.insert(a, 1'000'000);
  EXPECT_LE(wheel.next_deadline(), 2000);
}

TEST(TimerWheel, MovedLaterTimersKeepRestartOrderOnEqualDeadlines) {
  TimerWheel wheel(0);
  Probe a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  wheel.insert(a, 5000);
  wheel.insert(b, 3000);
  wheel.insert(c, 9000);
  wheel.insert(b, 9000);  // moved later, in place: restarted after c
  wheel.insert(a, 9000);  // moved later, in place: restarted after b
  EXPECT_EQ(expire_ids(wheel, 9000), (std::vector<int>{3, 2, 1}));
}

TEST(TimerWheel, ATimerMovedEarlierIsRelinkedAndFiresEarlier) {
  TimerWheel wheel(0);
  Probe a;
  a.id = 1;
  wheel.insert(a, 1'000'000);
  wheel.insert(a, 100);
  EXPECT_EQ(wheel.next_deadline(), 100) << "relinked: the short slot is scanned exactly";
  EXPECT_EQ(expire_ids(wheel, 100), std::vector<int>{1});
}

TEST(TimerWheel, ATimerMovedEarlierWithinItsSlotFiresAtItsNewDeadline) {
  // 1'000'000 and 1'000'100 share a level-3 slot: the node stays put, and must fire at
  // the earlier deadline, after a timer due before it and before one due after it.
  TimerWheel wheel(0);
  Probe a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  wheel.insert(a, 1'000'100);
  wheel.insert(b, 999'999);
  wheel.insert(c, 1'000'050);
  wheel.insert(a, 1'000'000);
  EXPECT_EQ(expire_ids(wheel, 999'999), std::vector<int>{2});
  EXPECT_EQ(expire_ids(wheel, 1'000'000), std::vector<int>{1});
  EXPECT_EQ(expire_ids(wheel, 1'000'100), std::vector<int>{3});
}

TEST(TimerWheel, ATimerMovedEarlierButNotBeforeItsSlotStaysThereAndFiresAtItsDeadline) {
  // 1000 is in the level-1 slot [960, 1024). Moved later to 1'000'000, the node stays
  // there; moved back to 960, the slot's first instant, it still may; to 959 it may not.
  for (const int64_t earlier : {int64_t{500'000}, int64_t{960}, int64_t{959}}) {
    TimerWheel wheel(0);
    Probe a, b;
    a.id = 1;
    b.id = 2;
    wheel.insert(a, 1000);
    wheel.insert(b, 2000);
    wheel.insert(a, 1'000'000);
    wheel.insert(a, earlier);
    EXPECT_LE(wheel.next_deadline(), earlier) << earlier;
    // b (2000) and a (`earlier`), each fired exactly at its deadline, in deadline order.
    const int64_t first_at = std::min<int64_t>(earlier, 2000);
    const int64_t second_at = std::max<int64_t>(earlier, 2000);
    EXPECT_EQ(expire_ids(wheel, first_at - 1), std::vector<int>{}) << earlier;
    EXPECT_EQ(expire_ids(wheel, first_at), std::vector<int>{earlier < 2000 ? 1 : 2}) << earlier;
    EXPECT_EQ(expire_ids(wheel, second_at - 1), std::vector<int>{}) << earlier;
    EXPECT_EQ(expire_ids(wheel, second_at), std::vector<int>{earlier < 2000 ? 2 : 1}) << earlier;
    EXPECT_TRUE(wheel.empty());
  }
}

TEST(TimerWheel, MatchesAnOrderedReferenceUnderRandomOperations) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    TimerWheel wheel(0);
    std::vector<Probe> probes(64);
    std::map<std::pair<int64_t, uint64_t>, int> reference;
    std::vector<std::map<std::pair<int64_t, uint64_t>, int>::iterator> where(64);
    std::vector<bool> in_reference(64);
    uint64_t sequence = 0;
    int64_t now = 0;
    for (int i = 0; i < 64; ++i)
      probes[i].id = i;
    auto pick_deadline = [&]() -> int64_t {
      switch (rng() % 6) {
        case 0:
          return now;  // due now
        case 1:
          return now - static_cast<int64_t>(rng() % 1000);  // past
        case 2:
          return now + static_cast<int64_t>(rng() % 64);  // level 0
        case 3:
          return now + (int64_t{1} << (6 * (1 + rng() % 9)));  // a level edge
        case 4:
          return kNoDeadline - static_cast<int64_t>(rng() % 3);  // huge
        default:
          return now + static_cast<int64_t>(rng() % 5'000'000'000);  // up to 5 s
      }
    };
    for (int step = 0; step < 3000; ++step) {
      const int id = static_cast<int>(rng() % 64);
      const unsigned op = rng() % 10;
      if (op < 5) {
        const int64_t deadline = pick_deadline();
        if (in_reference[id]) reference.erase(where[id]);
        wheel.insert(probes[id], deadline);
        where[id] = reference.emplace(std::make_pair(deadline, sequence++), id).first;
        in_reference[id] = true;
      } else if (op < 7) {
        wheel.remove(probes[id]);
        if (in_reference[id]) reference.erase(where[id]);
        in_reference[id] = false;
      } else {
        const unsigned jump = rng() % 4;
        now = jump == 0
                  ? now
                  : saturating_add(now, static_cast<int64_t>(rng() % (jump == 3 ? 10'000'000'000ULL : 100'000ULL)));
        std::vector<int> expected;
        while (!reference.empty() && reference.begin()->first.first <= now) {
          expected.push_back(reference.begin()->second);
          in_reference[reference.begin()->second] = false;
          reference.erase(reference.begin());
        }
        ASSERT_EQ(expire_ids(wheel, now), expected) << "seed " << seed << " step " << step;
      }
      ASSERT_EQ(wheel.size(), reference.size());
      if (!reference.empty()) {
        ASSERT_LE(wheel.next_deadline(), std::max(now, reference.begin()->first.first)) << "seed " << seed;
      }
    }
  }
}

TEST(TimerWheel, TenMillionTimersDrainInOrderWithBoundedMemory) {
  constexpr std::size_t kCount = 10'000'000;
  constexpr int64_t kSpan = 10'000'000'000;  // deadlines over 10 s
  constexpr int64_t kStep = 1'000'000;       // expire every 1 ms: ~1000 due per step
  TimerWheel wheel(0);
  std::vector<TimerNode> nodes(kCount);
  std::mt19937_64 rng(42);
  for (auto& node : nodes)
    wheel.insert(node, 1 + static_cast<int64_t>(rng() % kSpan));
  EXPECT_EQ(wheel.size(), kCount);
  std::size_t fired = 0, most_at_once = 0;
  int64_t last_deadline = 0;
  bool ordered = true;
  for (int64_t now = 0; now <= kSpan + kStep; now += kStep) {
    const std::size_t n = wheel.expire(now, [&](TimerNode& node) {
      ordered = ordered && node.deadline() >= last_deadline && node.deadline() <= now;
      last_deadline = node.deadline();
    });
    fired += n;
    most_at_once = std::max(most_at_once, n);
  }
  EXPECT_EQ(fired, kCount);
  EXPECT_TRUE(ordered);
  EXPECT_TRUE(wheel.empty());
  // The wheel's own memory: fixed tables plus the room expire() may need, reserved as
  // timers are linked so that expiry never allocates (batch and position map: 36 bytes a
  // timer, at most twice that with amortised growth; the bucket sort's scratch and table,
  // for batches up to 65,536). Reserved, not touched: only the largest expiry (here
  // ~1,000 timers) writes to it.
  EXPECT_LE(wheel.memory_bytes(), sizeof(TimerWheel) + 72 * kCount + 32 * 65'536 + 8 * 65'537);
  EXPECT_GE(most_at_once, 1u);
}

}  // namespace
}  // namespace evflow::detail

#include "tests/support/allocation_control.hpp"

namespace evflow::detail {
namespace {

// Regression (found in review): the sort scratch space of a large batch was reserved on a
// best-effort basis and swapped in for the batch, so when its growth had failed the batch
// was left with less room than the wheel had timers, and a later expiry aborted. Every
// allocation of the sequence fails in turn here: each make_room() either answers false or
// leaves room for all, and every timer inserted fires, in order.
TEST(TimerWheelRegression, NoFailedReservationLeavesTheExpiryBatchTooSmall) {
  constexpr int kEarly = 600, kLate = 1100;  // a batch large enough to be bucket-sorted, then a larger one
  for (long k = 1; k < 64; ++k) {
    TimerWheel wheel(0);
    std::vector<TimerNode> nodes(kEarly + kLate);
    std::vector<bool> inserted(nodes.size());
    testing::arm_failure(k);
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!wheel.make_room()) continue;
      inserted[i] = true;
      wheel.insert(nodes[i],
                   i < kEarly ? 1000 + static_cast<int64_t>(i * 7919 % kEarly) : 5000 + static_cast<int64_t>(i));
    }
    const size_t first = wheel.expire(2000, [](TimerNode&) {});
    const size_t second = wheel.expire(10'000, [](TimerNode&) {});
    const bool reached = testing::disarm_failure();
    size_t expected = 0;
    for (bool b : inserted)
      expected += b;
    EXPECT_EQ(first + second, expected) << "allocation " << k << " failed";
    EXPECT_TRUE(wheel.empty());
    if (!reached) break;  // past the sequence's last allocation
  }
}

}  // namespace
}  // namespace evflow::detail
