// worker_results: a worker thread computes results and hands each to the loop thread
// with Async::send(); sends coalesce, so the loop drains a queue on every wake-up.
// The loop thread never blocks on the worker, and no callback runs on the worker.
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include <evflow/evflow.hpp>

constexpr long kResults = 1000;

struct Results {
  std::mutex mutex;
  std::vector<long> queue;  // guarded by mutex
  long sum = 0, received = 0, wakeups = 0;

  void on_wakeup(evflow::Async& self) {  // runs in the loop thread
    std::vector<long> batch;
    {
      std::lock_guard<std::mutex> lock(mutex);
      batch.swap(queue);
    }
    ++wakeups;
    for (long value : batch)
      sum += value;
    received += static_cast<long>(batch.size());
    if (received == kResults) self.stop();  // nothing else is active: run() returns
  }
};

int main() {
  evflow::Loop loop;
  if (auto err = loop.open()) {
    std::fprintf(stderr, "worker_results: %s\n", err.message());
    return 1;
  }
  Results results;
  evflow::Async wakeup(loop);
  (void)wakeup.start([&results](evflow::Async& self) { results.on_wakeup(self); });

  std::thread worker([&] {
    for (long i = 1; i <= kResults; ++i) {
      {
        std::lock_guard<std::mutex> lock(results.mutex);
        results.queue.push_back(i * i);
      }
      wakeup.send();
    }
  });
  (void)loop.run();
  worker.join();
  std::printf("received %ld results in %ld wake-ups; sum of squares = %ld\n", results.received, results.wakeups,
              results.sum);
  return results.sum == kResults * (kResults + 1) * (2 * kResults + 1) / 6 ? 0 : 1;
}
