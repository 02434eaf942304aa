// libevent 2.1 in the side-by-side benchmarks, written the way libevent's reference
// recommends: events in caller storage (event_assign, no event_new per event),
// EV_PERSIST read events, event_del/event_add to re-register as test/bench.c does, and
// event_add on a pending timer to move it. The idle timeout of bench.c's -t is the read
// event's own timeout, which libevent re-arms by itself each time a persistent event runs.
// Restarting a timer to "later than every other" uses a common timeout
// (event_base_init_common_timeout), libevent's O(1) queue for many equal timeouts.
// Single-threaded bases are created with EVENT_BASE_FLAG_NOLOCK; the cross-thread one has
// locking (evthread_use_pthreads) and is woken with event_active from the other thread.
// Timer bases set EVENT_BASE_FLAG_PRECISE_TIMER: by default libevent reads
// CLOCK_MONOTONIC_COARSE, whose ticks of several milliseconds make timers fire early.
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>

#include "bench/compare/harness.hpp"

namespace {

enum BaseFlags { kNoLock = 1, kPreciseTimer = 2 };

event_base* new_base(int flags) {
  event_config* config = event_config_new();
  if (flags & kNoLock) event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
  if (flags & kPreciseTimer) event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  if (!base) {
    std::fprintf(stderr, "libevent: event_base_new_with_config failed\n");
    std::abort();
  }
  return base;
}

timeval to_timeval(int64_t ns) {
  const int64_t us = (ns + 999) / 1000;
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

struct Libevent {
  static constexpr const char* kName = "libevent";
  static std::string version() { return event_get_version(); }
  static size_t io_watcher_bytes() { return event_get_struct_event_size(); }
  static size_t timer_watcher_bytes() { return event_get_struct_event_size(); }

  // One event per pair, kept in an array; as in test/bench.c the callback argument is the
  // pair's index and the ring is reached through a global.
  class Ring {
   public:
    Ring(evbench::Pairs& pairs, bool timeouts)
        : base_(new_base(kNoLock)), pairs_(pairs), timeouts_(timeouts), events_(size(pairs)) {
      current_ = this;
      for (int i = 0; i < pairs.size(); ++i) {
        event_assign(&events_[idx(i)], base_, pairs.read_fd(i), EV_READ | EV_PERSIST, on_read,
                     reinterpret_cast<void*>(static_cast<intptr_t>(i)));
        add(i);
      }
    }
    ~Ring() {
      for (auto& ev : events_)
        event_del(&ev);
      event_base_free(base_);
      current_ = nullptr;
    }
    void reregister() {
      for (int i = 0; i < pairs_.size(); ++i) {
        event_del(&events_[idx(i)]);
        add(i);
      }
    }
    void run_nowait() { event_base_loop(base_, EVLOOP_ONCE | EVLOOP_NONBLOCK); }

   private:
    void add(int i) {
      if (timeouts_) {
        const timeval tv = to_timeval(pairs_.timeout_ns(i));
        event_add(&events_[idx(i)], &tv);
      } else {
        event_add(&events_[idx(i)], nullptr);
      }
    }
    static void on_read(evutil_socket_t, short, void* arg) {
      current_->pairs_.on_readable(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
    }
    static size_t size(const evbench::Pairs& p) { return static_cast<size_t>(p.size()); }
    static size_t idx(int i) { return static_cast<size_t>(i); }
    static inline Ring* current_ = nullptr;
    event_base* base_;
    evbench::Pairs& pairs_;
    bool timeouts_;
    std::vector<event> events_;
  };

  class Timers {
   public:
    Timers(size_t n, evbench::Fire fire, void* context)
        : base_(new_base(kNoLock | kPreciseTimer)), fire_(fire), context_(context), events_(n) {
      const timeval twelve{12, 0};
      idle_timeout_ = event_base_init_common_timeout(base_, &twelve);
      for (size_t i = 0; i < n; ++i)
        event_assign(&events_[i], base_, -1, 0, on_timer, this);
    }
    ~Timers() {
      for (auto& ev : events_)
        event_del(&ev);
      event_base_free(base_);
    }
    void update_time() { event_base_update_cache_time(base_); }
    void start(size_t i, int64_t after_ns) {
      const timeval tv = to_timeval(after_ns);
      event_add(&events_[i], &tv);
    }
    void restart(size_t i, int64_t after_ns) { start(i, after_ns); }
    // A common timeout queue is FIFO for one duration: each add lands after all others.
    void again(size_t i, int64_t) { event_add(&events_[i], idle_timeout_); }
    void stop(size_t i) { event_del(&events_[i]); }
    void settle() {}
    void run_nowait() { event_base_loop(base_, EVLOOP_NONBLOCK); }
    void run() { event_base_dispatch(base_); }

   private:
    // The callback argument is the Timers; the index comes from the event's address.
    static void on_timer(evutil_socket_t, short, void* arg) {
      auto* self = static_cast<Timers*>(arg);
      event* ev = event_base_get_running_event(self->base_);
      self->fire_(self->context_, static_cast<size_t>(ev - self->events_.data()));
    }
    event_base* base_;
    evbench::Fire fire_;
    void* context_;
    std::vector<event> events_;
    const timeval* idle_timeout_ = nullptr;
  };

  class Mailbox {
   public:
    Mailbox(evbench::Wake wake, void* context) : base_(new_base(0)), wake_(wake), context_(context) {
      event_assign(&event_, base_, -1, EV_PERSIST, on_wake, this);
    }
    ~Mailbox() {
      event_del(&event_);
      event_base_free(base_);
    }
    void run() { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); }
    void notify() { event_active(&event_, EV_READ, 0); }
    void stop() { event_base_loopbreak(base_); }

   private:
    static void on_wake(evutil_socket_t, short, void* arg) {
      auto* self = static_cast<Mailbox*>(arg);
      self->wake_(self->context_);
    }
    event_base* base_;
    evbench::Wake wake_;
    void* context_;
    event event_;
  };

  class Quiet {
   public:
    Quiet(int fd, size_t timers) : base_(new_base(kNoLock)), timers_(timers) {
      event_assign(
          &io_, base_, fd, EV_READ | EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
      event_add(&io_, nullptr);
      for (size_t i = 0; i < timers; ++i) {
        event_assign(
            &timers_[i], base_, -1, 0, [](evutil_socket_t, short, void*) {}, nullptr);
        const timeval tv{3600, static_cast<suseconds_t>(i % 1'000'000)};
        event_add(&timers_[i], &tv);
      }
    }
    ~Quiet() {
      event_del(&io_);
      for (auto& ev : timers_)
        event_del(&ev);
      event_base_free(base_);
    }
    void run_nowait() { event_base_loop(base_, EVLOOP_NONBLOCK); }

   private:
    event_base* base_;
    event io_;
    std::vector<event> timers_;
  };
};

}  // namespace

int main(int argc, char** argv) {
  if (evthread_use_pthreads() != 0) {
    std::fprintf(stderr, "libevent: evthread_use_pthreads failed\n");
    return 1;
  }
  return evbench::main<Libevent>(argc, argv);
}
