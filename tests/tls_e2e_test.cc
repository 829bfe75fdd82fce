// TLS end to end: the real rpc Server (ServerOptions::tls) and Channel
// (ChannelOptions::tls) over TLS and mutual TLS, with every connection type;
// the peer's certificate as handlers see it (ServerContext::auth_context()
// ->tls); calls failing with UNAVAILABLE that name the cause; HTTP/1.1 over
// TLS on the same port; and `openssl s_client` against the server as
// interop. Certificates are made at run time (netpoll/testing/test_certs.h).
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/tls_context.h"
#include "proto/echo.pb.h"
#include "rpc/authenticator.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::TlsClientOptions;
using netpoll::TlsContext;
using netpoll::TlsServerOptions;
using netpoll::testing::TestCa;
using netpoll::testing::TestCert;

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
                           ConnectionType type = ConnectionType::kSingle) {
    ChannelOptions options;
    options.connection_type = type;
    options.connect_timeout = absl::Seconds(10);
    options.timeout = absl::Seconds(20);
    options.retry.max_retries = 0;
    if (tls != nullptr) {
      absl::StatusOr<std::shared_ptr<TlsContext>> context = TlsContext::NewClient(*tls);
      if (!context.ok()) return context.status();
      options.tls = *context;
    }
    auto channel = Channel::Create(server_->listen_address().ToString(), options);
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

TEST_F(TlsE2eTest, EchoesOverTlsWithEveryConnectionType) {
  StartServer(ServerTls(), /*tls_required=*/true);
  const TlsClientOptions tls = ClientTls();
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
    EXPECT_EQ(*who, "anonymous||TLSv1.3");
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
  ASSERT_FALSE(answer.ok());
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

}  // namespace
}  // namespace nprpc
