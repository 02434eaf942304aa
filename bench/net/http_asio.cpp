// The HTTP workload's responder on Asio with C++20 coroutines: an awaitable per
// connection, co_spawned by the accepting one, that reads with async_read_some, answers
// every whole request in its buffer with one async_write (pipelined requests in order),
// and keeps the start of a request still arriving. One io_context (concurrency hint 1) per
// thread; with several, each acceptor sets SO_REUSEPORT before binding.
#include <asio.hpp>
#include <string>

#include "bench/net/common.hpp"

namespace {

using asio::ip::tcp;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

asio::awaitable<void> respond(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  char in[16384];
  size_t have = 0;  // bytes of `in` holding a request not yet whole
  std::string out;
  try {
    for (;;) {
      have += co_await socket.async_read_some(asio::buffer(in + have, sizeof in - have), asio::use_awaitable);
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
      co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
    }
  } catch (const std::exception&) {
    // the end of the stream (asio::error::eof) or a reset: the connection is done
  }
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), respond(std::move(socket)), asio::detached);
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
