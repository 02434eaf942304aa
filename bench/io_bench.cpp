// Micro-benchmarks of the Linux reactor, with the system-call floor measured in the
// same run: what one dispatched Io event costs above the kernel work it needs.
//
//   make bench BENCH_ARGS=--benchmark_filter=PingPong
//
// BM_FloorPingPong  epoll_wait(timeout 0) returning one event + read(1) + write(1):
//                   the kernel work of one ping-pong step, done by hand.
// BM_EvflowPingPong the same step through Loop::run(RunMode::NoWait) and an Io callback.
// BM_StaleRegistrationPause
//                   a descriptor closed after its watcher stopped, while a duplicate keeps
//                   its file open (epoll_backend.hpp, note a), among N watched descriptors:
//                   how long the loop's iterations take until it is rid of the registration.
#include <benchmark/benchmark.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <vector>

#include <evflow/evflow.hpp>
#include "platform/clock.hpp"
#include "platform/linux/sys.hpp"

namespace {

struct Socketpair {
  Socketpair(const Socketpair&) = delete;
  Socketpair& operator=(const Socketpair&) = delete;
  int fds[2] = {-1, -1};
  Socketpair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) fds[0] = fds[1] = -1;
  }
  ~Socketpair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

// Opens the loop, or marks the benchmark skipped.
bool opened(evflow::Loop& loop, benchmark::State& state) {
  if (evflow::Error err = loop.open()) {
    state.SkipWithError(err.message());
    return false;
  }
  return true;
}

void BM_ClockVdso(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(evflow::detail::monotonic_ns());
}
BENCHMARK(BM_ClockVdso);

void BM_ClockRawSyscall(benchmark::State& state) {
  evflow::detail::linux_abi::KernelTimespec ts;
  for (auto _ : state) {
    (void)evflow::detail::linux_abi::clock_gettime_syscall(evflow::detail::linux_abi::kClockMonotonic, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_ClockRawSyscall);

// One step: the byte sits in one end; the reader takes it and writes it back to the peer.
void BM_FloorPingPong(benchmark::State& state) {
  Socketpair s;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < 2; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = s.fds[i];
    ::epoll_ctl(ep, EPOLL_CTL_ADD, s.fds[i], &ev);
  }
  char c = 'x';
  (void)!::write(s.fds[1], &c, 1);
  epoll_event out[8];
  for (auto _ : state) {
    const int n = ::epoll_wait(ep, out, 8, 0);
    for (int i = 0; i < n; ++i) {
      const int fd = out[i].data.fd;
      if (::read(fd, &c, 1) == 1) (void)!::write(fd, &c, 1);
    }
  }
  ::close(ep);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FloorPingPong);

void BM_EvflowPingPong(benchmark::State& state) {
  Socketpair s;
  evflow::Loop loop;
  if (!opened(loop, state)) return;
  auto echo = [](evflow::Io& self, evflow::Events) {
    char c;
    if (::read(self.fd(), &c, 1) == 1) (void)!::write(self.fd(), &c, 1);
  };
  evflow::Io a(loop), b(loop);
  (void)a.start(s.fds[0], evflow::Readable, echo);
  (void)b.start(s.fds[1], evflow::Readable, echo);
  char c = 'x';
  (void)!::write(s.fds[1], &c, 1);
  for (auto _ : state)
    (void)loop.run(evflow::RunMode::NoWait);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EvflowPingPong);

// Stop and restart N unchanged watchers, then one non-blocking iteration (no event):
// the re-registration path of libevent's bench.c, which must make no system call.
void BM_ReRegisterUnchanged(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  evflow::Loop loop;
  if (!opened(loop, state)) return;
  std::vector<Socketpair> pairs(static_cast<size_t>(count));
  std::vector<std::unique_ptr<evflow::Io>> watchers;
  for (int i = 0; i < count; ++i) {
    watchers.push_back(std::make_unique<evflow::Io>(loop));
    (void)watchers.back()->start(pairs[static_cast<size_t>(i)].fds[0], evflow::Readable, [] {});
  }
  (void)loop.run(evflow::RunMode::NoWait);
  const uint64_t before = loop.stats().interest_syscalls;
  for (auto _ : state) {
    for (auto& w : watchers) {
      w->stop();
      (void)w->start();
    }
    (void)loop.run(evflow::RunMode::NoWait);
  }
  state.counters["syscalls_per_iteration"] =
      static_cast<double>(loop.stats().interest_syscalls - before) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_ReRegisterUnchanged)->Arg(100)->Arg(1000);

// The same, with a fresh watcher per descriptor each round, as a coroutine awaiter makes
// one per await: with a handover (Io::hand_over, start(handover, ...)) the registration
// passes from one watcher to the next for free; without one, every fresh watcher is
// verified with the kernel (the number may name another file by now).
void BM_ReRegisterFreshWatcher(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  const bool handover = state.range(1) != 0;
  evflow::Loop loop;
  if (!opened(loop, state)) return;
  std::vector<Socketpair> pairs(static_cast<size_t>(count));
  std::vector<evflow::Io::Handover> handovers;
  {
    std::vector<std::unique_ptr<evflow::Io>> first;
    for (auto& pair : pairs) {
      first.push_back(std::make_unique<evflow::Io>(loop));
      (void)first.back()->start(pair.fds[0], evflow::Readable, [] {});
    }
    (void)loop.run(evflow::RunMode::NoWait);
    for (auto& w : first)
      handovers.push_back(w->hand_over());
  }
  // Watchers live in a pool re-constructed in place each round: a fresh object, no heap.
  std::vector<std::optional<evflow::Io>> fresh(static_cast<size_t>(count));
  const uint64_t before = loop.stats().interest_syscalls;
  for (auto _ : state) {
    for (size_t i = 0; i < fresh.size(); ++i) {
      fresh[i].emplace(loop);
      if (handover) {
        (void)fresh[i]->start(handovers[i], evflow::Readable, [] {});
      } else {
        (void)fresh[i]->start(pairs[i].fds[0], evflow::Readable, [] {});
      }
    }
    (void)loop.run(evflow::RunMode::NoWait);
    for (size_t i = 0; i < fresh.size(); ++i) {
      handovers[i] = fresh[i]->hand_over();
      fresh[i].reset();
    }
  }
  state.counters["syscalls_per_iteration"] =
      static_cast<double>(loop.stats().interest_syscalls - before) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * count);
  state.SetLabel(handover ? "handover" : "no handover");
}
BENCHMARK(BM_ReRegisterFreshWatcher)->Args({1000, 1})->Args({1000, 0});

void BM_AsyncSendCoalesced(benchmark::State& state) {
  evflow::Loop loop;
  if (!opened(loop, state)) return;
  evflow::Async async(loop);
  (void)async.start([] {});
  async.send();
  for (auto _ : state)
    async.send();  // already pending: two atomic loads/exchanges, no syscall
}
BENCHMARK(BM_AsyncSendCoalesced);

void BM_IdleIteration(benchmark::State& state) {
  evflow::Loop loop;
  if (!opened(loop, state)) return;
  evflow::Idle idle(loop);
  (void)idle.start([] {});
  for (auto _ : state)
    (void)loop.run(evflow::RunMode::NoWait);
}
BENCHMARK(BM_IdleIteration);

// N quiet descriptors (eventfds, never readable) are watched. Each round, a socketpair end
// is watched, its watcher stopped, the end duplicated and closed: the kernel keeps the
// registration (its file is still open) and the loop can no longer remove it by number.
// Its peer then writes, so the orphaned registration reports, and the loop runs
// non-blocking iterations until it has replaced the kernel's set (stats().backend_rebuilds
// grows). Counters: the longest single iteration (the pause a server would see), the
// iterations it took, and the whole time, per round.
void BM_StaleRegistrationPause(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  evflow::Loop loop;
  if (!opened(loop, state)) return;
  std::vector<int> quiet;
  std::vector<std::unique_ptr<evflow::Io>> watchers;
  for (int i = 0; i < count; ++i) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      state.SkipWithError("eventfd: out of descriptors");
      break;
    }
    quiet.push_back(fd);
    watchers.push_back(std::make_unique<evflow::Io>(loop));
    (void)watchers.back()->start(fd, evflow::Readable, [] {});
  }
  (void)loop.run(evflow::RunMode::NoWait);
  double longest_ns = 0, total_ns = 0, iterations = 0;
  for (auto _ : state) {
    Socketpair s;
    evflow::Io io(loop);
    (void)io.start(s.fds[0], evflow::Readable, [] {});
    (void)loop.run(evflow::RunMode::NoWait);
    io.stop();
    const int duplicate = ::dup(s.fds[0]);
    ::close(s.fds[0]);  // the registration outlives this: `duplicate` holds the file
    s.fds[0] = duplicate;
    char c = 'x';
    (void)!::write(s.fds[1], &c, 1);
    const uint64_t rebuilds = loop.stats().backend_rebuilds;
    for (int i = 0; i < 1'000'000 && loop.stats().backend_rebuilds == rebuilds; ++i) {
      const int64_t start = evflow::detail::monotonic_ns();
      (void)loop.run(evflow::RunMode::NoWait);
      const double took = static_cast<double>(evflow::detail::monotonic_ns() - start);
      longest_ns = took > longest_ns ? took : longest_ns;
      total_ns += took;
      ++iterations;
    }
  }
  for (int fd : quiet)
    ::close(fd);
  const double rounds = static_cast<double>(state.iterations());
  state.counters["longest_iteration_us"] = longest_ns / 1000.0;
  state.counters["iterations_per_round"] = iterations / rounds;
  state.counters["round_us"] = total_ns / rounds / 1000.0;
}
BENCHMARK(BM_StaleRegistrationPause)->Arg(1000)->Arg(9000)->Iterations(20)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
