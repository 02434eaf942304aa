// The floor of the HTTP workload: the responder written straight on epoll. One
// level-triggered epoll set per loop; a readable connection is read once, every whole
// request in its buffer answered with one send, the start of a request still arriving kept.
// A reply the kernel takes only in part keeps the rest and waits for EPOLLOUT.
#include <sys/epoll.h>

#include <cerrno>
#include <string>

#include "bench/net/common.hpp"

namespace {

struct Connection {
  int fd = -1;
  size_t have = 0;  // bytes of `in` holding a request not yet whole
  char in[16384];
  std::string unsent;  // the part of the replies the kernel did not take yet
};

void drop(Connection* c) {
  ::close(c->fd);  // also leaves the epoll set
  delete c;
}

void watch(int ep, Connection* c, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = c;
  (void)::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

void serve(int port, bool shared) {
  const int listener = netbench::listen_socket(port, shared);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // null: the listener
  (void)::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  epoll_event events[256];
  std::string out;
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(events[i].data.ptr);
      if (c == nullptr) {
        for (;;) {
          const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          netbench::no_delay(fd);
          epoll_event add{};
          add.events = EPOLLIN;
          auto* connection = new Connection;
          connection->fd = fd;
          add.data.ptr = connection;
          (void)::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add);
        }
        continue;
      }
      if (!c->unsent.empty()) {
        const ssize_t sent = ::send(c->fd, c->unsent.data(), c->unsent.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN) {
          drop(c);
          continue;
        }
        if (sent > 0) c->unsent.erase(0, static_cast<size_t>(sent));
        if (c->unsent.empty()) watch(ep, c, EPOLLIN);
        continue;
      }
      const ssize_t got = ::read(c->fd, c->in + c->have, sizeof c->in - c->have);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) {
        drop(c);
        continue;
      }
      c->have += static_cast<size_t>(got);
      size_t consumed;
      const int requests = netbench::count_requests(c->in, c->have, consumed);
      if (requests == 0) {
        if (c->have == sizeof c->in) drop(c);  // a request larger than the buffer
        continue;
      }
      c->have -= consumed;
      std::memmove(c->in, c->in + consumed, c->have);
      out.clear();
      netbench::append_replies(out, requests);
      const ssize_t sent = ::send(c->fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (sent == static_cast<ssize_t>(out.size())) continue;
      if (sent < 0 && errno != EAGAIN) {
        drop(c);
        continue;
      }
      c->unsent.assign(out, sent > 0 ? static_cast<size_t>(sent) : 0);
      watch(ep, c, EPOLLOUT);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) { serve(o.port, o.loops > 1); });
}
