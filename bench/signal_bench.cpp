// Signal delivery latency: from kill() to the Signal callback in a blocked loop.
//
//   make bench BENCH_ARGS=--benchmark_filter=Signal
//
// A sender thread records the monotonic time and sends SIGUSR1 to the process; the
// loop thread, blocked in run(), records the time its callback runs. 2000 rounds;
// p50/p99/max in microseconds. Mode 0: evflow's handler (the signal is not blocked).
// Mode 1: signalfd (the signal is blocked in every thread before any thread starts).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>

namespace {

void BM_SignalLatency(benchmark::State& state) {
  const bool use_signalfd = state.range(0) == 1;
  std::vector<double> latency_us;
  for (auto _ : state) {
    sigset_t block, previous;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    if (use_signalfd) pthread_sigmask(SIG_BLOCK, &block, &previous);  // inherited by the sender
    evflow::Loop loop;
    (void)loop.open();
    constexpr int kRounds = 2000;
    std::atomic<int64_t> sent_at{0};
    std::atomic<int> delivered{0};
    evflow::Signal signal(loop);
    evflow::Async quit(loop);
    (void)signal.start(SIGUSR1, [&] {
      const int64_t now = evflow::detail::monotonic_ns();
      latency_us.push_back(static_cast<double>(now - sent_at.load()) / 1000.0);
      delivered.fetch_add(1);
    });
    (void)quit.start([&] {
      signal.stop();
      quit.stop();
    });
    std::thread sender([&] {
      for (int i = 0; i < kRounds; ++i) {
        sent_at.store(evflow::detail::monotonic_ns());
        ::kill(::getpid(), SIGUSR1);
        while (delivered.load() <= i)
          std::this_thread::yield();  // one in flight at a time
      }
      quit.send();
    });
    (void)loop.run();
    sender.join();
    if (use_signalfd) pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }
  std::sort(latency_us.begin(), latency_us.end());
  auto pct = [&](double p) { return latency_us[static_cast<size_t>(p * static_cast<double>(latency_us.size() - 1))]; };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["max_us"] = latency_us.back();
}
BENCHMARK(BM_SignalLatency)->ArgName("signalfd")->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
