#include "rpc/internal/http_protocol.h"

#include <stdio.h>

#include <any>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/server.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/authenticator.h"
#include "rpc/errors.h"
#include "rpc/internal/http_message.h"
#include "rpc/internal/server_connection.h"
#include "rpc/internal/server_core.h"
#include "rpc/internal/testing/fake_http_pages.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::testing::BlockingClient;

// One parsed answer.
struct Answer {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  std::string Header(absl::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
};

// Reads one answer (Content-Length framed, as the server sends them).
// `head_request`: a HEAD's answer has no body.
absl::StatusOr<Answer> ReadAnswer(BlockingClient& client, bool head_request = false) {
  std::string head;
  while (!absl::EndsWith(head, "\r\n\r\n")) {
    absl::StatusOr<std::string> byte = client.ReadExactly(1);
    if (!byte.ok()) return byte.status();
    head += *byte;
    if (head.size() > 65536) return absl::InternalError("answer head too long");
  }
  Answer answer;
  std::vector<std::string> lines = absl::StrSplit(head.substr(0, head.size() - 4), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || status_line[0] != "HTTP/1.1" ||
      !absl::SimpleAtoi(status_line[1], &answer.status)) {
    return absl::InternalError("bad status line: " + lines[0]);
  }
  size_t length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) return absl::InternalError("bad header: " + lines[i]);
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length" && !absl::SimpleAtoi(value, &length)) {
      return absl::InternalError("bad length");
    }
    answer.headers.emplace_back(std::move(name), std::move(value));
  }
  if (!head_request && length > 0) {
    absl::StatusOr<std::string> body = client.ReadExactly(length);
    if (!body.ok()) return body.status();
    answer.body = std::move(*body);
  }
  return answer;
}

std::string Post(absl::string_view path, absl::string_view body, absl::string_view extra = "") {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: t\r\n", extra,
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

// Calls of test.HttpTestService/Hold, answered when the test says.
class HeldCalls {
 public:
  void Add(EchoResponse* response, Responder done, std::string message) {
    netpoll::MutexLock lock(&mu_);
    held_.push_back({response, std::move(done), std::move(message)});
  }
  size_t size() {
    netpoll::MutexLock lock(&mu_);
    return held_.size();
  }
  // Answers the held call with message `message`.
  void Release(absl::string_view message) {
    netpoll::MutexLock lock(&mu_);
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->message == message) {
        it->response->set_message(it->message);
        it->done.Finish(absl::OkStatus());
        held_.erase(it);
        return;
      }
    }
  }

 private:
  struct Held {
    EchoResponse* response;
    Responder done;
    std::string message;
  };
  netpoll::Mutex mu_;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
};

// test.HttpTestService: Hold (answers when the test releases it) and Whoami
// (what the context says: "<user>|<trace_id>|<timeout_ms>|<protocol>"; the
// trace id only when the request carried a trace, since the server starts a
// new trace for one that did not).
std::unique_ptr<Service> NewTestService(HeldCalls* held) {
  auto service = std::make_unique<Service>("test.HttpTestService");
  EXPECT_TRUE(
      service
          ->AddMethod(
              "Hold",
              MakeMethodHandler(&EchoRequest::default_instance(), &EchoResponse::default_instance(),
                                [held](ServerContext&, const google::protobuf::Message& req,
                                       google::protobuf::Message* resp, Responder done) {
                                  held->Add(static_cast<EchoResponse*>(resp), std::move(done),
                                            static_cast<const EchoRequest&>(req).message());
                                }))
          .ok());
  EXPECT_TRUE(
      service
          ->AddMethod("Whoami",
                      MakeUnaryMethodHandler(
                          &EchoRequest::default_instance(), &EchoResponse::default_instance(),
                          [](ServerContext& ctx, const google::protobuf::Message&,
                             google::protobuf::Message* resp) {
                            static_cast<EchoResponse*>(resp)->set_message(absl::StrCat(
                                ctx.auth_context() != nullptr ? ctx.auth_context()->user : "", "|",
                                ctx.trace().parent_span_id ? ctx.trace().trace_id.value_or(0) : 0,
                                "|", ctx.timeout_ms().value_or(0), "|", ctx.protocol()));
                            return absl::OkStatus();
                          }))
          .ok());
  return service;
}

class TokenAuthenticator : public Authenticator {
 public:
  absl::StatusOr<std::string> GenerateCredential() const override { return "Bearer s3cret"; }
  absl::Status VerifyCredential(absl::string_view credential, const netpoll::SocketAddress&,
                                AuthContext& context) const override {
    if (credential != "Bearer s3cret") return absl::UnauthenticatedError("bad token");
    context.user = "alice";
    return absl::OkStatus();
  }
};

class HttpProtocolTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = ServerOptions()) {
    options.num_io_loops = 1;
    options.num_worker_threads = 2;
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->AddService(NewTestService(&held_)).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  BlockingClient Connect() {
    absl::StatusOr<BlockingClient> client = BlockingClient::Connect(server_->listen_address());
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  // Sends `request` on a new connection and reads one answer.
  Answer Exchange(absl::string_view request) {
    BlockingClient client = Connect();
    EXPECT_TRUE(client.SendAll(request).ok());
    absl::StatusOr<Answer> answer = ReadAnswer(client);
    EXPECT_TRUE(answer.ok()) << answer.status();
    return answer.ok() ? *answer : Answer();
  }

  HeldCalls held_;
  std::unique_ptr<Server> server_;
};

TEST(HttpSniffTest, ClaimsRequestMethodsOnly) {
  const HttpProtocol* http = HttpProtocol::Get();
  auto sniff = [&](absl::string_view bytes) {
    netpoll::LinkBuffer input;
    input.WriteBinary(bytes);
    return http->Sniff(input);
  };
  for (absl::string_view mine :
       {"GET / HTTP/1.1", "POST ", "PUT /", "HEAD /", "DELETE /", "OPTIONS *", "PATCH /x"}) {
    EXPECT_EQ(sniff(mine), SniffResult::kMine) << mine;
  }
  EXPECT_EQ(sniff(""), SniffResult::kNeedMore);
  EXPECT_EQ(sniff("P"), SniffResult::kNeedMore);
  EXPECT_EQ(sniff("OPTIO"), SniffResult::kNeedMore);
  EXPECT_EQ(sniff("PRPC"), SniffResult::kNotMine);
  EXPECT_EQ(sniff("PRI * HTTP/2.0\r\n"), SniffResult::kNotMine);
  EXPECT_EQ(sniff("GETX"), SniffResult::kNotMine);
  EXPECT_EQ(sniff("get / HTTP/1.1"), SniffResult::kNotMine);
}

TEST_F(HttpProtocolTest, JsonCallIsAnsweredWithJson) {
  StartServer();
  Answer a = Exchange(Post("/example.EchoService/Echo", R"({"message":"hi"})",
                           "Content-Type: application/json; charset=utf-8\r\n"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("content-type"), "application/json");
  EXPECT_EQ(a.Header("connection"), "keep-alive");
  EXPECT_EQ(a.body, "{\"message\":\"hi\"}\n");
}

TEST_F(HttpProtocolTest, CurlCallsEchoWithJson) {
  StartServer();
  const std::string command =
      absl::StrCat(R"(/usr/bin/curl -sS -d '{"message":"hi"}' http://127.0.0.1:)",
                   server_->listen_address().port(), "/example.EchoService/Echo 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[256];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  // curl -d sends Content-Type application/x-www-form-urlencoded: taken as JSON.
  EXPECT_EQ(output, "{\"message\":\"hi\"}\n");
}

TEST_F(HttpProtocolTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartServer();
  BlockingClient client = Connect();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        client
            .SendAll(Post("/example.EchoService/Echo", absl::StrCat(R"({"message":"m)", i, "\"}")))
            .ok());
    absl::StatusOr<Answer> a = ReadAnswer(client);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->status, 200);
    EXPECT_EQ(a->body, absl::StrCat(R"({"message":"m)", i, "\"}\n"));
  }
}

TEST_F(HttpProtocolTest, PipelinedAnswersLeaveInRequestOrder) {
  StartServer();
  BlockingClient client = Connect();
  // The first call is held; the second completes at once but must wait.
  ASSERT_TRUE(client
                  .SendAll(Post("/test.HttpTestService/Hold", R"({"message":"first"})") +
                           Post("/example.EchoService/Echo", R"({"message":"second"})") +
                           "GET /nothing HTTP/1.1\r\n\r\n")
                  .ok());
  ASSERT_TRUE(netpoll::testing::WaitFor([&] { return held_.size() == 1; }));
  held_.Release("first");
  absl::StatusOr<Answer> a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->body, "{\"message\":\"first\"}\n");
  a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->body, "{\"message\":\"second\"}\n");
  a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 404);
}

TEST_F(HttpProtocolTest, ChunkedRequestBodyIsJoined) {
  StartServer();
  Answer a = Exchange(
      "POST /example.EchoService/Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n{\"mes\r\n10\r\nsage\":\"chunked\"}\r\n0\r\n\r\n");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "{\"message\":\"chunked\"}\n");
}

TEST_F(HttpProtocolTest, Http10ClosesAfterItsAnswer) {
  StartServer();
  BlockingClient client = Connect();
  ASSERT_TRUE(client
                  .SendAll("POST /example.EchoService/Echo HTTP/1.0\r\nContent-Length: 15\r\n\r\n"
                           "{\"message\":\"x\"}")
                  .ok());
  absl::StatusOr<Answer> a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->Header("connection"), "close");
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
}

TEST_F(HttpProtocolTest, ConnectionCloseClosesAfterTheAnswerAndReadsNoMore) {
  StartServer();
  BlockingClient client = Connect();
  ASSERT_TRUE(client
                  .SendAll(Post("/example.EchoService/Echo", R"({"message":"x"})",
                                "Connection: close\r\n") +
                           Post("/example.EchoService/Echo", R"({"message":"y"})"))
                  .ok());
  absl::StatusOr<Answer> a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->body, "{\"message\":\"x\"}\n");
  absl::StatusOr<std::string> rest = client.ReadUntilEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
}

TEST_F(HttpProtocolTest, ErrorsAreHttpStatusesWithJsonBodies) {
  StartServer();
  Answer a = Exchange(Post("/example.EchoService/Nope", R"({"message":"x"})"));
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.Header("content-type"), "application/json");
  EXPECT_TRUE(absl::StrContains(a.body, "\"error_code\":1002")) << a.body;
  EXPECT_TRUE(absl::StrContains(a.body, "\"status\":\"UNIMPLEMENTED\"")) << a.body;

  a = Exchange(Post("/example.EchoService/Fail", R"({"message":"boom"})"));
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.body,
            "{\"code\":13,\"status\":\"INTERNAL\",\"error_code\":2001,"
            "\"message\":\"deliberate failure: boom\"}\n");

  a = Exchange(Post("/example.EchoService/Fail", R"({"message":"x","code":1004})"));
  EXPECT_EQ(a.status, 401);

  a = Exchange(Post("/example.EchoService/Echo", R"({"message":)"));
  EXPECT_EQ(a.status, 400);
  EXPECT_TRUE(absl::StrContains(a.body, "\"error_code\":1003")) << a.body;

  a = Exchange(Post("/example.EchoService/Echo", R"({"nosuchfield":1})"));
  EXPECT_EQ(a.status, 400) << a.body;

  a = Exchange(Post("/example.EchoService/Echo", "{}"));
  EXPECT_EQ(a.status, 400);  // proto2: message is required
  EXPECT_TRUE(absl::StrContains(a.body, "missing field message")) << a.body;

  a = Exchange(Post("/nomethod", "{}"));
  EXPECT_EQ(a.status, 404);

  a = Exchange(Post("/example.EchoService/Echo", "x=1", "Content-Type: text/plain\r\n"));
  EXPECT_EQ(a.status, 415);

  a = Exchange("DELETE /example.EchoService/Echo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(a.status, 405);
  EXPECT_EQ(a.Header("allow"), "GET, HEAD, POST");

  a = Exchange("GET /no-such-page HTTP/1.1\r\n\r\n");
  EXPECT_EQ(a.status, 404);
}

TEST_F(HttpProtocolTest, GarbageRequestLineIs400AndCloses) {
  StartServer();
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll("GET /\x01\x02 HTTP/1.1\r\n\r\n").ok());
  client.ShutdownWrite();  // the server closes at once instead of lingering
  absl::StatusOr<Answer> a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 400);
  EXPECT_EQ(a->Header("connection"), "close");
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
  EXPECT_GE(server_->Stats().protocol_errors, 1);
}

TEST_F(HttpProtocolTest, OversizedHeadersAre431) {
  ServerOptions options;
  options.max_http_header_size = 4096;
  StartServer(std::move(options));
  BlockingClient client = Connect();
  // 256 KiB of one header, more than the server reads: its answer must not
  // be lost to a reset when it closes (it reads and drops the rest first).
  std::thread sender([&] {
    EXPECT_TRUE(
        client.SendAll(absl::StrCat("GET / HTTP/1.1\r\nX: ", std::string(256 << 10, 'a'))).ok());
  });
  absl::StatusOr<Answer> a = ReadAnswer(client);
  sender.join();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 431);
  EXPECT_EQ(a->Header("connection"), "close");
  // The server closes by itself after its lingering time.
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
}

TEST_F(HttpProtocolTest, OversizedBodyIs413FromContentLength) {
  ServerOptions options;
  options.max_body_size = 1024;
  StartServer(std::move(options));
  BlockingClient client = Connect();
  ASSERT_TRUE(client
                  .SendAll("POST /example.EchoService/Echo HTTP/1.1\r\n"
                           "Content-Length: 1000000\r\n\r\n")
                  .ok());
  absl::StatusOr<Answer> a = ReadAnswer(client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 413);
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
}

TEST_F(HttpProtocolTest, HeadersBecomeUserFieldsAndComeBack) {
  StartServer();
  Answer a = Exchange(
      Post("/example.EchoService/Echo", R"({"message":"x"})", "X-Tenant: t1\r\nX-Tenant: t2\r\n"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("x-tenant"), "t1, t2");  // Echo copies request fields to response fields
  EXPECT_EQ(a.Header("host"), "t");
}

TEST_F(HttpProtocolTest, TraceparentAndTimeoutReachTheContext) {
  StartServer();
  Answer a =
      Exchange(Post("/test.HttpTestService/Whoami", R"({"message":"w"})",
                    "traceparent: 00-0000000000000000000000000000002a-0000000000000007-01\r\n"
                    "X-Timeout-Ms: 5000\r\n"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "{\"message\":\"|42|5000|http\"}\n");
}

TEST_F(HttpProtocolTest, TimeoutHeaderAnswers504WhenTheHandlerIsLate) {
  StartServer();
  Answer a =
      Exchange(Post("/test.HttpTestService/Hold", R"({"message":"late"})", "X-Timeout-Ms: 50\r\n"));
  EXPECT_EQ(a.status, 504);
  EXPECT_TRUE(absl::StrContains(a.body, "\"error_code\":1008")) << a.body;
  held_.Release("late");
}

TEST_F(HttpProtocolTest, BadTimeoutHeaderIs400) {
  StartServer();
  Answer a =
      Exchange(Post("/example.EchoService/Echo", R"({"message":"x"})", "X-Timeout-Ms: soon\r\n"));
  EXPECT_EQ(a.status, 400);
}

TEST_F(HttpProtocolTest, BinaryProtobufBothWays) {
  StartServer();
  EchoRequest request;
  request.set_message("bin");
  Answer a = Exchange(Post("/example.EchoService/Echo", request.SerializeAsString(),
                           "Content-Type: application/x-protobuf\r\n"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("content-type"), "application/x-protobuf");
  EchoResponse response;
  ASSERT_TRUE(response.ParseFromString(a.body));
  EXPECT_EQ(response.message(), "bin");
}

TEST_F(HttpProtocolTest, AuthenticatorChecksTheFirstRequestOfAConnection) {
  ServerOptions options;
  options.authenticator = std::make_shared<TokenAuthenticator>();
  StartServer(std::move(options));
  {
    BlockingClient client = Connect();
    ASSERT_TRUE(client.SendAll(Post("/test.HttpTestService/Whoami", R"({"message":"w"})")).ok());
    absl::StatusOr<Answer> a = ReadAnswer(client);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->status, 401);
    EXPECT_TRUE(absl::StrContains(a->body, "\"error_code\":1004")) << a->body;
    EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
  }
  BlockingClient client = Connect();
  ASSERT_TRUE(client
                  .SendAll(Post("/test.HttpTestService/Whoami", R"({"message":"w"})",
                                "Authorization: Bearer s3cret\r\n") +
                           Post("/test.HttpTestService/Whoami", R"({"message":"w"})"))
                  .ok());
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Answer> a = ReadAnswer(client);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->status, 200);
    EXPECT_EQ(a->body, "{\"message\":\"alice|0|0|http\"}\n");
  }
}

TEST_F(HttpProtocolTest, BaiduStdAndHttpShareThePort) {
  StartServer();
  // Raw baidu_std bytes on one connection, HTTP on another.
  BlockingClient baidu = Connect();
  ASSERT_TRUE(baidu.SendAll("PRPC").ok());
  Answer a = Exchange(Post("/example.EchoService/Echo", R"({"message":"x"})"));
  EXPECT_EQ(a.status, 200);
}

TEST_F(HttpProtocolTest, ServeHttpOffLeavesHttpUnclaimed) {
  ServerOptions options;
  options.serve_http = false;
  StartServer(std::move(options));
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll("GET / HTTP/1.1\r\n\r\n").ok());
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
}

// The pages route needs ServerCore::set_http_pages, which Server does not
// expose: this fixture serves a ServerCore over a bare netpoll::Server, the
// way rpc/server.cc does (handlers on the loop, so no worker pool).
class HttpPagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.handler_threads = ServerOptions::HandlerThreads::kIoLoop;
    core_ = std::make_shared<ServerCore>(options);
    core_->AddProtocol(HttpProtocol::Get());
    ASSERT_TRUE(core_->AddService(echo_.get()).ok());
    pages_ = std::make_shared<testing::FakeHttpPages>();
    pages_->Add("/health",
                {.status = 200, .content_type = "text/plain", .headers = {}, .body = "OK\n"});
    core_->set_http_pages(pages_);
    netpoll::ServerOptions transport;
    transport.num_loops = 1;
    std::shared_ptr<ServerCore> core = core_;
    transport.callbacks->on_prepare = [core](netpoll::Connection&) -> absl::StatusOr<std::any> {
      return std::any(std::make_shared<ServerConnection>(core));
    };
    transport.callbacks->on_request = [](const netpoll::ConnectionPtr& conn,
                                         netpoll::LinkBuffer& input) {
      ServerConnection::Of(*conn).OnInput(conn, input);
    };
    transport.callbacks->on_peer_closed = [](const netpoll::ConnectionPtr& conn) {
      ServerConnection::Of(*conn).OnPeerClosed(conn);
    };
    transport.callbacks->on_disconnect = [](const netpoll::ConnectionPtr& conn,
                                            const absl::Status&) {
      ServerConnection::Of(*conn).OnClosed(conn);
    };
    absl::StatusOr<std::unique_ptr<netpoll::Server>> server = netpoll::Server::Create(transport);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start(*netpoll::SocketAddress::Parse("127.0.0.1:0")).ok());
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  std::unique_ptr<Service> echo_ = testing::NewEchoService();
  std::shared_ptr<ServerCore> core_;
  std::shared_ptr<testing::FakeHttpPages> pages_;
  std::unique_ptr<netpoll::Server> server_;
};

TEST_F(HttpPagesTest, GetAndHeadAreRoutedToThePages) {
  absl::StatusOr<BlockingClient> client = BlockingClient::Connect(server_->listen_address());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client
                  ->SendAll("GET /health?verbose=1 HTTP/1.1\r\n\r\nHEAD /health HTTP/1.1\r\n\r\n"
                            "GET /nope HTTP/1.1\r\n\r\n" +
                            Post("/example.EchoService/Echo", R"({"message":"x"})"))
                  .ok());
  absl::StatusOr<Answer> a = ReadAnswer(*client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->Header("content-type"), "text/plain");
  EXPECT_EQ(a->body, "OK\n");
  a = ReadAnswer(*client, /*head_request=*/true);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->Header("content-length"), "3");
  EXPECT_EQ(a->body, "");
  a = ReadAnswer(*client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 404);
  EXPECT_TRUE(absl::StrContains(a->body, "no page /nope")) << a->body;
  a = ReadAnswer(*client);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, 200);  // calls still work beside the pages
  EXPECT_EQ(pages_->served(), 2);
}

}  // namespace
}  // namespace nprpc
