// The HTTP/1.x request head parser of examples/http_server.cpp: plain functions over the
// bytes received so far, with no I/O, so that a test can feed it any text
// (tests/examples/http_request_test.cpp).
//
// It reads a request line and headers (RFC 9112 section 2-5), and what the server needs
// of them: the method, the target, the version, whether the connection stays open, and
// the length of a body to skip. It refuses what it does not understand rather than guess.
#pragma once

#include <charconv>
#include <cstddef>
#include <string_view>

namespace http {

enum class Parse {
  incomplete,  // the head has not all arrived: read more
  complete,    // a request was read; `consumed` bytes of the input are its head
  bad,         // a malformed request: answer 400 and close
};

struct Request {
  std::string_view method;         // "GET", "HEAD", ... (points into the input)
  std::string_view target;         // "/index.html"
  int minor_version = 1;           // HTTP/1.0 or HTTP/1.1
  bool keep_alive = true;          // the connection stays open after the response
  std::size_t content_length = 0;  // the bytes of body that follow the head
  std::size_t consumed = 0;        // the bytes of the head, its blank line included
};

// The longest head accepted: a longer one is refused as bad.
inline constexpr std::size_t kMaxHead = 8192;

namespace detail {

inline bool is_token_char(char c) {
  // RFC 9110 section 5.6.2: letters, digits and !#$%&'*+-.^_`|~
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// "close", "keep-alive", or a list of options such as "keep-alive, Upgrade".
inline bool lists_option(std::string_view value, std::string_view option) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (equals_ignoring_case(trim(value.substr(0, comma)), option)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// METHOD SP target SP HTTP/1.x
inline bool parse_request_line(std::string_view line, Request& request) {
  const std::size_t first_space = line.find(' ');
  if (first_space == std::string_view::npos || first_space == 0) return false;
  const std::size_t second_space = line.find(' ', first_space + 1);
  if (second_space == std::string_view::npos || second_space == first_space + 1) return false;
  request.method = line.substr(0, first_space);
  request.target = line.substr(first_space + 1, second_space - first_space - 1);
  const std::string_view version = line.substr(second_space + 1);
  for (char c : request.method) {
    if (!is_token_char(c)) return false;
  }
  if (request.target.front() != '/' && request.target != "*") return false;
  for (char c : request.target) {
    if (c <= ' ' || c == 0x7f) return false;
  }
  if (version == "HTTP/1.1") {
    request.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    request.minor_version = 0;
  } else {
    return false;
  }
  return true;
}

}  // namespace detail

// Reads one request head from the start of `input`.
inline Parse parse_request(std::string_view input, Request& request) {
  request = Request{};
  // RFC 9112 section 2.2: a server should ignore empty lines before a request line.
  std::size_t start = 0;
  while (input.substr(start, 2) == "\r\n")
    start += 2;
  const std::size_t end = input.find("\r\n\r\n", start);
  if (end == std::string_view::npos) return input.size() - start > kMaxHead ? Parse::bad : Parse::incomplete;
  if (end - start > kMaxHead) return Parse::bad;
  std::string_view head = input.substr(start, end - start + 2);  // each line ends with CRLF
  request.consumed = end + 4;

  const std::size_t line_end = head.find("\r\n");
  if (!detail::parse_request_line(head.substr(0, line_end), request)) return Parse::bad;
  head.remove_prefix(line_end + 2);

  bool close = false, keep_alive = false, has_length = false;
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Parse::bad;
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!detail::is_token_char(c)) return Parse::bad;  // also "Name :" (RFC 9112 section 5.1)
    }
    const std::string_view value = detail::trim(line.substr(colon + 1));
    if (detail::equals_ignoring_case(name, "connection")) {
      close = close || detail::lists_option(value, "close");
      keep_alive = keep_alive || detail::lists_option(value, "keep-alive");
    } else if (detail::equals_ignoring_case(name, "content-length")) {
      std::size_t length = 0;
      const auto [rest, error] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (error != std::errc() || rest != value.data() + value.size() || value.empty()) return Parse::bad;
      if (has_length && length != request.content_length) return Parse::bad;  // section 6.3
      has_length = true;
      request.content_length = length;
    } else if (detail::equals_ignoring_case(name, "transfer-encoding")) {
      return Parse::bad;  // chunked bodies are beyond this example
    }
  }
  // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep it.
  request.keep_alive = request.minor_version == 1 ? !close : (keep_alive && !close);
  return Parse::complete;
}

}  // namespace http
