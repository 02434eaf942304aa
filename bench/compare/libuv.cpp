// libuv 1.44 in the side-by-side benchmarks, written the way libuv's documentation
// recommends: handles embedded in caller storage, uv_poll_t for readiness on a descriptor
// the caller reads itself (uv_poll_stop/uv_poll_start to re-register), uv_timer_start on
// an active timer to move it (libuv documents that this updates it), uv_async_t for
// cross-thread wake-ups, uv_update_time before arming timers from outside a callback.
// Timeouts are whole milliseconds in libuv: a nanosecond offset is rounded up.
#include <uv.h>

#include "bench/compare/harness.hpp"

namespace {

void init_or_die(uv_loop_t* loop) {
  if (int err = uv_loop_init(loop)) {
    std::fprintf(stderr, "libuv: uv_loop_init: %s\n", uv_strerror(err));
    std::abort();
  }
}

uint64_t millis(int64_t ns) { return static_cast<uint64_t>((ns + 999'999) / 1'000'000); }

// Closes every handle and lets the loop finish closing them, then closes the loop.
void close_loop(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  while (uv_run(loop, UV_RUN_DEFAULT) != 0) {
  }
  (void)uv_loop_close(loop);
}

struct Libuv {
  static constexpr const char* kName = "libuv";
  static std::string version() { return uv_version_string(); }
  static size_t io_watcher_bytes() { return sizeof(uv_poll_t); }
  static size_t timer_watcher_bytes() { return sizeof(uv_timer_t); }

  class Ring {
   public:
    Ring(evbench::Pairs& pairs, bool timeouts)
        : pairs_(pairs), timeouts_(timeouts), poll_(size(pairs)), timer_(timeouts ? size(pairs) : 0) {
      init_or_die(&loop_);
      loop_.data = this;
      for (int i = 0; i < pairs.size(); ++i) {
        uv_poll_init(&loop_, &poll_[idx(i)], pairs.read_fd(i));
        uv_poll_start(&poll_[idx(i)], UV_READABLE, on_read);
        if (timeouts_) {
          uv_timer_init(&loop_, &timer_[idx(i)]);
          uv_timer_start(&timer_[idx(i)], on_timeout, millis(pairs.timeout_ns(i)), 0);
        }
      }
    }
    ~Ring() { close_loop(&loop_); }
    void reregister() {
      for (int i = 0; i < pairs_.size(); ++i) {
        uv_poll_stop(&poll_[idx(i)]);
        uv_poll_start(&poll_[idx(i)], UV_READABLE, on_read);
        if (timeouts_) uv_timer_start(&timer_[idx(i)], on_timeout, millis(pairs_.timeout_ns(i)), 0);
      }
    }
    void run_nowait() { uv_run(&loop_, UV_RUN_NOWAIT); }

   private:
    static void on_read(uv_poll_t* h, int, int) {
      auto* self = static_cast<Ring*>(h->loop->data);
      const int i = static_cast<int>(h - self->poll_.data());
      self->pairs_.on_readable(i);
      if (self->timeouts_)
        uv_timer_start(&self->timer_[static_cast<size_t>(i)], on_timeout, millis(self->pairs_.timeout_ns(i)), 0);
    }
    static void on_timeout(uv_timer_t*) {}
    static size_t size(const evbench::Pairs& p) { return static_cast<size_t>(p.size()); }
    static size_t idx(int i) { return static_cast<size_t>(i); }
    uv_loop_t loop_;
    evbench::Pairs& pairs_;
    bool timeouts_;
    std::vector<uv_poll_t> poll_;
    std::vector<uv_timer_t> timer_;
  };

  class Timers {
   public:
    Timers(size_t n, evbench::Fire fire, void* context) : fire_(fire), context_(context), timer_(n) {
      init_or_die(&loop_);
      loop_.data = this;
      for (auto& t : timer_)
        uv_timer_init(&loop_, &t);
    }
    ~Timers() { close_loop(&loop_); }
    void update_time() { uv_update_time(&loop_); }
    void start(size_t i, int64_t after_ns) { uv_timer_start(&timer_[i], on_timer, millis(after_ns), 0); }
    void restart(size_t i, int64_t after_ns) { uv_timer_start(&timer_[i], on_timer, millis(after_ns), 0); }
    // Equal millisecond timeouts are ordered by start: each restart lands after all others.
    void again(size_t i, int64_t after_ns) { uv_timer_start(&timer_[i], on_timer, millis(after_ns), 0); }
    void stop(size_t i) { uv_timer_stop(&timer_[i]); }
    void settle() {}
    void run_nowait() { uv_run(&loop_, UV_RUN_NOWAIT); }
    void run() { uv_run(&loop_, UV_RUN_DEFAULT); }

   private:
    static void on_timer(uv_timer_t* h) {
      auto* self = static_cast<Timers*>(h->loop->data);
      self->fire_(self->context_, static_cast<size_t>(h - self->timer_.data()));
    }
    uv_loop_t loop_;
    evbench::Fire fire_;
    void* context_;
    std::vector<uv_timer_t> timer_;
  };

  class Mailbox {
   public:
    Mailbox(evbench::Wake wake, void* context) : wake_(wake), context_(context) {
      init_or_die(&loop_);
      async_.data = this;
      uv_async_init(&loop_, &async_, on_async);
    }
    ~Mailbox() { close_loop(&loop_); }
    void run() { uv_run(&loop_, UV_RUN_DEFAULT); }
    void notify() { uv_async_send(&async_); }
    void stop() { uv_stop(&loop_); }

   private:
    static void on_async(uv_async_t* h) {
      auto* self = static_cast<Mailbox*>(h->data);
      self->wake_(self->context_);
    }
    uv_loop_t loop_;
    evbench::Wake wake_;
    void* context_;
    uv_async_t async_;
  };

  class Quiet {
   public:
    Quiet(int fd, size_t timers) : timer_(timers) {
      init_or_die(&loop_);
      uv_poll_init(&loop_, &poll_, fd);
      uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t*, int, int) {});
      for (size_t i = 0; i < timers; ++i) {
        uv_timer_init(&loop_, &timer_[i]);
        uv_timer_start(
            &timer_[i], [](uv_timer_t*) {}, 3'600'000 + i, 0);
      }
    }
    ~Quiet() { close_loop(&loop_); }
    void run_nowait() { uv_run(&loop_, UV_RUN_NOWAIT); }

   private:
    uv_loop_t loop_;
    uv_poll_t poll_;
    std::vector<uv_timer_t> timer_;
  };
};

// The call_soon row of the coroutine-task table (task_bench has BM_CallSoon_evflow and
// BM_CallSoon_asio; libuv lives in this program, one executable per library). The idiom:
// Node.js's setImmediate, the usual way a libuv program runs a callback soon from the
// loop's own thread: a queue drained by a uv_check_t (after the poll phase), with a
// uv_idle_t active while the queue is not empty so that the poll does not block.
// (uv_async_send is the cross-thread path: a write(2) to the loop's wake-up descriptor.)
// Nodes are preallocated and reused, so nothing is allocated per call, as in evflow.
// Rounds of 100 calls, then one uv_run(UV_RUN_NOWAIT), as in task_bench.
class SoonQueue {
 public:
  static constexpr long kRound = 100;
  SoonQueue() : nodes_(kRound) {
    for (Node& node : nodes_)
      give_back(&node);
    init_or_die(&loop_);
    loop_.data = this;
    uv_check_init(&loop_, &check_);
    uv_idle_init(&loop_, &idle_);
    uv_check_start(&check_, [](uv_check_t* check) { static_cast<SoonQueue*>(check->loop->data)->run_queued(); });
  }
  ~SoonQueue() { close_loop(&loop_); }
  // Queues fn(arg) for the loop's next check phase.
  void call_soon(void (*fn)(void*), void* arg) {
    Node* node = free_;
    if (node == nullptr) std::abort();  // more than kRound pending: not in this benchmark
    free_ = node->next;
    *node = Node{nullptr, fn, arg};
    if (head_ == nullptr) uv_idle_start(&idle_, [](uv_idle_t*) {});
    *tail_ = node;
    tail_ = &node->next;
  }
  void run_nowait() { uv_run(&loop_, UV_RUN_NOWAIT); }

 private:
  struct Node {
    Node* next;
    void (*fn)(void*);
    void* arg;
  };
  void give_back(Node* node) {
    node->next = free_;
    free_ = node;
  }
  void run_queued() {
    Node* node = head_;
    head_ = nullptr;
    tail_ = &head_;
    uv_idle_stop(&idle_);  // what the callbacks queue starts it again
    while (node != nullptr) {
      Node* next = node->next;
      node->fn(node->arg);
      give_back(node);
      node = next;
    }
  }

  uv_loop_t loop_;
  uv_check_t check_;
  uv_idle_t idle_;
  std::vector<Node> nodes_;
  Node* free_ = nullptr;
  Node* head_ = nullptr;
  Node** tail_ = &head_;
};

void BM_CallSoon_libuv(benchmark::State& state) {
  constexpr long kBatch = 10'000;
  SoonQueue queue;
  long ran = 0;
  long operations = 0;
  for (auto _ : state) {
    for (long done = 0; done < kBatch; done += SoonQueue::kRound) {
      for (long i = 0; i < SoonQueue::kRound; ++i)
        queue.call_soon([](void* count) { ++*static_cast<long*>(count); }, &ran);
      queue.run_nowait();
    }
    operations += kBatch;
  }
  if (ran != operations) std::abort();
  state.counters["ns/op"] =
      benchmark::Counter(static_cast<double>(operations), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("BM_CallSoon_libuv", BM_CallSoon_libuv);
  return evbench::main<Libuv>(argc, argv);
}
