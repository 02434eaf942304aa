// The HTTP workload's responder on evflow: a task per connection that reads what is
// there, answers every whole request in it with one write_all (pipelined requests in
// order), and keeps the start of a request still arriving. One Loop per thread, each with
// its own listener on the port (SO_REUSEPORT when there are several).
#include <cstdio>
#include <cstdlib>

#include <evflow/evflow.hpp>
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>
#include <string>

#include "bench/net/common.hpp"

namespace {

// The loop's backend: epoll here; http_evflow_io_uring.cpp builds this server on io_uring,
// where the socket calls go to the kernel as operations (net/socket.hpp).
#ifdef NETBENCH_IO_URING
constexpr evflow::BackendKind kBackend = evflow::BackendKind::IoUring;
#else
constexpr evflow::BackendKind kBackend = evflow::BackendKind::Default;
#endif

evflow::Task<> respond(evflow::TcpStream stream) {
  (void)stream.set_no_delay(true);
  char in[16384];
  size_t have = 0;  // bytes of `in` holding a request not yet whole
  std::string out;
  for (;;) {
    evflow::Result<std::size_t> got = co_await stream.read(in + have, sizeof in - have);
    if (!got || got.value() == 0) co_return;  // an error or the end of the stream
    have += got.value();
    size_t consumed;
    const int requests = netbench::count_requests(in, have, consumed);
    if (requests == 0) {
      if (have == sizeof in) co_return;  // a request larger than the buffer
      continue;
    }
    have -= consumed;
    std::memmove(in, in + consumed, have);
    out.clear();
    netbench::append_replies(out, requests);
    if (!co_await stream.write_all(out.data(), out.size())) co_return;
  }
}

evflow::Task<> serve(evflow::TcpListener listener) {
  evflow::TaskGroup connections;
  (void)co_await connections.run([&]() -> evflow::Task<> {
    for (;;) {
      evflow::Result<evflow::TcpStream> accepted = co_await listener.accept();
      if (accepted) connections.spawn(respond, std::move(accepted.value()));
    }
  }());
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) {
    evflow::Loop loop;
    if (loop.open(kBackend)) netbench::die("Loop::open");
    if (kBackend != evflow::BackendKind::Default && loop.backend_kind() != kBackend) {
      std::fprintf(stderr, "the kernel gave this loop another backend than io_uring\n");
      std::exit(netbench::kUnavailable);  // run.py leaves this server out
    }
    auto listener = evflow::TcpListener::bind(evflow::SocketAddress::ipv4_loopback(static_cast<uint16_t>(o.port)),
                                              {.reuse_port = o.loops > 1});
    if (!listener) netbench::die("TcpListener::bind");
    (void)evflow::run_until_complete(loop, serve, std::move(listener.value()));
  });
}
