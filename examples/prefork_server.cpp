// prefork_server: an echo server of N forked worker processes, each accepting on its own
// listener bound to the same port (SO_REUSEPORT: the kernel spreads the connections).
//
//   build/release/examples/prefork_server [port] [workers]   (7777 and 4 when not given)
//   printf 'hello\n' | nc -q1 127.0.0.1 7777                  (prints hello)
//   Ctrl+C or kill -TERM <parent>: each worker reports what it served, then exits.
//
// The parent and each worker talk over the worker's MessageChannel: the worker says
// "listening" once bound; at shutdown the parent sends "stop" and the worker answers with
// its count of connections before it exits. A worker learns of its parent's death from
// its channel (the receive gives EPIPE) and, on Linux, from the kernel (SIGKILL).
// Linux and the BSDs; on Windows spawn_process answers ENOTSUP.
#include <evflow/net.hpp>
#include <evflow/process.hpp>
#include <evflow/tasks.hpp>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Echoes one connection until the client ends its side.
evflow::Task<> echo(evflow::TcpStream stream) {
  char buffer[16384];
  for (;;) {
    evflow::Result<std::size_t> n = co_await stream.read(buffer, sizeof buffer);
    if (!n || n.value() == 0) co_return;
    evflow::Transfer sent = co_await stream.write_all(buffer, n.value());
    if (!sent) co_return;
  }
}

// A worker: binds its listener, serves connections until the parent says "stop" (or is
// gone), then answers with its count of connections.
evflow::Task<int> worker(evflow::MessageChannel& parent, uint16_t port) {
  evflow::ListenOptions options;
  options.reuse_port = true;
  evflow::Result<evflow::TcpListener> listener =
      evflow::TcpListener::bind(evflow::SocketAddress::ipv4_any(port), options);
  if (!listener) {
    const std::string refused = std::string("bind: ") + listener.error().message();
    (void)co_await parent.send(refused);
    co_return 1;
  }
  evflow::Error ready = co_await parent.send("listening");
  if (ready) co_return 1;
  unsigned long served = 0;
  evflow::TaskGroup connections;
  (void)co_await connections.run([&]() -> evflow::Task<> {
    // The parent's word: "stop", or the end of the channel; either ends the accept loop.
    connections.spawn([&]() -> evflow::Task<> {
      std::string word;
      auto got = co_await parent.receive(word);
      (void)got;
      connections.cancel();
    });
    for (;;) {
      evflow::Result<evflow::TcpStream> stream = co_await listener.value().accept();
      if (!stream) {
        if (stream.error() == evflow::Error(ECANCELED)) co_return;
        continue;
      }
      ++served;
      (void)connections.spawn(echo, std::move(stream.value()));
    }
  }());
  const std::string report = "served " + std::to_string(served) + " connections";
  (void)co_await parent.send(report);  // EPIPE if the parent is gone: nothing to do then
  co_return 0;
}

// The parent: starts the workers, prints what they say, stops them on SIGINT or SIGTERM.
evflow::Task<int> supervise(evflow::Loop* loop, uint16_t port, int count) {
  evflow::SignalWaiter interrupted(*loop);
  evflow::SignalWaiter terminated(*loop);
  if (interrupted.start(SIGINT) || terminated.start(SIGTERM)) co_return 1;
  std::vector<evflow::WorkerProcess> workers;
  for (int i = 0; i < count; ++i) {
    auto spawned =
        evflow::spawn_process(*loop, [port](evflow::MessageChannel& parent) { return worker(parent, port); });
    if (!spawned) {
      std::fprintf(stderr, "spawn_process: %s\n", spawned.error().message());
      co_return 1;
    }
    workers.push_back(std::move(spawned.value()));
  }
  std::string frame;
  for (auto& w : workers) {
    auto said = co_await w.channel().receive(frame);
    std::printf("worker %d: %s\n", w.pid(), said ? frame.c_str() : said.error().message());
  }
  std::fflush(stdout);
  {
    evflow::TaskGroup signals;
    (void)co_await signals.run([&]() -> evflow::Task<> {
      signals.spawn([&]() -> evflow::Task<> {
        (void)co_await interrupted.next();
        signals.cancel();
      });
      signals.spawn([&]() -> evflow::Task<> {
        (void)co_await terminated.next();
        signals.cancel();
      });
      co_return;
    }());
  }
  for (auto& w : workers) {
    evflow::Error asked = co_await w.channel().send("stop");
    if (!asked) {
      auto answer = co_await w.channel().receive(frame);
      if (answer) std::printf("worker %d: %s\n", w.pid(), frame.c_str());
    }
    auto status = co_await w.terminate(1s);  // SIGKILL after a second without an exit
    if (status && status.value().exited()) {
      std::printf("worker %d: exit code %d\n", w.pid(), status.value().code());
    } else if (status && status.value().signaled()) {
      std::printf("worker %d: ended by signal %d\n", w.pid(), status.value().signal_number());
    }
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const long port = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 7777;
  const long count = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 4;
  if (port < 1 || port > 65535 || count < 1 || count > 256) {
    std::fprintf(stderr, "usage: %s [port] [workers]\n", argv[0]);
    return 2;
  }
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::fprintf(stderr, "loop: %s\n", err.message());
    return 1;
  }
  std::printf("echoing on port %ld with %ld worker processes\n", port, count);
  std::fflush(stdout);  // before the forks: the workers must not print it again
  auto ended = evflow::run_until_complete(loop, supervise, &loop, static_cast<uint16_t>(port), static_cast<int>(count));
  return ended && ended.value() == 0 ? 0 : 1;
}
