// Windows: how late timers fire on the IOCP backend, and a loopback ping-pong through it
// beside the same ping-pong written by hand on select() and WSAPoll(), the floor.
// A plain program (Debian has no Google Benchmark for MinGW-w64), built and run by
//   make windows-bench
// under wine (.ci/wine-run). The lateness workload is timer_bench's BM_TimerLateness:
// 10 rounds of 1000 timers at uniform random offsets in [0.1, 5] ms on the real clock;
// lateness = callback time - deadline. Ping-pong: one byte bounced between two loopback
// TCP sockets, round trips per second; evflow: two Io watchers of one loop.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "reactor/evflow.hpp"
#include "tests/support/descriptors.hpp"

namespace {

void timer_lateness() {
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::printf("open: %s\n", err.message());
    return;
  }
  std::vector<double> lateness_us;
  long early = 0;
  std::mt19937_64 rng(2024);
  std::uniform_int_distribution<int64_t> offset(100'000, 5'000'000);
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<evflow::Timer>> timers;
    loop.update_now();
    for (int i = 0; i < 1000; ++i) {
      timers.push_back(std::make_unique<evflow::Timer>(loop));
      evflow::Timer* t = timers.back().get();
      (void)t->start(std::chrono::nanoseconds(offset(rng)), [t, &lateness_us, &early] {
        const int64_t late = evflow::monotonic_ns() - t->when().time_since_epoch().count();
        if (late < 0) ++early;
        lateness_us.push_back(static_cast<double>(late) / 1000.0);
      });
    }
    (void)loop.run();
  }
  std::sort(lateness_us.begin(), lateness_us.end());
  auto pct = [&](double p) {
    return lateness_us[static_cast<size_t>(p * static_cast<double>(lateness_us.size() - 1))];
  };
  std::printf(
      "timer lateness (%zu timers, sleep path %d = milliseconds): p50 %.0f us, p90 %.0f us, p99 %.0f us, "
      "max %.0f us, early %ld\n",
      lateness_us.size(), static_cast<int>(loop.sleep_path()), pct(0.5), pct(0.9), pct(0.99), lateness_us.back(),
      early);
}

void ping_pong() {
  evflow::Loop loop;
  if (loop.open()) return;
  auto pair = evflow::testing::make_socketpair();
  if (pair.a.get() < 0) return;
  constexpr long kRoundTrips = 20'000;
  long trips = 0;
  auto bounce = [&](evflow::Io& self, evflow::Events) {
    char c;
    if (evflow::testing::read_fd(self.fd(), &c, 1) != 1) return;
    if (self.fd() == pair.a.get() && ++trips == kRoundTrips) {
      loop.stop();
      return;
    }
    (void)evflow::testing::write_byte(self.fd());
  };
  evflow::Io a(loop), b(loop);
  (void)a.start(pair.a.get(), evflow::Readable, bounce);
  (void)b.start(pair.b.get(), evflow::Readable, bounce);
  const auto start = std::chrono::steady_clock::now();
  (void)evflow::testing::write_byte(pair.a.get());
  (void)loop.run();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loopback TCP ping-pong through evflow: %ld round trips in %.2f s, %.0f round trips/s\n", trips, seconds,
              static_cast<double>(trips) / seconds);
}

// The same ping-pong by hand: wait for one socket with `wait`, read the byte, send it back.
template <class Wait>
void ping_pong_by_hand(const char* name, Wait wait) {
  auto pair = evflow::testing::make_socketpair();
  if (pair.a.get() < 0) return;
  constexpr long kRoundTrips = 20'000;
  const auto start = std::chrono::steady_clock::now();
  (void)evflow::testing::write_byte(pair.a.get());
  for (long trip = 0; trip < kRoundTrips; ++trip) {
    for (int fd : {pair.b.get(), pair.a.get()}) {
      wait(evflow::testing::socket_of(fd));
      char c;
      if (evflow::testing::read_fd(fd, &c, 1) != 1 || !evflow::testing::write_byte(fd, c)) return;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loopback TCP ping-pong by hand on %s: %.0f round trips/s\n", name,
              static_cast<double>(kRoundTrips) / seconds);
}

}  // namespace

int main() {
  WSADATA winsock;
  if (WSAStartup(MAKEWORD(2, 2), &winsock) != 0) return 1;
  timer_lateness();
  ping_pong();
  ping_pong_by_hand("select()", [](SOCKET s) {
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(s, &readable);
    (void)::select(0, &readable, nullptr, nullptr, nullptr);
  });
  ping_pong_by_hand("WSAPoll()", [](SOCKET s) {
    WSAPOLLFD entry{s, POLLRDNORM, 0};
    (void)::WSAPoll(&entry, 1, -1);
  });
  WSACleanup();
  return 0;
}
