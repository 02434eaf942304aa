// tcp_echo_server: sends back whatever each client sends, one task per connection.
//
//   build/release/examples/tcp_echo_server [port]        (7777 when not given)
//   printf 'hello\n' | nc -q1 127.0.0.1 7777             (prints hello)
//
// The connections are the children of one TaskGroup: the group's await ends only once
// every connection has ended, and a cancellation of the server reaches every one of them.
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace {

// Echoes one connection until the client ends its side, or the connection fails.
evflow::Task<> echo(evflow::TcpStream stream, evflow::SocketAddress peer) {
  char text[evflow::SocketAddress::kMaxText];
  if (!peer.format(text, sizeof text)) text[0] = '\0';
  std::printf("%s: connected\n", text);
  char buffer[16384];
  std::size_t total = 0;
  for (;;) {
    // read() gives what is there (at least one byte), 0 at the end of the stream.
    evflow::Result<std::size_t> n = co_await stream.read(buffer, sizeof buffer);
    if (!n) {
      std::printf("%s: read failed: %s\n", text, n.error().message());
      co_return;
    }
    if (n.value() == 0) break;
    // write_all() waits while the client is slower than we are: a client that does not
    // read cannot make the server buffer without limit.
    evflow::Transfer sent = co_await stream.write_all(buffer, n.value());
    total += sent.bytes;
    if (!sent) {
      std::printf("%s: write failed after %zu bytes: %s\n", text, total, sent.error.message());
      co_return;
    }
  }
  std::printf("%s: closed after %zu bytes\n", text, total);
}  // the stream is closed here, as its task ends

// Accepts connections for ever, each served by a child task of the group.
evflow::Task<> serve(evflow::TcpListener listener) {
  evflow::TaskGroup connections;
  evflow::GroupResult<void> ended = co_await connections.run([&]() -> evflow::Task<> {
    for (;;) {
      evflow::SocketAddress peer;
      evflow::Result<evflow::TcpStream> stream = co_await listener.accept(&peer);
      if (!stream) {
        if (stream.error() == evflow::Error(ECANCELED)) co_return;
        // EMFILE: out of descriptors. The listener has already closed the connections it
        // could not take (net/listener.hpp); the next accept waits as usual.
        std::printf("accept: %s (%llu connections shed so far)\n", stream.error().message(),
                    static_cast<unsigned long long>(listener.shed_connections()));
        continue;
      }
      (void)stream.value().set_no_delay(true);
      // spawn copies the arguments into the child: the stream moves into its task.
      if (!connections.spawn(echo, std::move(stream.value()), peer).valid()) {
        std::printf("accept: cannot start a task for the connection\n");
      }
    }
  }());
  for (evflow::Error failure : ended.failures())
    std::printf("server: %s\n", failure.message());
}

}  // namespace

int main(int argc, char** argv) {
  const long port = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 7777;
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "usage: %s [port]\n", argv[0]);
    return 2;
  }
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::fprintf(stderr, "loop: %s\n", err.message());
    return 1;
  }
  evflow::Result<evflow::TcpListener> listener =
      evflow::TcpListener::bind(evflow::SocketAddress::ipv4_any(static_cast<uint16_t>(port)));
  if (!listener) {
    std::fprintf(stderr, "port %ld: %s\n", port, listener.error().message());
    return 1;
  }
  std::printf("echoing on port %u\n", listener.value().local_address().value().port());
  std::fflush(stdout);
  // The listener moves into the server task, which owns it from then on.
  evflow::Error ended = evflow::run_until_complete(loop, serve, std::move(listener.value()));
  if (ended) std::fprintf(stderr, "server: %s\n", ended.message());
  return ended ? 1 : 0;
}
