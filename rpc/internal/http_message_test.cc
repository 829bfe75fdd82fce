#include "rpc/internal/http_message.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

std::string Serialize(HttpResponse response, HttpResponseFraming framing) {
  netpoll::LinkBuffer out;
  SerializeHttpResponse(std::move(response), framing, out);
  return out.ToString();
}

TEST(HttpHeadersTest, FindIgnoresCaseAndReturnsTheFirst) {
  HttpHeaders headers;
  headers.Add("Content-Type", "a");
  headers.Add("content-type", "b");
  ASSERT_NE(headers.Find("CONTENT-TYPE"), nullptr);
  EXPECT_EQ(*headers.Find("CONTENT-TYPE"), "a");
  EXPECT_EQ(headers.Find("content-length"), nullptr);
}

TEST(SerializeHttpResponseTest, WritesStatusHeadersLengthAndConnection) {
  HttpResponse response;
  response.content_type = "text/plain";
  response.headers.Add("X-A", "1");
  response.body = "OK\n";
  EXPECT_EQ(Serialize(std::move(response), {.keep_alive = true}),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nContent-Length: 3\r\n"
            "Connection: keep-alive\r\n\r\nOK\n");
}

TEST(SerializeHttpResponseTest, HeadAnswerHasTheLengthButNoBody) {
  HttpResponse response;
  response.status = 404;
  response.body = "missing";
  EXPECT_EQ(Serialize(std::move(response), {.keep_alive = false, .head_request = true}),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\nConnection: close\r\n\r\n");
}

TEST(SerializeHttpResponseTest, LargeBodyIsKeptWhole) {
  HttpResponse response;
  response.body = std::string(100000, 'z');
  const std::string out = Serialize(std::move(response), {});
  EXPECT_NE(out.find("Content-Length: 100000\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 100000), std::string(100000, 'z'));
}

TEST(HttpReasonPhraseTest, KnownAndUnknown) {
  EXPECT_EQ(HttpReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(HttpReasonPhrase(299), "Unknown");
}

TEST(HttpTokenTest, TokensAndFieldValues) {
  EXPECT_TRUE(IsHttpToken("x-served-by"));
  EXPECT_FALSE(IsHttpToken(""));
  EXPECT_FALSE(IsHttpToken("a b"));
  EXPECT_FALSE(IsHttpToken("a:b"));
  EXPECT_TRUE(IsHttpFieldValue("v\tw x"));
  EXPECT_FALSE(IsHttpFieldValue("v\r\nInjected: 1"));
  EXPECT_FALSE(IsHttpFieldValue(std::string("a\0b", 3)));
}

TEST(HttpStatusForErrorTest, BrpcNumbersDecideWhenPresent) {
  EXPECT_EQ(HttpStatusForError(MakeRpcError(ENOMETHOD, "")), 404);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(ENOSERVICE, "")), 404);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(EREQUEST, "")), 400);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(ERPCAUTH, "")), 401);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(ELIMIT, "")), 503);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(ELOGOFF, "")), 503);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(ERPCTIMEDOUT, "")), 504);
  EXPECT_EQ(HttpStatusForError(MakeRpcError(EINTERNAL, "")), 500);
  // An application's own number: its canonical code (kUnknown) decides.
  EXPECT_EQ(HttpStatusForError(MakeRpcError(4242, "")), 500);
}

TEST(HttpStatusForErrorTest, CanonicalCodesFollowTheGrpcMapping) {
  EXPECT_EQ(HttpStatusForError(absl::InvalidArgumentError("")), 400);
  EXPECT_EQ(HttpStatusForError(absl::UnauthenticatedError("")), 401);
  EXPECT_EQ(HttpStatusForError(absl::PermissionDeniedError("")), 403);
  EXPECT_EQ(HttpStatusForError(absl::NotFoundError("")), 404);
  EXPECT_EQ(HttpStatusForError(absl::AlreadyExistsError("")), 409);
  EXPECT_EQ(HttpStatusForError(absl::ResourceExhaustedError("")), 429);
  EXPECT_EQ(HttpStatusForError(absl::UnimplementedError("")), 501);
  EXPECT_EQ(HttpStatusForError(absl::UnavailableError("")), 503);
  EXPECT_EQ(HttpStatusForError(absl::DeadlineExceededError("")), 504);
  EXPECT_EQ(HttpStatusForError(absl::DataLossError("")), 500);
}

TEST(HttpErrorJsonTest, CarriesCodeNameNumberAndMessage) {
  EXPECT_EQ(HttpErrorJson(absl::NotFoundError("no \"x\"\n")),
            "{\"code\":5,\"status\":\"NOT_FOUND\",\"error_code\":2001,"
            "\"message\":\"no \\\"x\\\"\\n\"}");
  EXPECT_EQ(HttpErrorJson(MakeRpcError(ENOMETHOD, "m")),
            "{\"code\":12,\"status\":\"UNIMPLEMENTED\",\"error_code\":1002,\"message\":\"m\"}");
}

TEST(HttpErrorResponseTest, IsJsonWithTheMappedStatus) {
  HttpResponse r = HttpErrorResponse(MakeRpcError(ERPCAUTH, "who"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, HttpErrorJson(MakeRpcError(ERPCAUTH, "who")) + "\n");
}

}  // namespace
}  // namespace nprpc
