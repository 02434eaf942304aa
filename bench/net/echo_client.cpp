// The load generator of the echo workload, the same for every server: N connections to
// 127.0.0.1:PORT, each sending a message of S bytes, waiting for all S bytes to come back,
// and sending the next, R times; one thread, one level-triggered epoll set, non-blocking
// sockets. Every connection first makes W round trips that are not measured (the
// server's buffers, frames and caches warm), then all start the measured phase together.
//
//   echo_client PORT CONNECTIONS SIZE ROUND_TRIPS [WARMUP]
//
// Prints one JSON line: the measured round trips, their wall time, round trips per second,
// and the latency of one round trip (clock_gettime(CLOCK_MONOTONIC) before the write to
// the end of the echo) at p50, p99 and max, in microseconds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

int64_t now_ns() {
  timespec t;
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct Connection {
  int fd = -1;
  size_t received = 0;  // of the echo under way
  int done = 0;         // round trips of the current phase
  int64_t sent_at = 0;
};

// Writes the whole message; a fresh loopback send buffer takes it at once, and a short
// write (a slow server) is finished by waiting until writable.
void send_message(Connection& c, const std::vector<char>& message) {
  size_t off = 0;
  c.sent_at = now_ns();
  while (off < message.size()) {
    const ssize_t n = ::send(c.fd, message.data() + off, message.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      fd_set w;
      FD_ZERO(&w);
      FD_SET(c.fd, &w);
      (void)::select(c.fd + 1, nullptr, &w, nullptr, nullptr);
    } else {
      die("send");
    }
  }
  c.received = 0;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  const int on = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// One phase: every connection makes `round_trips` round trips; latencies appended to
// `latencies` when given.
void run_phase(std::vector<Connection>& conns, int ep, const std::vector<char>& message, int round_trips,
               std::vector<uint32_t>* latencies) {
  for (auto& c : conns) {
    c.done = 0;
    send_message(c, message);
  }
  size_t active = conns.size();
  std::vector<epoll_event> events(conns.size());
  std::vector<char> scratch(message.size());
  while (active > 0) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      Connection& c = conns[events[i].data.u32];
      if (c.done == round_trips) continue;
      const ssize_t got = ::recv(c.fd, scratch.data(), message.size() - c.received, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) die(got == 0 ? "recv: the server closed the connection" : "recv");
      if (c.received == 0 && scratch[0] != message[0]) {
        std::fprintf(stderr, "echo_client: the echo is not what was sent\n");
        std::exit(1);
      }
      c.received += static_cast<size_t>(got);
      if (c.received < message.size()) continue;
      const int64_t now = now_ns();
      if (latencies) latencies->push_back(static_cast<uint32_t>(std::min<int64_t>(now - c.sent_at, UINT32_MAX)));
      if (++c.done == round_trips) {
        --active;
      } else {
        send_message(c, message);
      }
    }
  }
}

double percentile_us(std::vector<uint32_t>& v, double q) {
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s PORT CONNECTIONS SIZE ROUND_TRIPS [WARMUP]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int connections = std::atoi(argv[2]);
  const size_t size = static_cast<size_t>(std::atol(argv[3]));
  const int round_trips = std::atoi(argv[4]);
  const int warmup = argc > 5 ? std::atoi(argv[5]) : std::max(1, round_trips / 10);
  if (port <= 0 || connections < 1 || size < 1 || round_trips < 1) return 2;

  std::vector<char> message(size);
  for (size_t i = 0; i < size; ++i)
    message[i] = static_cast<char>('a' + i % 26);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::vector<Connection> conns(static_cast<size_t>(connections));
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connect_to(port);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0) die("epoll_ctl");
  }

  run_phase(conns, ep, message, warmup, nullptr);
  std::vector<uint32_t> latencies;
  latencies.reserve(conns.size() * static_cast<size_t>(round_trips));
  const int64_t t0 = now_ns();
  run_phase(conns, ep, message, round_trips, &latencies);
  const double seconds = static_cast<double>(now_ns() - t0) / 1e9;

  const double p50 = percentile_us(latencies, 0.50);
  const double p99 = percentile_us(latencies, 0.99);
  const double max = *std::max_element(latencies.begin(), latencies.end()) / 1e3;
  std::printf(
      "{\"round_trips\": %zu, \"seconds\": %.6f, \"round_trips_per_s\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
      "\"max_us\": %.2f}\n",
      latencies.size(), seconds, static_cast<double>(latencies.size()) / seconds, p50, p99, max);
  for (auto& c : conns)
    ::close(c.fd);
  return 0;
}
