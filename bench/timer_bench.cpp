// Timer benchmarks (BENCH.md workloads 2 and 3), through the public Timer API.
//
//   make bench BENCH_ARGS=--benchmark_filter=Churn
//   make bench BENCH_ARGS=--benchmark_filter=Lateness
//   make bench BENCH_ARGS=--benchmark_filter=FirstBurst
//
// Churn: N timers; ns per operation for start, restart to a random deadline (10 s +
// U(0, 1 s)), restart to a deadline later than all others (again(), the idle-timeout
// pattern), stop, and expire (all due, drained by one non-blocking loop iteration).
// The loop runs on a fake clock so that expiry needs no real waiting.
//
// Lateness: 10 rounds of 1000 timers at uniform random offsets in [0.1, 5] ms, on the
// real clock; lateness = callback time - deadline, in microseconds.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include <evflow/evflow.hpp>
#include "bench/timer_lateness.hpp"

namespace {

using namespace std::chrono_literals;

struct FakeClock {
  int64_t monotonic = 1'000'000'000;
  evflow::ClockSource source{[](void* self) { return static_cast<FakeClock*>(self)->monotonic; },
                             [](void*) { return int64_t{1'700'000'000'000'000'000}; }, this};
};

struct ChurnSetup {
  FakeClock clock;
  evflow::Loop loop;
  std::vector<std::unique_ptr<evflow::Timer>> timers;
  std::vector<std::chrono::nanoseconds> random_after;
  long fired = 0;

  explicit ChurnSetup(size_t n) {
    (void)loop.open();
    (void)loop.set_clock(&clock.source);
    std::mt19937_64 rng(12345);
    std::uniform_int_distribution<int64_t> jitter(0, 1'000'000'000);
    timers.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      timers.push_back(std::make_unique<evflow::Timer>(loop));
      random_after.push_back(10s + std::chrono::nanoseconds(jitter(rng)));
    }
  }
  void start_all() {
    for (size_t i = 0; i < timers.size(); ++i)
      (void)timers[i]->start(random_after[i], [this] { ++fired; });
  }
  void stop_all() {
    for (auto& t : timers)
      t->stop();
  }
};

template <class Op>
double time_ns_per_op(size_t n, Op&& op) {
  const auto start = std::chrono::steady_clock::now();
  op();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()) /
         static_cast<double>(n);
}

void report(benchmark::State& state, const char* name, double ns) { state.counters[name] = benchmark::Counter(ns); }

// Each operation is timed over all N timers per benchmark iteration; the reported
// counters are the averages (ns per timer) over the iterations.
void BM_TimerChurn(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  ChurnSetup s(n);
  double start_ns = 0, random_ns = 0, fifo_ns = 0, stop_ns = 0, expire_ns = 0;
  std::vector<std::chrono::nanoseconds> rerandom = s.random_after;
  std::shuffle(rerandom.begin(), rerandom.end(), std::mt19937_64(99));
  for (auto _ : state) {
    start_ns += time_ns_per_op(n, [&] { s.start_all(); });
    random_ns += time_ns_per_op(n, [&] {
      for (size_t i = 0; i < n; ++i)
        (void)s.timers[i]->start(rerandom[i]);
    });
    fifo_ns += time_ns_per_op(n, [&] {
      for (auto& t : s.timers)
        (void)t->again();  // 10 s + jitter from the same now(): later than all
    });
    stop_ns += time_ns_per_op(n, [&] { s.stop_all(); });
    s.start_all();
    s.clock.monotonic += 20'000'000'000;  // everything is due
    const long before = s.fired;
    expire_ns += time_ns_per_op(n, [&] { (void)s.loop.run(evflow::RunMode::NoWait); });
    if (s.fired - before != static_cast<long>(n)) state.SkipWithError("not every timer fired");
  }
  const double iterations = static_cast<double>(state.iterations());
  report(state, "start_ns", start_ns / iterations);
  report(state, "restart_random_ns", random_ns / iterations);
  report(state, "restart_fifo_ns", fifo_ns / iterations);
  report(state, "stop_ns", stop_ns / iterations);
  report(state, "expire_ns", expire_ns / iterations);
}
BENCHMARK(BM_TimerChurn)->Arg(1000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->Iterations(3);

// The first burst: N timers, all due at once, expired by the first iteration of a fresh
// loop, against the second burst of the same loop; ns per timer. The expiry room grows
// with the timers started (the first burst allocates nothing), but as address space the
// kernel maps during that burst; with Loop::reserve_timers(N) first (reserved:1) it is
// mapped before.
void BM_TimerFirstBurst(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const bool reserved = state.range(1) != 0;
  double first_ns = 0, second_ns = 0;
  for (auto _ : state) {
    ChurnSetup s(n);
    if (reserved && s.loop.reserve_timers(n)) state.SkipWithError("reserve_timers failed");
    s.start_all();
    s.clock.monotonic += 20'000'000'000;  // everything is due
    first_ns += time_ns_per_op(n, [&] { (void)s.loop.run(evflow::RunMode::NoWait); });
    s.start_all();
    s.clock.monotonic += 20'000'000'000;
    second_ns += time_ns_per_op(n, [&] { (void)s.loop.run(evflow::RunMode::NoWait); });
    if (s.fired != static_cast<long>(2 * n)) state.SkipWithError("not every timer fired");
  }
  const double iterations = static_cast<double>(state.iterations());
  report(state, "first_burst_ns", first_ns / iterations);
  report(state, "second_burst_ns", second_ns / iterations);
}
BENCHMARK(BM_TimerFirstBurst)
    ->ArgsProduct({{10'000, 1'000'000}, {0, 1}})
    ->ArgNames({"timers", "reserved"})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5);

// Default: the automatic choice (a timerfd under the default 50 us slack); LowSlack:
// slack lowered to 1 ns (epoll_pwait2); Pwait2DefaultSlack: epoll_pwait2 forced under the
// default slack, the path libraries that only use a nanosecond timeout get.
enum class LatenessMode { Default, LowSlack, Pwait2DefaultSlack };

void BM_TimerLateness(benchmark::State& state) {
  const auto mode = static_cast<LatenessMode>(state.range(0));
  evflow::bench::Lateness lateness;
  for (auto _ : state) {
    evflow::Loop loop;
    (void)loop.open();
    const auto slack_before = evflow::Loop::timer_slack();
    if (mode == LatenessMode::LowSlack) (void)loop.set_timer_slack(1ns);
    if (mode == LatenessMode::Pwait2DefaultSlack) loop.request_sleep_path(evflow::SleepPath::Nanoseconds);
    evflow::bench::measure_timer_lateness(loop, lateness);
    if (mode == LatenessMode::LowSlack && slack_before.count() > 0) (void)loop.set_timer_slack(slack_before);
  }
  lateness.finish();
  state.counters["p50_us"] = lateness.quantile(0.50);
  state.counters["p90_us"] = lateness.quantile(0.90);
  state.counters["p99_us"] = lateness.quantile(0.99);
  state.counters["max_us"] = lateness.quantile(1.0);
  state.counters["early"] = static_cast<double>(lateness.early);
  evflow::Loop probe;
  (void)probe.open();
  if (mode == LatenessMode::LowSlack) (void)probe.set_timer_slack(1ns);
  if (mode == LatenessMode::Pwait2DefaultSlack) probe.request_sleep_path(evflow::SleepPath::Nanoseconds);
  state.counters["path"] = static_cast<double>(probe.sleep_path());  // 0 ns, 1 timerfd, 2 ms
  if (mode == LatenessMode::LowSlack) (void)probe.set_timer_slack(50us);
}
BENCHMARK(BM_TimerLateness)
    ->ArgName("mode")
    ->Arg(static_cast<int>(LatenessMode::Default))
    ->Arg(static_cast<int>(LatenessMode::LowSlack))
    ->Arg(static_cast<int>(LatenessMode::Pwait2DefaultSlack))
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_TimerSizeof(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(sizeof(evflow::Timer));
  state.counters["sizeof_Timer"] = static_cast<double>(sizeof(evflow::Timer));
  state.counters["sizeof_Io"] = static_cast<double>(sizeof(evflow::Io));
}
BENCHMARK(BM_TimerSizeof)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
