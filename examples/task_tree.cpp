// Watching tasks: an observer that prints every transition of every task, and a dump of the
// live task tree while a group of handlers is at work. Each handler carries its request's
// id in a context variable, which the tasks it spawns inherit.
#include <evflow/tasks.hpp>

#include <cstdio>

using namespace std::chrono_literals;

namespace {

evflow::ContextVar<int> request_id(0);

// Prints one line per transition: the task, its parent, what happened, where it was spawned.
class PrintingObserver final : public evflow::TaskObserver {
 public:
  void on_task_event(evflow::TaskEvent event, const evflow::TaskInfo& task) noexcept override {
    std::printf("  [observer] task %llu (parent %llu) %-9s spawned at line %u\n",
                static_cast<unsigned long long>(task.id), static_cast<unsigned long long>(task.parent_id),
                evflow::to_string(event), static_cast<unsigned>(task.spawned_at.line()));
  }
};

// A lookup on behalf of the request in the context: it sees the handler's request id.
evflow::Task<int> lookup(std::chrono::milliseconds delay) {
  if (evflow::Error err = co_await evflow::sleep(delay)) co_return -err.code();
  co_return request_id.get() * 10;
}

evflow::Task<> handler(int id, std::chrono::milliseconds delay) {
  (void)request_id.set(id);
  int value = -1;
  evflow::TaskGroup lookups;  // the lookup is the handler's child: cancelled with it
  auto ended = co_await lookups.run([&]() -> evflow::Task<> {
    (void)lookups.spawn([&]() -> evflow::Task<> { value = co_await lookup(delay); });
    co_return;
  }());
  std::printf("handler %d: lookup gave %d%s\n", id, value, ended.cancelled() ? " (cancelled)" : "");
}

}  // namespace

int main() {
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::fprintf(stderr, "open: %s\n", err.message());
    return 1;
  }
  PrintingObserver observer;
  (void)evflow::set_task_observer(loop, &observer);

  auto server = evflow::spawn(loop, [&]() -> evflow::Task<> {
    evflow::TaskGroup handlers;
    auto ended = co_await handlers.run([&]() -> evflow::Task<> {
      (void)handlers.spawn(handler, 1, 5ms);
      (void)handlers.spawn(handler, 2, 50ms);
      (void)co_await evflow::sleep(20ms);
      std::printf("the task tree after 20 ms:\n");
      evflow::print_task_tree(loop, stdout);
      handlers.cancel();  // handler 2 is too slow: the cancellation reaches its lookup
    }());
    std::printf("group ended (cancelled: %s)\n", ended.cancelled() ? "yes" : "no");
  });
  (void)evflow::run_until_done(loop, server);
  (void)evflow::set_task_observer(loop, nullptr);
  return 0;
}
