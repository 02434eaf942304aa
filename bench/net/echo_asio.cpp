// The echo workload's server on Asio with C++20 coroutines, as its examples write one: an
// awaitable that accepts and co_spawns an awaitable per client, which reads with
// async_read_some and writes the chunk back with async_write, both with use_awaitable.
// One io_context (concurrency hint 1) per thread; with several, each acceptor sets
// SO_REUSEPORT before binding.
#include <asio.hpp>

#include "bench/net/common.hpp"

namespace {

using asio::ip::tcp;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

asio::awaitable<void> echo(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  char buffer[16384];
  try {
    for (;;) {
      const std::size_t got = co_await socket.async_read_some(asio::buffer(buffer), asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer(buffer, got), asio::use_awaitable);
    }
  } catch (const std::exception&) {
    // the end of the stream (asio::error::eof) or a reset: the connection is done
  }
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
  }
}

void serve(int port, bool shared) {
  asio::io_context context(1);
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port));
  tcp::acceptor acceptor(context);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  if (shared) acceptor.set_option(ReusePort(true));
  acceptor.bind(endpoint);
  acceptor.listen(1024);
  asio::co_spawn(context, accept_all(acceptor), asio::detached);
  context.run();
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) { serve(o.port, o.loops > 1); });
}
