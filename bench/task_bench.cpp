// Coroutine task benchmarks, evflow and Asio's C++20 coroutines side by side in one run.
//
//   make bench BENCH_ARGS=--benchmark_filter=Task
//
// Each workload runs inside one driver coroutine on one thread, N operations per
// benchmark iteration batch, and reports ns per operation and heap allocations per
// operation (a counting operator new in this program):
//   SpawnJoin    spawn a task that returns at once, then await its end
//                (evflow: spawn + co_await handle.join(); Asio: co_await co_spawn(..., use_awaitable))
//   AwaitReady   co_await a task that completes at once (evflow Task<int>, asio::awaitable<int>)
//   Yield        give way to the loop and be resumed (evflow yield(); Asio co_await post(use_awaitable))
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include <evflow/evflow.hpp>
#include <evflow/tasks.hpp>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wcast-align"
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#pragma GCC diagnostic pop

#if defined(__GNUC__) && !defined(__clang__)
// The replaced operators below pair malloc with free; g++ cannot see that they match.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

std::atomic<long> g_allocations{0};

}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

constexpr long kBatch = 10'000;

// Runs `batch(n)` (a driver doing n operations) for the benchmark, with the counters.
template <class Batch>
void measure(benchmark::State& state, Batch batch) {
  long operations = 0;
  long allocations = 0;
  batch(kBatch);  // warm: pools and free lists reach their steady size
  for (auto _ : state) {
    const long before = g_allocations.load(std::memory_order_relaxed);
    batch(kBatch);
    allocations += g_allocations.load(std::memory_order_relaxed) - before;
    operations += kBatch;
  }
  state.SetItemsProcessed(operations);
  state.counters["ns/op"] =
      benchmark::Counter(static_cast<double>(operations), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["allocs/op"] = static_cast<double>(allocations) / static_cast<double>(operations ? operations : 1);
}

// --- evflow ------------------------------------------------------------------------

evflow::Task<int> evflow_trivial(int v) { co_return v; }

// Runs driver(loop, n), a task giving n once its n operations went through, on one loop
// kept for the whole benchmark (its frame pool warm, as in a server).
template <class Driver>
void measure_evflow(benchmark::State& state, Driver driver) {
  evflow::Loop loop;
  if (loop.open()) std::abort();
  measure(state, [&](long n) {
    if (evflow::run_until_complete(loop, driver, &loop, n).value() != n) std::abort();
  });
}

void BM_TaskSpawnJoin_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop* loop, long count) -> evflow::Task<long> {
    long sum = 0;
    for (long i = 0; i < count; ++i) {
      auto handle = evflow::spawn(*loop, evflow_trivial, 1);
      sum += (co_await handle.join()).value();
    }
    co_return sum;
  });
}

void BM_TaskAwaitReady_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    long sum = 0;
    for (long i = 0; i < count; ++i)
      sum += co_await evflow_trivial(1);
    co_return sum;
  });
}

void BM_TaskYield_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    long done = 0;
    for (long i = 0; i < count; ++i)
      if (!co_await evflow::yield()) ++done;
    co_return done;
  });
}

// --- Asio ----------------------------------------------------------------------------

asio::awaitable<int> asio_trivial(int v) { co_return v; }

template <class Driver>
void run_asio(long n, Driver driver) {
  asio::io_context context(1);
  long result = 0;
  asio::co_spawn(context, driver(n, &result), asio::detached);
  context.run();
  if (result != n) std::abort();
}

void BM_TaskSpawnJoin_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      long sum = 0;
      for (long i = 0; i < count; ++i)
        sum += co_await asio::co_spawn(executor, asio_trivial(1), asio::use_awaitable);
      *out = sum;
    });
  });
}

void BM_TaskAwaitReady_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      long sum = 0;
      for (long i = 0; i < count; ++i)
        sum += co_await asio_trivial(1);
      *out = sum;
    });
  });
}

void BM_TaskYield_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      long done = 0;
      for (long i = 0; i < count; ++i) {
        co_await asio::post(executor, asio::use_awaitable);
        ++done;
      }
      *out = done;
    });
  });
}

BENCHMARK(BM_TaskSpawnJoin_evflow);
BENCHMARK(BM_TaskSpawnJoin_asio);
BENCHMARK(BM_TaskAwaitReady_evflow);
BENCHMARK(BM_TaskAwaitReady_asio);
BENCHMARK(BM_TaskYield_evflow);
BENCHMARK(BM_TaskYield_asio);

}  // namespace

BENCHMARK_MAIN();
