#include "timer_wheel.hpp"

#include <algorithm>
#include <array>
#include <bit>

namespace evflow::detail {

namespace {

constexpr int kBitsPerLevel = 6;
// Batches from kBucketSortFrom to kBucketSortUpTo timers are sorted by one counting-sort
// pass into a scratch array, then small sorts. Larger ones are sorted in place by a radix
// sort (radix_sort below): scattering them over tens of thousands of buckets misses the
// caches and TLB at every write, and their scratch would be tens of megabytes to map
// (measured at 1,000,000 due timers: no faster than a comparison sort when warm, slower
// on a first burst); the radix sort's 256 write positions a pass stay in the cache.
constexpr std::size_t kBucketSortFrom = 512;
constexpr std::size_t kBucketSortUpTo = 65'536;

// log2 of the buckets a batch of `count` is spread over: about count / 8, at most 2^16.
int bucket_bits_for(std::size_t count) noexcept { return std::min(16, 61 - std::countl_zero(uint64_t{count})); }
constexpr uint64_t kSignFlip = uint64_t{1} << 63;

// The level that bit b belongs to: b / 6, without a division on every start.
constexpr auto kLevelOfBit = [] {
  std::array<uint8_t, 64> levels{};
  for (int b = 0; b < 64; ++b)
    levels[b] = static_cast<uint8_t>(b / kBitsPerLevel);
  return levels;
}();

// The deadline of a key (TimerWheel::key).
constexpr int64_t unkey(uint64_t k) noexcept { return static_cast<int64_t>(k ^ kSignFlip); }

constexpr uint32_t slot_number(int level, unsigned digit) noexcept {
  return static_cast<uint32_t>(level * TimerWheel::kSlotsPerLevel) + digit;
}

// The digit of `k` at `level`: bits [6L, 6L+6). Level 10 has 4 bits (60..63).
constexpr unsigned digit_of(uint64_t k, int level) noexcept {
  return static_cast<unsigned>((k >> (level * kBitsPerLevel)) & 63);
}

// (deadline, sequence) order of batch entries.
template <class Entry>
bool earlier(const Entry& a, const Entry& b) noexcept {
  return a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence;
}

}  // namespace

int TimerWheel::level_for(int64_t elapsed, int64_t deadline) noexcept {
  const uint64_t differing = (key(elapsed) ^ key(deadline)) | 1;  // equal: level 0
  return kLevelOfBit[63 - std::countl_zero(differing)];
}

uint32_t TimerWheel::slot_for(int64_t deadline) const noexcept {
  // A deadline already passed is placed where `elapsed` is: the next expire() sees it.
  const int64_t placed = deadline < elapsed_ ? elapsed_ : deadline;
  const int level = level_for(elapsed_, placed);
  return slot_number(level, digit_of(key(placed), level));
}

void TimerWheel::link(TimerNode& node) noexcept {
  const uint32_t where = slot_for(node.deadline_);
  const int level = static_cast<int>(where / kSlotsPerLevel);
  const unsigned digit = where % kSlotsPerLevel;
  TimerNode*& head = slots_[level][digit];
  if (head != nullptr) {
    head->pprev_ = &node.next_;
  } else {
    occupied_[level] |= uint64_t{1} << digit;
    occupied_levels_ |= 1u << level;
  }
  node.next_ = head;
  node.pprev_ = &head;
  node.sequence_ = (node.sequence_ & ~TimerNode::kSlotMask) | where;
  head = &node;
}

void TimerWheel::unlink_from_slot(TimerNode& node) noexcept {
  TimerNode** const pprev = node.pprev_;
  TimerNode* const next = node.next_;
  *pprev = next;
  if (next != nullptr) {
    next->pprev_ = pprev;
  } else {
    // The last of its list; the first too when `pprev` is a slot's head, which is then
    // empty. The slot is known from that address alone.
    const auto at = reinterpret_cast<uintptr_t>(pprev);
    const auto first = reinterpret_cast<uintptr_t>(&slots_[0][0]);
    if (at - first < sizeof(slots_)) {
      const std::size_t where = (at - first) / sizeof(TimerNode*);
      const auto level = static_cast<int>(where / kSlotsPerLevel);
      occupied_[level] &= ~(uint64_t{1} << (where % kSlotsPerLevel));
      if (occupied_[level] == 0) occupied_levels_ &= ~(1u << level);
    }
  }
  node.pprev_ = nullptr;
  node.next_ = nullptr;
}

std::size_t TimerWheel::batch_index(const TimerNode& node) const noexcept {
  return sorted_position_[node.batch_entry_];
}

void TimerWheel::relink(TimerNode& node, int64_t deadline) noexcept {
  remove(node);
  // Room in the expiry batch for one more: reserved by make_room() beforehand, where the
  // caller can still report running out of memory; otherwise taken here.
  if (size_ >= room_ && !reserve(size_ + 1))
    detail::fatal("TimerWheel::insert: out of memory (make_room() first reports it instead)");
  node.deadline_ = deadline;
  node.sequence_ = take_sequence();  // link() adds the slot
  link(node);
  ++size_;
}

void TimerWheel::renumber() noexcept {
  // The batch is empty outside expire() and has room for every linked timer (make_room):
  // it lends its memory to sort them by sequence.
  if (!batch_.empty()) {
    if (next_sequence_ < kSequenceEnd) return;  // after this expire()
    detail::fatal("TimerWheel: 2^53 starts within one expire(): start sequences ran out");
  }
  for (auto& level : slots_) {
    for (TimerNode* node : level) {
      for (; node != nullptr; node = node->next_)
        batch_.push_back(Due{node->deadline_, node->sequence(), node, 0});
    }
  }
  std::sort(batch_.begin(), batch_.end(), [](const Due& a, const Due& b) { return a.sequence < b.sequence; });
  uint64_t next = 1;
  for (const Due& due : batch_)
    due.node->sequence_ = (next++ << TimerNode::kSlotBits) | (due.node->sequence_ & TimerNode::kSlotMask);
  batch_.clear();
  next_sequence_ = next;
}

void TimerWheel::remove(TimerNode& node) noexcept {
  if (node.pprev_ == nullptr) return;
  if (in_batch(node)) {
    batch_[batch_index(node)].node = nullptr;  // skipped when its turn comes
    node.pprev_ = nullptr;
    node.next_ = nullptr;
  } else {
    unlink_from_slot(node);
  }
  --size_;
}

int64_t TimerWheel::next_deadline() const noexcept {
  if (occupied_levels_ == 0) return kNoDeadline;
  // Every occupied slot of level L starts after every occupied slot of level L-1 (the
  // lower level only holds the current level-L digit), so the first occupied slot of
  // the lowest occupied level holds the earliest timer.
  const int level = std::countr_zero(occupied_levels_);
  const unsigned digit = static_cast<unsigned>(std::countr_zero(occupied_[level]));
  const uint64_t start = start_of_slot(slot_number(level, digit));
  if (level == 0) return unkey(start) < elapsed_ ? elapsed_ : unkey(start);
  // A short slot is scanned for its exact minimum, sparing the caller an early wake-up.
  // A node moved in place past the slot's range (see insert) makes the minimum of this slot
  // no bound for the others: the slot's start is returned then.
  constexpr int kScanLimit = 16;
  const uint64_t width = uint64_t{1} << (level * kBitsPerLevel);
  int scanned = 0;
  int64_t earliest = kNoDeadline;
  for (const TimerNode* n = slots_[level][digit]; n != nullptr; n = n->next_) {
    if (++scanned > kScanLimit || key(n->deadline_) - start >= width) return unkey(start);
    earliest = std::min(earliest, n->deadline_);
  }
  return earliest;
}

void TimerWheel::collect(int64_t now) noexcept {
  const uint64_t e = key(elapsed_);
  const uint64_t n = key(now);
  TimerNode* cascade_head = nullptr;
  uint32_t levels = occupied_levels_;
  while (levels != 0) {
    const int level = std::countr_zero(levels);
    levels &= levels - 1;
    const int shift = level * kBitsPerLevel;
    const int block_shift = shift + kBitsPerLevel;
    const bool same_block = block_shift >= 64 || (e >> block_shift) == (n >> block_shift);
    const unsigned low = digit_of(e, level);
    const unsigned high = same_block ? digit_of(n, level) : 63;
    const uint64_t range = (~uint64_t{0} << low) & (high == 63 ? ~uint64_t{0} : (uint64_t{1} << (high + 1)) - 1);
    uint64_t due_slots = occupied_[level] & range;
    if (due_slots == 0) break;  // this level's first slot starts after now: so do all higher ones
    occupied_[level] &= ~due_slots;
    if (occupied_[level] == 0) occupied_levels_ &= ~(1u << level);
    while (due_slots != 0) {
      const unsigned digit = static_cast<unsigned>(std::countr_zero(due_slots));
      due_slots &= due_slots - 1;
      // Each node is checked: one moved in place (see insert) may not be due yet.
      TimerNode* node = slots_[level][digit];
      slots_[level][digit] = nullptr;
      const std::size_t run = batch_.size();
      while (node != nullptr) {
        TimerNode* next = node->next_;
        if (node->deadline_ <= now) {
          node->pprev_ = &in_batch_;
          node->batch_entry_ = batch_.size();
          batch_.push_back(Due{node->deadline_, node->sequence(), node, static_cast<uint32_t>(batch_.size())});
        } else {
          // Prepended: the chain, and the lists it is linked into again, keep the
          // newest-first order of the slot.
          node->next_ = cascade_head;
          cascade_head = node;
        }
        node = next;
      }
      // A slot lists its newest node first: reversed, its due timers come in start order,
      // which is deadline order for timers started with one timeout.
      // (Each entry keeps its collection index, which is what its node holds.)
      std::reverse(batch_.begin() + static_cast<std::ptrdiff_t>(run), batch_.end());
    }
  }
  elapsed_ = now;
  while (cascade_head != nullptr) {  // re-insert relative to the new time: a lower level
    TimerNode* next = cascade_head->next_;
    link(*cascade_head);
    cascade_head = next;
  }
}

bool TimerWheel::reserve(std::size_t count) noexcept {
  // The batch's capacity is what make_room() trusts: it grows last.
  if (!sorted_position_.reserve_amortised(count) || !batch_.reserve_amortised(count)) return false;
  room_ = batch_.capacity();
  // The bucket sort's scratch and buckets, for a batch that fills the room up to
  // kBucketSortUpTo (optional: without them the batch is sorted in place). Sized from the
  // batch's room, not from `count`: grown by steps of its own, the scratch lagged behind
  // the batch, and every batch sorted by buckets fell back to a comparison sort.
  if (count >= kBucketSortFrom) {
    const std::size_t most = std::min(batch_.capacity(), kBucketSortUpTo);
    if (scratch_.reserve(most)) (void)bucket_start_.reserve((std::size_t{1} << bucket_bits_for(most)) + 1);
  }
  return true;
}

void TimerWheel::sort_batch() noexcept {
  if (std::is_sorted(batch_.begin(), batch_.end(), earlier<Due>)) {
    // Nothing to sort; the positions are still needed, runs being reversed when collected.
  } else {
    sort_unsorted_batch();
  }
  if (!sorted_position_.resize(batch_.size()))
    detail::fatal("TimerWheel: expiry beyond the room reserved by make_room()");
  for (std::size_t i = 0; i < batch_.size(); ++i)
    sorted_position_[batch_[i].collected] = static_cast<uint32_t>(i);
}

namespace {

// An in-place most-significant-digit radix sort of `n` entries whose deadlines are at
// least `low` and differ from it in the low `bits` bits only: 8 bits a pass, each pass
// one counting pass and one cycle-following permutation (every entry moves once, to
// one of 256 write positions), then the buckets in turn. No memory but the stack (4 KB a
// level, at most 8 levels), where a comparison sort of a million entries makes twenty
// passes over them. Small buckets end with an insertion sort; deadlines all equal, with
// a comparison sort on the sequence.
template <class Entry>
void radix_sort(Entry* a, std::size_t n, int64_t low, int bits) noexcept {
  constexpr std::size_t kSmall = 32;
  // Each step of a cycle loads the entry at the next place of the bucket it has just
  // written to, and the next step waits for that load. 256 write places are more streams
  // than a processor's prefetcher follows, so in a batch larger than the caches each of
  // these loads would miss in turn. Instead, a bucket that takes an entry has its places
  // a few lines further on fetched: 256 buckets' lines ahead fit in the L2 cache.
  constexpr std::size_t kAhead = 256 / sizeof(Entry);
  for (;;) {
    if (n <= kSmall) {
      for (std::size_t i = 1; i < n; ++i) {
        const Entry v = a[i];
        std::size_t j = i;
        for (; j > 0 && earlier(v, a[j - 1]); --j)
          a[j] = a[j - 1];
        a[j] = v;
      }
      return;
    }
    if (bits <= 0) {
      std::sort(a, a + n, earlier<Entry>);
      return;
    }
    const int step = bits < 8 ? bits : 8;
    const int shift = bits - step;
    const uint64_t mask = (uint64_t{1} << step) - 1;
    auto digit = [low, shift, mask](const Entry& e) {
      return static_cast<std::size_t>(((static_cast<uint64_t>(e.deadline) - static_cast<uint64_t>(low)) >> shift) &
                                      mask);
    };
    std::size_t count[256] = {};
    for (std::size_t i = 0; i < n; ++i)
      ++count[digit(a[i])];
    if (count[digit(a[0])] == n) {  // one bucket: the next digit
      bits = shift;
      continue;
    }
    std::size_t next[256], end[256];
    std::size_t at = 0;
    for (std::size_t b = 0; b <= mask; ++b) {
      next[b] = at;
      at += count[b];
      end[b] = at;
    }
    for (std::size_t b = 0; b <= mask; ++b) {
      while (next[b] < end[b]) {
        Entry v = a[next[b]];
        std::size_t d = digit(v);
        while (d != b) {  // follow the cycle: each entry lands in its bucket's next place
          const Entry displaced = a[next[d]];
          a[next[d]++] = v;
          prefetch_for_write(a + std::min(next[d] + kAhead, n - 1));
          v = displaced;
          d = digit(v);
        }
        a[next[b]++] = v;
      }
    }
    std::size_t begin = 0;
    for (std::size_t b = 0; b <= mask; ++b) {
      if (count[b] > 1) radix_sort(a + begin, count[b], low, shift);
      begin += count[b];
    }
    return;
  }
}

}  // namespace

void TimerWheel::sort_unsorted_batch() noexcept {
  if (batch_.size() < kBucketSortFrom) {
    std::sort(batch_.begin(), batch_.end(), earlier<Due>);
    return;
  }
  int64_t low = batch_[0].deadline, high = low;
  for (const Due& due : batch_) {
    low = std::min(low, due.deadline);
    high = std::max(high, due.deadline);
  }
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  const int range_bits = range == 0 ? 0 : 64 - std::countl_zero(range);
  const int bucket_bits = bucket_bits_for(batch_.size());
  const std::size_t buckets = std::size_t{1} << bucket_bits;
  if (batch_.size() > kBucketSortUpTo || scratch_.capacity() < batch_.size() || bucket_start_.capacity() <= buckets) {
    radix_sort(batch_.data(), batch_.size(), low, range_bits);  // large, or no scratch was reserved
  } else {
    // One counting-sort pass on the top bits of (deadline - min) spreads a large batch
    // over ~n/8 buckets in two linear passes; each bucket is then small to sort. Far
    // cheaper than a comparison sort of the whole batch when many timers are due.
    const int shift = range_bits > bucket_bits ? range_bits - bucket_bits : 0;
    bucket_start_.clear();
    (void)bucket_start_.resize(buckets + 1);  // within the capacity checked above: zeroes
    auto bucket_of = [&](const Due& due) {
      return static_cast<std::size_t>((static_cast<uint64_t>(due.deadline) - static_cast<uint64_t>(low)) >> shift);
    };
    for (const Due& due : batch_)
      ++bucket_start_[bucket_of(due) + 1];
    for (std::size_t b = 0; b < buckets; ++b)
      bucket_start_[b + 1] += bucket_start_[b];
    (void)scratch_.resize(batch_.size());  // within the capacity checked above
    for (const Due& due : batch_)
      scratch_[bucket_start_[bucket_of(due)]++] = due;
    // bucket_start_[b] now holds the end of bucket b, i.e. the start of bucket b + 1.
    std::size_t begin = 0;
    for (std::size_t b = 0; b < buckets; ++b) {
      const std::size_t end = bucket_start_[b];
      if (end - begin > 1)
        std::sort(scratch_.begin() + static_cast<std::ptrdiff_t>(begin),
                  scratch_.begin() + static_cast<std::ptrdiff_t>(end), earlier<Due>);
      begin = end;
    }
    std::copy(scratch_.begin(), scratch_.end(), batch_.begin());  // the batch keeps its room (make_room)
  }
}

void TimerWheel::abandon_expiry() noexcept {
  for (Due& due : batch_) {
    if (due.node != nullptr) link(*due.node);  // still counted in size_: it never stopped being linked
  }
  batch_.clear();
}

void TimerWheel::rebase(int64_t now) noexcept {
  TimerNode* all = nullptr;
  for (int level = 0; level < kLevels; ++level) {
    for (TimerNode*& head : slots_[level]) {
      while (head != nullptr) {  // prepended: the chain keeps the slots' newest-first order
        TimerNode* node = head;
        head = node->next_;
        node->next_ = all;
        all = node;
      }
    }
    occupied_[level] = 0;
  }
  occupied_levels_ = 0;
  elapsed_ = now;
  while (all != nullptr) {
    TimerNode* next = all->next_;
    link(*all);
    all = next;
  }
}

}  // namespace evflow::detail
