// evflow — resolve(host, port): the addresses of a host name, looked up without blocking
// the loop.
//
//   evflow::Result<std::vector<evflow::SocketAddress>> found = co_await evflow::resolve("db.internal", 5432);
//   evflow::Result<evflow::TcpStream> stream = co_await evflow::TcpStream::connect("db.internal", 5432);
//
// The lookup is the C library's resolver (getaddrinfo: nsswitch, /etc/hosts, DNS), which
// blocks; it runs on a thread pool (the one given, ThreadPool::default_pool() unless
// said otherwise) through to_thread (tasks/to_thread.hpp), so
// the loop goes on meanwhile. A numeric address (IPv4, or IPv6 with or without brackets) is
// parsed at once, without a lookup. The addresses come in the resolver's order (the order
// RFC 6724 gives, where the resolver applies it), duplicates dropped, at most
// kMaxResolvedAddresses.
//
// Cancellation: a cancelled resolve gives ECANCELED at once; a lookup already running
// finishes on its thread and its answer is dropped (the resolver cannot be interrupted).
//
// Errors: ENXIO (no such name, or no address for it), EAGAIN (the resolver could not
// answer now: try again later), EIO (it failed for good), ENOMEM, EINVAL (an empty name),
// ECANCELED, and to_thread's (EAGAIN when no thread could start).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../platform/socket.hpp"
#include "../tasks/task.hpp"
#include "../tasks/to_thread.hpp"
#include "address.hpp"

namespace evflow {

inline constexpr std::size_t kMaxResolvedAddresses = 16;

namespace detail {

// What one lookup found (on a pool's thread).
struct HostLookup {
  Error error;
  std::size_t count = 0;
  Endpoint endpoints[kMaxResolvedAddresses];
};
// getaddrinfo through platform/socket.hpp. Blocks.
HostLookup look_up_host(const std::string& host, uint16_t port) noexcept;

}  // namespace detail

// The IPv4 and IPv6 addresses of `host`, each with `port`, looked up on `pool` (a pool of
// its own keeps slow lookups from holding up other blocking work). `host` is read when the
// task starts (await it at once, as usual for a lazy task given a view). Defined here, not in
// the library: a task's frame is laid out by the code that awaits it (exceptions or not).
inline Task<Result<std::vector<SocketAddress>>> resolve(std::string_view host, uint16_t port,
                                                        ThreadPool& pool = ThreadPool::default_pool()) {
  if (Result<SocketAddress> numeric = SocketAddress::parse_host(host, port)) {
    co_return std::vector<SocketAddress>{numeric.value()};
  }
  if (host.empty()) co_return Error(EINVAL);
  // Named before the await: g++ 12 relocates class temporaries of a co_await's operand
  // bitwise, which breaks a std::string in its short form (README, "Portability").
  auto look_up = [name = std::string(host), port] { return detail::look_up_host(name, port); };
  Result<detail::HostLookup> answer = co_await to_thread(pool, std::move(look_up));
  if (!answer) co_return answer.error();
  const detail::HostLookup& lookup = answer.value();
  if (lookup.error) co_return lookup.error;
  std::vector<SocketAddress> addresses;
  addresses.reserve(lookup.count);
  for (std::size_t i = 0; i < lookup.count; ++i)
    addresses.push_back(SocketAddress::from_endpoint(lookup.endpoints[i]));
  co_return addresses;
}

}  // namespace evflow
