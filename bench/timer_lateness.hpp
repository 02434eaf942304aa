// The timer-lateness workload (BENCH.md workload 3), shared by bench/timer_bench.cpp and
// bench/windows/iocp_bench.cpp: 10 rounds of 1000 timers at uniform random offsets in
// [0.1, 5] ms on the real clock; lateness = callback time - deadline.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <evflow/evflow.hpp>

namespace evflow::bench {

struct Lateness {
  std::vector<double> microseconds;  // one per timer, sorted by finish()
  long early = 0;                    // callbacks before their deadline: must stay 0

  void finish() { std::sort(microseconds.begin(), microseconds.end()); }
  // The p-quantile (0 <= p <= 1). Precondition: finish() was called, a sample exists.
  double quantile(double p) const {
    return microseconds[static_cast<size_t>(p * static_cast<double>(microseconds.size() - 1))];
  }
};

// Runs the workload on `loop` (open, with no other watchers), adding to `out`.
inline void measure_timer_lateness(Loop& loop, Lateness& out) {
  std::mt19937_64 rng(2024);
  std::uniform_int_distribution<int64_t> offset(100'000, 5'000'000);
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<Timer>> timers;
    loop.update_now();
    for (int i = 0; i < 1000; ++i) {
      timers.push_back(std::make_unique<Timer>(loop));
      (void)timers.back()->start(std::chrono::nanoseconds(offset(rng)), [&out](Timer& self) {
        const int64_t late = detail::monotonic_ns() - self.when().time_since_epoch().count();
        if (late < 0) ++out.early;
        out.microseconds.push_back(static_cast<double>(late) / 1000.0);
      });
    }
    (void)loop.run();
  }
}

}  // namespace evflow::bench
