// The HTTP workload's responder on libuv: a uv_tcp_t per client reading into its own
// buffer (the allocation callback hands out the free part of it), every whole request in
// it answered with one uv_write of a reply buffer that the write callback frees (pipelined
// requests in order), the start of a request still arriving kept. One uv_loop_t per
// thread; with several, each binds its own socket with SO_REUSEPORT (libuv 1.44 has no
// flag for it) and opens it with uv_tcp_open.
#include <uv.h>

#include <string>

#include "bench/net/common.hpp"

namespace {

struct Client {
  uv_tcp_t handle;  // first: callbacks get its address
  size_t have = 0;  // bytes of `in` holding a request not yet whole
  char in[16384];
};

// A write request with the replies it sends.
struct Reply {
  uv_write_t request;
  std::string data;
};

void on_closed(uv_handle_t* handle) { delete reinterpret_cast<Client*>(handle); }

void close_client(Client* client) { uv_close(reinterpret_cast<uv_handle_t*>(&client->handle), on_closed); }

void on_allocate(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* client = reinterpret_cast<Client*>(handle);
  *buf = uv_buf_init(client->in + client->have, static_cast<unsigned>(sizeof client->in - client->have));
}

void on_written(uv_write_t* request, int) { delete reinterpret_cast<Reply*>(request); }

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* client = reinterpret_cast<Client*>(stream);
  if (nread < 0) return close_client(client);  // UV_EOF or an error
  client->have += static_cast<size_t>(nread);
  size_t consumed;
  const int requests = netbench::count_requests(client->in, client->have, consumed);
  if (requests == 0) {
    if (client->have == sizeof client->in) close_client(client);  // a request larger than the buffer
    return;
  }
  client->have -= consumed;
  std::memmove(client->in, client->in + consumed, client->have);
  auto* reply = new Reply;
  netbench::append_replies(reply->data, requests);
  const uv_buf_t buf = uv_buf_init(reply->data.data(), static_cast<unsigned>(reply->data.size()));
  if (uv_write(&reply->request, stream, &buf, 1, on_written) != 0) {
    delete reply;
    close_client(client);
  }
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* client = new Client;
  uv_tcp_init(server->loop, &client->handle);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&client->handle)) != 0) return close_client(client);
  uv_tcp_nodelay(&client->handle, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&client->handle), on_allocate, on_read);
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
