#include "net/address.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evflow {
namespace {

// The text a parse gives back, or "error <errno>" when it refuses the text.
std::string reformatted(std::string_view text) {
  Result<SocketAddress> parsed = SocketAddress::parse(text);
  if (!parsed) return "error " + std::to_string(parsed.error().code());
  return parsed.value().to_string();
}

TEST(SocketAddress, AnIpv4AddressIsReadAndFormattedBack) {
  Result<SocketAddress> parsed = SocketAddress::parse("192.168.10.200:8080");
  ASSERT_TRUE(parsed);
  const SocketAddress& a = parsed.value();
  EXPECT_EQ(a.family(), SocketAddress::Family::ipv4);
  EXPECT_TRUE(a.is_ip());
  EXPECT_EQ(a.port(), 8080);
  EXPECT_FALSE(a.is_loopback());
  EXPECT_EQ(a.to_string(), "192.168.10.200:8080");
  EXPECT_EQ(a, SocketAddress::ipv4(192, 168, 10, 200, 8080));
  const uint8_t expected[4] = {192, 168, 10, 200};
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(a.endpoint().ip[i], expected[i]) << "network order, byte " << i;
}

TEST(SocketAddress, PortsZeroAndSixtyFiveThousandFiveHundredThirtyFiveAreTheEnds) {
  EXPECT_EQ(reformatted("0.0.0.0:0"), "0.0.0.0:0");
  EXPECT_EQ(reformatted("255.255.255.255:65535"), "255.255.255.255:65535");
  EXPECT_EQ(reformatted("1.2.3.4:65536"), "error " + std::to_string(EINVAL));
}

TEST(SocketAddress, TheLoopbackAndAnyAddressesAreWhatTheirNamesSay) {
  EXPECT_EQ(SocketAddress::ipv4_loopback(80).to_string(), "127.0.0.1:80");
  EXPECT_EQ(SocketAddress::ipv6_loopback(80).to_string(), "[::1]:80");
  EXPECT_EQ(SocketAddress::ipv4_any(0).to_string(), "0.0.0.0:0");
  EXPECT_EQ(SocketAddress::ipv6_any(0).to_string(), "[::]:0");
  EXPECT_TRUE(SocketAddress::ipv4_loopback(1).is_loopback());
  EXPECT_TRUE(SocketAddress::ipv6_loopback(1).is_loopback());
  EXPECT_TRUE(SocketAddress::parse("127.200.3.4:1").value().is_loopback()) << "all of 127.0.0.0/8";
  EXPECT_TRUE(SocketAddress::parse("[::ffff:127.0.0.1]:1").value().is_loopback()) << "IPv4-mapped";
  EXPECT_FALSE(SocketAddress::ipv4_any(1).is_loopback());
  EXPECT_FALSE(SocketAddress::ipv6_any(1).is_loopback());
  EXPECT_FALSE(SocketAddress::parse("128.0.0.1:1").value().is_loopback());
}

TEST(SocketAddress, AnIpv6AddressIsFormattedAsRfc5952Recommends) {
  // Lower case, leading zeros dropped, the longest run of zero groups shortened.
  EXPECT_EQ(reformatted("[2001:0DB8:0000:0000:0000:0000:0002:0001]:443"), "[2001:db8::2:1]:443");
  // Of two runs, the longer one is shortened...
  EXPECT_EQ(reformatted("[2001:0:0:1:0:0:0:1]:1"), "[2001:0:0:1::1]:1");
  // ...of two equal runs, the first (RFC 5952 section 4.2.3).
  EXPECT_EQ(reformatted("[2001:db8:0:0:1:0:0:1]:1"), "[2001:db8::1:0:0:1]:1");
  // A single zero group is not shortened (section 4.2.2).
  EXPECT_EQ(reformatted("[2001:db8:0:1:1:1:1:1]:1"), "[2001:db8:0:1:1:1:1:1]:1");
  // Runs at either end.
  EXPECT_EQ(reformatted("[0:0:0:0:0:0:0:1]:1"), "[::1]:1");
  EXPECT_EQ(reformatted("[1:0:0:0:0:0:0:0]:1"), "[1::]:1");
  EXPECT_EQ(reformatted("[0:0:0:0:0:0:0:0]:1"), "[::]:1");
  EXPECT_EQ(reformatted("[fe80::]:1"), "[fe80::]:1");
  // No zero group at all.
  EXPECT_EQ(reformatted("[1:2:3:4:5:6:7:8]:1"), "[1:2:3:4:5:6:7:8]:1");
}

TEST(SocketAddress, AnIpv6AddressIsStoredInNetworkOrder) {
  Result<SocketAddress> parsed = SocketAddress::parse("[2001:db8::ff00:42:8329]:65535");
  ASSERT_TRUE(parsed);
  const uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29};
  EXPECT_EQ(parsed.value(), SocketAddress::ipv6(bytes, 65535));
  EXPECT_EQ(parsed.value().family(), SocketAddress::Family::ipv6);
  EXPECT_EQ(parsed.value().port(), 65535);
  EXPECT_EQ(parsed.value().scope_id(), 0u);
}

TEST(SocketAddress, AnEmbeddedIpv4TailIsReadAndAMappedAddressIsFormattedWithIt) {
  Result<SocketAddress> parsed = SocketAddress::parse("[::ffff:1.2.3.4]:80");
  ASSERT_TRUE(parsed);
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
  EXPECT_EQ(parsed.value(), SocketAddress::ipv6(mapped, 80));
  EXPECT_EQ(parsed.value().to_string(), "[::ffff:1.2.3.4]:80");  // RFC 5952 section 5
  EXPECT_EQ(reformatted("[0:0:0:0:0:FFFF:1.2.3.4]:80"), "[::ffff:1.2.3.4]:80");
}

TEST(SocketAddress, AScopeIdIsKeptAndFormatted) {
  Result<SocketAddress> parsed = SocketAddress::parse("[fe80::1%2]:443");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().scope_id(), 2u);
  EXPECT_EQ(parsed.value().to_string(), "[fe80::1%2]:443");
  const uint8_t link_local[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(parsed.value(), SocketAddress::ipv6(link_local, 443, 2));
  EXPECT_NE(parsed.value(), SocketAddress::ipv6(link_local, 443, 3)) << "the scope is part of the address";
  EXPECT_NE(parsed.value(), SocketAddress::ipv6(link_local, 443)) << "the scope is part of the address";
  EXPECT_EQ(reformatted("[fe80::1%4294967295]:1"), "[fe80::1%4294967295]:1");
}

TEST(SocketAddress, AHostAndAPortAreReadApartWithoutBrackets) {
  EXPECT_EQ(SocketAddress::parse_host("10.1.2.3", 53).value(), SocketAddress::ipv4(10, 1, 2, 3, 53));
  EXPECT_EQ(SocketAddress::parse_host("::1", 53).value(), SocketAddress::ipv6_loopback(53));
  EXPECT_EQ(SocketAddress::parse_host("fe80::1%2", 53).value(), SocketAddress::parse("[fe80::1%2]:53").value());
  EXPECT_EQ(SocketAddress::parse_host("[::1]", 53).error().code(), EINVAL) << "no brackets";
  EXPECT_EQ(SocketAddress::parse_host("10.1.2.3:80", 53).error().code(), EINVAL) << "no port in the host";
  EXPECT_EQ(SocketAddress::parse_host("", 53).error().code(), EINVAL);
  EXPECT_EQ(SocketAddress::parse_host("localhost", 53).error().code(), EINVAL) << "no name is resolved";
}

TEST(SocketAddress, WithPortChangesOnlyThePort) {
  const SocketAddress a = SocketAddress::parse("[fe80::7%3]:1").value();
  const SocketAddress b = a.with_port(9000);
  EXPECT_EQ(b.port(), 9000);
  EXPECT_EQ(b.scope_id(), 3u);
  EXPECT_EQ(b.to_string(), "[fe80::7%3]:9000");
  EXPECT_NE(a, b);
  EXPECT_EQ(b.with_port(1), a);
  EXPECT_EQ(SocketAddress::ipv4_loopback(5).with_port(6), SocketAddress::ipv4_loopback(6));
}

TEST(SocketAddress, AddressesOfDifferentFamiliesAreNeverEqual) {
  EXPECT_NE(SocketAddress::ipv4_any(0), SocketAddress::ipv6_any(0));
  EXPECT_NE(SocketAddress::parse("[::ffff:127.0.0.1]:1").value(), SocketAddress::ipv4_loopback(1));
  EXPECT_NE(SocketAddress::local("/a").value(), SocketAddress::local_abstract("/a").value());
  EXPECT_EQ(SocketAddress(), SocketAddress());
  EXPECT_EQ(SocketAddress().family(), SocketAddress::Family::unspecified);
  EXPECT_EQ(SocketAddress().to_string(), "");
}

TEST(SocketAddress, ALocalPathIsKeptAsGiven) {
  Result<SocketAddress> made = SocketAddress::local("/run/app.sock");
  ASSERT_TRUE(made);
  EXPECT_EQ(made.value().family(), SocketAddress::Family::local);
  EXPECT_FALSE(made.value().is_ip());
  EXPECT_FALSE(made.value().is_abstract());
  EXPECT_EQ(made.value().local_path(), "/run/app.sock");
  EXPECT_EQ(made.value().port(), 0);
  EXPECT_EQ(made.value().to_string(), "/run/app.sock");
  EXPECT_EQ(SocketAddress::parse("/run/app.sock").value(), made.value());
  EXPECT_EQ(SocketAddress::parse("./app.sock").value(), SocketAddress::local("./app.sock").value());
  EXPECT_EQ(SocketAddress::parse("run/app.sock").value().family(), SocketAddress::Family::local)
      << "any text with a '/' is a path";
  EXPECT_EQ(SocketAddress::parse("a/b:80").value().local_path(), "a/b:80") << "a path, not a host and port";
}

TEST(SocketAddress, AnAtSignMakesAnAbstractName) {
  Result<SocketAddress> made = SocketAddress::local_abstract("app");
  ASSERT_TRUE(made);
  EXPECT_EQ(made.value().family(), SocketAddress::Family::local);
  EXPECT_TRUE(made.value().is_abstract());
  EXPECT_EQ(made.value().local_path(), "app");
  EXPECT_EQ(made.value().to_string(), "@app");
  EXPECT_EQ(SocketAddress::parse("@app").value(), made.value());
  // On the wire: '\0' then the name.
  EXPECT_EQ(made.value().endpoint().path_length, 4);
  EXPECT_EQ(made.value().endpoint().path[0], '\0');
  EXPECT_EQ(std::string_view(made.value().endpoint().path + 1, 3), "app");
}

TEST(SocketAddress, ALocalPathLongerThanTheSystemTakesIsRefused) {
  const std::string longest = "/" + std::string(detail::Endpoint::kMaxPath - 1, 'p');
  ASSERT_EQ(longest.size(), detail::Endpoint::kMaxPath);
  Result<SocketAddress> fits = SocketAddress::local(longest);
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits.value().local_path(), longest);
  EXPECT_EQ(SocketAddress::parse(longest).value(), fits.value());
  EXPECT_EQ(SocketAddress::local(longest + "p").error().code(), ENAMETOOLONG);
  EXPECT_EQ(SocketAddress::parse(longest + "p").error().code(), ENAMETOOLONG);
}

TEST(SocketAddress, AnEmptyLocalPathOrOneWithAZeroByteIsRefused) {
  EXPECT_EQ(SocketAddress::local("").error().code(), EINVAL);
  EXPECT_EQ(SocketAddress::local(std::string_view("/a\0b", 4)).error().code(), EINVAL);
}

TEST(SocketAddress, TextInNoneOfTheFormsIsRefusedWithEinval) {
  const std::vector<std::string_view> refused = {
      "",
      "1.2.3",                   // three parts
      "1.2.3:80",                // three parts, with a port
      "1.2.3.4.5:80",            // five parts
      "256.0.0.1:80",            // a part above 255
      "010.0.0.1:80",            // a leading zero (octal elsewhere)
      "0x7f.0.0.1:80",           // hexadecimal
      "1.2.3.4",                 // no port
      "1.2.3.4:",                // an empty port
      "1.2.3.4:65536",           // a port above 65535
      "1.2.3.4:-1",              // a negative port
      "1.2.3.4:+80",             // a sign
      "1.2.3.4:0x50",            // a hexadecimal port
      "1.2.3.4:80 ",             // trailing text
      " 1.2.3.4:80",             // leading text
      "1..3.4:80",               // an empty part
      "[::1]",                   // no port
      "[::1]:",                  // an empty port
      "[::1]80",                 // no colon before the port
      "::1:80",                  // no brackets
      "[:::]:80",                // three colons
      "[1::2::3]:80",            // two "::"
      "[1:2:3:4:5:6:7:8:9]:80",  // nine groups
      "[1:2:3:4:5:6:7]:80",      // seven groups, no "::"
      "[12345::]:80",            // a group of five digits
      "[g::]:80",                // not hexadecimal
      "[::ffff:1.2.3]:80",       // a short IPv4 tail
      "[::ffff:1.2.3.256]:80",   // an IPv4 tail out of range
      "[::1%]:80",               // an empty scope
      "[::1%eth0]:80",           // a scope by name (numeric only)
      "[::1%4294967296]:80",     // a scope above 32 bits
      "[::1:80",                 // no closing bracket
      "localhost:80",            // a name (nothing is resolved)
  };
  for (std::string_view text : refused) {
    Result<SocketAddress> parsed = SocketAddress::parse(text);
    EXPECT_FALSE(parsed) << '"' << text << "\" gave " << (parsed ? parsed.value().to_string() : "");
    if (!parsed) {
      EXPECT_EQ(parsed.error().code(), EINVAL) << '"' << text << '"';
    }
  }
}

TEST(SocketAddress, FormattingThenParsingGivesTheSameAddress) {
  const uint8_t all_ones[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const uint8_t sparse[16] = {0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x30, 0};
  std::vector<SocketAddress> addresses = {
      SocketAddress::ipv4(0, 0, 0, 0, 0),
      SocketAddress::ipv4(255, 255, 255, 255, 65535),
      SocketAddress::ipv4(10, 0, 100, 7, 8080),
      SocketAddress::ipv6_loopback(443),
      SocketAddress::ipv6_any(0),
      SocketAddress::ipv6(all_ones, 65535, 4294967295u),
      SocketAddress::ipv6(sparse, 7, 9),
      SocketAddress::local("/tmp/evflow.sock").value(),
      SocketAddress::local("./relative/path").value(),
      SocketAddress::local_abstract("abstract-name").value(),
  };
  // Every run of zeros in every position, so that the choice of the run to shorten is
  // exercised at each place.
  for (int start = 0; start < 8; ++start) {
    for (int length = 1; start + length <= 8; ++length) {
      uint8_t bytes[16];
      for (int group = 0; group < 8; ++group) {
        const bool zero = group >= start && group < start + length;
        bytes[2 * group] = 0;
        bytes[2 * group + 1] = zero ? 0 : static_cast<uint8_t>(group + 1);
      }
      addresses.push_back(SocketAddress::ipv6(bytes, static_cast<uint16_t>(start * 8 + length)));
    }
  }
  for (const SocketAddress& a : addresses) {
    const std::string text = a.to_string();
    Result<SocketAddress> back = SocketAddress::parse(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(back.value(), a) << text;
    EXPECT_EQ(back.value().to_string(), text);
  }
}

TEST(SocketAddress, FormatWritesTheTextAndAZeroOrSaysItDoesNotFit) {
  const SocketAddress a = SocketAddress::parse("[2001:db8::1%12]:8080").value();
  const std::string text = a.to_string();
  ASSERT_EQ(text, "[2001:db8::1%12]:8080");
  char out[SocketAddress::kMaxText];
  Result<std::size_t> written = a.format(out, sizeof out);
  ASSERT_TRUE(written);
  EXPECT_EQ(written.value(), text.size());
  EXPECT_EQ(std::string(out), text);
  EXPECT_EQ(a.format(out, text.size() + 1).value(), text.size()) << "exactly room for the text and the zero";
  EXPECT_EQ(a.format(out, text.size()).error().code(), ENOSPC) << "no room for the zero";
  EXPECT_EQ(a.format(out, 0).error().code(), ENOSPC);
}

TEST(SocketAddress, TheLongestIpFormFitsInMaxText) {
  const uint8_t all_ones[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const SocketAddress a = SocketAddress::ipv6(all_ones, 65535, 4294967295u);
  char out[SocketAddress::kMaxText];
  Result<std::size_t> written = a.format(out, sizeof out);
  ASSERT_TRUE(written);
  EXPECT_EQ(std::string(out), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535");
}

}  // namespace
}  // namespace evflow
