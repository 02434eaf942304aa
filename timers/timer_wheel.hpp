// evflow — TimerWheel: a hierarchical timing wheel over nanosecond deadlines.
//
// A pure data structure: no clock, no system call; the caller passes the time in.
//
// Design bet: most timers never fire. They are idle timeouts pushed back on every
// request, or guards cancelled when the operation completes. So start, stop and restart
// must be O(1) and cheap, and the cost of ordering is paid only by the timers that
// actually expire, at expiry.
//
// Shape: 11 levels of 64 slots. Level L groups deadlines by bits [6L, 6L+6) of the
// nanosecond deadline, so level 0 slots are 1 ns wide and level 10 reaches 2^66 ns:
// every int64 deadline has a place, however far away, with no overflow list. A timer
// sits at the level of the highest 6-bit digit in which its deadline differs from the
// wheel's current time (`elapsed`), in the slot of its own digit there, on an intrusive
// doubly linked list (O(1) insert and remove, no allocation). One 64-bit occupancy word
// per level, plus one word of non-empty levels, finds the next deadline with a few
// count-trailing-zero instructions instead of scanning slots.
//
// Expiry: expire(now) visits only the occupied slots whose range has begun. Timers due
// (deadline <= now) go into a batch; the others are re-inserted at a lower level relative
// to `now` (a cascade: at most 10 moves over a timer's life, and usually one or two,
// since a slot whose whole range has passed is emptied into the batch at once). The
// batch is sorted by (deadline, start sequence) — a large batch by one counting-sort pass
// on the deadline's top bits, then small comparison sorts — and fired in that order.
//
// Ordering guarantee: within one expire(now), timers fire in increasing deadline, and
// timers with equal deadlines in the order they were started (a restart is a new start).
// Nothing fires before its deadline. A timer whose deadline had already passed when it
// was started fires at the next expire(), in the same (deadline, sequence) order.
//
// Callbacks fired by expire() may insert, remove or re-insert any timer, including
// themselves and timers still waiting in the same batch (a removed one is skipped; a
// re-inserted one fires at the next expire(), never twice in one).
//
// Memory: expire() allocates nothing. The batch it fills has room for every linked timer,
// reserved when the wheel grows: make_room() before inserting a timer that is not linked
// yet, which is where running out of memory can still be reported (insert() takes that
// room itself otherwise, and then can only abort when it is not there).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

#include "../platform/checked_math.hpp"
#include "../platform/growable_array.hpp"
#include "../platform/prefetch.hpp"

namespace evflow::detail {

// Deadlines are nanoseconds on some clock; arithmetic on them saturates.
inline constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

// Returns base + delta, clamped to [INT64_MIN, INT64_MAX] instead of wrapping.
constexpr int64_t saturating_add(int64_t base, int64_t delta) noexcept {
  int64_t sum = 0;
#if defined(__GNUC__) || defined(__clang__)
  const bool overflows = __builtin_add_overflow(base, delta, &sum);  // an add and a flag: no compare first
#else
  const bool overflows = detail::add_overflows(base, delta, sum);
#endif
  if (overflows) return delta > 0 ? kNoDeadline : std::numeric_limits<int64_t>::min();
  return sum;
}

// The intrusive part of a timer; a watcher derives from it. Not copyable: the wheel
// links it by address. 32 bytes: a slot's list is linked through `next_` and, backwards,
// through `pprev_`, the address of the field that points to the node (the slot's head or
// the previous node's `next_`: the sentinel-free list of the Linux kernel's hlist); the
// slot itself is kept in the low bits of the start sequence's word.
class TimerNode {
 public:
  TimerNode() noexcept : next_(nullptr) {}
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;

  // True while inserted (waiting in a slot or in the batch being fired).
  bool linked() const noexcept { return pprev_ != nullptr; }
  int64_t deadline() const noexcept { return deadline_; }
  // The start sequence of the last insert: ties between equal deadlines go to the lower.
  // Zero: never inserted.
  uint64_t sequence() const noexcept { return sequence_ >> kSlotBits; }

 private:
  friend class TimerWheel;
  // sequence_ holds the start sequence above kSlotBits bits that name the slot the node
  // was last linked into (level * 64 + digit, below 704). A node moved in place
  // keeps that slot (TimerWheel::insert), so the slot is not always the one its deadline
  // maps to: it is the one the node is in.
  static constexpr int kSlotBits = 10;
  static constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;
  uint32_t slot() const noexcept { return static_cast<uint32_t>(sequence_ & kSlotMask); }

  // In a slot: the field that points here. In the batch being fired: the wheel's
  // in_batch_ marker. Not linked: null.
  TimerNode** pprev_ = nullptr;
  union {
    TimerNode* next_;          // in a slot: the next node of its list
    std::size_t batch_entry_;  // in the batch: its index at collection
  };
  int64_t deadline_ = 0;
  uint64_t sequence_ = 0;
};

class TimerWheel {
 public:
  static constexpr int kLevels = 11;
  static constexpr int kSlotsPerLevel = 64;

  // Precondition: `start` is the current time on the caller's clock (deadlines earlier
  // than it are "already passed").
  explicit TimerWheel(int64_t start = 0) noexcept : elapsed_(start) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Reserves what expire() needs with one more timer linked. Amortised O(1); false when
  // the memory is not there (nothing changes then). Call it before inserting a node that
  // is not linked.
  [[nodiscard]] bool make_room() noexcept { return size_ < room_ || reserve(size_ + 1); }

  // Inserts `node` to fire at `deadline`, with the next start sequence. If it was
  // already linked it is moved (a restart). O(1). A move to a deadline no earlier than
  // the start of the node's slot leaves it there: a later one, or an earlier one still
  // in or after that slot's range. The slot then comes due before the deadline: the
  // cost is one re-filing there, and possibly one early wake-up (next_deadline() is a
  // lower bound). Such a restart touches the node only, and writes two of its fields.
  // A node not linked needs room in the expiry batch: make_room() reserves it where an
  // error can be reported; without it, insert() takes it and aborts when memory is out.
  // Post: node.linked(), node.deadline() == deadline.
  void insert(TimerNode& node, int64_t deadline) noexcept {
    if (!move_in_place(node, deadline)) relink(node, deadline);
  }
  // insert() when it leaves `node` in its slot (above), which is then all it does, with
  // no call; false, and nothing done, in every other case (and when start sequences are
  // due to be renumbered).
  bool move_in_place(TimerNode& node, int64_t deadline) noexcept {
    // The one test is "no earlier than the slot's start": a later deadline than the
    // node's passes it too (every linked node's deadline is at least its slot's start),
    // and testing "later" first costs more than it saves: half the restarts to random
    // deadlines mispredicted that branch, and a node cold in the cache held every
    // instruction behind it. The slot's start needs the node's slot bits only.
    if (node.pprev_ == nullptr || in_batch(node) || next_sequence_ >= kRenumberFrom ||
        key(deadline) < start_of_slot(node.slot()))
      return false;
    node.deadline_ = deadline;
    node.sequence_ = (next_sequence_++ << TimerNode::kSlotBits) | (node.sequence_ & TimerNode::kSlotMask);
    return true;
  }

  // Unlinks `node` if linked; it will not fire. O(1). Safe during expire(), for any node.
  void remove(TimerNode& node) noexcept;

  // The earliest time at which expire() may have something to fire: always a lower
  // bound, never later than the earliest deadline (or than elapsed(), for a timer
  // started with a deadline already passed: it is due at once). Exact when the first occupied slot
  // is short and holds no timer moved in place past its range (insert()); otherwise the start of
  // that slot's range (expiring then re-files or moves timers closer). kNoDeadline when
  // empty. O(levels), plus a scan of at most 16 timers.
  int64_t next_deadline() const noexcept;

  // Fires every timer with deadline <= now, calling on_expired(TimerNode&) for each in
  // (deadline, sequence) order; each node is unlinked before its call. Returns how many
  // fired. A `now` earlier than the wheel's time is treated as the wheel's time.
  // Not reentrant: on_expired must not call expire() on this wheel.
  // Cost: O(k log k) for k due timers (the sort), plus O(1) per cascaded timer.
  template <class OnExpired>
  std::size_t expire(int64_t now, OnExpired&& on_expired);

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // The wheel's current time: the latest `now` given to expire().
  int64_t elapsed() const noexcept { return elapsed_; }

  // Bytes the wheel owns: its fixed tables plus the expiry batch's capacity, which is
  // the most timers ever due in one expire() (the nodes belong to the caller).
  std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + (batch_.capacity() + scratch_.capacity()) * sizeof(Due) +
           sorted_position_.capacity() * sizeof(uint32_t) + bucket_start_.capacity() * sizeof(std::size_t);
  }

  // Reserves what expire() needs for `count` timers due at once; false when the memory
  // is not there. The batch and its sort positions are required (36 bytes a timer); the
  // scratch and buckets of the bucket sort (batches of 512 to 65,536 timers, at most
  // 2.5 MB) are taken when available (without them, such a batch is sorted in place,
  // more slowly).
  [[nodiscard]] bool reserve(std::size_t count) noexcept;
  // Maps the reserved expiry room now (GrowableArray::prefault): the first expiry of a
  // large batch then takes no page faults. Resident memory: 36 bytes per timer of room,
  // plus the bucket sort's (at most 2.5 MB).
  void prefault() noexcept {
    batch_.prefault();
    scratch_.prefault();
    sorted_position_.prefault();
    bucket_start_.prefault();
  }

  // Unlinks every timer, calling on_each(TimerNode&) for each after it is unlinked.
  // Precondition: not inside expire(). O(n + slots).
  template <class OnEach>
  void clear(OnEach&& on_each);

  // For a copy of a wheel whose expire() was interrupted for good (a process forked while
  // another thread was inside it): the timers it had taken out for firing and not fired
  // yet go back into the slots, due, with their start sequences. O(batch).
  void abandon_expiry() noexcept;

  // Moves the wheel's time to `now` and re-inserts every linked timer at its current
  // deadline, keeping start sequences. For a clock that may jump backwards (wall
  // clock): a deadline still to come stays to come. O(n).
  void rebase(int64_t now) noexcept;

  // Start sequences are 54 bits wide. From kRenumberFrom on, the next insert made outside
  // expire() first renumbers the linked timers 1..size() in their order: O(n log n), once
  // in 2^53 starts. Running out within one expire() (2^53 starts by its callbacks) aborts.
  static constexpr uint64_t kRenumberFrom = uint64_t{1} << 53;
  static constexpr uint64_t kSequenceEnd = uint64_t{1} << (64 - TimerNode::kSlotBits);
  // For tests of renumbering: moves the next start sequence forward to `next`.
  void advance_sequence_for_testing(uint64_t next) noexcept { next_sequence_ = std::max(next_sequence_, next); }

 private:
  struct Due {
    int64_t deadline;
    uint64_t sequence;
    TimerNode* node;
    uint32_t collected;  // index at collection time: what node.batch_entry_ keeps
  };

  // Deadlines are signed; the wheel works on their order-preserving unsigned image.
  static constexpr uint64_t key(int64_t t) noexcept { return static_cast<uint64_t>(t) ^ (uint64_t{1} << 63); }
  // The bits of a key above a slot's digit at each level (level 10 has none above).
  static constexpr auto kAboveDigit = [] {
    std::array<uint64_t, kLevels> masks{};
    for (int level = 0; level + 1 < kLevels; ++level)
      masks[static_cast<std::size_t>(level)] = ~uint64_t{0} << (6 * level + 6);
    return masks;
  }();
  // Each slot's digit in place (digit << 6 * level): a load instead of a variable shift.
  static constexpr auto kDigitInPlace = [] {
    std::array<uint64_t, kLevels * kSlotsPerLevel> digits{};
    for (std::size_t slot = 0; slot < digits.size(); ++slot)
      digits[slot] = uint64_t{slot % kSlotsPerLevel} << (6 * (slot / kSlotsPerLevel));
    return digits;
  }();
  // The first key of `slot`'s range, within the block that holds elapsed_ (the one its
  // nodes were linked for: a slot is emptied when its range begins).
  uint64_t start_of_slot(uint32_t slot) const noexcept {
    return (key(elapsed_) & kAboveDigit[slot / kSlotsPerLevel]) | kDigitInPlace[slot];
  }
  static int level_for(int64_t elapsed, int64_t deadline) noexcept;
  uint32_t slot_for(int64_t deadline) const noexcept;  // where link() would put it now
  // The next start sequence, shifted into place above a node's slot bits.
  uint64_t take_sequence() noexcept {
    if (next_sequence_ >= kRenumberFrom) [[unlikely]]
      renumber();
    return next_sequence_++ << TimerNode::kSlotBits;
  }
  // Gives the linked timers the start sequences 1..size() in their order, so that
  // sequences never run out of their 54 bits. Deferred while a batch is being fired.
  void renumber() noexcept;
  void relink(TimerNode& node, int64_t deadline) noexcept;  // insert() into the slot of `deadline`
  void link(TimerNode& node) noexcept;                      // by node.deadline_, relative to elapsed_
  void unlink_from_slot(TimerNode& node) noexcept;
  bool in_batch(const TimerNode& node) const noexcept { return node.pprev_ == &in_batch_; }
  void collect(int64_t now) noexcept;  // moves due timers to batch_, cascades the rest
  void sort_batch() noexcept;
  void sort_unsorted_batch() noexcept;
  std::size_t batch_index(const TimerNode& node) const noexcept;

  // The fields every operation reads come first, so that a loop checking empty() or
  // next_deadline() touches the wheel's first cache lines only; the slots follow.
  std::size_t size_ = 0;
  std::size_t room_ = 0;  // batch_.capacity(), kept here with the fields every start reads
  int64_t elapsed_;
  uint64_t next_sequence_ = 1;       // zero marks a node never inserted
  uint32_t occupied_levels_ = 0;     // bit L set: occupied_[L] != 0
  uint64_t occupied_[kLevels] = {};  // bit d set: slot d of that level is non-empty
  // Each slot is the head of a list whose newest node comes first (collect() reverses it).
  TimerNode* slots_[kLevels][kSlotsPerLevel] = {};
  TimerNode* in_batch_ = nullptr;  // never set: its address marks a node in the batch
  detail::GrowableArray<Due> batch_;
  detail::GrowableArray<uint32_t> sorted_position_;  // collection index -> index in batch_ after sorting
  detail::GrowableArray<Due> scratch_;               // bucket sort of large batches
  detail::GrowableArray<std::size_t> bucket_start_;
};

template <class OnEach>
void TimerWheel::clear(OnEach&& on_each) {
  for (int level = 0; level < kLevels; ++level) {
    for (TimerNode*& head : slots_[level]) {
      TimerNode* node = head;
      head = nullptr;
      while (node != nullptr) {
        TimerNode* next = node->next_;
        node->pprev_ = nullptr;
        node->next_ = nullptr;
        on_each(*node);
        node = next;
      }
    }
    occupied_[level] = 0;
  }
  occupied_levels_ = 0;
  size_ = 0;
}

template <class OnExpired>
std::size_t TimerWheel::expire(int64_t now, OnExpired&& on_expired) {
  if (now < elapsed_) now = elapsed_;
  if (size_ == 0) {
    elapsed_ = now;
    return 0;
  }
  collect(now);
  if (batch_.empty()) return 0;
  sort_batch();
  std::size_t fired = 0;
  const std::size_t count = batch_.size();
  for (std::size_t i = 0; i < count; ++i) {
    // Timers fire in deadline order, not memory order: fetch ahead the two cache lines a
    // watcher built on the node typically spans (node and callback). A removed one is null.
    if (i + 8 < count && batch_[i + 8].node != nullptr) {
      const char* ahead = reinterpret_cast<const char*>(batch_[i + 8].node);
      prefetch(ahead);
      prefetch(ahead + 64);
    }
    TimerNode* node = batch_[i].node;
    if (node == nullptr) continue;  // removed by an earlier callback of this batch
    batch_[i].node = nullptr;       // fired: what is left non-null has not (abandon_expiry)
    node->pprev_ = nullptr;
    node->next_ = nullptr;
    --size_;
    ++fired;
    on_expired(*node);
  }
  batch_.clear();
  return fired;
}

}  // namespace evflow::detail
