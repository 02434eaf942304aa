// Asio 1.22 (standalone) in the side-by-side benchmarks, written the way Asio's
// documentation recommends: an io_context with concurrency hint 1 per loop,
// posix::stream_descriptor with async_read_some into a one-byte buffer for bench.c (the
// byte is read by Asio; the handler re-arms), cancel() plus a new async operation to
// re-register, steady_timer::expires_at + async_wait for every timer (re-arming cancels
// the pending wait, whose handler then runs with operation_aborted: settle() drains those
// handlers inside the timed section, as a program must), and post() for cross-thread
// wake-ups, coalesced with an atomic flag as a user would write it (Asio has no
// coalescing wake-up object). poll() is the non-blocking iteration.
#include <asio.hpp>

#include "bench/compare/harness.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Asio {
  static constexpr const char* kName = "asio";
  static std::string version() {
    return std::to_string(ASIO_VERSION / 100000) + "." + std::to_string(ASIO_VERSION / 100 % 1000) + "." +
           std::to_string(ASIO_VERSION % 100);
  }
  static size_t io_watcher_bytes() { return sizeof(asio::posix::stream_descriptor); }
  static size_t timer_watcher_bytes() { return sizeof(asio::steady_timer); }

  class Ring {
   public:
    Ring(evbench::Pairs& pairs, bool timeouts) : context_(1), pairs_(pairs), timeouts_(timeouts), bytes_(size(pairs)) {
      descriptors_.reserve(size(pairs));
      timers_.reserve(timeouts ? size(pairs) : 0);
      for (int i = 0; i < pairs.size(); ++i) {
        descriptors_.emplace_back(context_, pairs.read_fd(i));
        if (timeouts_) timers_.emplace_back(context_);
        arm(i);
        if (timeouts_) arm_timeout(i);
      }
    }
    ~Ring() {
      for (auto& d : descriptors_)
        (void)d.release();  // the descriptors belong to Pairs
    }
    void reregister() {
      for (int i = 0; i < pairs_.size(); ++i) {
        descriptors_[idx(i)].cancel();
        arm(i);
        if (timeouts_) arm_timeout(i);
      }
    }
    void run_nowait() {
      context_.poll();
      context_.restart();
    }

   private:
    void arm(int i) {
      descriptors_[idx(i)].async_read_some(asio::buffer(&bytes_[idx(i)], 1),
                                           [this, i](const std::error_code& ec, size_t n) {
                                             if (ec || n != 1) return;
                                             pairs_.after_read(i);
                                             if (timeouts_) arm_timeout(i);
                                             arm(i);
                                           });
    }
    void arm_timeout(int i) {
      asio::steady_timer& t = timers_[idx(i)];
      t.expires_after(std::chrono::nanoseconds(pairs_.timeout_ns(i)));
      t.async_wait([](const std::error_code&) {});
    }
    static size_t size(const evbench::Pairs& p) { return static_cast<size_t>(p.size()); }
    static size_t idx(int i) { return static_cast<size_t>(i); }
    asio::io_context context_;
    evbench::Pairs& pairs_;
    bool timeouts_;
    std::vector<char> bytes_;
    std::vector<asio::posix::stream_descriptor> descriptors_;
    std::vector<asio::steady_timer> timers_;
  };

  class Timers {
   public:
    Timers(size_t n, evbench::Fire fire, void* context) : context_(1), fire_(fire), context_arg_(context) {
      timers_.reserve(n);
      for (size_t i = 0; i < n; ++i)
        timers_.emplace_back(context_);
    }
    void update_time() { now_ = Clock::now(); }
    void start(size_t i, int64_t after_ns) {
      timers_[i].expires_at(now_ + std::chrono::nanoseconds(after_ns));
      timers_[i].async_wait([this, i](const std::error_code& ec) {
        if (!ec) fire_(context_arg_, i);
      });
    }
    void restart(size_t i, int64_t after_ns) { start(i, after_ns); }
    void again(size_t i, int64_t after_ns) { start(i, after_ns); }
    void stop(size_t i) { timers_[i].cancel(); }
    void settle() { run_nowait(); }
    void run_nowait() {
      context_.poll();
      context_.restart();
    }
    void run() {
      context_.run();
      context_.restart();
    }

   private:
    asio::io_context context_;
    evbench::Fire fire_;
    void* context_arg_;
    Clock::time_point now_ = Clock::now();
    std::vector<asio::steady_timer> timers_;
  };

  class Mailbox {
   public:
    Mailbox(evbench::Wake wake, void* context)
        : context_(1), guard_(asio::make_work_guard(context_)), wake_(wake), context_arg_(context) {}
    void run() { context_.run(); }
    void notify() {
      if (pending_.exchange(true, std::memory_order_acq_rel)) return;
      asio::post(context_, [this] {
        pending_.store(false, std::memory_order_release);
        wake_(context_arg_);
      });
    }
    void stop() { context_.stop(); }

   private:
    asio::io_context context_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    evbench::Wake wake_;
    void* context_arg_;
    std::atomic<bool> pending_{false};
  };

  class Quiet {
   public:
    Quiet(int fd, size_t timers) : context_(1), descriptor_(context_, fd) {
      descriptor_.async_wait(asio::posix::stream_descriptor::wait_read, [](const std::error_code&) {});
      timers_.reserve(timers);
      for (size_t i = 0; i < timers; ++i) {
        timers_.emplace_back(context_, std::chrono::hours(1) + std::chrono::nanoseconds(i));
        timers_.back().async_wait([](const std::error_code&) {});
      }
    }
    ~Quiet() { (void)descriptor_.release(); }
    void run_nowait() {
      context_.poll();
      context_.restart();
    }

   private:
    asio::io_context context_;
    asio::posix::stream_descriptor descriptor_;
    std::vector<asio::steady_timer> timers_;
  };
};

}  // namespace

int main(int argc, char** argv) { return evbench::main<Asio>(argc, argv); }
