// Windows: how late timers fire on the IOCP backend, and a loopback ping-pong through it
// beside the same ping-pong written by hand on select() and WSAPoll(), the floor.
// A plain program (Debian has no Google Benchmark for MinGW-w64), built and run by
//   make windows-bench
// under wine (.ci/wine-run). The lateness workload is timer_bench's BM_TimerLateness
// (bench/timer_lateness.hpp). Ping-pong: one byte bounced between two loopback
// TCP sockets, round trips per second; evflow: two Io watchers of one loop.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <chrono>
#include <cstdio>

#include <evflow/evflow.hpp>
#include "bench/timer_lateness.hpp"
#include "tests/support/descriptors.hpp"

namespace {

void timer_lateness() {
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::printf("open: %s\n", err.message());
    return;
  }
  evflow::bench::Lateness lateness;
  evflow::bench::measure_timer_lateness(loop, lateness);
  lateness.finish();
  std::printf(
      "timer lateness (%zu timers, sleep path %d = milliseconds): p50 %.0f us, p90 %.0f us, p99 %.0f us, "
      "max %.0f us, early %ld\n",
      lateness.microseconds.size(), static_cast<int>(loop.sleep_path()), lateness.quantile(0.5), lateness.quantile(0.9),
      lateness.quantile(0.99), lateness.quantile(1.0), lateness.early);
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
