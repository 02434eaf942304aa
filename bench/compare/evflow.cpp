// evflow in the side-by-side benchmarks (bench/compare/harness.hpp describes the adapter).
// Watchers live in contiguous arrays; callbacks capture `this` (and an index) inline, so nothing is
// allocated per event. The loop runs with its defaults (timer slack, sleep path).
#include <chrono>

#include <evflow/evflow.hpp>
#include "bench/compare/harness.hpp"

namespace {

using evbench::FixedArray;
using std::chrono::nanoseconds;

// evflow_io_uring.cpp builds this file again with the loops on io_uring.
#if !defined(EVFLOW_BENCH_BACKEND)
#define EVFLOW_BENCH_BACKEND evflow::BackendKind::Default
#define EVFLOW_BENCH_NAME "evflow"
#endif

void open_or_die(evflow::Loop& loop) {
  if (evflow::Error err = loop.open(EVFLOW_BENCH_BACKEND)) {
    std::fprintf(stderr, "evflow: Loop::open: %s\n", err.message());
    std::abort();
  }
  if (EVFLOW_BENCH_BACKEND == evflow::BackendKind::IoUring && loop.backend_kind() != evflow::BackendKind::IoUring) {
    std::fprintf(stderr, "evflow: io_uring asked for, and the kernel gave another backend\n");
    std::abort();
  }
}

struct Evflow {
  static constexpr const char* kName = EVFLOW_BENCH_NAME;
  static std::string version() { return "main"; }
  static size_t io_watcher_bytes() { return sizeof(evflow::Io); }
  static size_t timer_watcher_bytes() { return sizeof(evflow::Timer); }

  class Ring {
   public:
    Ring(evbench::Pairs& pairs, bool timeouts)
        : pairs_(pairs), timeouts_(timeouts), ios_(size(pairs), loop_), timers_(timeouts ? size(pairs) : 0, loop_) {
      open_or_die(loop_);
      for (int i = 0; i < pairs.size(); ++i) {
        (void)ios_[idx(i)].start(pairs.read_fd(i), evflow::Readable, [this, i] {
          pairs_.on_readable(i);
          if (timeouts_) (void)timers_[idx(i)].start(nanoseconds(pairs_.timeout_ns(i)));
        });
        if (timeouts_) (void)timers_[idx(i)].start(nanoseconds(pairs.timeout_ns(i)), [] {});
      }
    }
    void reregister() {
      for (int i = 0; i < pairs_.size(); ++i) {
        evflow::Io& io = ios_[idx(i)];
        io.stop();
        (void)io.start();
        if (timeouts_) (void)timers_[idx(i)].start(nanoseconds(pairs_.timeout_ns(i)));
      }
    }
    void run_nowait() { (void)loop_.run(evflow::RunMode::NoWait); }

   private:
    static size_t size(const evbench::Pairs& p) { return static_cast<size_t>(p.size()); }
    static size_t idx(int i) { return static_cast<size_t>(i); }
    evflow::Loop loop_;
    evbench::Pairs& pairs_;
    bool timeouts_;
    FixedArray<evflow::Io> ios_;
    FixedArray<evflow::Timer> timers_;
  };

  class Timers {
   public:
    Timers(size_t n, evbench::Fire fire, void* context) : fire_(fire), context_(context), timers_(n, loop_) {
      open_or_die(loop_);
    }
    void update_time() { loop_.update_now(); }
    // The callback captures `this` only (a Timer's room is one pointer): the index is the
    // timer's place in the array.
    void start(size_t i, int64_t after_ns) {
      (void)timers_[i].start(nanoseconds(after_ns),
                             [this](evflow::Timer& t) { fire_(context_, static_cast<size_t>(&t - &timers_[0])); });
    }
    void restart(size_t i, int64_t after_ns) { (void)timers_[i].start(nanoseconds(after_ns)); }
    void again(size_t i, int64_t after_ns) { (void)timers_[i].start(nanoseconds(after_ns)); }
    void stop(size_t i) { timers_[i].stop(); }
    void settle() {}
    void run_nowait() { (void)loop_.run(evflow::RunMode::NoWait); }
    void run() { (void)loop_.run(); }

   private:
    evflow::Loop loop_;
    evbench::Fire fire_;
    void* context_;
    FixedArray<evflow::Timer> timers_;
  };

  class Mailbox {
   public:
    Mailbox(evbench::Wake wake, void* context) : async_(loop_) {
      open_or_die(loop_);
      (void)async_.start([wake, context] { wake(context); });
    }
    void run() { (void)loop_.run(); }
    void notify() { async_.send(); }
    void stop() { loop_.stop(); }

   private:
    evflow::Loop loop_;
    evflow::Async async_;
  };

  class Quiet {
   public:
    Quiet(int fd, size_t timers) : io_(loop_), timers_(timers, loop_) {
      open_or_die(loop_);
      (void)io_.start(fd, evflow::Readable, [] {});
      for (size_t i = 0; i < timers; ++i)
        (void)timers_[i].start(std::chrono::hours(1) + nanoseconds(i), [] {});
    }
    void run_nowait() { (void)loop_.run(evflow::RunMode::NoWait); }

   private:
    evflow::Loop loop_;
    evflow::Io io_;
    FixedArray<evflow::Timer> timers_;
  };
};

}  // namespace

int main(int argc, char** argv) { return evbench::main<Evflow>(argc, argv); }
