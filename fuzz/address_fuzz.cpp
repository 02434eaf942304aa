// Differential fuzzer: SocketAddress's numeric parser against the C library's inet_pton,
// and its formatter against its own parser.
//
// The input is text. Checked for every input:
// - parse_host(text) accepts exactly the texts inet_pton(AF_INET or AF_INET6) accepts
//   (glibc's inet_pton, like evflow, refuses leading zeros in IPv4 parts and takes an
//   IPv4 tail in IPv6), apart from a "%scope" suffix, which inet_pton does not know, and
//   gives the same 4 or 16 bytes;
// - whatever parse() accepts formats to text that parse() reads back to an equal address,
//   and that text formats to itself (the formatted form is canonical);
// - format() never writes past the buffer it is given, whatever its size.
#include "net/address.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "address_fuzz: %s for \"%.*s\"\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

void check_against_inet_pton(std::string_view text) {
  if (text.find('%') != std::string_view::npos || text.find('\0') != std::string_view::npos) return;
  const std::string host(text);
  unsigned char bytes[16];
  const bool colon = text.find(':') != std::string_view::npos;
  const bool libc_ok = inet_pton(colon ? AF_INET6 : AF_INET, host.c_str(), bytes) == 1;
  evflow::Result<evflow::SocketAddress> ours = evflow::SocketAddress::parse_host(text, 80);
  if (libc_ok != ours.ok()) fail(libc_ok ? "refused what inet_pton accepts" : "accepted what inet_pton refuses", text);
  if (!libc_ok) return;
  const std::size_t size = colon ? 16 : 4;
  if (std::memcmp(ours.value().endpoint().ip, bytes, size) != 0) fail("bytes differ from inet_pton's", text);
}

void check_round_trip(std::string_view text) {
  evflow::Result<evflow::SocketAddress> parsed = evflow::SocketAddress::parse(text);
  if (!parsed) return;
  const std::string formatted = parsed.value().to_string();
  evflow::Result<evflow::SocketAddress> again = evflow::SocketAddress::parse(formatted);
  if (!again) fail("its own formatted text is refused", formatted);
  if (!(again.value() == parsed.value())) fail("formatted text reads back to another address", text);
  if (again.value().to_string() != formatted) fail("the formatted form is not canonical", text);
  // Every buffer size: no overflow (ASan watches), ENOSPC exactly when it does not fit.
  for (std::size_t size = 1; size <= formatted.size() + 1; ++size) {
    char* out = static_cast<char*>(std::malloc(size));
    evflow::Result<std::size_t> n = parsed.value().format(out, size);
    if (n.ok() != (size > formatted.size())) fail("format() reports the wrong fit", text);
    if (n && std::string_view(out, n.value()) != formatted) fail("format() and to_string() differ", text);
    std::free(out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_against_inet_pton(text);
  check_round_trip(text);
  return 0;
}
