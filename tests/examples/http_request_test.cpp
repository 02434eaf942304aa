#include "examples/http_request.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

using http::Parse;
using http::Request;

TEST(HttpRequest, AGetRequestGivesItsMethodTargetAndTheLengthOfItsHead) {
  const std::string_view text = "GET /index.html HTTP/1.1\r\nHost: example\r\n\r\nGET /next";
  Request r;
  ASSERT_EQ(http::parse_request(text, r), Parse::complete);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/index.html");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.content_length, 0u);
  EXPECT_EQ(text.substr(r.consumed), "GET /next") << "the next pipelined request starts there";
}

TEST(HttpRequest, AHeadThatHasNotAllArrivedIsIncomplete) {
  Request r;
  const std::string full = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(http::parse_request(std::string_view(full).substr(0, n), r), Parse::incomplete) << n;
  }
  EXPECT_EQ(http::parse_request(full, r), Parse::complete);
}

TEST(HttpRequest, PipelinedRequestsAreReadOneAfterTheOtherInOrder) {
  std::string_view text = "GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
  std::string seen;
  Request r;
  while (http::parse_request(text, r) == Parse::complete) {
    seen += std::string(r.method) + " " + std::string(r.target) + ";";
    text.remove_prefix(r.consumed);
  }
  EXPECT_EQ(seen, "GET /a;HEAD /b;GET /c;");
  EXPECT_TRUE(text.empty());
}

TEST(HttpRequest, ConnectionCloseAndHttp10DecideWhetherTheConnectionStays) {
  Request r;
  ASSERT_EQ(http::parse_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", r), Parse::complete);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(http::parse_request("GET / HTTP/1.1\r\nconnection:  Upgrade, CLOSE \r\n\r\n", r), Parse::complete);
  EXPECT_FALSE(r.keep_alive) << "names and options in any case, in a list";
  ASSERT_EQ(http::parse_request("GET / HTTP/1.0\r\n\r\n", r), Parse::complete);
  EXPECT_FALSE(r.keep_alive) << "HTTP/1.0 closes unless asked to keep the connection";
  EXPECT_EQ(r.minor_version, 0);
  ASSERT_EQ(http::parse_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r), Parse::complete);
  EXPECT_TRUE(r.keep_alive);
}

TEST(HttpRequest, ContentLengthGivesTheBodyToSkip) {
  Request r;
  ASSERT_EQ(http::parse_request("POST /form HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", r), Parse::complete);
  EXPECT_EQ(r.content_length, 11u);
  EXPECT_EQ(http::parse_request("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", r), Parse::bad);
  EXPECT_EQ(http::parse_request("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", r), Parse::bad);
  EXPECT_EQ(http::parse_request("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", r), Parse::bad);
  EXPECT_EQ(http::parse_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", r), Parse::bad);
}

TEST(HttpRequest, EmptyLinesBeforeTheRequestLineAreIgnored) {
  Request r;
  ASSERT_EQ(http::parse_request("\r\n\r\nGET / HTTP/1.1\r\n\r\n", r), Parse::complete);
  EXPECT_EQ(r.target, "/");
}

TEST(HttpRequest, AMalformedRequestLineOrHeaderIsBad) {
  for (std::string_view text : {
           "GARBAGE\r\n\r\n",
           "GET /\r\n\r\n",
           "GET  / HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1 extra\r\n\r\n",
           "GET / HTTP/2.0\r\n\r\n",
           "GET / http/1.1\r\n\r\n",
           "GET index.html HTTP/1.1\r\n\r\n",
           "G(T / HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
           "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
           "GET / HTTP/1.1\r\n folded: line\r\n\r\n",
       }) {
    Request r;
    EXPECT_EQ(http::parse_request(text, r), Parse::bad) << text;
  }
}

TEST(HttpRequest, AHeadLongerThanTheLimitIsBadEvenBeforeItEnds) {
  Request r;
  const std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(http::kMaxHead, 'a');
  EXPECT_EQ(http::parse_request(endless, r), Parse::bad);
  EXPECT_EQ(http::parse_request(endless + "\r\n\r\n", r), Parse::bad);
}

}  // namespace
