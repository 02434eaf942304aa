// http_server: a minimal HTTP/1.1 server on evflow's sockets.
//
//   build/release/examples/http_server [port] [--threads N]      (port 8080, one thread)
//   curl -v http://127.0.0.1:8080/
//   printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n' | nc 127.0.0.1 8080
//
// What it shows:
// - one task per connection, the children of a TaskGroup;
// - keep-alive, and pipelined requests answered in the order they came, every response
//   of the requests that arrived together sent with one write;
// - an idle timeout per connection: each read runs under fail_after(), and a client that
//   sends nothing for kIdleTimeout is closed;
// - a malformed request answered `400 Bad Request`, then the connection closed;
// - `--threads N`: N threads, each with its own loop and its own listener on the same
//   port (ListenOptions::reuse_port, SO_REUSEPORT): the kernel spreads the connections
//   between them, and the loops share nothing.
// GET and HEAD of "/" answer a greeting, other paths 404, other methods 405. The request
// head parser is examples/http_request.hpp.
#include <evflow/net.hpp>
#include <evflow/tasks.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "http_request.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto kIdleTimeout = 10s;

// Appends a response with a text body (only its length for a HEAD request).
void respond(std::string& out, const char* status, std::string_view body, bool head_only, bool close,
             const char* extra_header = "") {
  char head[256];
  std::snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s%s\r\n", status,
                body.size(), extra_header, close ? "Connection: close\r\n" : "");
  out += head;
  if (!head_only) out += body;
}

// Answers one parsed request into `out`.
void answer(const http::Request& request, std::string& out) {
  const bool head_only = request.method == "HEAD";
  const bool close = !request.keep_alive;
  if (request.method != "GET" && !head_only) {
    respond(out, "405 Method Not Allowed", "only GET and HEAD here\n", false, close, "Allow: GET, HEAD\r\n");
  } else if (request.target != "/") {
    respond(out, "404 Not Found", "nothing here\n", head_only, close);
  } else {
    respond(out, "200 OK", "Hello from evflow\n", head_only, close);
  }
}

// One read, as a task, so that a deadline can run around it.
evflow::Task<evflow::Result<std::size_t>> read_some(evflow::TcpStream* stream, char* buffer, std::size_t size) {
  co_return co_await stream->read(buffer, size);
}

// Serves one connection: reads requests and answers them, in order, until the client
// closes, asks to close, sends a malformed request, or stays idle too long.
evflow::Task<> serve_connection(evflow::TcpStream stream) {
  std::string received;  // bytes read and not yet parsed
  std::string out;       // responses not yet written
  std::size_t body_to_skip = 0;
  char buffer[16384];
  for (;;) {
    // Parse every complete request already received: a client may pipeline several.
    bool close = false;
    for (;;) {
      if (body_to_skip > 0) {  // a request body: this server has no use for it
        const std::size_t skipped = std::min(body_to_skip, received.size());
        received.erase(0, skipped);
        body_to_skip -= skipped;
        if (body_to_skip > 0) break;
      }
      http::Request request;
      const http::Parse parsed = http::parse_request(received, request);
      if (parsed == http::Parse::incomplete) break;
      if (parsed == http::Parse::bad) {
        respond(out, "400 Bad Request", "malformed request\n", false, true);
        close = true;
        break;
      }
      answer(request, out);
      received.erase(0, request.consumed);
      body_to_skip = request.content_length;
      if (!request.keep_alive) {
        close = true;
        break;
      }
    }
    if (!out.empty()) {
      // Every response of the requests parsed above, in their order, in one write.
      evflow::Transfer sent = co_await stream.write_all(out);
      if (!sent) co_return;  // the client went away
      out.clear();
    }
    if (close) {
      // Ends our side; the client reads the end of the stream after the responses.
      (void)stream.shutdown_write();
      co_return;
    }
    // fail_after cancels the read when the client stays silent: ETIMEDOUT.
    evflow::Result<std::size_t> n =
        co_await evflow::fail_after(kIdleTimeout, read_some(&stream, buffer, sizeof buffer));
    if (!n || n.value() == 0) co_return;  // idle, an error, or the client closed
    received.append(buffer, n.value());
  }
}

evflow::Task<> serve(evflow::TcpListener listener) {
  evflow::TaskGroup connections;
  (void)co_await connections.run([&]() -> evflow::Task<> {
    for (;;) {
      evflow::Result<evflow::TcpStream> stream = co_await listener.accept();
      if (stream) {
        (void)stream.value().set_no_delay(true);
        (void)connections.spawn(serve_connection, std::move(stream.value()));
      } else if (stream.error() == evflow::Error(ECANCELED)) {
        co_return;
      } else {
        std::fprintf(stderr, "accept: %s\n", stream.error().message());  // EMFILE: shed, the next waits
      }
    }
  }());
}

// One loop and one listener, in the calling thread.
int run_one_loop(uint16_t port, bool share_port) {
  evflow::Loop loop;
  if (evflow::Error err = loop.open()) {
    std::fprintf(stderr, "loop: %s\n", err.message());
    return 1;
  }
  evflow::ListenOptions options;
  options.reuse_port = share_port;
  evflow::Result<evflow::TcpListener> listener =
      evflow::TcpListener::bind(evflow::SocketAddress::ipv4_any(port), options);
  if (!listener) {
    std::fprintf(stderr, "port %u: %s\n", port, listener.error().message());
    return 1;
  }
  evflow::Error ended = evflow::run_until_complete(loop, serve, std::move(listener.value()));
  return ended ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 8080;
  long threads = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::strtol(argv[++i], nullptr, 10);
    } else {
      port = std::strtol(argv[i], nullptr, 10);
    }
  }
  if (port < 0 || port > 65535 || threads < 1 || threads > 256) {
    std::fprintf(stderr, "usage: %s [port] [--threads N]\n", argv[0]);
    return 2;
  }
  std::printf("serving HTTP on port %ld with %ld loop%s\n", port, threads, threads == 1 ? "" : "s");
  std::fflush(stdout);
  if (threads == 1) return run_one_loop(static_cast<uint16_t>(port), false);
  // One loop per thread, each with a listener of its own on the shared port.
  std::vector<std::thread> loops;
  for (long i = 0; i < threads; ++i) {
    loops.emplace_back([port] { (void)run_one_loop(static_cast<uint16_t>(port), true); });
  }
  for (std::thread& t : loops)
    t.join();
  return 0;
}
