// The echo workload's server on libev, as its manual has one write it: an ev_io on the
// listening socket accepting, an ev_io per client whose callback reads what is there
// into a buffer and writes it back with a non-blocking write. A write the kernel takes only
// in part keeps the rest, switches the watcher to EV_WRITE until it is sent, then back.
#include <ev.h>

#include <cerrno>
#include <vector>

#include "bench/net/common.hpp"

namespace {

struct Client {
  ev_io watcher;  // first: the callback gets its address
  std::vector<char> unsent;
};

void drop(struct ev_loop* loop, Client* client) {
  ev_io_stop(loop, &client->watcher);
  ::close(client->watcher.fd);
  delete client;
}

// Watches the client for `events` (EV_READ, or EV_WRITE while an echo is unsent).
void watch(struct ev_loop* loop, Client* client, int events) {
  ev_io_stop(loop, &client->watcher);
  ev_io_set(&client->watcher, client->watcher.fd, events);
  ev_io_start(loop, &client->watcher);
}

void on_client(struct ev_loop* loop, ev_io* watcher, int revents) {
  auto* client = reinterpret_cast<Client*>(watcher);
  if (revents & EV_WRITE) {
    const ssize_t sent = ::send(watcher->fd, client->unsent.data(), client->unsent.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN) return drop(loop, client);
    if (sent > 0) client->unsent.erase(client->unsent.begin(), client->unsent.begin() + sent);
    if (client->unsent.empty()) watch(loop, client, EV_READ);
    return;
  }
  char buffer[16384];
  const ssize_t got = ::read(watcher->fd, buffer, sizeof buffer);
  if (got < 0 && errno == EAGAIN) return;
  if (got <= 0) return drop(loop, client);
  const ssize_t sent = ::send(watcher->fd, buffer, static_cast<size_t>(got), MSG_NOSIGNAL);
  if (sent == got) return;
  if (sent < 0 && errno != EAGAIN) return drop(loop, client);
  client->unsent.assign(buffer + (sent > 0 ? sent : 0), buffer + got);
  watch(loop, client, EV_WRITE);
}

void on_accept(struct ev_loop* loop, ev_io* watcher, int) {
  for (;;) {
    const int fd = ::accept4(watcher->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    netbench::no_delay(fd);
    auto* client = new Client;
    ev_io_init(&client->watcher, on_client, fd, EV_READ);
    ev_io_start(loop, &client->watcher);
  }
}

void serve(int port, bool shared) {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  ev_io accept_watcher;
  ev_io_init(&accept_watcher, on_accept, netbench::listen_socket(port, shared), EV_READ);
  ev_io_start(loop, &accept_watcher);
  ev_run(loop, 0);
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) { serve(o.port, o.loops > 1); });
}
