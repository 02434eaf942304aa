// Differential fuzzer: TimerWheel against an ordered map keyed by (deadline, start order).
//
// The input is a sequence of operations on up to 1024 timers: insert (start or restart)
// at an arbitrary deadline (near, far, past, equal to another timer's, on a level
// boundary, at the ends of the int64 range), remove, expire at an arbitrary time, expire
// at next_deadline(), rebase (the clock moves backwards or forwards), clear, and bursts
// of hundreds of timers due together (the large-batch sort). Callbacks fired by expire()
// insert and remove other timers and themselves, as a loop's callbacks do.
//
// After every step the wheel must agree with the reference exactly: the same timers fire
// in the same order, the same timers stay linked with the same deadlines, the sizes and
// the wheel's time match, next_deadline() is never later than the earliest deadline,
// and expiring at next_deadline() reaches the earliest timer in a bounded number of steps.
#include "timers/timer_wheel.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "fuzz/fuzz_input.hpp"

namespace {

using evflow::detail::kNoDeadline;
using evflow::detail::TimerNode;
using evflow::detail::TimerWheel;
using evflow::fuzz::clamped_add;
using evflow::fuzz::FuzzInput;

constexpr int kTimers = 1024;

// What the wheel should hold: timers ordered by (deadline, start sequence).
struct Reference {
  using Key = std::pair<int64_t, uint64_t>;
  std::map<Key, int> queue;
  struct State {
    bool linked = false;
    Key key{};
  };
  State timers[kTimers];
  int64_t elapsed = 0;
  uint64_t next_sequence = 0;

  // The batch of the expire() in progress: timers due, in firing order; -1 once removed.
  std::vector<int> batch;
  std::vector<size_t> batch_position;  // per timer: index in batch, or SIZE_MAX
  size_t batch_cursor = 0;

  Reference() : batch_position(kTimers, SIZE_MAX) {}

  void unlink(int id) {
    State& s = timers[id];
    if (!s.linked) return;
    s.linked = false;
    if (batch_position[id] != SIZE_MAX) {  // waiting in the batch: it will not fire now
      batch[batch_position[id]] = -1;
      batch_position[id] = SIZE_MAX;
    } else {
      queue.erase(s.key);
    }
  }
  void insert(int id, int64_t deadline) {
    FUZZ_TRACE("insert %d at %lld\n", id, static_cast<long long>(deadline));
    unlink(id);
    timers[id].linked = true;
    timers[id].key = {deadline, next_sequence++};
    queue.emplace(timers[id].key, id);
  }
  int64_t earliest() const { return queue.empty() ? kNoDeadline : queue.begin()->first.first; }
  // Moves every timer due at `now` into the batch, in firing order.
  void begin_expire(int64_t now) {
    if (now < elapsed) now = elapsed;
    elapsed = now;
    batch.clear();
    batch_cursor = 0;
    while (!queue.empty() && queue.begin()->first.first <= now) {
      const int id = queue.begin()->second;
      batch_position[id] = batch.size();
      batch.push_back(id);
      queue.erase(queue.begin());
    }
  }
  // The timer that must fire next in this batch, or -1.
  int next_due() {
    while (batch_cursor < batch.size() && batch[batch_cursor] < 0)
      ++batch_cursor;
    if (batch_cursor == batch.size()) return -1;
    const int id = batch[batch_cursor++];
    batch_position[id] = SIZE_MAX;
    timers[id].linked = false;
    return id;
  }
};

struct Harness {
  std::unique_ptr<TimerNode[]> nodes{new TimerNode[kTimers]};
  std::unique_ptr<TimerWheel> wheel;
  Reference ref;
  FuzzInput& in;
  bool expiring = false;

  explicit Harness(FuzzInput& input) : in(input) {}

  int id_of(const TimerNode& node) const { return static_cast<int>(&node - nodes.get()); }

  // Deadlines the wheel finds hard: level boundaries, both ends of the range, the past,
  // ties with other timers, and everything in between.
  int64_t pick_time(int64_t base) {
    switch (in.below(8)) {
      case 0:
        return clamped_add(base, in.byte());
      case 1:
        return clamped_add(base, static_cast<int64_t>(in.bits(2)) << in.below(47));  // < 2^62: no overflow
      case 2:
        return clamped_add(base, -(static_cast<int64_t>(in.bits(2)) << in.below(47)));
      case 3:
        return kNoDeadline - in.byte();
      case 4:
        return INT64_MIN + in.byte();
      case 5: {
        const int shift = 6 * (1 + in.below(10));
        const int64_t width = shift >= 63 ? INT64_MAX : int64_t{1} << shift;
        const int64_t start = base >= 0 ? base - base % width : base;
        return clamped_add(clamped_add(start, width), static_cast<int64_t>(in.below(3)) - 1);
      }
      case 6: {
        const auto& other = ref.timers[in.below(kTimers)];
        return other.linked ? other.key.first : base;
      }
      default:
        return in.int64();
    }
  }

  void insert(int id, int64_t deadline) {
    FUZZ_TRACE("insert %d at %lld\n", id, static_cast<long long>(deadline));
    wheel->insert(nodes[id], deadline);
    ref.insert(id, deadline);
    FUZZ_CHECK(nodes[id].linked() && nodes[id].deadline() == deadline, "insert links the node at its deadline");
  }
  void remove(int id) {
    FUZZ_TRACE("remove %d\n", id);
    wheel->remove(nodes[id]);
    ref.unlink(id);
    FUZZ_CHECK(!nodes[id].linked(), "remove unlinks");
  }

  // What a callback does to the wheel while its batch is being fired.
  void from_callback(int self) {
    switch (in.below(6)) {
      case 0:
        remove(static_cast<int>(in.below(kTimers)));
        break;
      case 1:
        insert(static_cast<int>(in.below(kTimers)), pick_time(ref.elapsed));
        break;
      case 2:
        insert(self, pick_time(ref.elapsed));  // a repeating timer rescheduling itself
        break;
      case 3:
        advance_sequences();  // renumbering is deferred until the batch is done
        break;
      default:
        break;
    }
  }

  // Start sequences near their end: a coming start renumbers the linked timers, which
  // must keep their order.
  void advance_sequences() {
    if (in.below(4) != 0) return;
    FUZZ_TRACE("sequences near their end\n");
    wheel->advance_sequence_for_testing(TimerWheel::kRenumberFrom - in.below(4));
  }

  size_t expire(int64_t now) {
    FUZZ_TRACE("expire %lld\n", static_cast<long long>(now));
    ref.begin_expire(now);
    expiring = true;
    size_t fired = 0;
    const size_t returned = wheel->expire(now, [&](TimerNode& node) {
      const int id = id_of(node);
      const int expected = ref.next_due();
      FUZZ_CHECK(expected >= 0, "a timer fired that the reference does not have due");
      FUZZ_TRACE("  fired %d (expected %d)\n", id, expected);
      FUZZ_CHECK(id == expected, "timers fire in (deadline, start order) order");
      FUZZ_CHECK(!node.linked(), "a node is unlinked before its callback");
      FUZZ_CHECK(node.deadline() <= ref.elapsed, "nothing fires before its deadline");
      ++fired;
      from_callback(id);
    });
    expiring = false;
    FUZZ_CHECK(ref.next_due() == -1, "every due timer fired");
    FUZZ_CHECK(returned == fired, "expire() returns how many fired");
    return fired;
  }

  void check_agreement() {
    FUZZ_CHECK(wheel->size() == ref.queue.size(), "sizes agree");
    FUZZ_CHECK(wheel->empty() == ref.queue.empty(), "empty() agrees");
    FUZZ_CHECK(wheel->elapsed() == ref.elapsed, "the wheel's time agrees");
    const int64_t next = wheel->next_deadline();
    if (ref.queue.empty()) {
      FUZZ_CHECK(next == kNoDeadline, "an empty wheel has no next deadline");
    } else {
      FUZZ_TRACE("  next_deadline %lld earliest %lld\n", static_cast<long long>(next),
                 static_cast<long long>(ref.earliest()));
      // A timer started in the past is due at once: at the wheel's time.
      FUZZ_CHECK(next <= std::max(ref.earliest(), ref.elapsed), "next_deadline() is a lower bound");
    }
  }

  void check_every_node() {
    for (int id = 0; id < kTimers; ++id) {
      FUZZ_CHECK(nodes[id].linked() == ref.timers[id].linked, "linked() agrees");
      if (ref.timers[id].linked) FUZZ_CHECK(nodes[id].deadline() == ref.timers[id].key.first, "deadlines agree");
    }
  }

  void run() {
    const int64_t start = pick_time(0);
    wheel = std::make_unique<TimerWheel>(start);
    FUZZ_TRACE("wheel at %lld\n", static_cast<long long>(start));
    ref.elapsed = start;
    int steps = 0;
    while (!in.done()) {
      switch (in.below(10)) {
        case 0:
        case 1:
        case 2:
          insert(static_cast<int>(in.below(kTimers)), pick_time(ref.elapsed));
          break;
        case 3:
          remove(static_cast<int>(in.below(kTimers)));
          break;
        case 4:
        case 5:
          expire(pick_time(ref.elapsed));
          break;
        case 6: {
          // A loop sleeps until next_deadline() and expires there: it must reach the
          // earliest timer in a few such steps (each one moves timers closer), never spin.
          int64_t previous = INT64_MIN;
          for (int round = 0;; ++round) {
            const int64_t next = wheel->next_deadline();
            if (next == kNoDeadline) break;
            // Each round moves timers down a level or re-files one moved later in place
            // (insert()), so the rounds are bounded by the levels plus the timers.
            FUZZ_CHECK(round < 2 * TimerWheel::kLevels + 2 + static_cast<int>(ref.queue.size()),
                       "expiring at next_deadline() makes progress");
            FUZZ_CHECK(round == 0 || next > previous, "next_deadline() advances when nothing fired");
            previous = next;
            if (expire(next) > 0) break;
            check_agreement();
          }
          break;
        }
        case 7:
          // The clock was set: move the wheel's time, keep every timer and its order.
          ref.elapsed = pick_time(ref.elapsed);
          FUZZ_TRACE("rebase %lld\n", static_cast<long long>(ref.elapsed));
          wheel->rebase(ref.elapsed);
          break;
        case 8: {
          // Hundreds due at once: the batch sort's bucket pass.
          const int count = 256 + static_cast<int>(in.below(kTimers - 256));
          const int64_t base = pick_time(ref.elapsed);
          const int spread = static_cast<int>(in.below(4));
          for (int i = 0; i < count; ++i) {
            const int64_t deadline =
                clamped_add(base, spread == 0 ? 0 : static_cast<int64_t>(in.byte()) << (spread * 8));
            insert((i * 7 + static_cast<int>(in.below(16))) % kTimers, deadline);
          }
          break;
        }
        default:
          if (in.below(8) == 1) advance_sequences();
          if (in.below(8) == 0) {
            size_t visited = 0;
            const size_t size = wheel->size();
            wheel->clear([&](TimerNode& node) {
              FUZZ_CHECK(!node.linked(), "clear() unlinks before the callback");
              FUZZ_CHECK(ref.timers[id_of(node)].linked, "clear() visits only linked timers");
              ref.timers[id_of(node)].linked = false;
              ++visited;
            });
            ref.queue.clear();
            FUZZ_CHECK(visited == size, "clear() visits every timer once");
          }
          break;
      }
      check_agreement();
      if (++steps % 16 == 0) check_every_node();
    }
    check_every_node();
    wheel->clear([](TimerNode&) {});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Harness harness(in);
  harness.run();
  return 0;
}
