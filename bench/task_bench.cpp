// Coroutine task benchmarks: evflow, Asio's C++20 coroutines and Boost.Fiber (stackful)
// (and, for the work sent to a thread pool, libuv's uv_queue_work)
// side by side in one run.
//
//   make bench BENCH_ARGS=--benchmark_filter=Task
//
// Each workload runs inside one driver (a coroutine, or for Boost.Fiber the main fiber) on
// one thread, N operations per benchmark iteration batch, and reports ns per operation and
// heap allocations per operation (a counting operator new in this program; Boost.Fiber's
// stacks, which come from malloc, are counted by the stack allocator handed to each fiber):
//   SpawnJoin    spawn a task that returns at once, then await its end
//                (evflow: spawn + co_await handle.join(); Asio: co_await co_spawn(..., use_awaitable);
//                Boost.Fiber: a fiber with the default stack + join())
//   AwaitReady   co_await a task that completes at once (evflow Task<int>, asio::awaitable<int>)
//   Yield        give way to the scheduler and be resumed (evflow yield(); Asio co_await
//                post(use_awaitable); Boost.Fiber this_fiber::yield() in two fibers taking
//                turns, each yield one switch to the other)
//   SleepZero    a sleep of zero: a timer armed, due at once, fired by the loop
//                (evflow sleep(0ns); Asio a steady_timer, expires_after(0ns), async_wait)
//   FailureAsValue / FailureAsException
//                co_await a task that fails at once, the awaiting driver noticing the failure:
//                evflow Task<Result<int>> giving Error(EIO) (failure as a value); Asio an
//                awaitable<int> throwing an exception the driver catches (the way Asio's
//                awaitables report failure). The exception object and the record of its
//                rethrow come from malloc in the C++ runtime, outside the count: two per failure.
//   GatherTwo    await two tasks that return at once, side by side, for both values
//                (evflow gather(all, a, b); Asio co_await (a && b), awaitable_operators)
//   GatherHundred  the same over a std::vector of 100 tasks, per gather (evflow gather(all,
//                vector); evflow alone: Asio 1.22's make_parallel_group has no range form)
//   GroupThousand  a TaskGroup whose body spawns 1,000 children that return at once, awaited
//                to the end; per child (evflow alone)
//   GroupCancelThousand  a TaskGroup of 1,000 children, each in sleep(1h): from
//                group.cancel() to the end of run(), per cancel of the 1,000 (evflow alone)
//   GeneratorValue  one value from a generator to the coroutine consuming it, a generator
//                of 10,000 values per batch (evflow Generator<int> and co_await next() in a
//                task; Asio experimental::coro<int> consumed by a coro<void, long> with
//                co_await, the consumer resumed once per batch from the driver)
//   HandoffNotification  one value from a producer task to a consumer task through a slot
//                and two Notifications, one each way (evflow alone)
//   LockHandoff  one hand-off of a Lock between two tasks that take it in turn (evflow alone)
//   ChannelPingPong  one round trip of a value between two tasks over two rendezvous
//                channels (capacity 0), one each way (evflow Channel<long>; Asio
//                experimental::channel<void(error_code, long)> with use_awaitable)
//   ToThread     one round trip of trivial work to a pool of one thread and back to the
//                loop's thread, one at a time (evflow co_await to_thread(pool, fn) in a task;
//                Asio asio::post to a thread_pool(1) whose handler posts the answer back to
//                the io_context; libuv uv_queue_work with UV_THREADPOOL_SIZE=1, the next work
//                queued from the after-work callback). 1,000 round trips per batch.
//   ThreadChannel  one value from a producer thread, blocked by back-pressure whenever the
//                channel is full, to a task on a loop in the benchmark's thread
//                (evflow ThreadChannel<long> of capacity 64, send() and co_await receive();
//                evflow alone)
//   CallSoon     one callback scheduled to run soon and run by the loop, in rounds of 100
//                calls then one pass of the loop (evflow EventLoop::call_soon and a
//                non-blocking Loop::run; Asio post() to an io_context and poll(); libuv's
//                row is in bench/compare/libuv.cpp, the program that links libuv)
//   ProcessRoundTrip  one 8-byte frame to a forked worker (spawn_process) and its echo
//                back, over the MessageChannel's socket pair (evflow alone: no peer has
//                forked workers with a framed channel; the worker is forked once per run)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>
#include <evflow/process.hpp>
#include <evflow/tasks.hpp>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wcast-align"
#include <uv.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/experimental/coro.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <boost/fiber/all.hpp>
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

// Runs `batch(n)` (a driver doing n operations) for the benchmark, with the counters;
// `size` operations per batch.
template <class Batch>
void measure(benchmark::State& state, Batch batch, long size = kBatch) {
  long operations = 0;
  long allocations = 0;
  batch(size);  // warm: pools and free lists reach their steady size
  for (auto _ : state) {
    const long before = g_allocations.load(std::memory_order_relaxed);
    batch(size);
    allocations += g_allocations.load(std::memory_order_relaxed) - before;
    operations += size;
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
void measure_evflow(benchmark::State& state, Driver driver, long size = kBatch) {
  evflow::Loop loop;
  if (loop.open()) std::abort();
  measure(
      state,
      [&](long n) {
        if (evflow::run_until_complete(loop, driver, &loop, n).value() != n) std::abort();
      },
      size);
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

void BM_TaskSleepZero_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    long done = 0;
    for (long i = 0; i < count; ++i)
      if (!co_await evflow::sleep(std::chrono::nanoseconds(0))) ++done;
    co_return done;
  });
}

evflow::Task<evflow::Result<int>> evflow_failing(int code) { co_return evflow::Error(code); }

void BM_TaskFailureAsValue_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    long failed = 0;
    for (long i = 0; i < count; ++i) {
      const evflow::Result<int> result = co_await evflow_failing(EIO);
      if (result.error().code() == EIO) ++failed;
    }
    co_return failed;
  });
}

void BM_TaskGatherTwo_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    long gathered = 0;
    for (long i = 0; i < count; ++i) {
      auto both = co_await evflow::gather(evflow::all, evflow_trivial(1), evflow_trivial(2));
      if (both.ok() && std::get<0>(both.value()) + std::get<1>(both.value()) == 3) ++gathered;
    }
    co_return gathered;
  });
}

constexpr int kGatherWidth = 100;
constexpr long kGatherBatch = 1'000;  // gathers per batch: 100,000 tasks

void BM_TaskGatherHundred_evflow(benchmark::State& state) {
  measure_evflow(
      state,
      [](evflow::Loop*, long count) -> evflow::Task<long> {
        long gathered = 0;
        for (long i = 0; i < count; ++i) {
          std::vector<evflow::Task<int>> tasks;
          tasks.reserve(kGatherWidth);
          for (int k = 0; k < kGatherWidth; ++k)
            tasks.push_back(evflow_trivial(1));
          auto every = co_await evflow::gather(evflow::all, std::move(tasks));
          long sum = 0;
          if (every.ok())
            for (int value : every.value())
              sum += value;
          if (sum == kGatherWidth) ++gathered;
        }
        co_return gathered;
      },
      kGatherBatch);
}

constexpr long kGroupChildren = 1'000;

// A group's body: spawns `children` tasks that return at once, counting those started.
evflow::Task<> spawn_trivial_children(evflow::TaskGroup* group, long children, long* started) {
  for (long i = 0; i < children; ++i)
    if (group->spawn(evflow_trivial, 1).valid()) ++*started;
  co_return;
}

void BM_TaskGroupThousand_evflow(benchmark::State& state) {
  // One operation is one child: a batch of 10,000 is ten groups of 1,000.
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    long started = 0;
    for (long done = 0; done < count; done += kGroupChildren) {
      evflow::TaskGroup group;
      auto ended = co_await group.run(spawn_trivial_children(&group, kGroupChildren, &started));
      if (ended.error() || ended.failed() || group.size() != 0) std::abort();
    }
    co_return started;
  });
}

// What one round of GroupCancelThousand saw, from group.cancel() to the end of run().
struct CancelRound {
  std::chrono::steady_clock::time_point cancelled_at;
  long allocations_at_cancel = 0;
  long asleep = 0;
};

evflow::Task<> sleep_an_hour(long* asleep) {
  ++*asleep;
  static_cast<void>(co_await evflow::sleep(std::chrono::hours(1)));
}

// The body: spawns the sleepers, gives way so that each runs to its sleep, then cancels.
evflow::Task<> spawn_sleepers_then_cancel(evflow::TaskGroup* group, long children, CancelRound* round) {
  for (long i = 0; i < children; ++i)
    static_cast<void>(group->spawn(sleep_an_hour, &round->asleep));
  static_cast<void>(co_await evflow::yield());  // behind every child in the ready queue
  if (round->asleep != children) std::abort();
  round->allocations_at_cancel = g_allocations.load(std::memory_order_relaxed);
  round->cancelled_at = std::chrono::steady_clock::now();
  group->cancel();
}

// One round: nanoseconds from the cancel to the end of run(); `allocations` gets the heap
// allocations of that span.
evflow::Task<long> cancel_round(long children, long* allocations) {
  CancelRound round;
  evflow::TaskGroup group;
  auto ended = co_await group.run(spawn_sleepers_then_cancel(&group, children, &round));
  const auto end = std::chrono::steady_clock::now();
  *allocations = g_allocations.load(std::memory_order_relaxed) - round.allocations_at_cancel;
  if (ended.error() || ended.failed() || !ended.cancelled() || group.size() != 0) std::abort();
  co_return std::chrono::duration_cast<std::chrono::nanoseconds>(end - round.cancelled_at).count();
}

// Manual time: each iteration is one round, timed from the cancel on; the spawns and the
// loop iteration that puts the children to sleep are left out.
void BM_TaskGroupCancelThousand_evflow(benchmark::State& state) {
  evflow::Loop loop;
  if (loop.open()) std::abort();
  long allocations = 0;
  if (!evflow::run_until_complete(loop, cancel_round, kGroupChildren, &allocations).ok()) std::abort();  // warm
  double seconds = 0;
  long total_allocations = 0;
  long rounds = 0;
  for (auto _ : state) {
    const long ns = evflow::run_until_complete(loop, cancel_round, kGroupChildren, &allocations).value();
    state.SetIterationTime(static_cast<double>(ns) * 1e-9);
    seconds += static_cast<double>(ns) * 1e-9;
    total_allocations += allocations;
    ++rounds;
  }
  // Seconds per cancel, as the rate counters of the other rows give them.
  state.counters["ns/op"] = seconds / static_cast<double>(rounds ? rounds : 1);
  state.counters["allocs/op"] = static_cast<double>(total_allocations) / static_cast<double>(rounds ? rounds : 1);
}

evflow::Generator<int> evflow_ones(long count) {
  for (long i = 0; i < count; ++i)
    co_yield 1;
}

void BM_TaskGeneratorValue_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop*, long count) -> evflow::Task<long> {
    auto values = evflow_ones(count);
    long received = 0;
    while (auto value = co_await values.next())
      received += *value;
    co_return received;
  });
}

// A slot between two tasks of one loop: the producer fills it and notifies `filled`, the
// consumer empties it and notifies `emptied`. A notification that finds the slot not yet
// changed (notifications coalesce, and one made while nobody waits goes to the next wait)
// is waited past.
struct Handoff {
  explicit Handoff(evflow::Loop& loop) noexcept : filled(loop), emptied(loop) {}
  evflow::Notification filled;
  evflow::Notification emptied;
  int slot = 0;
  bool full = false;
};

evflow::Task<> handoff_producer(Handoff* handoff, long count) {
  for (long i = 0; i < count; ++i) {
    while (handoff->full) {
      const evflow::Error error = co_await handoff->emptied.wait();
      if (error) std::abort();
    }
    handoff->slot = 1;
    handoff->full = true;
    handoff->filled.notify();
  }
}

void BM_TaskHandoffNotification_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop* loop, long count) -> evflow::Task<long> {
    Handoff handoff(*loop);
    auto producer = evflow::spawn(*loop, handoff_producer, &handoff, count);
    long received = 0;
    for (long i = 0; i < count; ++i) {
      while (!handoff.full) {
        const evflow::Error error = co_await handoff.filled.wait();
        if (error) std::abort();
      }
      received += handoff.slot;
      handoff.full = false;
      handoff.emptied.notify();
    }
    const evflow::Error joined = co_await producer.join();
    if (joined) std::abort();
    co_return received;
  });
}

// Two tasks that take a lock in turn: each unlock hands it to the other, waiting, and the
// next lock() queues behind it. One operation: one hand-off and the switch to the holder.
evflow::Task<long> lock_partner(evflow::Lock* lock, long count) {
  long held = 0;
  for (long i = 0; i < count; ++i) {
    const evflow::Error error = co_await lock->lock();
    if (error) std::abort();
    ++held;
    if (i == 0) {
      const evflow::Error yielded = co_await evflow::yield();  // the partner queues meanwhile
      if (yielded) std::abort();
    }
    if (lock->unlock()) std::abort();
  }
  co_return held;
}

void BM_TaskLockHandoff_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop* loop, long count) -> evflow::Task<long> {
    evflow::Lock lock;
    auto first = evflow::spawn(*loop, lock_partner, &lock, count / 2);
    auto second = evflow::spawn(*loop, lock_partner, &lock, count - count / 2);
    const evflow::Result<long> a = co_await first.join();
    const evflow::Result<long> b = co_await second.join();
    co_return a.value() + b.value();
  });
}

// A task that sends back every value it receives, `count` times.
evflow::Task<long> echo_values(evflow::Channel<long>* in, evflow::Channel<long>* out, long count) {
  for (long i = 0; i < count; ++i) {
    evflow::Result<long> v = co_await in->receive();
    if (!v) std::abort();
    const evflow::Error sent = co_await out->send(v.value());
    if (sent) std::abort();
  }
  co_return count;
}

void BM_TaskChannelPingPong_evflow(benchmark::State& state) {
  measure_evflow(state, [](evflow::Loop* loop, long count) -> evflow::Task<long> {
    evflow::Channel<long> there(0);
    evflow::Channel<long> back(0);
    auto echo = evflow::spawn(*loop, echo_values, &there, &back, count);
    long sum = 0;
    for (long i = 0; i < count; ++i) {
      const evflow::Error sent = co_await there.send(1);
      if (sent) std::abort();
      evflow::Result<long> v = co_await back.receive();
      if (!v) std::abort();
      sum += v.value();
    }
    const evflow::Result<long> echoed = co_await echo.join();
    if (!echoed || echoed.value() != count) std::abort();
    co_return sum;
  });
}

constexpr long kThreadBatch = 1'000;

void BM_TaskToThread_evflow(benchmark::State& state) {
  static evflow::ThreadPool pool(1);
  measure_evflow(
      state,
      [](evflow::Loop*, long count) -> evflow::Task<long> {
        long sum = 0;
        for (long i = 0; i < count; ++i) {
          evflow::Result<long> v = co_await evflow::to_thread(pool, [] { return 1L; });
          if (!v) std::abort();
          sum += v.value();
        }
        co_return sum;
      },
      kThreadBatch);
}

// One producer thread for the whole benchmark sends 1s until the channel is closed; each
// batch is a task taking n of them. The producer runs ahead until the channel is full, then
// waits in send() for each slot the task frees.
void BM_TaskThreadChannel_evflow(benchmark::State& state) {
  evflow::Loop loop;
  if (loop.open()) std::abort();
  evflow::ThreadChannel<long> channel(loop, 64);
  if (!channel.valid()) std::abort();
  std::thread producer([&channel] {
    while (!channel.send(1)) {
    }
  });
  measure(state, [&](long n) {
    auto batch = [](evflow::ThreadChannel<long>* values, long count) -> evflow::Task<long> {
      long sum = 0;
      for (long i = 0; i < count; ++i) {
        evflow::Result<long> v = co_await values->receive();
        if (!v) std::abort();
        sum += v.value();
      }
      co_return sum;
    };
    if (evflow::run_until_complete(loop, batch, &channel, n).value() != n) std::abort();
  });
  channel.close();
  producer.join();
}

// The worker of ProcessRoundTrip: echoes each frame until the parent closes its end.
evflow::Task<int> echo_frames(evflow::MessageChannel& parent) {
  std::string frame;
  for (;;) {
    auto got = co_await parent.receive(frame);
    if (!got) co_return 0;
    const evflow::Error sent = co_await parent.send(frame);
    if (sent) co_return 1;
  }
}

void BM_ProcessRoundTrip_evflow(benchmark::State& state) {
  evflow::Loop loop;
  if (loop.open()) std::abort();
  auto worker = evflow::spawn_process(loop, echo_frames);
  if (!worker) {
    state.SkipWithError(worker.error().message());
    return;
  }
  evflow::MessageChannel* channel = &worker.value().channel();
  measure(
      state,
      [&](long n) {
        auto done = evflow::run_until_complete(loop, [channel, n]() -> evflow::Task<long> {
          std::string reply;
          long count = 0;
          for (long i = 0; i < n; ++i) {
            const evflow::Error sent = co_await channel->send("12345678");
            if (sent) std::abort();
            auto got = co_await channel->receive(reply);
            if (!got || got.value() != 8) std::abort();
            ++count;
          }
          co_return count;
        });
        if (done.value() != n) std::abort();
      },
      1'000);
  (void)channel->close();  // the worker exits with 0
  auto status = evflow::run_until_complete(loop, [&]() -> evflow::Task<int> {
    auto exit = co_await worker.value().wait();
    co_return exit&& exit.value().exited() ? exit.value().code() : -1;
  });
  if (status.value() != 0) std::abort();
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

void BM_TaskSleepZero_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      long done = 0;
      for (long i = 0; i < count; ++i) {
        asio::steady_timer timer(executor);
        timer.expires_after(std::chrono::nanoseconds(0));
        co_await timer.async_wait(asio::use_awaitable);
        ++done;
      }
      *out = done;
    });
  });
}

void BM_TaskGatherTwo_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      long gathered = 0;
      for (long i = 0; i < count; ++i) {
        const auto [a, b] = co_await (asio_trivial(1) && asio_trivial(2));
        if (a + b == 3) ++gathered;
      }
      *out = gathered;
    });
  });
}

asio::experimental::coro<int> asio_ones(asio::any_io_executor, long count) {
  for (long i = 0; i < count; ++i)
    co_yield 1;
}

// The consumer is a coro too: a coro awaiting a coro resumes it directly, the fastest way
// Asio 1.22 offers (resuming a coro from an awaitable, with async_resume(use_awaitable),
// goes through the awaitable's machinery for every value).
asio::experimental::coro<void, long> asio_sum_of(asio::any_io_executor executor, long count) {
  auto values = asio_ones(executor, count);
  long received = 0;
  while (auto value = co_await values)
    received += *value;
  co_return received;
}

void BM_TaskGeneratorValue_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      auto consumer = asio_sum_of(executor, count);
      *out = co_await consumer.async_resume(asio::use_awaitable);
    });
  });
}

// What a failed operation throws: the errno and nothing else (no message string to build),
// so that the row measures the throw and the catch.
class IoFailure : public std::exception {
 public:
  explicit IoFailure(int code) noexcept : code_(code) {}
  const char* what() const noexcept override { return "I/O failure"; }
  int code() const noexcept { return code_; }

 private:
  int code_;
};

asio::awaitable<int> asio_failing(int code) {
  if (code != 0) throw IoFailure(code);
  co_return 0;
}

void BM_TaskFailureAsException_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      long failed = 0;
      for (long i = 0; i < count; ++i) {
        try {
          failed += co_await asio_failing(EIO) == EIO;
        } catch (const IoFailure& failure) {
          if (failure.code() == EIO) ++failed;
        }
      }
      *out = failed;
    });
  });
}

// Calls scheduled per pass of the loop in the CallSoon rows.
constexpr long kCallRound = 100;

void BM_CallSoon_evflow(benchmark::State& state) {
  evflow::EventLoop events;
  if (events.open()) std::abort();
  long ran = 0;
  measure(state, [&](long n) {
    for (long done = 0; done < n; done += kCallRound) {
      for (long i = 0; i < kCallRound; ++i)
        if (!events.call_soon([&ran] { ++ran; })) std::abort();
      if (events.loop().run(evflow::RunMode::NoWait)) std::abort();
    }
  });
  if (ran == 0 || events.pending_calls() != 0) std::abort();
}

using AsioChannel = asio::experimental::channel<void(asio::error_code, long)>;

asio::awaitable<void> asio_echo_values(AsioChannel* in, AsioChannel* out, long count) {
  for (long i = 0; i < count; ++i) {
    const long v = co_await in->async_receive(asio::use_awaitable);
    co_await out->async_send(asio::error_code(), v, asio::use_awaitable);
  }
}

void BM_TaskChannelPingPong_asio(benchmark::State& state) {
  measure(state, [](long n) {
    run_asio(n, [](long count, long* out) -> asio::awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      AsioChannel there(executor, 0);
      AsioChannel back(executor, 0);
      asio::co_spawn(executor, asio_echo_values(&there, &back, count), asio::detached);
      long sum = 0;
      for (long i = 0; i < count; ++i) {
        co_await there.async_send(asio::error_code(), 1, asio::use_awaitable);
        sum += co_await back.async_receive(asio::use_awaitable);
      }
      *out = sum;
    });
  });
}

// One round trip after another: the work posted to the pool posts its answer back.
struct AsioRoundTrips {
  asio::io_context* context;
  asio::thread_pool* pool;
  long left;
  long sum = 0;
  void next() {
    asio::post(*pool, [this] {
      const long answer = 1;
      asio::post(*context, [this, answer] {
        sum += answer;
        if (--left > 0) next();
      });
    });
  }
};

void BM_TaskToThread_asio(benchmark::State& state) {
  asio::thread_pool pool(1);
  measure(
      state,
      [&](long n) {
        asio::io_context context(1);
        auto guard = asio::make_work_guard(context);
        AsioRoundTrips trips{&context, &pool, n};
        trips.next();
        while (trips.left > 0)
          context.run_one();
        if (trips.sum != n) std::abort();
      },
      kThreadBatch);
}

// --- libuv ------------------------------------------------------------------------------

struct UvRoundTrips {
  uv_work_t request;
  long left;
  long sum = 0;
  long answer = 0;
};

void uv_work(uv_work_t* request) { static_cast<UvRoundTrips*>(request->data)->answer = 1; }
void uv_after_work(uv_work_t* request, int status) {
  auto* trips = static_cast<UvRoundTrips*>(request->data);
  if (status != 0) std::abort();
  trips->sum += trips->answer;
  if (--trips->left > 0 && uv_queue_work(request->loop, request, uv_work, uv_after_work) != 0) std::abort();
}

void BM_TaskToThread_libuv(benchmark::State& state) {
  setenv("UV_THREADPOOL_SIZE", "1", 1);  // read once, when libuv's pool starts
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) std::abort();
  measure(
      state,
      [&](long n) {
        UvRoundTrips trips{};
        trips.left = n;
        trips.request.data = &trips;
        if (uv_queue_work(&loop, &trips.request, uv_work, uv_after_work) != 0) std::abort();
        uv_run(&loop, UV_RUN_DEFAULT);
        if (trips.sum != n) std::abort();
      },
      kThreadBatch);
  uv_loop_close(&loop);
}

void BM_CallSoon_asio(benchmark::State& state) {
  asio::io_context context(1);
  auto busy = asio::make_work_guard(context);  // poll() then never finds the context out of work
  long ran = 0;
  measure(state, [&](long n) {
    for (long done = 0; done < n; done += kCallRound) {
      for (long i = 0; i < kCallRound; ++i)
        asio::post(context, [&ran] { ++ran; });
      context.poll();
    }
  });
  if (ran == 0) std::abort();
}

// --- Boost.Fiber -----------------------------------------------------------------------
//
// The main thread's fibers, on Boost.Fiber's default scheduler (round robin); the
// benchmark's thread is the main fiber, which spawns, joins and yields.

// Boost.Fiber's default stack (fixedsize_stack: malloc), counted as one heap allocation:
// a fiber's stack is what a task's frame is to a coroutine.
class CountedStack {
 public:
  boost::context::stack_context allocate() {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return stacks_.allocate();
  }
  void deallocate(boost::context::stack_context& stack) noexcept { stacks_.deallocate(stack); }

 private:
  boost::fibers::fixedsize_stack stacks_;
};

void BM_TaskSpawnJoin_boost_fiber(benchmark::State& state) {
  measure(state, [](long n) {
    long sum = 0;
    for (long i = 0; i < n; ++i) {
      int value = 0;
      boost::fibers::fiber fiber(std::allocator_arg, CountedStack(), [&value] { value = 1; });
      fiber.join();
      sum += value;
    }
    if (sum != n) std::abort();
  });
}

void BM_TaskYield_boost_fiber(benchmark::State& state) {
  measure(state, [](long n) {
    // Two fibers take turns, n yields between them: each yield gives way to the other
    // fiber, whose next yield gives way back.
    long done = 0;
    auto yielder = [&done](long count) {
      for (long i = 0; i < count; ++i) {
        boost::this_fiber::yield();
        ++done;
      }
    };
    boost::fibers::fiber other(std::allocator_arg, CountedStack(), yielder, n / 2);
    yielder(n - n / 2);
    other.join();
    if (done != n) std::abort();
  });
}

BENCHMARK(BM_TaskToThread_evflow)->UseRealTime();  // the pool thread's time and the waits count
BENCHMARK(BM_TaskToThread_asio)->UseRealTime();
BENCHMARK(BM_TaskToThread_libuv)->UseRealTime();
BENCHMARK(BM_TaskSpawnJoin_evflow);
BENCHMARK(BM_TaskSpawnJoin_asio);
BENCHMARK(BM_TaskSpawnJoin_boost_fiber);
BENCHMARK(BM_TaskAwaitReady_evflow);
BENCHMARK(BM_TaskAwaitReady_asio);
BENCHMARK(BM_TaskYield_evflow);
BENCHMARK(BM_TaskYield_asio);
BENCHMARK(BM_TaskYield_boost_fiber);
BENCHMARK(BM_TaskSleepZero_evflow);
BENCHMARK(BM_TaskSleepZero_asio);
BENCHMARK(BM_TaskFailureAsValue_evflow);
BENCHMARK(BM_TaskFailureAsException_asio);
BENCHMARK(BM_TaskGatherTwo_evflow);
BENCHMARK(BM_TaskGatherTwo_asio);
BENCHMARK(BM_TaskGatherHundred_evflow);
BENCHMARK(BM_TaskGroupThousand_evflow);
BENCHMARK(BM_TaskGroupCancelThousand_evflow)->UseManualTime();
BENCHMARK(BM_TaskGeneratorValue_evflow);
BENCHMARK(BM_TaskGeneratorValue_asio);
BENCHMARK(BM_TaskHandoffNotification_evflow);
BENCHMARK(BM_TaskLockHandoff_evflow);
BENCHMARK(BM_TaskChannelPingPong_evflow);
BENCHMARK(BM_TaskChannelPingPong_asio);
BENCHMARK(BM_TaskThreadChannel_evflow)->UseRealTime();
BENCHMARK(BM_CallSoon_evflow);
BENCHMARK(BM_CallSoon_asio);
BENCHMARK(BM_ProcessRoundTrip_evflow)->UseRealTime();  // the worker's time and the waits count

}  // namespace

BENCHMARK_MAIN();
