// The echo workload's server on evflow, written as its users are shown to write one: a
// task per connection, reading what is there and writing all of it back, spawned into a
// TaskGroup by the accepting task. One Loop per thread, each with its own listener.
#include <evflow/evflow.hpp>
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>

#include "bench/net/common.hpp"

namespace {

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
    if (loop.open()) netbench::die("Loop::open");
    auto listener = evflow::TcpListener::bind(evflow::SocketAddress::ipv4_loopback(static_cast<uint16_t>(o.port)),
                                              {.reuse_port = o.loops > 1});
    if (!listener) netbench::die("TcpListener::bind");
    (void)evflow::run_until_complete(loop, serve, std::move(listener.value()));
  });
}
