// The side-by-side benchmark harness: every workload of ../shared/BENCH.md written once,
// driven through a small per-library adapter. Each library gets its own executable
// (bench/compare/<library>.cpp), because Debian's libev.so also exports libevent's API.
//
// An adapter `Lib` provides (see evflow.cpp for the reference one):
//   static constexpr const char* kName;                     library name in the results
//   static std::string version();
//   static size_t io_watcher_bytes(), timer_watcher_bytes(); the watcher a user embeds
//   class Ring     (Pairs&, bool timeouts)  bench.c: reregister(), run_nowait()
//   class Timers   (size_t n, Fire, void*)  update_time(), start(i, ns), restart(i, ns),
//                                           again(i, ns), stop(i), settle(), run_nowait(), run()
//   class Mailbox  (Wake, void*)            run() until stop(); notify() from any thread
//   class Quiet    (int fd, size_t timers)  run_nowait(): one non-blocking iteration
//
// Every benchmark runs once (Iterations(1)) and measures itself, reporting medians as
// Google Benchmark counters named <metric>_<unit>; bench/compare/report.py turns them into
// bench/results/latest.json, the tables and the charts.
#pragma once

#include <benchmark/benchmark.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace evbench {

inline int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest-rank percentile of a sorted vector, p in [0, 100].
inline double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

inline size_t resident_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

// n objects of a non-movable type, constructed in place from the same arguments and stored
// contiguously, the way a C program keeps an array of ev_io.
template <class T>
class FixedArray {
 public:
  template <class... Args>
  FixedArray(size_t n, Args&... args) : size_(n), items_(std::allocator<T>().allocate(n)) {
    for (size_t i = 0; i < n; ++i)
      new (items_ + i) T(args...);
  }
  ~FixedArray() {
    for (size_t i = size_; i-- > 0;)
      items_[i].~T();
    std::allocator<T>().deallocate(items_, size_);
  }
  FixedArray(const FixedArray&) = delete;
  FixedArray& operator=(const FixedArray&) = delete;
  T& operator[](size_t i) noexcept { return items_[i]; }
  size_t size() const noexcept { return size_; }

 private:
  size_t size_;
  T* items_;
};

// --- parameters -------------------------------------------------------------------

struct Grid {
  bool quick = false;
  std::vector<int> benchc_fds;
  std::vector<int> benchc_active{1, 100};
  std::vector<int> benchc_timeouts;
  int benchc_writes = 1000;
  int benchc_iterations = 25;
  int benchc_overhead_samples = 200;  // interleaved floor/library iteration pairs
  size_t churn_timers = 1'000'000;
  int churn_shuffled_rounds = 10;  // restarts per timer in restart_shuffled
  int lateness_rounds = 10;
  int lateness_timers = 1000;
  int pingpong_round_trips = 20'000;
  int burst_sends = 1'000'000;
  std::vector<size_t> idle_timers{0, 1000, 100'000};
  int idle_iterations = 20'000;
};

// The largest bench.c ring the descriptor limit allows: two descriptors a pair, and room
// for the loop's own descriptors and the harness.
inline int largest_ring() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1000;
  const long usable = static_cast<long>(std::min<rlim_t>(lim.rlim_cur, 1'000'000)) - 64;
  return static_cast<int>(std::clamp<long>(usable / 2, 100, 10'000));
}

inline Grid make_grid(bool quick) {
  Grid g;
  g.quick = quick;
  if (quick) {
    g.benchc_fds = {100, 1000};
    g.benchc_timeouts = {0};
    g.benchc_iterations = 10;
    g.benchc_overhead_samples = 40;
    g.churn_timers = 100'000;
    g.churn_shuffled_rounds = 3;
    g.lateness_rounds = 3;
    g.pingpong_round_trips = 2000;
    g.burst_sends = 100'000;
    g.idle_timers = {0, 1000, 10'000};
    g.idle_iterations = 5000;
  } else {
    g.benchc_fds = {100, 1000, largest_ring()};
    g.benchc_timeouts = {0, 1};
  }
  return g;
}

// --- bench.c: the ring of socketpairs ---------------------------------------------

// The state of libevent's test/bench.c: pair i's read end is watched; each read callback
// takes its byte and, while writes remain, writes one byte to the next pair.
class Pairs {
 public:
  explicit Pairs(int n) : read_fd_(static_cast<size_t>(n), -1), write_fd_(static_cast<size_t>(n), -1) {
    std::mt19937_64 rng(n);
    std::uniform_int_distribution<int64_t> jitter(0, 1'000'000'000);
    for (auto& t : timeout_ns_)
      t = 10'000'000'000 + jitter(rng);
    for (int i = 0; i < n; ++i) {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        ok_ = false;
        return;
      }
      read_fd_[static_cast<size_t>(i)] = fds[0];
      write_fd_[static_cast<size_t>(i)] = fds[1];
    }
  }
  ~Pairs() {
    for (size_t i = 0; i < read_fd_.size(); ++i) {
      if (read_fd_[i] >= 0) ::close(read_fd_[i]);
      if (write_fd_[i] >= 0) ::close(write_fd_[i]);
    }
  }
  Pairs(const Pairs&) = delete;
  Pairs& operator=(const Pairs&) = delete;

  bool ok() const noexcept { return ok_; }
  int size() const noexcept { return static_cast<int>(read_fd_.size()); }
  int read_fd(int i) const noexcept { return read_fd_[static_cast<size_t>(i)]; }

  // The read callback's work, for libraries that hand over readiness.
  void on_readable(int i) noexcept {
    char c;
    if (::read(read_fd_[static_cast<size_t>(i)], &c, 1) == 1) after_read(i);
  }
  // The rest of it, for libraries that read the byte themselves (Asio's async_read_some).
  void after_read(int i) noexcept {
    ++count_;
    if (writes_ > 0) {
      int next = i + 1;
      if (next >= size()) next = 0;
      (void)!::write(write_fd_[static_cast<size_t>(next)], "e", 1);
      --writes_;
      ++fired_;
    }
  }
  // The idle timeout restarted in every callback with `-t`: 10 s + U(0, 1 s).
  int64_t timeout_ns(int i) noexcept { return timeout_ns_[(static_cast<size_t>(i) + ++draw_) & 1023]; }

  void prime(int active, int writes) noexcept {
    fired_ = 0;
    const int space = size() / active * 2;
    for (int i = 0; i < active; ++i, ++fired_)
      (void)!::write(write_fd_[static_cast<size_t>(i * space / 2)], "e", 1);
    count_ = 0;
    writes_ = writes;
  }
  bool drained() const noexcept { return count_ == fired_; }
  long events() const noexcept { return count_; }

 private:
  std::vector<int> read_fd_, write_fd_;
  int64_t timeout_ns_[1024];
  size_t draw_ = 0;
  long count_ = 0, fired_ = 0;
  int writes_ = 0;
  bool ok_ = true;
};

// bench.c done by hand: a level-triggered epoll set registered once, epoll_wait(timeout 0),
// then the same read and write per event. Nothing a reactor does can cost less, so each
// library's per-event overhead is measured against it, interleaved in the same process.
class FloorRing {
 public:
  FloorRing(Pairs& pairs, bool) : pairs_(pairs), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    for (int i = 0; i < pairs.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, pairs.read_fd(i), &ev) != 0) std::abort();
    }
  }
  ~FloorRing() { ::close(epoll_); }
  FloorRing(const FloorRing&) = delete;
  FloorRing& operator=(const FloorRing&) = delete;
  void reregister() {}
  void run_nowait() {
    const int n = ::epoll_wait(epoll_, events_, 64, 0);
    for (int i = 0; i < n; ++i)
      pairs_.on_readable(static_cast<int>(events_[i].data.u32));
  }

 private:
  Pairs& pairs_;
  int epoll_;
  epoll_event events_[64];
};

// The system calls this thread enters, counted by the kernel: a perf counter on the
// raw_syscalls:sys_enter tracepoint. Each read() of it is a system call of its own, which
// it counts too. Where perf events or tracefs are not open to the process, no count.
class SyscallCounter {
 public:
  SyscallCounter() {
    FILE* f = std::fopen("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id", "r");
    if (f == nullptr) return;
    unsigned long long id = 0;
    const bool read_id = std::fscanf(f, "%llu", &id) == 1;
    std::fclose(f);
    if (!read_id) return;
    perf_event_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof attr;
    attr.config = id;
    fd_ = static_cast<int>(::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  }
  ~SyscallCounter() {
    if (fd_ >= 0) ::close(fd_);
  }
  SyscallCounter(const SyscallCounter&) = delete;
  SyscallCounter& operator=(const SyscallCounter&) = delete;
  bool ok() const { return fd_ >= 0; }
  // The count so far, this read included; -1 without a counter.
  long long read() const {
    unsigned long long value = 0;
    if (fd_ < 0 || ::read(fd_, &value, sizeof value) != static_cast<ssize_t>(sizeof value)) return -1;
    return static_cast<long long>(value);
  }

 private:
  int fd_ = -1;
};

// One bench.c iteration: total = re-registration + one non-blocking run + priming + loop;
// loop = from the priming to the last byte read. The system calls of each (-1 without a
// counter), the counter's own reads taken out.
struct BenchcTimes {
  double total_ns, loop_ns;
  long events;
  double total_syscalls = -1, loop_syscalls = -1;
};

template <class Ring>
BenchcTimes benchc_iteration(Ring& ring, Pairs& pairs, int active, int writes,
                             const SyscallCounter* counter = nullptr) {
  const long long c0 = counter ? counter->read() : -1;
  const int64_t t0 = now_ns();
  ring.reregister();
  ring.run_nowait();
  pairs.prime(active, writes);
  const int64_t t1 = now_ns();
  const long long c1 = counter ? counter->read() : -1;
  long spins = 0;
  do {
    ring.run_nowait();
  } while (!pairs.drained() && ++spins < 100'000'000);
  const int64_t t2 = now_ns();
  const long long c2 = counter ? counter->read() : -1;
  BenchcTimes times{static_cast<double>(t2 - t0), static_cast<double>(t2 - t1), pairs.events()};
  if (c0 >= 0 && c1 >= 0 && c2 >= 0) {
    times.total_syscalls = static_cast<double>(c2 - c0 - 2);  // the reads at c1 and c2
    times.loop_syscalls = static_cast<double>(c2 - c1 - 1);   // the read at c2
  }
  return times;
}

// Medians over the warm iterations (the first is reported as cold). With a floor run
// interleaved, overhead_per_event_ns is the median of (library loop - floor loop) / events
// over iteration pairs measured back to back.
// total and loop: medians over the first `iterations` (the first one reported as cold).
// Over every interleaved pair (the floor iteration measured right before the library's):
// overhead_per_event_ns, the median of (library loop - floor loop) / events, and
// loop_vs_floor_x / total_vs_floor_x, the medians of library / floor. These paired figures
// cancel the drift of a shared machine, which moves both sides of a pair alike.
inline void report_benchc(benchmark::State& state, const std::vector<BenchcTimes>& runs,
                          const std::vector<BenchcTimes>& floor, int iterations) {
  std::vector<double> total, loop, overhead, floor_loop, loop_vs_floor, total_vs_floor;
  for (size_t k = 1; k < runs.size(); ++k) {
    if (k < static_cast<size_t>(iterations)) {
      total.push_back(runs[k].total_ns);
      loop.push_back(runs[k].loop_ns);
    }
    if (k < floor.size()) {
      floor_loop.push_back(floor[k].loop_ns);
      overhead.push_back((runs[k].loop_ns - floor[k].loop_ns) / static_cast<double>(runs[k].events));
      loop_vs_floor.push_back(runs[k].loop_ns / floor[k].loop_ns);
      total_vs_floor.push_back(runs[k].total_ns / floor[k].total_ns);
    }
  }
  const double events = static_cast<double>(runs.back().events);
  std::vector<double> total_syscalls, loop_syscalls;
  for (size_t k = 1; k < runs.size(); ++k) {
    if (runs[k].loop_syscalls < 0) continue;
    total_syscalls.push_back(runs[k].total_syscalls);
    loop_syscalls.push_back(runs[k].loop_syscalls);
  }
  if (!loop_syscalls.empty()) {  // counted by the kernel (SyscallCounter), medians
    state.counters["syscalls_per_event_count"] = median(loop_syscalls) / events;
    state.counters["syscalls_per_iteration_count"] = median(total_syscalls);
  }
  state.counters["total_ns"] = median(total);
  state.counters["loop_ns"] = median(loop);
  state.counters["cold_total_ns"] = runs.front().total_ns;
  state.counters["cold_loop_ns"] = runs.front().loop_ns;
  state.counters["per_event_ns"] = median(loop) / events;
  state.counters["events_count"] = events;
  if (!overhead.empty()) {
    state.counters["floor_loop_ns"] = median(floor_loop);
    state.counters["floor_per_event_ns"] = median(floor_loop) / events;
    state.counters["overhead_per_event_ns"] = median(overhead);
    state.counters["overhead_samples_count"] = static_cast<double>(overhead.size());
    state.counters["loop_vs_floor_x"] = median(loop_vs_floor);
    state.counters["total_vs_floor_x"] = median(total_vs_floor);
  }
  state.SetIterationTime(median(total) / 1e9);
}

// The floor runs on the library's own socketpairs, each iteration right before the
// library's, so both see the same descriptors, socket buffers and machine state; each
// descriptor then sits in two epoll sets, which costs both sides alike.
template <class Lib>
void bench_c(benchmark::State& state, int fds, int active, bool timeouts, const Grid& grid) {
  for (auto _ : state) {
    Pairs pairs(fds);
    if (!pairs.ok()) {
      state.SkipWithError("socketpair failed (descriptor limit?)");
      return;
    }
    typename Lib::Ring ring(pairs, timeouts);
    std::unique_ptr<FloorRing> floor_ring;
    if (!std::is_same_v<typename Lib::Ring, FloorRing>) floor_ring = std::make_unique<FloorRing>(pairs, false);
    std::vector<BenchcTimes> runs, floor;
    const SyscallCounter counter;
    // Overhead is a small difference of two noisy figures: sample it longer (half as long
    // on the largest rings, whose iterations take longest).
    const int wanted = fds > 1000 ? grid.benchc_overhead_samples / 2 : grid.benchc_overhead_samples;
    const int samples = floor_ring ? std::max(grid.benchc_iterations, wanted) : grid.benchc_iterations;
    for (int k = 0; k < samples; ++k) {
      if (floor_ring) {
        floor.push_back(benchc_iteration(*floor_ring, pairs, active, grid.benchc_writes));
        if (!pairs.drained()) break;
      }
      runs.push_back(benchc_iteration(ring, pairs, active, grid.benchc_writes, counter.ok() ? &counter : nullptr));
      if (!pairs.drained()) break;
    }
    if (!pairs.drained()) {
      state.SkipWithError("bench.c: bytes written were never read");
      return;
    }
    report_benchc(state, runs, floor, grid.benchc_iterations);
  }
}

// --- timers -----------------------------------------------------------------------

using Fire = void (*)(void* context, size_t index);

// restart_shuffled's restarts: each of n timers `rounds` times, in random order, each to a
// deadline 10 s + U(0, 1 s) away.
struct ShuffledRestarts {
  std::vector<uint32_t> timer;
  std::vector<int64_t> deadline;
};
inline ShuffledRestarts shuffled_restarts(size_t n, int rounds, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> jitter(0, 1'000'000'000);
  ShuffledRestarts r{std::vector<uint32_t>(n * static_cast<size_t>(rounds)), {}};
  for (size_t k = 0; k < r.timer.size(); ++k)
    r.timer[k] = static_cast<uint32_t>(k % n);
  std::shuffle(r.timer.begin(), r.timer.end(), rng);
  r.deadline.resize(r.timer.size());
  for (auto& d : r.deadline)
    d = 10'000'000'000 + jitter(rng);
  return r;
}

template <class Lib>
void timer_churn(benchmark::State& state, size_t n, int shuffled_rounds) {
  for (auto _ : state) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int64_t> jitter(0, 1'000'000'000);
    std::uniform_int_distribution<int64_t> soon(0, 1'000'000);
    std::vector<int64_t> first(n), second(n), due(n);
    for (size_t i = 0; i < n; ++i) {
      first[i] = 10'000'000'000 + jitter(rng);
      second[i] = 10'000'000'000 + jitter(rng);
      due[i] = soon(rng);
    }
    size_t fired = 0;
    typename Lib::Timers timers(
        n, [](void* c, size_t) { ++*static_cast<size_t*>(c); }, &fired);
    timers.update_time();
    auto per_op = [n](int64_t a, int64_t b) { return static_cast<double>(b - a) / static_cast<double>(n); };

    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; ++i)
      timers.start(i, first[i]);
    timers.settle();
    int64_t t1 = now_ns();
    state.counters["start_ns"] = per_op(t0, t1);

    t0 = now_ns();
    for (size_t i = 0; i < n; ++i)
      timers.restart(i, second[i]);
    timers.settle();
    t1 = now_ns();
    state.counters["restart_random_ns"] = per_op(t0, t1);

    t0 = now_ns();
    // 12 s + i ns: each restart strictly later than every deadline before it, as when an
    // idle timeout is re-armed on a running clock (the loop's cached now stands still here).
    for (size_t i = 0; i < n; ++i)
      timers.again(i, 12'000'000'000 + static_cast<int64_t>(i));
    timers.settle();
    t1 = now_ns();
    state.counters["restart_fifo_ns"] = per_op(t0, t1);

    t0 = now_ns();
    for (size_t i = 0; i < n; ++i)
      timers.stop(i);
    timers.settle();
    t1 = now_ns();
    state.counters["stop_ns"] = per_op(t0, t1);

    // Expiry: every timer due within 1 ms; wait until all are due, then one iteration,
    // timed into t0 and t1.
    auto expire_all = [&] {
      timers.update_time();
      for (size_t i = 0; i < n; ++i)
        timers.start(i, due[i]);
      const int64_t all_due = now_ns() + 2'000'000;
      while (now_ns() < all_due)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      t0 = now_ns();
      timers.run_nowait();
      t1 = now_ns();
    };
    expire_all();
    int extra = 0;
    while (fired < n && ++extra < 1000)
      timers.run_nowait();
    state.counters["expire_ns"] = per_op(t0, t1);
    state.counters["expire_extra_iterations_count"] = extra;
    if (fired != n) state.SkipWithError("not every due timer fired");
    state.SetIterationTime(static_cast<double>(t1 - t0) / 1e9);

    // The same again in the same loop: the expiry's own memory is now warm (expire above
    // was the loop's first burst: its memory first touched there).
    fired = 0;
    expire_all();
    state.counters["expire_warm_ns"] = per_op(t0, t1);
    if (fired != n) state.SkipWithError("not every due timer fired the second time");

    // Restarts in random order: every timer restarted `rounds` times to a random deadline,
    // the whole sequence shuffled, so that consecutive restarts touch unrelated timers and
    // wheel slots (restart_random above goes through the timers in order).
    timers.update_time();
    for (size_t i = 0; i < n; ++i)
      timers.start(i, first[i]);
    timers.settle();
    const ShuffledRestarts restarts = shuffled_restarts(n, shuffled_rounds, rng);
    const std::vector<uint32_t>& sequence = restarts.timer;
    const std::vector<int64_t>& deadline = restarts.deadline;
    t0 = now_ns();
    for (size_t k = 0; k < sequence.size(); ++k)
      timers.restart(sequence[k], deadline[k]);
    timers.settle();
    t1 = now_ns();
    state.counters["restart_shuffled_ns"] = static_cast<double>(t1 - t0) / static_cast<double>(sequence.size());
    for (size_t i = 0; i < n; ++i)
      timers.stop(i);
  }
}

template <class Lib>
void timer_lateness(benchmark::State& state, const Grid& grid) {
  for (auto _ : state) {
    struct Round {
      int64_t base = 0;
      std::vector<int64_t> offset;
      std::vector<double> late_us;
      long early = 0;
    } round;
    const size_t n = static_cast<size_t>(grid.lateness_timers);
    round.offset.resize(n);
    typename Lib::Timers timers(
        n,
        [](void* c, size_t i) {
          auto& r = *static_cast<Round*>(c);
          const int64_t late = now_ns() - (r.base + r.offset[i]);
          if (late < 0) ++r.early;
          r.late_us.push_back(static_cast<double>(late) / 1000.0);
        },
        &round);
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int64_t> offset(100'000, 5'000'000);
    for (int r = 0; r < grid.lateness_rounds; ++r) {
      for (auto& o : round.offset)
        o = offset(rng);
      // The reference instant is read before the library's own notion of now, so that a
      // timer the library fires before base + offset fired early by the library's doing.
      round.base = now_ns();
      timers.update_time();
      for (size_t i = 0; i < n; ++i)
        timers.start(i, round.offset[i]);
      timers.run();
    }
    std::sort(round.late_us.begin(), round.late_us.end());
    state.counters["p50_us"] = percentile(round.late_us, 50);
    state.counters["p90_us"] = percentile(round.late_us, 90);
    state.counters["p99_us"] = percentile(round.late_us, 99);
    state.counters["max_us"] = round.late_us.empty() ? 0 : round.late_us.back();
    state.counters["early_count"] = static_cast<double>(round.early);
    state.counters["fired_count"] = static_cast<double>(round.late_us.size());
    state.SetIterationTime(percentile(round.late_us, 99) / 1e6);
    if (round.late_us.size() != n * static_cast<size_t>(grid.lateness_rounds))
      state.SkipWithError("not every timer fired");
  }
}

// --- cross-thread wake-ups ----------------------------------------------------------

using Wake = void (*)(void* context);

// Runs a Mailbox on its own thread. The mailbox is built, run and destroyed on that
// thread; it is destroyed only after every other thread said it will not touch it again.
template <class Lib>
class MailboxThread {
 public:
  MailboxThread(Wake wake, void* context)
      : thread_([this, wake, context] {
          typename Lib::Mailbox box(wake, context);
          box_.store(&box, std::memory_order_release);
          box.run();
          ran_.store(true, std::memory_order_release);
          release_.wait();
        }) {
    while (!box_.load(std::memory_order_acquire))
      std::this_thread::yield();
  }
  ~MailboxThread() { join(); }
  typename Lib::Mailbox& box() noexcept { return *box_.load(std::memory_order_acquire); }
  bool ran() const noexcept { return ran_.load(std::memory_order_acquire); }
  void join() {
    if (!thread_.joinable()) return;
    release_.count_down();
    thread_.join();
  }

 private:
  std::atomic<typename Lib::Mailbox*> box_{nullptr};
  std::atomic<bool> ran_{false};
  std::latch release_{1};
  std::thread thread_;
};

// Two loops in two threads bounce a wake-up; both are torn down only after both stopped.
template <class Lib>
void wakeup_pingpong(benchmark::State& state, int round_trips) {
  for (auto _ : state) {
    struct Shared {
      MailboxThread<Lib>* a = nullptr;
      MailboxThread<Lib>* b = nullptr;
      std::atomic<bool> wired{false}, done{false};
      int left = 0;
      int64_t start = 0, end = 0;
    } s;
    s.left = round_trips;
    Wake on_a = [](void* c) {  // a round trip ends here
      auto& sh = *static_cast<Shared*>(c);
      if (!sh.wired.load(std::memory_order_acquire)) return;
      if (--sh.left == 0) {
        sh.end = now_ns();
        sh.done.store(true, std::memory_order_release);
        sh.a->box().stop();
      }
      sh.b->box().notify();
    };
    Wake on_b = [](void* c) {
      auto& sh = *static_cast<Shared*>(c);
      if (!sh.wired.load(std::memory_order_acquire)) return;
      if (sh.done.load(std::memory_order_acquire)) {
        sh.b->box().stop();
        return;
      }
      sh.a->box().notify();
    };
    MailboxThread<Lib> a(on_a, &s), b(on_b, &s);
    s.a = &a;
    s.b = &b;
    s.wired.store(true, std::memory_order_release);
    s.start = now_ns();
    b.box().notify();
    while (!a.ran() || !b.ran())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    a.join();
    b.join();
    const double seconds = static_cast<double>(s.end - s.start) / 1e9;
    state.counters["round_trips_per_s"] = round_trips / seconds;
    state.counters["round_trip_ns"] = seconds * 1e9 / round_trips;
    state.SetIterationTime(seconds);
  }
}

// A burst of sends from one thread to a loop on another. Each send publishes its sequence
// number first; the loop's callback reads it, so the last one must be seen: no lost wake-up.
template <class Lib>
void wakeup_burst(benchmark::State& state, int sends) {
  for (auto _ : state) {
    struct Shared {
      std::atomic<long> sequence{0}, seen{0}, callbacks{0};
      MailboxThread<Lib>* receiver = nullptr;
    } s;
    Wake on_wake = [](void* c) {
      auto& sh = *static_cast<Shared*>(c);
      const long sequence = sh.sequence.load(std::memory_order_acquire);
      if (sequence < 0) {  // the harness asks the loop to stop, from the loop's own thread
        sh.receiver->box().stop();
        return;
      }
      sh.callbacks.fetch_add(1, std::memory_order_relaxed);
      sh.seen.store(sequence, std::memory_order_release);
    };
    MailboxThread<Lib> receiver(on_wake, &s);
    s.receiver = &receiver;
    auto& box = receiver.box();
    const int64_t t0 = now_ns();
    for (long i = 1; i <= sends; ++i) {
      s.sequence.store(i, std::memory_order_release);
      box.notify();
    }
    const int64_t t1 = now_ns();
    const int64_t give_up = t1 + 5'000'000'000;
    while (s.seen.load(std::memory_order_acquire) != sends && now_ns() < give_up)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    const bool lost = s.seen.load() != sends;
    s.sequence.store(-1, std::memory_order_release);
    box.notify();
    while (!receiver.ran())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    receiver.join();
    state.counters["send_ns"] = static_cast<double>(t1 - t0) / sends;
    state.counters["callbacks_count"] = static_cast<double>(s.callbacks.load());
    state.counters["lost_count"] = lost ? 1 : 0;
    state.SetIterationTime(static_cast<double>(t1 - t0) / 1e9);
    if (lost) state.SkipWithError("lost wake-up: the last send was never seen");
  }
}

// --- idle iteration and memory ------------------------------------------------------

template <class Lib>
void idle_iteration(benchmark::State& state, size_t timers, int iterations) {
  for (auto _ : state) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      state.SkipWithError("socketpair");
      return;
    }
    {
      typename Lib::Quiet quiet(fds[0], timers);
      for (int i = 0; i < 100; ++i)
        quiet.run_nowait();
      std::vector<double> batches;
      const int per_batch = iterations / 5;
      for (int b = 0; b < 5; ++b) {
        const int64_t t0 = now_ns();
        for (int i = 0; i < per_batch; ++i)
          quiet.run_nowait();
        batches.push_back(static_cast<double>(now_ns() - t0) / per_batch);
      }
      state.counters["iteration_ns"] = median(batches);
      state.SetIterationTime(median(batches) / 1e9);
    }
    ::close(fds[0]);
    ::close(fds[1]);
  }
}

// Resident memory added by n active timers (watchers and the library's own structures).
// Runs first in each executable, before the allocator holds freed memory.
template <class Lib>
void memory(benchmark::State& state, size_t n) {
  for (auto _ : state) {
    const size_t before = resident_bytes();
    size_t fired = 0;
    {
      typename Lib::Timers timers(
          n, [](void* c, size_t) { ++*static_cast<size_t*>(c); }, &fired);
      timers.update_time();
      for (size_t i = 0; i < n; ++i)
        timers.start(i, 10'000'000'000 + static_cast<int64_t>(i));
      timers.settle();
      const size_t after = resident_bytes();
      state.counters["rss_per_timer_bytes"] = static_cast<double>(after - before) / static_cast<double>(n);
    }
    state.counters["io_watcher_bytes"] = static_cast<double>(Lib::io_watcher_bytes());
    state.counters["timer_watcher_bytes"] = static_cast<double>(Lib::timer_watcher_bytes());
    state.SetIterationTime(1e-9);
  }
}

// --- registration -----------------------------------------------------------------

template <class F>
void add(const std::string& name, F&& body) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<F>(body))
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

// Parses --grid=quick|full and removes it from argv.
inline Grid parse_grid(int& argc, char** argv) {
  bool quick = false;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--grid=quick") == 0)
      quick = true;
    else if (std::strcmp(argv[i], "--grid=full") != 0)
      argv[kept++] = argv[i];
  }
  argc = kept;
  return make_grid(quick);
}

inline std::string benchc_name(int fds, int active, int timeouts) {
  return "benchc/fds:" + std::to_string(fds) + "/active:" + std::to_string(active) +
         "/timeouts:" + std::to_string(timeouts);
}

// Runs what was registered, labelled with the library's name and version.
inline int run_registered(int argc, char** argv, const Grid& grid, const char* library, const std::string& version) {
  benchmark::AddCustomContext("library", library);
  benchmark::AddCustomContext("library_version", version);
  benchmark::AddCustomContext("grid", grid.quick ? "quick" : "full");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// Registers every workload for Lib and runs them.
template <class Lib>
int main(int argc, char** argv) {
  static const Grid grid = parse_grid(argc, argv);
  const std::string n = std::to_string(grid.churn_timers);

  add("memory/timers:" + n, [](benchmark::State& s) { memory<Lib>(s, grid.churn_timers); });
  for (int fds : grid.benchc_fds)
    for (int active : grid.benchc_active)
      for (int t : grid.benchc_timeouts)
        add(benchc_name(fds, active, t),
            [fds, active, t](benchmark::State& s) { bench_c<Lib>(s, fds, active, t != 0, grid); });
  add("timer_churn/timers:" + n,
      [](benchmark::State& s) { timer_churn<Lib>(s, grid.churn_timers, grid.churn_shuffled_rounds); });
  add("timer_lateness/timers:" + std::to_string(grid.lateness_timers) +
          "/rounds:" + std::to_string(grid.lateness_rounds),
      [](benchmark::State& s) { timer_lateness<Lib>(s, grid); });
  add("wakeup_pingpong/round_trips:" + std::to_string(grid.pingpong_round_trips),
      [](benchmark::State& s) { wakeup_pingpong<Lib>(s, grid.pingpong_round_trips); });
  add("wakeup_burst/sends:" + std::to_string(grid.burst_sends),
      [](benchmark::State& s) { wakeup_burst<Lib>(s, grid.burst_sends); });
  for (size_t t : grid.idle_timers)
    add("idle_iteration/timers:" + std::to_string(t),
        [t](benchmark::State& s) { idle_iteration<Lib>(s, t, grid.idle_iterations); });
  return run_registered(argc, argv, grid, Lib::kName, Lib::version());
}

}  // namespace evbench
