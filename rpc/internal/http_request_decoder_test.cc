#include "rpc/internal/http_request_decoder.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/http_message.h"

namespace nprpc {
namespace {

class HttpRequestDecoderTest : public ::testing::Test {
 protected:
  // Appends `bytes` to the input and decodes what is whole.
  std::vector<HttpRequest> Feed(absl::string_view bytes) {
    input_.WriteBinary(bytes);
    std::vector<HttpRequest> requests;
    for (;;) {
      HttpDecodeResult r = decoder_.Decode(input_);
      if (r.need_more()) break;
      if (r.is_error()) {
        error_ = r.http_status();
        error_text_ = std::string(r.status().message());
        break;
      }
      requests.push_back(r.TakeRequest());
    }
    return requests;
  }

  HttpRequestDecoderOptions options_{.max_header_bytes = 1024, .max_body_bytes = 100};
  HttpRequestDecoder decoder_{options_};
  netpoll::LinkBuffer input_;
  int error_ = 0;
  std::string error_text_;
};

TEST_F(HttpRequestDecoderTest, DecodesAGetRequest) {
  std::vector<HttpRequest> r =
      Feed("GET /status?x=1&y=2 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].method, "GET");
  EXPECT_EQ(r[0].target, "/status?x=1&y=2");
  EXPECT_EQ(r[0].path, "/status");
  EXPECT_EQ(r[0].query, "x=1&y=2");
  EXPECT_EQ(r[0].version_major, 1);
  EXPECT_EQ(r[0].version_minor, 1);
  EXPECT_TRUE(r[0].keep_alive);
  ASSERT_NE(r[0].headers.Find("x-thing"), nullptr);
  EXPECT_EQ(*r[0].headers.Find("X-THING"), "v");
  EXPECT_EQ(r[0].headers.Find("absent"), nullptr);
  EXPECT_TRUE(input_.empty());
  EXPECT_EQ(error_, 0);
}

TEST_F(HttpRequestDecoderTest, PartialRequestStaysInTheInput) {
  EXPECT_TRUE(Feed("POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").empty());
  EXPECT_EQ(input_.Len(), decoder_.pending_bytes());
  EXPECT_GT(decoder_.held_bytes(), 0u);
  std::vector<HttpRequest> r = Feed("cde");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].body, "abcde");
  EXPECT_TRUE(input_.empty());
  EXPECT_EQ(decoder_.pending_bytes(), 0u);
}

TEST_F(HttpRequestDecoderTest, PipelinedRequestsComeOutOneByOneInOrder) {
  std::string bytes;
  for (int i = 0; i < 5; ++i) {
    absl::StrAppend(&bytes, "POST /p", i, " HTTP/1.1\r\nContent-Length: 1\r\n\r\n", i);
  }
  std::vector<HttpRequest> r = Feed(bytes + "GET /partial HTT");
  ASSERT_EQ(r.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r[i].path, absl::StrCat("/p", i));
    EXPECT_EQ(r[i].body, absl::StrCat(i));
  }
  EXPECT_EQ(input_.ToString(), "GET /partial HTT");
}

TEST_F(HttpRequestDecoderTest, ByteByByteGivesTheSameRequests) {
  const std::string bytes =
      "\r\nPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n"
      "Trailer: t\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
  std::vector<HttpRequest> all;
  for (char c : bytes) {
    for (HttpRequest& r : Feed(std::string(1, c))) all.push_back(std::move(r));
  }
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].body, "abcde");
  EXPECT_EQ(all[0].headers.Find("trailer"), nullptr);
  EXPECT_EQ(all[1].path, "/y");
  EXPECT_TRUE(input_.empty());
}

TEST_F(HttpRequestDecoderTest, Http10WithoutKeepAliveClosesAndLaterBytesAreAnError) {
  std::vector<HttpRequest> r = Feed("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].keep_alive);
  EXPECT_EQ(r[0].version_minor, 0);
  EXPECT_TRUE(Feed("GET / HTTP/1.1\r\n\r\n").empty());
  EXPECT_EQ(error_, 400);
}

TEST_F(HttpRequestDecoderTest, KeepAliveFollowsConnectionHeader) {
  std::vector<HttpRequest> r = Feed(
      "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nConnection: "
      "close\r\n\r\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].keep_alive);
  EXPECT_FALSE(r[1].keep_alive);
}

TEST_F(HttpRequestDecoderTest, GarbageRequestLineIs400) {
  EXPECT_TRUE(Feed("GET /\x01 junk\r\n\r\n").empty());
  EXPECT_EQ(error_, 400);
  EXPECT_NE(error_text_.find("malformed request"), std::string::npos) << error_text_;
}

TEST_F(HttpRequestDecoderTest, ErrorIsFinalAndConsumesNothing) {
  Feed("BLAH / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(error_, 400);
  const size_t left = input_.Len();
  HttpDecodeResult again = decoder_.Decode(input_);
  EXPECT_TRUE(again.is_error());
  EXPECT_EQ(again.http_status(), 400);
  EXPECT_EQ(input_.Len(), left);
}

TEST_F(HttpRequestDecoderTest, OversizedHeadersAre431BeforeTheirEnd) {
  EXPECT_TRUE(Feed(absl::StrCat("GET / HTTP/1.1\r\nX: ", std::string(2000, 'a'))).empty());
  EXPECT_EQ(error_, 431);
}

TEST_F(HttpRequestDecoderTest, HeadersAtTheLimitAreAccepted) {
  std::string head = "GET / HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  head += std::string(options_.max_header_bytes - head.size() - end.size(), 'a') + end;
  ASSERT_EQ(head.size(), options_.max_header_bytes);
  EXPECT_EQ(Feed(head).size(), 1u);
  EXPECT_EQ(error_, 0);
}

TEST_F(HttpRequestDecoderTest, OversizedContentLengthIs413FromTheHeader) {
  EXPECT_TRUE(Feed("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n").empty());
  EXPECT_EQ(error_, 413);
}

TEST_F(HttpRequestDecoderTest, OversizedChunkedBodyIs413WhileItGrows) {
  EXPECT_TRUE(Feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "40\r\n" +
                   std::string(64, 'a') + "\r\n40\r\n" + std::string(64, 'b'))
                  .empty());
  EXPECT_EQ(error_, 413);
}

TEST_F(HttpRequestDecoderTest, ChunkFramingBeyondTheRequestLimitIs413) {
  // A body within the limit, in chunks whose framing outweighs it.
  std::string bytes = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 90; ++i)
    bytes += "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n";
  EXPECT_TRUE(Feed(bytes).empty());
  EXPECT_EQ(error_, 413);
  EXPECT_LE(decoder_.pending_bytes(), decoder_.max_request_bytes());
}

TEST_F(HttpRequestDecoderTest, ContentLengthWithChunkedIs400) {
  EXPECT_TRUE(
      Feed("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").empty());
  EXPECT_EQ(error_, 400);
}

TEST_F(HttpRequestDecoderTest, Http2VersionIs505) {
  EXPECT_TRUE(Feed("GET / HTTP/2.0\r\n\r\n").empty());
  EXPECT_EQ(error_, 505);
}

TEST_F(HttpRequestDecoderTest, AbsoluteFormTargetGivesPath) {
  std::vector<HttpRequest> r = Feed("GET http://h:80/a/b?q HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].path, "/a/b");
  EXPECT_EQ(r[0].query, "q");
}

TEST_F(HttpRequestDecoderTest, UpgradeRequestIsAnOrdinaryRequest) {
  std::vector<HttpRequest> r =
      Feed("GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].path, "/b");
}

}  // namespace
}  // namespace nprpc
