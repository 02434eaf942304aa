// evflow — SocketAddress: the numeric text forms of net/address.hpp, read and written
// without the C library's inet_pton/inet_ntop (whose accepted forms differ between
// systems: glibc's inet_aton takes "010.0.0.1" as octal, for one).
#include "address.hpp"

#include <cstring>

namespace evflow {

namespace {

using Family = SocketAddress::Family;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number of at most `max`, without leading zeros (but "0" itself), or -1.
long parse_decimal(std::string_view text, long max) noexcept {
  if (text.empty() || text.size() > 10) return -1;
  if (text.size() > 1 && text[0] == '0') return -1;
  long value = 0;
  for (char c : text) {
    if (!is_digit(c)) return -1;
    value = value * 10 + (c - '0');
    if (value > max) return -1;
  }
  return value;
}

// "a.b.c.d" into 4 bytes.
bool parse_ipv4(std::string_view text, uint8_t* out) noexcept {
  for (int part = 0; part < 4; ++part) {
    const std::size_t dot = part < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return false;
    const long value = parse_decimal(text.substr(0, dot), 255);
    if (value < 0) return false;
    out[part] = static_cast<uint8_t>(value);
    text.remove_prefix(part < 3 ? dot + 1 : dot);
  }
  return text.empty();
}

// RFC 4291 section 2.2: eight groups of up to four hex digits, one "::" for a run of zero
// groups, an IPv4 tail in place of the last two groups.
bool parse_ipv6(std::string_view text, uint8_t* out) noexcept {
  uint16_t groups[8] = {};
  int count = 0;
  int gap = -1;  // where "::" stands, in groups
  if (text.size() >= 2 && text[0] == ':' && text[1] == ':') {
    gap = 0;
    text.remove_prefix(2);
  } else if (!text.empty() && text[0] == ':') {
    return false;
  }
  while (!text.empty()) {
    const std::size_t end = text.find(':');
    const std::string_view group = text.substr(0, end);
    if (group.find('.') != std::string_view::npos) {  // the IPv4 tail ends the text
      if (end != std::string_view::npos || count > 6) return false;
      uint8_t v4[4];
      if (!parse_ipv4(group, v4)) return false;
      groups[count++] = static_cast<uint16_t>(v4[0] << 8 | v4[1]);
      groups[count++] = static_cast<uint16_t>(v4[2] << 8 | v4[3]);
      text = {};
      break;
    }
    if (group.empty() || group.size() > 4 || count == 8) return false;
    unsigned value = 0;
    for (char c : group) {
      const int digit = hex_value(c);
      if (digit < 0) return false;
      value = value * 16 + static_cast<unsigned>(digit);
    }
    groups[count++] = static_cast<uint16_t>(value);
    if (end == std::string_view::npos) {
      text = {};
      break;
    }
    text.remove_prefix(end + 1);
    if (!text.empty() && text[0] == ':') {  // "::" after this group
      if (gap >= 0) return false;
      gap = count;
      text.remove_prefix(1);
    } else if (text.empty()) {
      return false;  // a trailing single ':'
    }
  }
  if (gap < 0 && count != 8) return false;
  if (gap >= 0 && count > 7) return false;  // "::" stands for at least one group
  uint16_t full[8] = {};
  const int tail = gap < 0 ? 0 : count - gap;
  const int head = count - tail;
  for (int i = 0; i < head; ++i)
    full[i] = groups[i];
  for (int i = 0; i < tail; ++i)
    full[8 - tail + i] = groups[head + i];
  for (int i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<uint8_t>(full[i] >> 8);
    out[2 * i + 1] = static_cast<uint8_t>(full[i]);
  }
  return true;
}

// A host with an optional "%scope" (IPv6), into `endpoint`.
bool parse_host_into(std::string_view host, detail::Endpoint& endpoint) noexcept {
  if (host.find(':') == std::string_view::npos) {
    endpoint.family = detail::SocketFamily::ipv4;
    return parse_ipv4(host, endpoint.ip);
  }
  endpoint.family = detail::SocketFamily::ipv6;
  const std::size_t percent = host.find('%');
  if (percent != std::string_view::npos) {
    const std::string_view scope = host.substr(percent + 1);
    if (scope.empty() || scope.size() > 10) return false;
    uint64_t value = 0;
    for (char c : scope) {
      if (!is_digit(c)) return false;
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value > 0xffffffffu) return false;
    endpoint.scope_id = static_cast<uint32_t>(value);
    host = host.substr(0, percent);
  }
  return parse_ipv6(host, endpoint.ip);
}

// Appends to a bounded buffer; `ok` turns false when something did not fit.
struct Writer {
  char* out;
  std::size_t size;
  std::size_t length = 0;
  bool ok = true;
  void put(char c) noexcept {
    if (length + 1 < size) {
      out[length++] = c;
    } else {
      ok = false;
    }
  }
  void put(std::string_view text) noexcept {
    for (char c : text)
      put(c);
  }
  void put_decimal(uint64_t value) noexcept {
    char digits[20];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (n > 0)
      put(digits[--n]);
  }
  void put_hex(unsigned value) noexcept {
    static constexpr char kDigits[] = "0123456789abcdef";
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned digit = (value >> shift) & 0xf;
      if (digit != 0 || started || shift == 0) {
        put(kDigits[digit]);
        started = true;
      }
    }
  }
  void put_ipv4(const uint8_t* bytes) noexcept {
    for (int i = 0; i < 4; ++i) {
      if (i != 0) put('.');
      put_decimal(bytes[i]);
    }
  }
};

// RFC 5952: lower case, no leading zeros, the longest run of at least two zero groups
// (the first of equal runs) as "::"; ::ffff:a.b.c.d for a mapped IPv4 address.
void put_ipv6(Writer& w, const uint8_t* bytes) noexcept {
  uint16_t groups[8];
  for (int i = 0; i < 8; ++i)
    groups[i] = static_cast<uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
  const bool mapped =
      groups[0] == 0 && groups[1] == 0 && groups[2] == 0 && groups[3] == 0 && groups[4] == 0 && groups[5] == 0xffff;
  int best_start = -1;
  int best_length = 1;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0)
      ++j;
    if (j - i > best_length) {
      best_start = i;
      best_length = j - i;
    }
    i = j;
  }
  if (mapped) {
    w.put("::ffff:");
    w.put_ipv4(bytes + 12);
    return;
  }
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      w.put("::");
      i += best_length - 1;
      continue;
    }
    if (i != 0 && i != best_start + best_length) w.put(':');
    w.put_hex(groups[i]);
  }
}

}  // namespace

Result<SocketAddress> SocketAddress::parse(std::string_view text) noexcept {
  if (text.empty()) return Error(EINVAL);
  if (text[0] == '@') return local_abstract(text.substr(1));
  if (text.find('/') != std::string_view::npos) return local(text);
  std::string_view host;
  std::string_view port_text;
  if (text[0] == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return Error(EINVAL);
    host = text.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos) return Error(EINVAL);  // "[1.2.3.4]:80"
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return Error(EINVAL);  // no port, or an IPv6 address without brackets
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  const long port = parse_decimal(port_text, 65535);
  if (port < 0) return Error(EINVAL);
  return parse_host(host, static_cast<uint16_t>(port));
}

Result<SocketAddress> SocketAddress::parse_host(std::string_view host, uint16_t port) noexcept {
  SocketAddress address;
  if (!parse_host_into(host, address.endpoint_)) return Error(EINVAL);
  if (address.endpoint_.family == detail::SocketFamily::ipv4 && host.find('%') != std::string_view::npos) {
    return Error(EINVAL);
  }
  address.endpoint_.port = port;
  return address;
}

SocketAddress SocketAddress::ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) noexcept {
  SocketAddress address;
  address.endpoint_.family = detail::SocketFamily::ipv4;
  address.endpoint_.ip[0] = a;
  address.endpoint_.ip[1] = b;
  address.endpoint_.ip[2] = c;
  address.endpoint_.ip[3] = d;
  address.endpoint_.port = port;
  return address;
}

SocketAddress SocketAddress::ipv6(const uint8_t (&bytes)[16], uint16_t port, uint32_t scope_id) noexcept {
  SocketAddress address;
  address.endpoint_.family = detail::SocketFamily::ipv6;
  std::memcpy(address.endpoint_.ip, bytes, 16);
  address.endpoint_.port = port;
  address.endpoint_.scope_id = scope_id;
  return address;
}

SocketAddress SocketAddress::ipv6_loopback(uint16_t port) noexcept {
  const uint8_t bytes[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ipv6(bytes, port);
}

SocketAddress SocketAddress::ipv6_any(uint16_t port) noexcept {
  const uint8_t bytes[16] = {};
  return ipv6(bytes, port);
}

Result<SocketAddress> SocketAddress::local(std::string_view path) noexcept {
  if (path.empty() || path.find('\0') != std::string_view::npos) return Error(EINVAL);
  if (path.size() > detail::Endpoint::kMaxPath) return Error(ENAMETOOLONG);
  SocketAddress address;
  address.endpoint_.family = detail::SocketFamily::local;
  std::memcpy(address.endpoint_.path, path.data(), path.size());
  address.endpoint_.path_length = static_cast<uint8_t>(path.size());
  return address;
}

Result<SocketAddress> SocketAddress::local_abstract(std::string_view name) noexcept {
  if (name.size() + 1 > detail::Endpoint::kMaxPath) return Error(ENAMETOOLONG);
  SocketAddress address;
  address.endpoint_.family = detail::SocketFamily::local;
  address.endpoint_.path[0] = '\0';
  std::memcpy(address.endpoint_.path + 1, name.data(), name.size());
  address.endpoint_.path_length = static_cast<uint8_t>(name.size() + 1);
  return address;
}

SocketAddress SocketAddress::with_port(uint16_t port) const noexcept {
  SocketAddress copy = *this;
  if (is_ip()) copy.endpoint_.port = port;
  return copy;
}

bool SocketAddress::is_loopback() const noexcept {
  const uint8_t* ip = endpoint_.ip;
  if (family() == Family::ipv4) return ip[0] == 127;
  if (family() != Family::ipv6) return false;
  static constexpr uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip, kLoopback, 16) == 0) return true;
  return std::memcmp(ip, kMappedPrefix, 12) == 0 && ip[12] == 127;
}

bool SocketAddress::is_abstract() const noexcept {
  return family() == Family::local && endpoint_.path_length > 0 && endpoint_.path[0] == '\0';
}

std::string_view SocketAddress::local_path() const noexcept {
  if (family() != Family::local) return {};
  const std::string_view path(endpoint_.path, endpoint_.path_length);
  return is_abstract() ? path.substr(1) : path;
}

Result<std::size_t> SocketAddress::format(char* out, std::size_t size) const noexcept {
  if (out == nullptr || size == 0) return Error(ENOSPC);
  Writer w{out, size};
  switch (family()) {
    case Family::unspecified:
      break;
    case Family::ipv4:
      w.put_ipv4(endpoint_.ip);
      w.put(':');
      w.put_decimal(endpoint_.port);
      break;
    case Family::ipv6:
      w.put('[');
      put_ipv6(w, endpoint_.ip);
      if (endpoint_.scope_id != 0) {
        w.put('%');
        w.put_decimal(endpoint_.scope_id);
      }
      w.put("]:");
      w.put_decimal(endpoint_.port);
      break;
    case Family::local:
      if (endpoint_.path_length == 0) {
        w.put("(unnamed)");
      } else if (is_abstract()) {
        w.put('@');
        w.put(local_path());
      } else {
        w.put(local_path());
      }
      break;
  }
  out[w.length] = '\0';
  if (!w.ok) return Error(ENOSPC);
  return w.length;
}

std::string SocketAddress::to_string() const {
  char text[kMaxText + detail::Endpoint::kMaxPath];
  Result<std::size_t> n = format(text, sizeof text);
  return n ? std::string(text, n.value()) : std::string();
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  const detail::Endpoint& x = a.endpoint_;
  const detail::Endpoint& y = b.endpoint_;
  if (x.family != y.family) return false;
  switch (x.family) {
    case detail::SocketFamily::unspecified:
      return true;
    case detail::SocketFamily::ipv4:
      return x.port == y.port && std::memcmp(x.ip, y.ip, 4) == 0;
    case detail::SocketFamily::ipv6:
      return x.port == y.port && x.scope_id == y.scope_id && std::memcmp(x.ip, y.ip, 16) == 0;
    case detail::SocketFamily::local:
      return x.path_length == y.path_length && std::memcmp(x.path, y.path, x.path_length) == 0;
  }
  return false;
}

}  // namespace evflow
