// The floor of the echo workload: an echo server written straight on epoll, with nothing a
// library adds. One level-triggered epoll set per loop; each readable connection is read
// once into a 16 KiB buffer and written back. A write the kernel takes only in part (the
// client is not reading) keeps the rest and waits for EPOLLOUT, reading nothing meanwhile.
#include <sys/epoll.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "bench/net/common.hpp"

namespace {

struct Connection {
  int fd;
  std::vector<char> unsent;  // the part of an echo the kernel did not take yet
};

void serve(int port, bool shared) {
  const int listener = netbench::listen_socket(port, shared);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // null: the listener
  (void)::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  epoll_event events[256];
  char buffer[16384];
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
          add.data.ptr = new Connection{fd, {}};
          (void)::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add);
        }
        continue;
      }
      const char* data = buffer;
      ssize_t size;
      if (!c->unsent.empty()) {
        data = c->unsent.data();
        size = static_cast<ssize_t>(c->unsent.size());
      } else {
        size = ::read(c->fd, buffer, sizeof buffer);
        if (size < 0 && errno == EAGAIN) continue;
        if (size <= 0) {
          ::close(c->fd);  // also leaves the epoll set
          delete c;
          continue;
        }
      }
      const ssize_t sent = ::send(c->fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
      if (sent == size) {
        if (!c->unsent.empty()) {
          c->unsent.clear();
          epoll_event mod{EPOLLIN, {.ptr = c}};
          (void)::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
        }
      } else if (sent >= 0 || errno == EAGAIN) {
        const size_t taken = sent > 0 ? static_cast<size_t>(sent) : 0;
        std::vector<char> rest(data + taken, data + size);
        const bool was_waiting = !c->unsent.empty();
        c->unsent = std::move(rest);
        if (!was_waiting) {
          epoll_event mod{EPOLLOUT, {.ptr = c}};
          (void)::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
        }
      } else {
        ::close(c->fd);
        delete c;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::Options o = netbench::parse_options(argc, argv);
  netbench::run_loops(o.loops, [&](int) { serve(o.port, o.loops > 1); });
}
