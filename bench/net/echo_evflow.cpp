// The echo workload's server on evflow, written as its users are shown to write one: a
// task per connection, reading what is there and writing all of it back, spawned into a
// TaskGroup by the accepting task. One Loop per thread, each with its own listener.
#include <cstdio>
#include <cstdlib>

#include <evflow/evflow.hpp>
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>

#include "bench/net/common.hpp"

namespace {

// The loop's backend: epoll here; echo_evflow_io_uring.cpp builds this server on io_uring,
// where the socket calls go to the kernel as operations (net/socket.hpp).
#ifdef NETBENCH_IO_URING
constexpr evflow::BackendKind kBackend = evflow::BackendKind::IoUring;
#else
constexpr evflow::BackendKind kBackend = evflow::BackendKind::Default;
#endif

evflow::Task<> echo(evflow::TcpStream stream) {
  (void)stream.set_no_delay(true);
  char buffer[16384];
  for (;;) {
    evflow::Result<std::size_t> got = co_await stream.read(buffer, sizeof buffer);
    if (!got || got.value() == 0) co_return;  // an error or the end of the stream
    if (!co_await stream.write_all(buffer, got.value())) co_return;
  }
}

evflow::Task<> serve(evflow::TcpListener listener) {
  evflow::TaskGroup connections;
  (void)co_await connections.run([&]() -> evflow::Task<> {
    for (;;) {
      evflow::Result<evflow::TcpStream> accepted = co_await listener.accept();
      if (accepted) connections.spawn(echo, std::move(accepted.value()));
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
