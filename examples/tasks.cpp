// Tasks on one loop: one finishes its work, one is cancelled by a watchdog when it takes
// too long, one runs its work under a deadline, one waits for a notification from another
// thread. Prints what happened to each, in the order it happened.
#include <evflow/tasks.hpp>

#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Works in three steps of 10 ms; reports how far it got.
evflow::Task<int> worker(const char* name, int steps) {
  int done = 0;
  for (; done < steps; ++done) {
    if (evflow::Error err = co_await evflow::sleep(10ms)) {
      std::printf("%s: stopped after %d of %d steps (%s)\n", name, done, steps, err.message());
      co_return done;
    }
  }
  std::printf("%s: finished its %d steps\n", name, steps);
  co_return done;
}

// Cancels `victim` unless it has finished within `limit`.
evflow::Task<> watchdog(evflow::TaskHandle<int>* victim, std::chrono::milliseconds limit) {
  (void)co_await evflow::sleep(limit);
  if (!victim->done()) {
    std::printf("watchdog: %lld ms are up, cancelling\n", static_cast<long long>(limit.count()));
    victim->cancel();
  }
}

// Runs a 100-step worker under a 35 ms deadline: the worker's sleep is cancelled, the
// worker returns, and only then does this task learn that the deadline passed.
evflow::Task<int> bounded(const char* name) {
  auto scoped = co_await evflow::with_timeout(35ms, worker(name, 100));
  std::printf("%s: %s, %d steps done\n", name, scoped.timed_out() ? "timed out" : "completed in time", scoped.value());
  co_return scoped.value();
}

evflow::Task<> listener(evflow::Notification* note) {
  if (evflow::Error err = co_await note->wait()) {
    std::printf("listener: %s\n", err.message());
  } else {
    std::printf("listener: notified by the other thread\n");
  }
}

evflow::Task<int> main_task(evflow::Loop* loop) {
  evflow::Notification note(*loop);
  auto quick = evflow::spawn(*loop, worker, "quick", 3);
  auto slow = evflow::spawn(*loop, worker, "slow", 100);
  auto dog = evflow::spawn(*loop, watchdog, &slow, 50ms);
  auto limited = evflow::spawn(*loop, bounded, "limited");
  auto listening = evflow::spawn(*loop, listener, &note);
  std::thread other([&note] {
    std::this_thread::sleep_for(20ms);
    note.notify();
  });
  evflow::Result<int> quick_steps = co_await quick.join();
  evflow::Result<int> slow_steps = co_await slow.join();
  evflow::Result<int> limited_steps = co_await limited.join();
  (void)co_await dog.join();
  (void)co_await listening.join();
  other.join();
  std::printf("main: quick did %d steps, slow %d, limited %d\n", quick_steps.value_or(-1), slow_steps.value_or(-1),
              limited_steps.value_or(-1));
  co_return 0;
}

}  // namespace

int main() {
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::fprintf(stderr, "loop: %s\n", err.message());
    return 1;
  }
  evflow::Result<int> status = evflow::run_until_complete(loop, main_task, &loop);
  if (!status) {
    std::fprintf(stderr, "main task: %s\n", status.error().message());
    return 1;
  }
  return status.value();
}
