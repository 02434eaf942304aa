// The echo workload's server on libevent, as its book writes one: an evconnlistener
// accepting, a bufferevent per client whose read callback moves everything in its input
// buffer to its output buffer (evbuffer_add_buffer: no copy), which libevent writes out.
// One event_base per thread; with several, LEV_OPT_REUSEABLE_PORT gives each its own
// listener on the port.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "bench/net/common.hpp"

namespace {

void on_read(bufferevent* client, void*) {
  evbuffer_add_buffer(bufferevent_get_output(client), bufferevent_get_input(client));
}

void on_event(bufferevent* client, short events, void*) {
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(client);
}

void on_accept(evconnlistener* listener, evutil_socket_t fd, sockaddr*, int, void*) {
  netbench::no_delay(fd);
  bufferevent* client = bufferevent_socket_new(evconnlistener_get_base(listener), fd, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(client, on_read, nullptr, on_event, nullptr);
  bufferevent_enable(client, EV_READ | EV_WRITE);
}

void serve(int port, bool shared) {
  event_config* config = event_config_new();
  event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);  // one thread per base
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE;
  if (shared) flags |= LEV_OPT_REUSEABLE_PORT;
  evconnlistener* listener = evconnlistener_new_bind(base, on_accept, nullptr, flags, 1024,
                                                     reinterpret_cast<sockaddr*>(&address), sizeof address);
  if (listener == nullptr) netbench::die("evconnlistener_new_bind");
  event_base_dispatch(base);
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) { serve(o.port, o.loops > 1); });
}
