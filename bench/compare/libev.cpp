// libev 4.33 in the side-by-side benchmarks, written the way libev's manual recommends:
// watchers embedded in caller storage and initialised once (ev_io_init, ev_timer_init),
// ev_io_stop/ev_io_set/ev_io_start to re-register, ev_timer_again for restarts (the
// manual's recommended idle-timeout technique: set `repeat`, call ev_timer_again),
// ev_async for cross-thread wake-ups, ev_now_update before arming timers from outside a
// callback. The loop is ev_loop_new(EVFLAG_AUTO), which picks epoll here.
#include <ev.h>

#include "bench/compare/harness.hpp"

namespace {

struct ev_loop* new_loop() {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  if (!loop) {
    std::fprintf(stderr, "libev: ev_loop_new failed\n");
    std::abort();
  }
  return loop;
}

double seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

struct Libev {
  static constexpr const char* kName = "libev";
  static std::string version() { return std::to_string(ev_version_major()) + "." + std::to_string(ev_version_minor()); }
  static size_t io_watcher_bytes() { return sizeof(ev_io); }
  static size_t timer_watcher_bytes() { return sizeof(ev_timer); }

  class Ring {
   public:
    Ring(evbench::Pairs& pairs, bool timeouts)
        : loop_(new_loop()), pairs_(pairs), timeouts_(timeouts), io_(size(pairs)), timer_(timeouts ? size(pairs) : 0) {
      for (int i = 0; i < pairs.size(); ++i) {
        ev_io* w = &io_[idx(i)];
        ev_io_init(w, on_read, pairs.read_fd(i), EV_READ);
        w->data = this;
        ev_io_start(loop_, w);
        if (timeouts_) {
          ev_timer* t = &timer_[idx(i)];
          ev_init(t, on_timeout);
          t->repeat = seconds(pairs.timeout_ns(i));
          ev_timer_again(loop_, t);
        }
      }
    }
    ~Ring() { ev_loop_destroy(loop_); }
    void reregister() {
      for (int i = 0; i < pairs_.size(); ++i) {
        ev_io* w = &io_[idx(i)];
        ev_io_stop(loop_, w);
        ev_io_set(w, pairs_.read_fd(i), EV_READ);
        ev_io_start(loop_, w);
        if (timeouts_) {
          timer_[idx(i)].repeat = seconds(pairs_.timeout_ns(i));
          ev_timer_again(loop_, &timer_[idx(i)]);
        }
      }
    }
    void run_nowait() { ev_run(loop_, EVRUN_NOWAIT); }

   private:
    static void on_read(struct ev_loop*, ev_io* w, int) {
      auto* self = static_cast<Ring*>(w->data);
      const int i = static_cast<int>(w - self->io_.data());
      self->pairs_.on_readable(i);
      if (self->timeouts_) {
        ev_timer* t = &self->timer_[static_cast<size_t>(i)];
        t->repeat = seconds(self->pairs_.timeout_ns(i));
        ev_timer_again(self->loop_, t);
      }
    }
    static void on_timeout(struct ev_loop*, ev_timer*, int) {}
    static size_t size(const evbench::Pairs& p) { return static_cast<size_t>(p.size()); }
    static size_t idx(int i) { return static_cast<size_t>(i); }
    struct ev_loop* loop_;
    evbench::Pairs& pairs_;
    bool timeouts_;
    std::vector<ev_io> io_;
    std::vector<ev_timer> timer_;
  };

  class Timers {
   public:
    Timers(size_t n, evbench::Fire fire, void* context) : loop_(new_loop()), fire_(fire), context_(context), timer_(n) {
      for (auto& t : timer_) {
        ev_init(&t, on_timer);
        t.data = this;
      }
    }
    ~Timers() { ev_loop_destroy(loop_); }
    void update_time() { ev_now_update(loop_); }
    void start(size_t i, int64_t after_ns) {
      ev_timer_set(&timer_[i], seconds(after_ns), 0.);
      ev_timer_start(loop_, &timer_[i]);
    }
    void restart(size_t i, int64_t after_ns) {
      timer_[i].repeat = seconds(after_ns);
      ev_timer_again(loop_, &timer_[i]);
    }
    void again(size_t i, int64_t after_ns) {
      timer_[i].repeat = seconds(after_ns);
      ev_timer_again(loop_, &timer_[i]);
    }
    void stop(size_t i) { ev_timer_stop(loop_, &timer_[i]); }
    void settle() {}
    void run_nowait() { ev_run(loop_, EVRUN_NOWAIT); }
    void run() { ev_run(loop_, 0); }

   private:
    static void on_timer(struct ev_loop*, ev_timer* w, int) {
      auto* self = static_cast<Timers*>(w->data);
      self->fire_(self->context_, static_cast<size_t>(w - self->timer_.data()));
    }
    struct ev_loop* loop_;
    evbench::Fire fire_;
    void* context_;
    std::vector<ev_timer> timer_;
  };

  class Mailbox {
   public:
    Mailbox(evbench::Wake wake, void* context) : loop_(new_loop()), wake_(wake), context_(context) {
      ev_async_init(&async_, on_async);
      async_.data = this;
      ev_async_start(loop_, &async_);
    }
    ~Mailbox() {
      ev_async_stop(loop_, &async_);
      ev_loop_destroy(loop_);
    }
    void run() { ev_run(loop_, 0); }
    void notify() { ev_async_send(loop_, &async_); }
    void stop() { ev_break(loop_, EVBREAK_ALL); }

   private:
    static void on_async(struct ev_loop*, ev_async* w, int) {
      auto* self = static_cast<Mailbox*>(w->data);
      self->wake_(self->context_);
    }
    struct ev_loop* loop_;
    evbench::Wake wake_;
    void* context_;
    ev_async async_;
  };

  class Quiet {
   public:
    Quiet(int fd, size_t timers) : loop_(new_loop()), timer_(timers) {
      ev_io_init(&io_, on_io, fd, EV_READ);
      ev_io_start(loop_, &io_);
      for (size_t i = 0; i < timers; ++i) {
        ev_timer_init(&timer_[i], on_timer, 3600. + static_cast<double>(i) * 1e-9, 0.);
        ev_timer_start(loop_, &timer_[i]);
      }
    }
    ~Quiet() { ev_loop_destroy(loop_); }
    void run_nowait() { ev_run(loop_, EVRUN_NOWAIT); }

   private:
    static void on_io(struct ev_loop*, ev_io*, int) {}
    static void on_timer(struct ev_loop*, ev_timer*, int) {}
    struct ev_loop* loop_;
    ev_io io_;
    std::vector<ev_timer> timer_;
  };
};

}  // namespace

int main(int argc, char** argv) { return evbench::main<Libev>(argc, argv); }
