// The system-call floor, measured in the same `make bench` run as the libraries: what no
// reactor can go below on this machine.
//
// benchc/...       bench.c done by hand on a level-triggered epoll set registered once:
//                  epoll_wait(timeout 0), then read(1) and write(1) per event. Its
//                  per_event_ns is the floor each library's per-event cost is compared to.
// syscall_floor    epoll_wait(timeout 0) returning one ready event, and returning none (the
//                  floor of an idle iteration); a 1-byte write + read
//                  on an AF_UNIX socketpair; clock_gettime(CLOCK_MONOTONIC) via the vDSO.
// timer_churn      restart_shuffled's floor: the same number of restarts of as many 64-byte
//                  records in random order, each restart one read-modify-write of its
//                  record's deadline through a call that is not inlined (as a library's
//                  restart is): what memory costs before a restart does any work. Then
//                  the same with 10 and 20 dependent steps on each value read
//                  (restart_shuffled_wait10, _wait20): what the instructions that wait for
//                  the record cost, since fewer restarts overlap.
#include "bench/compare/harness.hpp"

namespace {

struct Kernel {
  using Ring = evbench::FloorRing;
};

// Median over 5 batches of ns per call of `op`.
template <class Op>
double per_call_ns(int calls, Op op) {
  std::vector<double> batches;
  for (int b = 0; b < 5; ++b) {
    const int64_t t0 = evbench::now_ns();
    for (int i = 0; i < calls; ++i)
      op();
    batches.push_back(static_cast<double>(evbench::now_ns() - t0) / calls);
  }
  return evbench::median(batches);
}

void syscall_floor(benchmark::State& state, int calls) {
  for (auto _ : state) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      state.SkipWithError("socketpair");
      return;
    }
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    (void)::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
    (void)!::write(fds[1], "e", 1);
    epoll_event out[8];
    long ready = 0;
    state.counters["epoll_wait_one_ns"] = per_call_ns(calls, [&] { ready += ::epoll_wait(ep, out, 8, 0); });
    char c;
    (void)!::read(fds[0], &c, 1);
    state.counters["epoll_wait_none_ns"] = per_call_ns(calls, [&] { ready += ::epoll_wait(ep, out, 8, 0); });
    state.counters["read_write_1byte_ns"] = per_call_ns(calls, [&] {
      (void)!::write(fds[1], "e", 1);
      (void)!::read(fds[0], &c, 1);
    });
    int64_t sink = 0;
    state.counters["clock_gettime_ns"] = per_call_ns(calls * 10, [&] { sink += evbench::now_ns(); });
    benchmark::DoNotOptimize(sink);
    ::close(ep);
    ::close(fds[0]);
    ::close(fds[1]);
    if (ready != 5L * calls) state.SkipWithError("epoll_wait did not report the ready descriptor every time");
    state.SetIterationTime(state.counters["epoll_wait_one_ns"] / 1e9);
  }
}

// A timer of 64 bytes, as the libraries' are (memory/timers: timer_watcher_bytes).
struct alignas(64) Record {
  int64_t deadline;
  int64_t rest[7];
};

// Each restart reads its record, works `Steps` dependent steps on what it read (a shift
// and an exclusive or each, which the compiler cannot fold), and writes the record. With
// Steps = 0 this is the floor; the others show what instructions that wait for the record
// cost.
template <int Steps>
__attribute__((noinline)) void restart_record(Record& record, int64_t deadline) {
  int64_t value = std::max(record.deadline, int64_t{0});  // read
  for (int i = 0; i < Steps; ++i) {
    __asm__("" : "+r"(value));
    value ^= value >> 3;
  }
  record.deadline = (value & 1) + deadline;  // then written
}

void restart_floor(benchmark::State& state, size_t n, int rounds) {
  for (auto _ : state) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int64_t> jitter(0, 1'000'000'000);
    std::vector<Record> records(n);
    for (Record& r : records)
      r.deadline = 10'000'000'000 + jitter(rng);
    const evbench::ShuffledRestarts restarts = evbench::shuffled_restarts(n, rounds, rng);
    const std::vector<uint32_t>& sequence = restarts.timer;
    const std::vector<int64_t>& deadline = restarts.deadline;
    auto restarts_with = [&]<int Steps>() {
      const int64_t t0 = evbench::now_ns();
      for (size_t k = 0; k < sequence.size(); ++k)
        restart_record<Steps>(records[sequence[k]], deadline[k]);
      const int64_t t1 = evbench::now_ns();
      benchmark::DoNotOptimize(records.data());
      return static_cast<double>(t1 - t0) / static_cast<double>(sequence.size());
    };
    const double floor = restarts_with.template operator()<0>();
    state.counters["restart_shuffled_ns"] = floor;
    state.counters["restart_shuffled_wait10_ns"] = restarts_with.template operator()<10>();
    state.counters["restart_shuffled_wait20_ns"] = restarts_with.template operator()<20>();
    state.SetIterationTime(floor * static_cast<double>(sequence.size()) / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  static const evbench::Grid grid = evbench::parse_grid(argc, argv);
  evbench::add("syscall_floor", [](benchmark::State& s) { syscall_floor(s, grid.quick ? 20'000 : 100'000); });
  evbench::add("timer_churn/timers:" + std::to_string(grid.churn_timers),
               [](benchmark::State& s) { restart_floor(s, grid.churn_timers, grid.churn_shuffled_rounds); });
  for (int fds : grid.benchc_fds)
    for (int active : grid.benchc_active)
      evbench::add(evbench::benchc_name(fds, active, 0),
                   [fds, active](benchmark::State& s) { evbench::bench_c<Kernel>(s, fds, active, false, grid); });
  return evbench::run_registered(argc, argv, grid, "kernel", "epoll by hand");
}
