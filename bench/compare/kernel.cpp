// The system-call floor, measured in the same `make bench` run as the libraries: what no
// reactor can go below on this machine.
//
// benchc/...       bench.c done by hand on a level-triggered epoll set registered once:
//                  epoll_wait(timeout 0), then read(1) and write(1) per event. Its
//                  per_event_ns is the floor each library's per-event cost is compared to.
// syscall_floor    epoll_wait(timeout 0) returning one ready event, and returning none (the
//                  floor of an idle iteration); a 1-byte write + read
//                  on an AF_UNIX socketpair; clock_gettime(CLOCK_MONOTONIC) via the vDSO.
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

}  // namespace

int main(int argc, char** argv) {
  static const evbench::Grid grid = evbench::parse_grid(argc, argv);
  evbench::add("syscall_floor", [](benchmark::State& s) { syscall_floor(s, grid.quick ? 20'000 : 100'000); });
  for (int fds : grid.benchc_fds)
    for (int active : grid.benchc_active)
      evbench::add(evbench::benchc_name(fds, active, 0),
                   [fds, active](benchmark::State& s) { evbench::bench_c<Kernel>(s, fds, active, false, grid); });
  return evbench::run_registered(argc, argv, grid, "kernel", "epoll by hand");
}
