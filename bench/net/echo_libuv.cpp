// The echo workload's server on libuv, as its guide writes one: a uv_tcp_t listening,
// uv_accept into a uv_tcp_t per client, uv_read_start with an allocation callback, and
// each chunk read sent back with uv_write (its request and buffer freed in the write
// callback). One uv_loop_t per thread; with several, each binds its own socket with
// SO_REUSEPORT (libuv 1.44 has no flag for it) and opens it with uv_tcp_open.
#include <uv.h>

#include <cstdlib>

#include "bench/net/common.hpp"

namespace {

// A write request with the chunk it sends.
struct Echo {
  uv_write_t request;
  uv_buf_t chunk;
};

void on_closed(uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); }

void on_allocate(uv_handle_t*, size_t, uv_buf_t* buf) {
  // Asking for more than the loop reads at once is harmless: libuv reads up to the size.
  buf->base = static_cast<char*>(std::malloc(16384));
  buf->len = 16384;
}

void on_written(uv_write_t* request, int) {
  auto* echo = reinterpret_cast<Echo*>(request);
  std::free(echo->chunk.base);
  delete echo;
}

void on_read(uv_stream_t* client, ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    auto* echo = new Echo;
    echo->chunk = uv_buf_init(buf->base, static_cast<unsigned>(nread));
    if (uv_write(&echo->request, client, &echo->chunk, 1, on_written) != 0) {
      on_written(&echo->request, 0);
      uv_close(reinterpret_cast<uv_handle_t*>(client), on_closed);
    }
    return;
  }
  std::free(buf->base);
  if (nread < 0) uv_close(reinterpret_cast<uv_handle_t*>(client), on_closed);  // UV_EOF or an error
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* client = new uv_tcp_t;
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client), on_closed);
    return;
  }
  uv_tcp_nodelay(client, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(client), on_allocate, on_read);
}

void serve(int port, bool shared) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_tcp_t server;
  uv_tcp_init(&loop, &server);
  if (shared) {
    if (uv_tcp_open(&server, netbench::listen_socket(port, true)) != 0) netbench::die("uv_tcp_open");
  } else {
    sockaddr_in address;
    uv_ip4_addr("127.0.0.1", port, &address);
    if (uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&address), 0) != 0) netbench::die("uv_tcp_bind");
  }
  if (uv_listen(reinterpret_cast<uv_stream_t*>(&server), 1024, on_connection) != 0) netbench::die("uv_listen");
  uv_run(&loop, UV_RUN_DEFAULT);
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) { serve(o.port, o.loops > 1); });
}
