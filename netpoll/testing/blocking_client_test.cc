// BlockingClient against a netpoll echo server, in plaintext and over TLS
// (ConnectTls: OpenSSL on the blocking socket), with certificates made at run
// time (netpoll/testing/test_certs.h).
#include "netpoll/testing/blocking_client.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/server.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/testing/wait.h"
#include "netpoll/tls_context.h"

namespace netpoll::testing {
namespace {

class BlockingClientTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    ca_ = std::move(*TestCa::Create("blocking client CA")).release();
    server_cert_ = new TestCert(ca_->Issue(
        {.common_name = "server", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}}));
    client_cert_ =
        new TestCert(ca_->Issue({.common_name = "client", .dns_names = {}, .ip_addresses = {}}));
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete server_cert_;
    delete client_cert_;
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  static bool tls() { return GetParam(); }

  // An echo server (TLS required when the parameter says so); the message
  // "close" closes the connection instead.
  void StartServer(TlsServerOptions::ClientCert client_cert = TlsServerOptions::ClientCert::kNone) {
    ServerOptions options;
    options.num_loops = 1;
    if (tls()) {
      TlsServerOptions tls_options;
      tls_options.key_pair = server_cert_->key_pair();
      tls_options.ca_pem = ca_->cert_pem();
      tls_options.client_cert = client_cert;
      options.connection.tls = *TlsContext::NewServer(tls_options);
      options.connection.tls_required = true;
    }
    options.callbacks->on_request = [this](const ConnectionPtr& conn, LinkBuffer& in) {
      if (auto info = conn->tls_info()) {
        MutexLock lock(&mu_);
        peer_subject_ = info->subject;
      }
      if (in.ToString() == "close") {
        conn->Close();
        return;
      }
      (void)conn->Write(std::move(*in.Slice(in.Len())));
    };
    server_ = std::move(*Server::Create(options));
    ASSERT_TRUE(server_->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  }

  BlockingTlsOptions ClientTls() const {
    BlockingTlsOptions options;
    options.ca_pem = ca_->cert_pem();
    return options;
  }

  absl::StatusOr<BlockingClient> Connect() {
    return tls() ? BlockingClient::ConnectTls(server_->listen_address(), ClientTls())
                 : BlockingClient::Connect(server_->listen_address());
  }

  std::string PeerSubject() {
    MutexLock lock(&mu_);
    return peer_subject_;
  }

  static TestCa* ca_;
  static TestCert* server_cert_;
  static TestCert* client_cert_;
  std::unique_ptr<Server> server_;
  Mutex mu_;
  std::string peer_subject_ ABSL_GUARDED_BY(mu_);
};

TestCa* BlockingClientTest::ca_ = nullptr;
TestCert* BlockingClientTest::server_cert_ = nullptr;
TestCert* BlockingClientTest::client_cert_ = nullptr;

std::string TransportName(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "tls" : "plain";
}

INSTANTIATE_TEST_SUITE_P(Transports, BlockingClientTest, ::testing::Values(false, true),
                         TransportName);

TEST_P(BlockingClientTest, SendsAndReadsExactly) {
  StartServer();
  absl::StatusOr<BlockingClient> client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->is_tls(), tls());
  ASSERT_TRUE(client->SendAll("hello").ok());
  absl::StatusOr<std::string> echo = client->ReadExactly(5);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "hello");
}

TEST_P(BlockingClientTest, SendAllWhileReadingTakesAnEchoLargerThanTheSocketsHold) {
  StartServer();
  absl::StatusOr<BlockingClient> client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  // 16 MiB: neither side could send it all before the other reads.
  std::string data(16 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  std::string received;
  absl::Status s = client->SendAllWhileReading(
      data, received, [&](std::string& bytes) { return bytes.size() >= data.size(); });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(received == data);
}

TEST_P(BlockingClientTest, HalfClosedClientStillReadsTheAnswerThenEof) {
  StartServer();
  absl::StatusOr<BlockingClient> client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(client->SendAll("last words").ok());
  client->ShutdownWrite();  // TLS: close_notify, then FIN
  absl::StatusOr<std::string> rest = client->ReadUntilEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "last words");
}

TEST_P(BlockingClientTest, WaitForCloseSeesTheServerClose) {
  StartServer();
  absl::StatusOr<BlockingClient> client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_FALSE(client->WaitForClose(absl::Milliseconds(20)));  // still open
  ASSERT_TRUE(client->SendAll("close").ok());
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(10)));
}

TEST_P(BlockingClientTest, ResetLeavesNoFdAndTheServerSeesTheConnectionGo) {
  StartServer();
  const int before = CountOpenFds();
  {
    absl::StatusOr<BlockingClient> client = Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE(client->SendAll("x").ok());
    ASSERT_TRUE(client->ReadExactly(1).ok());
    client->Reset();
  }
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return CountOpenFds() <= before; }));
}

// ------------------------------------------------------------ TLS only

class BlockingTlsClientTest : public BlockingClientTest {};
INSTANTIATE_TEST_SUITE_P(Transports, BlockingTlsClientTest, ::testing::Values(true), TransportName);

TEST_P(BlockingTlsClientTest, AlpnOfferedIsChosenByTheServer) {
  StartServer();
  BlockingTlsOptions options = ClientTls();
  options.server_name = "localhost";
  options.alpn = {"http/1.1"};
  absl::StatusOr<BlockingClient> client =
      BlockingClient::ConnectTls(server_->listen_address(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->alpn(), "http/1.1");
}

TEST_P(BlockingTlsClientTest, ServerOfAnotherCaFailsTheHandshakeNamingTheCause) {
  StartServer();
  std::unique_ptr<TestCa> other = std::move(*TestCa::Create("other CA"));
  BlockingTlsOptions options = ClientTls();
  options.ca_pem = other->cert_pem();
  absl::StatusOr<BlockingClient> client =
      BlockingClient::ConnectTls(server_->listen_address(), options);
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(absl::IsUnavailable(client.status())) << client.status();
  EXPECT_TRUE(absl::StrContains(client.status().message(), "certificate verify failed"))
      << client.status();
}

TEST_P(BlockingTlsClientTest, WrongServerNameFailsTheHandshake) {
  StartServer();
  BlockingTlsOptions options = ClientTls();
  options.server_name = "wrong.example";
  absl::StatusOr<BlockingClient> client =
      BlockingClient::ConnectTls(server_->listen_address(), options);
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(absl::StrContains(client.status().message(), "hostname mismatch")) << client.status();
}

TEST_P(BlockingTlsClientTest, ClientCertificateIsPresentedForMutualTls) {
  StartServer(TlsServerOptions::ClientCert::kRequire);
  BlockingTlsOptions options = ClientTls();
  options.cert_pem = client_cert_->cert_pem;
  options.key_pem = client_cert_->key_pem;
  absl::StatusOr<BlockingClient> client =
      BlockingClient::ConnectTls(server_->listen_address(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(client->SendAll("me").ok());
  ASSERT_TRUE(client->ReadExactly(2).ok());
  EXPECT_TRUE(absl::StrContains(PeerSubject(), "CN=client")) << PeerSubject();
}

TEST_P(BlockingTlsClientTest, MutualTlsServerClosesAClientWithoutCertificate) {
  StartServer(TlsServerOptions::ClientCert::kRequire);
  absl::StatusOr<BlockingClient> client =
      BlockingClient::ConnectTls(server_->listen_address(), ClientTls());
  // TLS 1.3: the client finishes first; the server's refusal arrives next.
  if (client.ok()) {
    (void)client->SendAll("anyone?");
    EXPECT_TRUE(client->WaitForClose(absl::Seconds(10)));
  }
}

}  // namespace
}  // namespace netpoll::testing
