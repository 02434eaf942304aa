// evflow — SocketAddress: an IPv4, IPv6 or Unix-domain address, parsed from text and
// formatted to text. Numeric only: no name is resolved here (that needs a thread, since
// the system's resolver blocks).
//
//   auto a = evflow::SocketAddress::parse("127.0.0.1:8080");      // Result<SocketAddress>
//   auto b = evflow::SocketAddress::parse("[fe80::1%2]:443");     // IPv6, scope id 2
//   auto c = evflow::SocketAddress::local("/run/app.sock");       // a Unix path
//   auto d = evflow::SocketAddress::local_abstract("app");        // Linux: "@app"
//   a.value().to_string();                                         // "127.0.0.1:8080"
//
// Text forms (parse() and to_string() agree, so formatting then parsing gives the same
// address):
//   IPv4  "a.b.c.d:port": four decimal parts 0-255 without leading zeros (no octal or hex
//         forms: "010.0.0.1" is refused, not read as 8.0.0.1).
//   IPv6  "[address]:port" or "[address%scope]:port" with a numeric scope id; the
//         address as RFC 4291 writes it, with "::" and an embedded IPv4 tail
//         ("::ffff:1.2.3.4"). Formatted as RFC 5952 recommends: lower case, the longest
//         run of two or more zero groups shortened to "::" (the first of equal runs).
//   Local "/path" or "./path" or any text with a '/' in it: a filesystem path; "@name": a
//         Linux abstract name (no file; '\0' then the name on the wire).
// A port is 0-65535 in decimal; 0 asks bind() for any free port. parse() errors: EINVAL
// for text in none of these forms, ENAMETOOLONG for a local path of more than
// Endpoint::kMaxPath bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "../platform/result.hpp"
#include "../platform/socket.hpp"

namespace evflow {

class SocketAddress {
 public:
  enum class Family : uint8_t { unspecified, ipv4, ipv6, local };

  // An unspecified address (family() == unspecified), what a failed Result holds.
  SocketAddress() noexcept = default;

  // Reads one of the text forms above.
  static Result<SocketAddress> parse(std::string_view text) noexcept;
  // Reads a numeric host ("127.0.0.1", "::1", "fe80::1%2"; no brackets) and takes `port`.
  static Result<SocketAddress> parse_host(std::string_view host, uint16_t port) noexcept;

  // a.b.c.d:port.
  static SocketAddress ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) noexcept;
  // 16 bytes in network order, and the scope id of a link-local address.
  static SocketAddress ipv6(const uint8_t (&bytes)[16], uint16_t port, uint32_t scope_id = 0) noexcept;
  // 127.0.0.1:port, [::1]:port: the loopback addresses.
  static SocketAddress ipv4_loopback(uint16_t port) noexcept { return ipv4(127, 0, 0, 1, port); }
  static SocketAddress ipv6_loopback(uint16_t port) noexcept;
  // 0.0.0.0:port, [::]:port: every interface, for bind().
  static SocketAddress ipv4_any(uint16_t port) noexcept { return ipv4(0, 0, 0, 0, port); }
  static SocketAddress ipv6_any(uint16_t port) noexcept;
  // A Unix-domain filesystem path. ENAMETOOLONG beyond Endpoint::kMaxPath bytes, EINVAL
  // for an empty path or one with a '\0' in it.
  static Result<SocketAddress> local(std::string_view path) noexcept;
  // A Linux abstract Unix-domain name (no file; gone with the last socket bound to it).
  // Other systems refuse it at bind() or connect() (ENOENT or EINVAL, as their kernel says).
  static Result<SocketAddress> local_abstract(std::string_view name) noexcept;

  Family family() const noexcept { return static_cast<Family>(endpoint_.family); }
  bool is_ip() const noexcept { return family() == Family::ipv4 || family() == Family::ipv6; }
  // The port (IPv4 and IPv6), 0 for a local address.
  uint16_t port() const noexcept { return endpoint_.port; }
  // A copy with another port (IPv4 and IPv6).
  SocketAddress with_port(uint16_t port) const noexcept;
  // True for 127.0.0.0/8 and ::1 (and ::ffff:127.x.y.z).
  bool is_loopback() const noexcept;
  // IPv6: the scope id (0 when none).
  uint32_t scope_id() const noexcept { return endpoint_.scope_id; }
  // Local: the path or abstract name (without the leading '\0' of an abstract name).
  std::string_view local_path() const noexcept;
  bool is_abstract() const noexcept;

  // The text form above; "" for an unspecified address, "(unnamed)" for a local socket
  // bound to nothing. Allocates (std::string); format() does not.
  std::string to_string() const;
  // Writes the text form and a terminating '\0' into `out` (at most `size` bytes);
  // returns its length without the '\0', or ENOSPC when it does not fit. The longest IP
  // form, "[ffff:...:255.255.255.255%4294967295]:65535", takes 63 bytes; a local one up to
  // Endpoint::kMaxPath + 1.
  static constexpr std::size_t kMaxText = 128;
  Result<std::size_t> format(char* out, std::size_t size) const noexcept;

  // The same family, address, port (and scope) or path.
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

  // The OS-neutral form the platform layer takes (platform/socket.hpp).
  const detail::Endpoint& endpoint() const noexcept { return endpoint_; }
  static SocketAddress from_endpoint(const detail::Endpoint& endpoint) noexcept {
    SocketAddress address;
    address.endpoint_ = endpoint;
    return address;
  }

 private:
  detail::Endpoint endpoint_;
};

}  // namespace evflow
