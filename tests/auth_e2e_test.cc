// Authentication end to end (rpc/authenticator.h): the server verifies each
// connection's first request and refuses with ERPCAUTH then closes; the
// client presents its credential on the first request of every new
// connection. The server half is also driven with the exact bytes of a brpc
// 1.17 client configured with an authenticator (tests/data/baidu_std/auth_*).
#include <atomic>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/authenticator.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::testing::BlockingClient;
using netpoll::testing::WaitFor;

// The credential of the brpc captures (auth_accepted, auth_two_calls).
constexpr absl::string_view kBrpcCredential = "nprpc-test-credential";

// Accepts one token; counts verifications. As a client, presents `token`, or
// fails to make one when `token` is empty.
class TokenAuthenticator final : public Authenticator {
 public:
  explicit TokenAuthenticator(std::string accepted, std::string token = "")
      : accepted_(std::move(accepted)), token_(std::move(token)) {}

  absl::StatusOr<std::string> GenerateCredential() const override {
    generated_.fetch_add(1);
    if (token_.empty()) return absl::UnavailableError("token service down");
    return token_;
  }
  absl::Status VerifyCredential(absl::string_view credential, const netpoll::SocketAddress& peer,
                                AuthContext& context) const override {
    verified_.fetch_add(1);
    if (credential != accepted_) return absl::UnauthenticatedError("bad token");
    context.user = "batch-jobs";
    context.group = peer.ToString();
    return absl::OkStatus();
  }

  int generated() const { return generated_.load(); }
  int verified() const { return verified_.load(); }

 private:
  const std::string accepted_;
  const std::string token_;
  mutable std::atomic<int> generated_{0};
  mutable std::atomic<int> verified_{0};
};

std::string ReadVector(absl::string_view name, absl::string_view file) {
  const std::string path = absl::StrCat("tests/data/baidu_std/", name, "/", file);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// One request frame of Echo or of test.AuthService/<method>.
std::string EncodeCall(const std::string& service, const std::string& method, int64_t id,
                       std::optional<std::string> credential) {
  EchoRequest request;
  request.set_message("hello");
  netpoll::LinkBuffer payload;
  EXPECT_TRUE(SerializeToLinkBuffer(request, payload).ok());
  RequestHeader header{.service_name = service, .method_name = method, .correlation_id = id};
  header.authentication_data = std::move(credential);
  netpoll::LinkBuffer out;
  EXPECT_TRUE(EncodeRequest(header, std::move(payload), {}, out).ok());
  return out.ToString();
}

struct Reply {
  bool ok = false;  // a whole frame was read
  std::string bytes;
  DecodedFrame frame;
};

Reply ReadReply(BlockingClient& client) {
  Reply reply;
  absl::StatusOr<std::string> header = client.ReadExactly(kBaiduStdHeaderSize);
  if (!header.ok()) return reply;
  const auto* h = reinterpret_cast<const unsigned char*>(header->data());
  uint32_t body = (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7];
  absl::StatusOr<std::string> rest = client.ReadExactly(body);
  if (!rest.ok()) return reply;
  reply.bytes = *header + *rest;
  netpoll::LinkBuffer in;
  in.WriteString(reply.bytes);
  DecodeResult r = FrameDecoder().Decode(in);
  EXPECT_TRUE(r.has_frame()) << r.status();
  reply.ok = r.has_frame();
  if (reply.ok) reply.frame = r.TakeFrame();
  return reply;
}

// What test.AuthService/Record saw of one call.
struct Seen {
  std::string peer;                 // the connection (client address)
  std::string authentication_data;  // as carried by the request meta
  std::string user;                 // auth_context()->user, "<none>" when null
};

class AuthTest : public ::testing::Test {
 protected:
  ~AuthTest() override {
    channel_.reset();
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

  void StartServer(std::shared_ptr<const Authenticator> authenticator,
                   absl::Duration idle_timeout = absl::InfiniteDuration()) {
    ServerOptions options;
    options.authenticator = std::move(authenticator);
    options.idle_timeout = idle_timeout;
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->AddService(MakeAuthService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }

  void MakeChannel(std::shared_ptr<const Authenticator> authenticator,
                   ConnectionType type = ConnectionType::kSingle) {
    ChannelOptions options;
    options.authenticator = std::move(authenticator);
    options.connection_type = type;
    auto channel = Channel::Create(server_->listen_address().ToString(), options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = std::move(*channel);
  }

  BlockingClient Connect() {
    absl::StatusOr<BlockingClient> client = BlockingClient::Connect(server_->listen_address());
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  absl::Status Record() {
    EchoRequest request;
    request.set_message("hello");
    EchoResponse response;
    return channel_->CallMethod("test.AuthService", "Record", request, &response);
  }

  std::vector<Seen> seen() {
    netpoll::MutexLock lock(&mu_);
    return seen_;
  }

  // test.AuthService: Record notes what it saw of the call; Count counts.
  std::unique_ptr<Service> MakeAuthService() {
    auto service = std::make_unique<Service>("test.AuthService");
    const auto* req = &EchoRequest::default_instance();
    const auto* resp = &EchoResponse::default_instance();
    EXPECT_TRUE(service
                    ->AddMethod("Record",
                                MakeUnaryMethodHandler(
                                    req, resp,
                                    [this](ServerContext& ctx, const auto&, auto* rs) {
                                      Seen seen{
                                          ctx.peer_address().ToString(), ctx.authentication_data(),
                                          ctx.auth_context() != nullptr ? ctx.auth_context()->user
                                                                        : "<none>"};
                                      static_cast<EchoResponse*>(rs)->set_message(seen.user);
                                      netpoll::MutexLock lock(&mu_);
                                      seen_.push_back(std::move(seen));
                                      return absl::OkStatus();
                                    }))
                    .ok());
    EXPECT_TRUE(service
                    ->AddMethod("Count", MakeUnaryMethodHandler(
                                             req, resp,
                                             [this](ServerContext&, const auto&, auto* rs) {
                                               ++counted_;
                                               static_cast<EchoResponse*>(rs)->set_message("n");
                                               return absl::OkStatus();
                                             }))
                    .ok());
    return service;
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  std::atomic<int> counted_{0};
  netpoll::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------------ server, brpc's bytes

// A brpc client with an authenticator, replayed: our server accepts its
// credential and answers exactly what the brpc server answered.
TEST_F(AuthTest, BrpcClientsCredentialIsAcceptedWithBrpcsAnswer) {
  auto auth = std::make_shared<TokenAuthenticator>(std::string(kBrpcCredential));
  StartServer(auth);
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll(ReadVector("auth_accepted", "request.bin")).ok());
  Reply reply = ReadReply(client);
  ASSERT_TRUE(reply.ok);
  EXPECT_TRUE(reply.bytes == ReadVector("auth_accepted", "response.bin"));
  EXPECT_EQ(auth->verified(), 1);
  EXPECT_EQ(server_->Stats().auth_failures, 0);
}

// brpc sends the credential on a connection's first request only; the
// second goes without and is not verified again.
TEST_F(AuthTest, BrpcClientsSecondCallOnTheConnectionIsNotVerifiedAgain) {
  auto auth = std::make_shared<TokenAuthenticator>(std::string(kBrpcCredential));
  StartServer(auth);
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll(ReadVector("auth_two_calls", "request.bin")).ok());
  Reply first = ReadReply(client);
  Reply second = ReadReply(client);
  ASSERT_TRUE(first.ok && second.ok);
  EXPECT_TRUE(first.bytes + second.bytes == ReadVector("auth_two_calls", "response.bin"));
  EXPECT_EQ(auth->verified(), 1);
}

// The refused brpc request gets what the brpc server answered (ERPCAUTH,
// its correlation_id) with our error_text, then the connection closes.
TEST_F(AuthTest, BrpcClientsWrongCredentialIsAnsweredErpcauthThenClosed) {
  StartServer(std::make_shared<TokenAuthenticator>(std::string(kBrpcCredential)));
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll(ReadVector("auth_refused", "request.bin")).ok());
  Reply reply = ReadReply(client);
  ASSERT_TRUE(reply.ok);
  netpoll::LinkBuffer brpc_bytes;
  brpc_bytes.WriteString(ReadVector("auth_refused", "response.bin"));
  DecodeResult brpc = FrameDecoder().Decode(brpc_bytes);
  ASSERT_TRUE(brpc.has_frame());
  EXPECT_EQ(reply.frame.meta.correlation_id(), brpc.frame().meta.correlation_id());
  EXPECT_EQ(reply.frame.meta.response().error_code(), ERPCAUTH);
  EXPECT_EQ(brpc.frame().meta.response().error_code(), ERPCAUTH);
  EXPECT_EQ(reply.frame.meta.response().error_text(),
            absl::StrCat("[", server_->listen_address().ToString(),
                         "][E1004]Fail to authenticate: bad token"));
  EXPECT_TRUE(reply.frame.payload.empty());
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
  EXPECT_EQ(server_->Stats().auth_failures, 1);
}

// ------------------------------------------------------------------ server, refusals

TEST_F(AuthTest, FirstRequestWithoutCredentialIsRefused) {
  StartServer(std::make_shared<TokenAuthenticator>("s3cret"));
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll(EncodeCall("test.AuthService", "Count", 5, std::nullopt)).ok());
  Reply reply = ReadReply(client);
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.frame.meta.correlation_id(), 5);
  EXPECT_EQ(reply.frame.meta.response().error_code(), ERPCAUTH);
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(10)));
  EXPECT_EQ(counted_.load(), 0);
}

// Calls pipelined behind a refused first request never reach a handler and
// get no answer; other connections are unaffected.
TEST_F(AuthTest, CallsPipelinedBehindARefusedRequestNeverRun) {
  auto auth = std::make_shared<TokenAuthenticator>("s3cret");
  StartServer(auth);
  BlockingClient good = Connect();
  ASSERT_TRUE(good.SendAll(EncodeCall("test.AuthService", "Count", 1, "s3cret")).ok());
  ASSERT_TRUE(ReadReply(good).ok);
  ASSERT_EQ(counted_.load(), 1);

  BlockingClient bad = Connect();
  std::string burst = EncodeCall("test.AuthService", "Count", 1, "wrong");
  for (int64_t id = 2; id <= 20; ++id) {
    absl::StrAppend(&burst, EncodeCall("test.AuthService", "Count", id, "s3cret"));
  }
  ASSERT_TRUE(bad.SendAll(burst).ok());
  Reply refused = ReadReply(bad);
  ASSERT_TRUE(refused.ok);
  EXPECT_EQ(refused.frame.meta.response().error_code(), ERPCAUTH);
  absl::StatusOr<std::string> rest = bad.ReadUntilEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->size(), 0u);  // nothing answered after the refusal

  ASSERT_TRUE(good.SendAll(EncodeCall("test.AuthService", "Count", 2, std::nullopt)).ok());
  Reply again = ReadReply(good);
  ASSERT_TRUE(again.ok);
  EXPECT_EQ(again.frame.meta.response().error_code(), 0);
  EXPECT_EQ(counted_.load(), 2);
  EXPECT_EQ(auth->verified(), 2);
  EXPECT_EQ(server_->Stats().auth_failures, 1);
}

// As brpc: only the connection's first request is verified; a later one's
// authentication_data is not looked at (the handler still sees it).
TEST_F(AuthTest, LaterRequestsOfAnAcceptedConnectionAreNotVerified) {
  auto auth = std::make_shared<TokenAuthenticator>("s3cret");
  StartServer(auth);
  BlockingClient client = Connect();
  ASSERT_TRUE(client
                  .SendAll(EncodeCall("test.AuthService", "Record", 1, "s3cret") +
                           EncodeCall("test.AuthService", "Record", 2, "wrong"))
                  .ok());
  Reply first = ReadReply(client);
  Reply second = ReadReply(client);
  ASSERT_TRUE(first.ok && second.ok);
  EXPECT_EQ(first.frame.meta.response().error_code(), 0);
  EXPECT_EQ(second.frame.meta.response().error_code(), 0);
  EXPECT_EQ(auth->verified(), 1);
  std::vector<Seen> calls = seen();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].authentication_data, "wrong");
  EXPECT_EQ(calls[1].user, "batch-jobs");
}

TEST_F(AuthTest, WithoutAnAuthenticatorTheHandlerSeesNoAuthContext) {
  StartServer(nullptr);
  MakeChannel(std::make_shared<TokenAuthenticator>("s3cret", "s3cret"));
  ASSERT_TRUE(Record().ok());
  std::vector<Seen> calls = seen();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].user, "<none>");
  EXPECT_EQ(calls[0].authentication_data, "s3cret");
}

// ------------------------------------------------------------------ client

class AuthConnectionTypeTest : public AuthTest,
                               public ::testing::WithParamInterface<ConnectionType> {};

INSTANTIATE_TEST_SUITE_P(Types, AuthConnectionTypeTest,
                         ::testing::Values(ConnectionType::kSingle, ConnectionType::kPooled,
                                           ConnectionType::kShort));

// Sequential calls: single and pooled reuse one connection (the credential
// goes on its first request only); short dials per call (every request).
// Every call's handler sees the AuthContext the verifier filled.
TEST_P(AuthConnectionTypeTest, CredentialGoesOnTheFirstRequestOfEachConnection) {
  auto server_auth = std::make_shared<TokenAuthenticator>("s3cret");
  StartServer(server_auth);
  auto client_auth = std::make_shared<TokenAuthenticator>("", "s3cret");
  MakeChannel(client_auth, GetParam());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Record().ok());
  std::vector<Seen> calls = seen();
  ASSERT_EQ(calls.size(), 4u);
  std::set<std::string> connections;
  for (const Seen& call : calls) {
    const bool first = connections.insert(call.peer).second;
    EXPECT_EQ(call.authentication_data, first ? "s3cret" : "") << call.peer;
    EXPECT_EQ(call.user, "batch-jobs");
  }
  const size_t expected = GetParam() == ConnectionType::kShort ? 4 : 1;
  EXPECT_EQ(connections.size(), expected);
  EXPECT_EQ(server_auth->verified(), static_cast<int>(expected));
  EXPECT_EQ(client_auth->generated(), static_cast<int>(expected));
}

// A credential that cannot be made fails the call with ERPCAUTH, unretried,
// and the server receives nothing.
TEST_P(AuthConnectionTypeTest, CredentialThatCannotBeMadeFailsWithErpcauthAndSendsNothing) {
  auto server_auth = std::make_shared<TokenAuthenticator>("s3cret");
  StartServer(server_auth);
  MakeChannel(std::make_shared<TokenAuthenticator>("", ""), GetParam());
  absl::Status status = Record();
  EXPECT_EQ(ErrorCodeOf(status), ERPCAUTH) << status;
  EXPECT_EQ(status.message(), "Fail to generate credential: token service down");
  EXPECT_EQ(channel_->attempts(), 1);
  EXPECT_EQ(server_auth->verified(), 0);
  EXPECT_EQ(server_->Stats().total.received, 0);
}

// The server's refusal reaches every call waiting on the connection as
// ERPCAUTH, and none is retried.
TEST_P(AuthConnectionTypeTest, RefusedCredentialFailsEveryWaitingCallWithErpcauth) {
  StartServer(std::make_shared<TokenAuthenticator>("s3cret"));
  MakeChannel(std::make_shared<TokenAuthenticator>("", "wrong"), GetParam());
  absl::Status alone = Record();
  EXPECT_EQ(ErrorCodeOf(alone), ERPCAUTH) << alone;
  EXPECT_EQ(channel_->attempts(), 1);  // not retried
  constexpr int kCalls = 8;
  std::vector<absl::Status> results(kCalls);
  std::vector<EchoResponse> responses(kCalls);
  std::atomic<int> done{0};
  EchoRequest request;
  request.set_message("hello");
  for (int i = 0; i < kCalls; ++i) {
    channel_->CallMethod("test.AuthService", "Count", request, &responses[i], CallOptions(),
                         [&results, &done, i](absl::Status s) {
                           results[i] = std::move(s);
                           done.fetch_add(1);
                         });
  }
  ASSERT_TRUE(WaitFor([&] { return done.load() == kCalls; }));
  for (const absl::Status& s : results) {
    EXPECT_EQ(ErrorCodeOf(s), ERPCAUTH) << s;
    EXPECT_NE(s.message().find("Fail to authenticate: bad token"), std::string::npos) << s;
  }
  EXPECT_EQ(counted_.load(), 0);
  EXPECT_GE(server_->Stats().auth_failures, 1);
}

// A single connection that closed is redialed with a new credential.
TEST_F(AuthTest, ReconnectedSingleConnectionPresentsTheCredentialAgain) {
  // The server closes idle connections, so that the next call redials.
  StartServer(std::make_shared<TokenAuthenticator>("s3cret"), absl::Milliseconds(100));
  auto client_auth = std::make_shared<TokenAuthenticator>("", "s3cret");
  MakeChannel(client_auth);
  ASSERT_TRUE(Record().ok());
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().connections == 0; }));
  // A call racing the client's view of the close is retried (unanswered).
  ASSERT_TRUE(Record().ok());
  std::vector<Seen> calls = seen();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_NE(calls[0].peer, calls[1].peer);
  EXPECT_EQ(calls[0].authentication_data, "s3cret");
  EXPECT_EQ(calls[1].authentication_data, "s3cret");
  EXPECT_EQ(client_auth->generated(), 2);
}

// Calls issued while the connection is being dialed leave together; only
// the first frame written carries the credential.
TEST_F(AuthTest, CallsQueuedWhileDialingCarryTheCredentialOnce) {
  StartServer(std::make_shared<TokenAuthenticator>("s3cret"));
  MakeChannel(std::make_shared<TokenAuthenticator>("", "s3cret"));
  constexpr int kCalls = 16;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&] {
      if (!Record().ok()) failed.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  std::vector<Seen> calls = seen();
  ASSERT_EQ(calls.size(), static_cast<size_t>(kCalls));
  int with_credential = 0;
  for (const Seen& call : calls) with_credential += call.authentication_data == "s3cret";
  EXPECT_EQ(with_credential, 1);
}

// Concurrent pooled calls open several connections: each presents the
// credential on its first request, never again (a pooled connection carries
// one call at a time, so the handler sees its calls in order).
TEST_F(AuthTest, EveryNewPooledConnectionPresentsTheCredentialOnce) {
  auto server_auth = std::make_shared<TokenAuthenticator>("s3cret");
  StartServer(server_auth);
  auto client_auth = std::make_shared<TokenAuthenticator>("", "s3cret");
  MakeChannel(client_auth, ConnectionType::kPooled);
  constexpr int kThreads = 8;
  constexpr int kCallsEach = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kCallsEach; ++j) {
        if (!Record().ok()) failed.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  std::vector<Seen> calls = seen();
  ASSERT_EQ(calls.size(), static_cast<size_t>(kThreads * kCallsEach));
  std::set<std::string> connections;
  for (const Seen& call : calls) {
    const bool first = connections.insert(call.peer).second;
    EXPECT_EQ(call.authentication_data, first ? "s3cret" : "") << call.peer;
  }
  EXPECT_EQ(server_auth->verified(), static_cast<int>(connections.size()));
  EXPECT_EQ(client_auth->generated(), static_cast<int>(connections.size()));
}

}  // namespace
}  // namespace nprpc
