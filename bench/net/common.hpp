// The pieces every socket-benchmark server shares, so that they differ only in the
// library under test: the command line, the listening socket for the servers that make
// their own (the floor, libev, and libuv's second loop), and the HTTP request counting and
// reply of the HTTP workload.
//
// Every server is started as `<server> PORT [LOOPS]` by bench/net/run.py, listens on
// 127.0.0.1:PORT, and runs until it is killed. LOOPS (default 1) is how many loops, each
// in its own thread with its own listener on the port (SO_REUSEPORT): the kernel spreads
// new connections over them.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace netbench {

struct Options {
  int port = 0;
  int loops = 1;
};

inline Options parse_options(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [LOOPS]\n", argv[0]);
    std::exit(2);
  }
  Options o;
  o.port = std::atoi(argv[1]);
  if (argc > 2) o.loops = std::atoi(argv[2]);
  if (o.port <= 0 || o.loops < 1) {
    std::fprintf(stderr, "%s: bad PORT or LOOPS\n", argv[0]);
    std::exit(2);
  }
  return o;
}

// The exit status of a server that cannot run here (evflow_io_uring without io_uring).
inline constexpr int kUnavailable = 77;

[[noreturn]] inline void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// A non-blocking listening socket on 127.0.0.1:port, SO_REUSEPORT set when `shared` (one
// per loop on the same port).
inline int listen_socket(int port, bool shared) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  const int on = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (shared && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) die("SO_REUSEPORT");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (::listen(fd, 1024) != 0) die("listen");
  return fd;
}

// Every server turns Nagle off on its connections: a reply must leave at once.
inline void no_delay(int fd) {
  const int on = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// Runs body(loop_index) in `loops` threads (the first on the calling thread) and never
// returns while they run.
template <class Body>
void run_loops(int loops, Body body) {
  std::vector<std::thread> others;
  for (int i = 1; i < loops; ++i)
    others.emplace_back(body, i);
  body(0);
  for (auto& t : others)
    t.join();
}

// --- HTTP -------------------------------------------------------------------------

// The one reply of the HTTP workload: keep-alive is HTTP/1.1's default, so no header says it.
inline constexpr std::string_view kHttpReply =
    "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain\r\n\r\nHello, World!\n";

// How many whole requests (each ended by an empty line) `data` holds, and in `consumed`
// the bytes they take; the rest is the start of a request still arriving. Requests have
// no body (GET), so the empty line ends each one.
inline int count_requests(const char* data, size_t size, size_t& consumed) {
  int requests = 0;
  consumed = 0;
  std::string_view rest(data, size);
  for (;;) {
    const size_t end = rest.find("\r\n\r\n");
    if (end == std::string_view::npos) return requests;
    ++requests;
    consumed += end + 4;
    rest.remove_prefix(end + 4);
  }
}

// Appends `requests` replies to `out`, in the order the requests came (pipelining).
template <class Buffer>
void append_replies(Buffer& out, int requests) {
  for (int i = 0; i < requests; ++i)
    out.insert(out.end(), kHttpReply.begin(), kHttpReply.end());
}

}  // namespace netbench
