// TLS end to end: the real rpc Server (ServerOptions::tls) and Channel
// (ChannelOptions::tls) over TLS and mutual TLS, with every connection type;
// the peer's certificate as handlers see it (ServerContext::auth_context()
// ->tls); calls failing with UNAVAILABLE that name the cause; HTTP/1.1 over
// TLS on the same port; and `openssl s_client` against the server as
// interop. Certificates are made at run time (netpoll/testing/test_certs.h).
#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/testing/wait.h"
#include "netpoll/tls_context.h"
#include "proto/echo.pb.h"
#include "rpc/authenticator.h"
#include "rpc/channel.h"
#include "rpc/client_streaming.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "tests/harness/echo_service.h"
#include "tests/harness/subprocess.h"
#include "tests/interop/interop.grpc.pb.h"
#include "tests/interop/interop.pb.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::TlsClientOptions;
using netpoll::TlsContext;
using netpoll::TlsServerOptions;
using netpoll::testing::BlockingClient;
using netpoll::testing::TestCa;
using netpoll::testing::TestCert;
using netpoll::testing::WaitFor;

class TlsE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = std::move(*TestCa::Create("e2e CA")).release();
    other_ca_ = std::move(*TestCa::Create("other CA")).release();
    server_cert_ = new TestCert(ca_->Issue(
        {.common_name = "server", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}}));
    client_cert_ = new TestCert(
        ca_->Issue({.common_name = "client", .dns_names = {"client.example"}, .ip_addresses = {}}));
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete other_ca_;
    delete server_cert_;
    delete client_cert_;
  }

  ~TlsE2eTest() override {
    channel_.reset();
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

  static TlsServerOptions ServerTls(bool mutual = false) {
    TlsServerOptions options;
    options.key_pair = server_cert_->key_pair();
    if (mutual) {
      options.ca_pem = ca_->cert_pem();
      options.client_cert = TlsServerOptions::ClientCert::kRequire;
    }
    return options;
  }
  static TlsClientOptions ClientTls(bool with_cert = false) {
    TlsClientOptions options;
    options.ca_pem = ca_->cert_pem();
    if (with_cert) options.key_pair = client_cert_->key_pair();
    return options;
  }

  void StartServer(const TlsServerOptions& tls, bool tls_required = false) {
    ServerOptions options;
    options.tls = *TlsContext::NewServer(tls);
    options.tls_required = tls_required;
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->AddService(MakeWhoService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }

  absl::Status MakeChannel(const TlsClientOptions* tls,
                           ConnectionType type = ConnectionType::kSingle,
                           const std::string& protocol = "", const std::string& target = "") {
    ChannelOptions options;
    if (!protocol.empty()) options.protocol = protocol;
    options.connection_type = type;
    options.connect_timeout = absl::Seconds(10);
    options.timeout = absl::Seconds(20);
    options.retry.max_retries = 0;
    if (tls != nullptr) {
      absl::StatusOr<std::shared_ptr<TlsContext>> context = TlsContext::NewClient(*tls);
      if (!context.ok()) return context.status();
      options.tls = *context;
    }
    auto channel =
        Channel::Create(target.empty() ? server_->listen_address().ToString() : target, options);
    if (!channel.ok()) return channel.status();
    channel_ = std::move(*channel);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Echo(const std::string& message) {
    EchoRequest request;
    request.set_message(message);
    EchoResponse response;
    absl::Status s = channel_->CallMethod("example.EchoService", "Echo", request, &response);
    if (!s.ok()) return s;
    return response.message();
  }
  absl::StatusOr<std::string> Who() {
    EchoRequest request;
    request.set_message("who");
    EchoResponse response;
    absl::Status s = channel_->CallMethod("test.TlsService", "Who", request, &response);
    if (!s.ok()) return s;
    return response.message();
  }

  // test.TlsService/Who answers what the handler sees of the peer's TLS:
  // "<verified>|<subject>|<version>", or "<plaintext>".
  static std::unique_ptr<Service> MakeWhoService() {
    auto service = std::make_unique<Service>("test.TlsService");
    EXPECT_TRUE(
        service
            ->AddMethod(
                "Who", MakeUnaryMethodHandler(
                           &EchoRequest::default_instance(), &EchoResponse::default_instance(),
                           [](ServerContext& ctx, const auto&, auto* rs) {
                             const AuthContext* auth = ctx.auth_context();
                             std::string who = "<plaintext>";
                             if (auth != nullptr && auth->tls != nullptr) {
                               who =
                                   absl::StrCat(auth->tls->peer_verified ? "verified" : "anonymous",
                                                "|", auth->tls->subject, "|", auth->tls->version);
                             }
                             static_cast<EchoResponse*>(rs)->set_message(who);
                             return absl::OkStatus();
                           }))
            .ok());
    return service;
  }

  static TestCa* ca_;
  static TestCa* other_ca_;
  static TestCert* server_cert_;
  static TestCert* client_cert_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TestCa* TlsE2eTest::ca_ = nullptr;
TestCa* TlsE2eTest::other_ca_ = nullptr;
TestCert* TlsE2eTest::server_cert_ = nullptr;
TestCert* TlsE2eTest::client_cert_ = nullptr;

TEST_F(TlsE2eTest, EchoesOverTlsAndMutualTlsWithEveryConnectionType) {
  for (bool mutual : {false, true}) {
    if (server_) server_->Shutdown(absl::Seconds(5));
    StartServer(ServerTls(mutual), /*tls_required=*/true);
    const TlsClientOptions tls = ClientTls(/*with_cert=*/mutual);
    for (ConnectionType type :
         {ConnectionType::kSingle, ConnectionType::kPooled, ConnectionType::kShort}) {
      ASSERT_TRUE(MakeChannel(&tls, type).ok());
      for (int i = 0; i < 3; ++i) {
        absl::StatusOr<std::string> answer = Echo(absl::StrCat("hello ", i));
        ASSERT_TRUE(answer.ok()) << answer.status();
        EXPECT_EQ(*answer, absl::StrCat("hello ", i));
      }
      absl::StatusOr<std::string> big = Echo(std::string(1 << 20, 'x'));
      ASSERT_TRUE(big.ok()) << big.status();
      EXPECT_EQ(big->size(), size_t{1} << 20);
      absl::StatusOr<std::string> who = Who();
      ASSERT_TRUE(who.ok()) << who.status();
      EXPECT_EQ(*who,
                mutual ? "verified|CN=client,O=netpoll-rpc tests|TLSv1.3" : "anonymous||TLSv1.3");
    }
  }
}

// HTTP/1.1 JSON calls on the shared port over TLS (ALPN http/1.1) and
// mutual TLS, from an independent OpenSSL client: the handler sees the
// client certificate under mTLS, the connection closes as asked, no fd stays.
TEST_F(TlsE2eTest, HttpJsonCallsOverTlsAndMutualTls) {
  for (bool mutual : {false, true}) {
    if (server_) server_->Shutdown(absl::Seconds(5));
    StartServer(ServerTls(mutual), /*tls_required=*/true);
    const int fds_before = netpoll::testing::CountOpenFds();
    {
      netpoll::testing::BlockingTlsOptions tls;
      tls.ca_pem = ca_->cert_pem();
      tls.server_name = "localhost";
      tls.alpn = {"http/1.1"};
      if (mutual) {
        tls.cert_pem = client_cert_->cert_pem;
        tls.key_pem = client_cert_->key_pem;
      }
      auto client = BlockingClient::ConnectTls(server_->listen_address(), tls);
      ASSERT_TRUE(client.ok()) << client.status();
      EXPECT_EQ(client->alpn(), "http/1.1");
      const std::string echo = R"({"message":"json over TLS"})";
      const std::string who = R"({"message":"who"})";
      // Pipelined; the second asks the server to close after its answer.
      ASSERT_TRUE(client
                      ->SendAll(absl::StrCat(
                          "POST /example.EchoService/Echo HTTP/1.1\r\nHost: localhost\r\n"
                          "Content-Type: application/json\r\nContent-Length: ",
                          echo.size(), "\r\n\r\n", echo,
                          "POST /test.TlsService/Who HTTP/1.1\r\nHost: localhost\r\n"
                          "Connection: close\r\nContent-Length: ",
                          who.size(), "\r\n\r\n", who))
                      .ok());
      absl::StatusOr<std::string> answers = client->ReadUntilEof();
      ASSERT_TRUE(answers.ok()) << answers.status();
      EXPECT_TRUE(absl::StartsWith(*answers, "HTTP/1.1 200 OK\r\n")) << *answers;
      EXPECT_TRUE(absl::StrContains(*answers, "{\"message\":\"json over TLS\"}\n")) << *answers;
      const std::string identity =
          mutual ? "verified|CN=client,O=netpoll-rpc tests|TLSv1.3" : "anonymous||TLSv1.3";
      EXPECT_TRUE(absl::StrContains(*answers, absl::StrCat("{\"message\":\"", identity, "\"}")))
          << *answers;
    }
    EXPECT_TRUE(WaitFor([&] { return server_->Stats().connections == 0; }));
    EXPECT_TRUE(WaitFor([&] { return netpoll::testing::CountOpenFds() <= fds_before; }))
        << netpoll::testing::CountOpenFds() << " fds open, " << fds_before << " before";
  }
}

TEST_F(TlsE2eTest, MutualTlsShowsTheClientCertificateToHandlers) {
  StartServer(ServerTls(/*mutual=*/true), /*tls_required=*/true);
  const TlsClientOptions tls = ClientTls(/*with_cert=*/true);
  ASSERT_TRUE(MakeChannel(&tls).ok());
  absl::StatusOr<std::string> who = Who();
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_TRUE(absl::StartsWith(*who, "verified|")) << *who;
  EXPECT_TRUE(absl::StrContains(*who, "CN=client")) << *who;
  EXPECT_TRUE(Echo("mutual").ok());
}

TEST_F(TlsE2eTest, MutualTlsPortRefusesAClientWithoutCertificate) {
  StartServer(ServerTls(/*mutual=*/true), /*tls_required=*/true);
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls).ok());
  absl::StatusOr<std::string> answer = Echo("no cert");
  // TLS 1.3: the client's handshake finishes before the server checks its
  // certificate; the call fails on the server's alert, which names the cause.
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
  EXPECT_TRUE(absl::StrContains(answer.status().message(), "certificate required"))
      << answer.status();
}

TEST_F(TlsE2eTest, PlaintextIsServedBesideTlsUnlessRequired) {
  StartServer(ServerTls());
  ASSERT_TRUE(MakeChannel(nullptr).ok());
  absl::StatusOr<std::string> who = Who();
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, "<plaintext>");
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls).ok());
  EXPECT_TRUE(Echo("tls").ok());
}

TEST_F(TlsE2eTest, PlaintextChannelToTlsOnlyServerFails) {
  StartServer(ServerTls(), /*tls_required=*/true);
  ASSERT_TRUE(MakeChannel(nullptr).ok());
  EXPECT_FALSE(Echo("plain").ok());
}

// The call fails with UNAVAILABLE and a message naming the cause.
void ExpectUnavailableNaming(const absl::StatusOr<std::string>& answer, absl::string_view cause) {
  ASSERT_FALSE(answer.ok());
  EXPECT_TRUE(absl::IsUnavailable(answer.status())) << answer.status();
  EXPECT_TRUE(absl::StrContains(answer.status().message(), cause)) << answer.status();
}

TEST_F(TlsE2eTest, UntrustedServerFailsCallsWithUnavailable) {
  StartServer(ServerTls());
  TlsClientOptions tls = ClientTls();
  tls.ca_pem = other_ca_->cert_pem();
  ASSERT_TRUE(MakeChannel(&tls).ok());
  ExpectUnavailableNaming(Echo("x"), "unable to get local issuer certificate");
}

TEST_F(TlsE2eTest, ExpiredServerCertificateFailsCallsWithUnavailable) {
  TlsServerOptions server = ServerTls();
  server.key_pair = ca_->Issue({.common_name = "expired",
                                .dns_names = {},
                                .ip_addresses = {"127.0.0.1"},
                                .not_before = absl::Hours(-48),
                                .not_after = absl::Hours(-24)})
                        .key_pair();
  StartServer(server);
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls).ok());
  ExpectUnavailableNaming(Echo("x"), "certificate has expired");
}

TEST_F(TlsE2eTest, WrongServerNameFailsCallsWithUnavailable) {
  StartServer(ServerTls());
  TlsClientOptions tls = ClientTls();
  tls.server_name = "wrong.example";
  ASSERT_TRUE(MakeChannel(&tls).ok());
  ExpectUnavailableNaming(Echo("x"), "hostname mismatch");
}

// A server certificate for DNS:localhost only: the name in the target is
// what verifies it (no IP SAN for the resolved 127.0.0.1 to match).
TEST_F(TlsE2eTest, HostNameTargetSendsAndVerifiesThatName) {
  TlsServerOptions server = ServerTls();
  server.key_pair =
      ca_->Issue({.common_name = "named", .dns_names = {"localhost"}, .ip_addresses = {}})
          .key_pair();
  StartServer(server, /*tls_required=*/true);
  const std::string port = absl::StrCat(server_->listen_address().port());
  const TlsClientOptions tls = ClientTls();
  for (const std::string protocol : {"baidu_std", "grpc"}) {
    for (ConnectionType type :
         {ConnectionType::kSingle, ConnectionType::kPooled, ConnectionType::kShort}) {
      if (protocol == "grpc" && type != ConnectionType::kSingle) continue;
      for (const std::string& target :
           {absl::StrCat("localhost:", port), absl::StrCat("list://localhost:", port),
            absl::StrCat("dns://localhost:", port)}) {
        SCOPED_TRACE(absl::StrCat(protocol, " ", static_cast<int>(type), " ", target));
        ASSERT_TRUE(MakeChannel(&tls, type, protocol, target).ok());
        absl::StatusOr<std::string> answer = Echo("by name");
        ASSERT_TRUE(answer.ok()) << answer.status();
        EXPECT_EQ(*answer, "by name");
      }
    }
  }
  // An IP address in the target still needs an IP SAN.
  ASSERT_TRUE(MakeChannel(&tls).ok());
  ExpectUnavailableNaming(Echo("x"), "IP address mismatch");
}

TEST_F(TlsE2eTest, HostNameTargetFailsOnCertificateForAnotherName) {
  TlsServerOptions server = ServerTls();
  server.key_pair =
      ca_->Issue({.common_name = "other", .dns_names = {"other.example"}, .ip_addresses = {}})
          .key_pair();
  StartServer(server);
  const std::string port = absl::StrCat(server_->listen_address().port());
  const TlsClientOptions tls = ClientTls();
  for (const std::string& target :
       {absl::StrCat("localhost:", port), absl::StrCat("dns://localhost:", port)}) {
    SCOPED_TRACE(target);
    ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "", target).ok());
    ExpectUnavailableNaming(Echo("x"), "hostname mismatch");
  }
  // The context's own server name wins over the target's.
  TlsClientOptions named = ClientTls();
  named.server_name = "other.example";
  ASSERT_TRUE(
      MakeChannel(&named, ConnectionType::kSingle, "", absl::StrCat("localhost:", port)).ok());
  EXPECT_TRUE(Echo("named").ok());
}

TEST_F(TlsE2eTest, TlsChannelToPlaintextServerFailsCallsWithUnavailable) {
  server_ = std::make_unique<Server>(ServerOptions{});
  ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls).ok());
  ExpectUnavailableNaming(Echo("x"), "TLS handshake");
}

// `openssl s_client` (a real TLS peer) against the server: the handshake
// verifies against the CA, and HTTP/1.1 over TLS reaches /health.
TEST_F(TlsE2eTest, OpensslClientTalksHttpOverTls) {
  if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "no openssl CLI";
  StartServer(ServerTls());
  char dir_template[] = "/tmp/tls_e2e_XXXXXX";
  char* dir = mkdtemp(dir_template);
  ASSERT_NE(dir, nullptr);
  const std::string ca_path = absl::StrCat(dir, "/ca.pem");
  const std::string request_path = absl::StrCat(dir, "/request");
  std::ofstream(ca_path) << ca_->cert_pem();
  std::ofstream(request_path) << "GET /health HTTP/1.1\r\nHost: localhost\r\n"
                                 "Connection: close\r\n\r\n";
  const std::string command = absl::StrCat(
      "/usr/bin/openssl s_client -connect ", server_->listen_address().ToString(), " -CAfile ",
      ca_path, " -verify_return_error -brief -alpn http/1.1 -ign_eof < ", request_path, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "Protocol version: TLSv1.3")) << output;
  EXPECT_TRUE(absl::StrContains(output, "Ciphersuite: TLS_")) << output;
  EXPECT_TRUE(absl::StrContains(output, "Verification: OK")) << output;
  EXPECT_TRUE(absl::StrContains(output, "HTTP/1.1 200")) << output;
  unlink(ca_path.c_str());
  unlink(request_path.c_str());
  rmdir(dir);
}

// The admin port (builtin pages) over TLS, read by curl: /metrics answers
// over HTTP/1.1 although curl offers h2, and plaintext is refused.
TEST_F(TlsE2eTest, AdminPortServesMetricsOverTlsAndRefusesPlaintext) {
  if (!testing::IsExecutable("/usr/bin/curl")) GTEST_SKIP() << "no curl";
  ServerOptions options;
  options.builtin_pages = ServerOptions::BuiltinPages::kAdminPort;
  options.admin_address = "127.0.0.1:0";
  options.admin_tls = *TlsContext::NewServer(ServerTls());  // offers h2 and http/1.1
  options.admin_tls_required = true;
  server_ = std::make_unique<Server>(std::move(options));
  ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  char dir_template[] = "/tmp/tls_e2e_XXXXXX";
  char* dir = mkdtemp(dir_template);
  ASSERT_NE(dir, nullptr);
  const std::string ca_path = absl::StrCat(dir, "/ca.pem");
  std::ofstream(ca_path) << ca_->cert_pem();
  const std::string admin = server_->admin_address().ToString();
  absl::StatusOr<testing::CommandResult> curl = testing::RunCommand(
      {"/usr/bin/curl", "-sS", "-f", "--cacert", ca_path, "-w", "\nversion=%{http_version}\n",
       absl::StrCat("https://", admin, "/metrics")},
      absl::Seconds(60));
  ASSERT_TRUE(curl.ok()) << curl.status();
  EXPECT_EQ(curl->exit_code, 0) << curl->output;
  EXPECT_TRUE(absl::StrContains(curl->output, "# TYPE nprpc_")) << curl->output;
  EXPECT_TRUE(absl::StrContains(curl->output, "version=1.1")) << curl->output;
  // Without the CA, curl refuses the certificate.
  curl = testing::RunCommand({"/usr/bin/curl", "-sS", absl::StrCat("https://", admin, "/health")},
                             absl::Seconds(60));
  ASSERT_TRUE(curl.ok()) << curl.status();
  EXPECT_NE(curl->exit_code, 0) << curl->output;
  // Plaintext HTTP on the admin port is closed unanswered.
  auto plain =
      netpoll::testing::BlockingClient::Connect(server_->admin_address(), absl::Seconds(20));
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(plain->SendAll("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  absl::StatusOr<std::string> answer = plain->ReadUntilEof();
  ASSERT_TRUE(answer.ok()) << answer.status();  // closed, not timed out
  EXPECT_EQ(*answer, "");
  unlink(ca_path.c_str());
  rmdir(dir);
}

// ------------------------------------------------------------ gRPC over TLS

constexpr char kInteropService[] = "nprpc.interop.TestService";

// nprpc.interop.TestService with gRPC C++'s sync API: UnaryCall echoes the
// payload prefixed with what the server saw of the peer ("mtls:" when it
// presented a certificate); the streaming calls answer one message of the
// requested size per response parameter, or the count of bytes received.
class GrpcTlsTestService final : public interop::TestService::Service {
 public:
  grpc::Status UnaryCall(grpc::ServerContext* ctx, const interop::SimpleRequest* request,
                         interop::SimpleResponse* response) override {
    const bool peer_cert = !ctx->auth_context()->GetPeerIdentity().empty();
    response->set_payload(absl::StrCat(peer_cert ? "mtls:" : "tls:", request->payload()));
    return grpc::Status::OK;
  }
  grpc::Status StreamingOutputCall(
      grpc::ServerContext*, const interop::StreamingOutputCallRequest* request,
      grpc::ServerWriter<interop::StreamingOutputCallResponse>* writer) override {
    for (const auto& parameters : request->response_parameters()) {
      interop::StreamingOutputCallResponse response;
      response.set_payload(std::string(parameters.size(), 'o'));
      if (!writer->Write(response)) break;
    }
    return grpc::Status::OK;
  }
  grpc::Status StreamingInputCall(grpc::ServerContext*,
                                  grpc::ServerReader<interop::StreamingInputCallRequest>* reader,
                                  interop::StreamingInputCallResponse* response) override {
    interop::StreamingInputCallRequest request;
    int32_t total = 0;
    while (reader->Read(&request)) total += static_cast<int32_t>(request.payload().size());
    response->set_aggregated_payload_size(total);
    return grpc::Status::OK;
  }
  grpc::Status FullDuplexCall(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<interop::StreamingOutputCallResponse,
                               interop::StreamingOutputCallRequest>* stream) override {
    interop::StreamingOutputCallRequest request;
    while (stream->Read(&request)) {
      for (const auto& parameters : request.response_parameters()) {
        interop::StreamingOutputCallResponse response;
        response.set_payload(std::string(parameters.size(), 'd'));
        if (!stream->Write(response)) return grpc::Status::OK;
      }
    }
    return grpc::Status::OK;
  }
};

class GrpcTlsE2eTest : public TlsE2eTest {
 protected:
  ~GrpcTlsE2eTest() override {
    channel_.reset();
    if (grpc_server_ != nullptr) {
      grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
      grpc_server_->Wait();
    }
  }

  // Under TSan, a gRPC C++ peer over TLS is not run: Debian's gRPC and
  // libcrypto are uninstrumented, and gRPC's SSL buffers, handed between its
  // threads under its own (invisible) locks, show as races inside libcrypto,
  // which a suppression could only hide together with our own TLS code's.
  static bool GrpcCppTlsUnderTsan() {
#if defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return false;
  }

  // An in-process gRPC C++ server over TLS (mutual: client certificates
  // required and verified against the test CA). Returns its address.
  std::string StartGrpcServer(bool mutual) {
    grpc::SslServerCredentialsOptions ssl(
        mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_root_certs = ca_->cert_pem();
    ssl.pem_key_cert_pairs.push_back(
        {server_cert_->key_pair().private_key_pem, server_cert_->key_pair().cert_chain_pem});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port);
    builder.RegisterService(&grpc_service_);
    grpc_server_ = builder.BuildAndStart();
    EXPECT_NE(grpc_server_, nullptr);
    return absl::StrCat("127.0.0.1:", port);
  }

  void ExpectEveryCallKindWorks(const std::string& unary_prefix) {
    interop::SimpleRequest request;
    request.set_payload("hello");
    interop::SimpleResponse response;
    ASSERT_TRUE(channel_->CallMethod(kInteropService, "UnaryCall", request, &response).ok());
    EXPECT_EQ(response.payload(), unary_prefix + "hello");

    {  // server streaming
      stream_internal::BlockingClientStream stream(
          channel_->NewStream(kInteropService, "StreamingOutputCall"));
      interop::StreamingOutputCallRequest out;
      for (int size : {1, 100, 100000}) out.add_response_parameters()->set_size(size);
      ASSERT_TRUE(stream.Write(out));
      stream.WritesDone();
      interop::StreamingOutputCallResponse got;
      for (int size : {1, 100, 100000}) {
        ASSERT_TRUE(stream.Read(&got));
        EXPECT_EQ(got.payload().size(), static_cast<size_t>(size));
      }
      EXPECT_FALSE(stream.Read(&got));
      EXPECT_TRUE(stream.Finish().ok());
    }
    {  // client streaming
      stream_internal::BlockingClientStream stream(
          channel_->NewStream(kInteropService, "StreamingInputCall"));
      interop::StreamingInputCallRequest in;
      for (int size : {3, 300, 30000}) {
        in.set_payload(std::string(size, 'i'));
        ASSERT_TRUE(stream.Write(in));
      }
      stream.WritesDone();
      interop::StreamingInputCallResponse total;
      ASSERT_TRUE(stream.Read(&total));
      EXPECT_EQ(total.aggregated_payload_size(), 30303);
      EXPECT_TRUE(stream.Finish().ok());
    }
    {  // bidirectional, in lock step
      stream_internal::BlockingClientStream stream(
          channel_->NewStream(kInteropService, "FullDuplexCall"));
      for (int size : {7, 7000}) {
        interop::StreamingOutputCallRequest out;
        out.add_response_parameters()->set_size(size);
        ASSERT_TRUE(stream.Write(out));
        interop::StreamingOutputCallResponse got;
        ASSERT_TRUE(stream.Read(&got));
        EXPECT_EQ(got.payload(), std::string(size, 'd'));
      }
      stream.WritesDone();
      interop::StreamingOutputCallResponse got;
      EXPECT_FALSE(stream.Read(&got));
      EXPECT_TRUE(stream.Finish().ok());
    }
  }

  // nprpc.interop.TestService/UnaryCall on the nprpc server, answering as
  // GrpcTlsTestService does (from AuthContext::tls).
  static std::unique_ptr<Service> MakeInteropUnaryService() {
    auto service = std::make_unique<Service>(kInteropService);
    EXPECT_TRUE(
        service
            ->AddMethod("UnaryCall",
                        MakeUnaryMethodHandler(
                            &interop::SimpleRequest::default_instance(),
                            &interop::SimpleResponse::default_instance(),
                            [](ServerContext& ctx, const auto& rq, auto* rs) {
                              const AuthContext* auth = ctx.auth_context();
                              std::string prefix = "plaintext:";
                              if (auth != nullptr && auth->tls != nullptr) {
                                prefix = auth->tls->peer_verified ? "mtls:" : "tls:";
                              }
                              static_cast<interop::SimpleResponse*>(rs)->set_payload(absl::StrCat(
                                  prefix,
                                  static_cast<const interop::SimpleRequest&>(rq).payload()));
                              return absl::OkStatus();
                            }))
            .ok());
    return service;
  }

  GrpcTlsTestService grpc_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
};

TEST_F(GrpcTlsE2eTest, GrpcChannelOverTlsReachesNprpcServer) {
  StartServer(ServerTls());
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "grpc").ok());
  EXPECT_EQ(Echo("over h2 and TLS").value_or("<failed>"), "over h2 and TLS");
  EXPECT_TRUE(absl::StartsWith(Who().value_or("<failed>"), "anonymous||TLSv1.3"))
      << Who().value_or("<failed>");
}

TEST_F(GrpcTlsE2eTest, GrpcChannelOverMutualTlsShowsTheClientToNprpcHandlers) {
  StartServer(ServerTls(/*mutual=*/true));
  const TlsClientOptions tls = ClientTls(/*with_cert=*/true);
  ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "grpc").ok());
  EXPECT_EQ(Echo("m").value_or("<failed>"), "m");
  EXPECT_TRUE(absl::StartsWith(Who().value_or("<failed>"), "verified|CN=client"))
      << Who().value_or("<failed>");
}

// An nprpc server that offers no ALPN (so none is chosen) still serves
// gRPC over TLS: the transport accepts "none" and the server sniffs h2.
TEST_F(GrpcTlsE2eTest, GrpcChannelAcceptsServerThatChoseNoAlpn) {
  TlsServerOptions server_tls = ServerTls();
  server_tls.alpn.clear();
  StartServer(server_tls, /*tls_required=*/true);
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "grpc").ok());
  EXPECT_EQ(Echo("no alpn").value_or("<failed>"), "no alpn");
}

TEST_F(GrpcTlsE2eTest, GrpcChannelWithoutCertificateFailsOnMutualTlsPort) {
  StartServer(ServerTls(/*mutual=*/true));
  const TlsClientOptions tls = ClientTls();
  ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "grpc").ok());
  absl::StatusOr<std::string> answer = Echo("x");
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable) << answer.status();
  EXPECT_TRUE(absl::StrContains(answer.status().message(), "certificate required"))
      << answer.status();
}

TEST_F(GrpcTlsE2eTest, EveryCallKindOverTlsToGrpcCppServer) {
  if (GrpcCppTlsUnderTsan()) GTEST_SKIP() << "gRPC C++ over TLS is uninstrumented";
  const std::string address = StartGrpcServer(/*mutual=*/false);
  const TlsClientOptions tls = ClientTls();  // offers no ALPN itself
  ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "grpc", address).ok());
  ExpectEveryCallKindWorks("tls:");
}

TEST_F(GrpcTlsE2eTest, EveryCallKindOverMutualTlsToGrpcCppServer) {
  if (GrpcCppTlsUnderTsan()) GTEST_SKIP() << "gRPC C++ over TLS is uninstrumented";
  const std::string address = StartGrpcServer(/*mutual=*/true);
  const TlsClientOptions tls = ClientTls(/*with_cert=*/true);
  ASSERT_TRUE(MakeChannel(&tls, ConnectionType::kSingle, "grpc", address).ok());
  ExpectEveryCallKindWorks("mtls:");
}

TEST_F(GrpcTlsE2eTest, GrpcCppClientWithSslCredentialsCallsNprpcServer) {
  if (GrpcCppTlsUnderTsan()) GTEST_SKIP() << "gRPC C++ over TLS is uninstrumented";
  for (bool mutual : {false, true}) {
    if (server_) server_->Shutdown(absl::Seconds(5));
    ServerOptions options;
    options.tls = *TlsContext::NewServer(ServerTls(mutual));
    options.tls_required = true;
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(MakeInteropUnaryService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());

    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_->cert_pem();
    if (mutual) {
      ssl.pem_private_key = client_cert_->key_pair().private_key_pem;
      ssl.pem_cert_chain = client_cert_->key_pair().cert_chain_pem;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto grpc_channel = grpc::CreateCustomChannel(server_->listen_address().ToString(),
                                                  grpc::SslCredentials(ssl), args);
    auto stub = interop::TestService::NewStub(grpc_channel);
    interop::SimpleRequest request;
    request.set_payload("from gRPC C++");
    interop::SimpleResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status status = stub->UnaryCall(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.payload(), absl::StrCat(mutual ? "mtls:" : "tls:", "from gRPC C++"));
  }
}

}  // namespace
}  // namespace nprpc
