// Tests of TLS in the transport: TlsContext, TlsSession, and the
// Connection/Server/Dialer hooks, over loopback with certificates made at
// run time (netpoll/testing/test_certs.h).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "netpoll/connection.h"
#include "netpoll/dialer.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "netpoll/server.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/testing/wait.h"
#include "netpoll/tls_context.h"
#include "netpoll/tls_session.h"

namespace netpoll {
namespace {

using testing::BlockingClient;
using testing::TestCa;
using testing::TestCert;
using testing::WaitFor;

// What the client side of a test received.
struct Received {
  Mutex mu;
  std::string bytes ABSL_GUARDED_BY(mu);
  size_t Size() {
    MutexLock lock(&mu);
    return bytes.size();
  }
  std::string Bytes() {
    MutexLock lock(&mu);
    return bytes;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = std::move(*TestCa::Create("test CA")).release();
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

  void SetUp() override {
    EventLoopGroupOptions options;
    options.num_loops = 1;
    client_loops_ = std::move(*EventLoopGroup::Create(options));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
    server_.reset();
    client_loops_.reset();
  }

  static TlsServerOptions ServerTls() {
    TlsServerOptions options;
    options.key_pair = server_cert_->key_pair();
    return options;
  }
  static TlsClientOptions ClientTls() {
    TlsClientOptions options;
    options.ca_pem = ca_->cert_pem();
    return options;
  }

  // An echo server with `tls` (null: plaintext only); records why its
  // connections closed and the TLS identity it saw.
  void StartServer(std::shared_ptr<const TlsContext> tls, bool tls_required = false) {
    ServerOptions options;
    options.num_loops = 1;
    options.connection.tls = std::move(tls);
    options.connection.tls_required = tls_required;
    options.callbacks->on_request = [this](const ConnectionPtr& conn, LinkBuffer& in) {
      if (auto info = conn->tls_info()) {
        MutexLock lock(&mu_);
        server_info_ = info;
      }
      (void)conn->Write(std::move(*in.Slice(in.Len())));
    };
    options.callbacks->on_disconnect = [this](const ConnectionPtr&, const absl::Status& reason) {
      MutexLock lock(&mu_);
      server_reasons_.push_back(reason);
    };
    server_ = std::move(*Server::Create(options));
    ASSERT_TRUE(server_->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  }

  absl::StatusOr<ConnectionPtr> Dial(const TlsClientOptions& options) {
    absl::StatusOr<std::shared_ptr<TlsContext>> tls = TlsContext::NewClient(options);
    if (!tls.ok()) return tls.status();
    return Dial(*tls);
  }
  absl::StatusOr<ConnectionPtr> Dial(std::shared_ptr<const TlsContext> tls) {
    auto callbacks = std::make_shared<ConnectionCallbacks>();
    callbacks->on_request = [this](const ConnectionPtr&, LinkBuffer& in) {
      MutexLock lock(&received_.mu);
      received_.bytes.append(in.ToString());
      (void)in.Skip(in.Len());
    };
    DialOptions options;
    options.timeout = absl::Seconds(20);
    options.callbacks = callbacks;
    options.connection.tls = std::move(tls);
    return Dialer::DialSync(client_loops_->loop(0), server_->listen_address().ToString(), options);
  }

  // Whether some close reason of the server's connections contains `text`.
  bool ServerClosedWith(absl::string_view text) {
    return WaitFor([&] {
      MutexLock lock(&mu_);
      return std::ranges::any_of(server_reasons_, [&](const absl::Status& reason) {
        return absl::StrContains(reason.message(), text);
      });
    });
  }
  std::shared_ptr<const TlsInfo> ServerInfo() {
    MutexLock lock(&mu_);
    return server_info_;
  }

  void ExpectEcho(const ConnectionPtr& conn, const std::string& data) {
    const size_t before = received_.Size();
    ASSERT_TRUE(conn->Write(data).ok());
    ASSERT_TRUE(WaitFor([&] { return received_.Size() >= before + data.size(); }));
    EXPECT_TRUE(received_.Bytes().substr(before) == data);
  }

  static TestCa* ca_;
  static TestCa* other_ca_;
  static TestCert* server_cert_;
  static TestCert* client_cert_;

  std::unique_ptr<EventLoopGroup> client_loops_;
  std::unique_ptr<Server> server_;
  Received received_;
  Mutex mu_;
  std::vector<absl::Status> server_reasons_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const TlsInfo> server_info_ ABSL_GUARDED_BY(mu_);
};

TestCa* TlsTest::ca_ = nullptr;
TestCa* TlsTest::other_ca_ = nullptr;
TestCert* TlsTest::server_cert_ = nullptr;
TestCert* TlsTest::client_cert_ = nullptr;

TEST_F(TlsTest, HandshakesAndEchoesBothWays) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto conn = Dial(ClientTls());
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "hello over TLS");
  std::shared_ptr<const TlsInfo> info = (*conn)->tls_info();
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->peer_verified);
  EXPECT_EQ(info->version, "TLSv1.3");
  EXPECT_FALSE(info->cipher.empty());
  EXPECT_TRUE(absl::StrContains(info->subject, "CN=server")) << info->subject;
  EXPECT_EQ(info->ip_addresses, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(info->dns_names, std::vector<std::string>{"localhost"});
  EXPECT_TRUE(info->alpn.empty());  // a baidu_std client offers none
  ASSERT_NE(ServerInfo(), nullptr);
  EXPECT_FALSE(ServerInfo()->peer_verified);  // no client certificate asked for
  (*conn)->Close();
}

TEST_F(TlsTest, TransfersLargeDataBothWays) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto conn = Dial(ClientTls());
  ASSERT_TRUE(conn.ok()) << conn.status();
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 12));
  ExpectEcho(*conn, big);
  (*conn)->Close();
}

TEST_F(TlsTest, Tls12WorksWhenTheClientCapsTheVersion) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  TlsClientOptions options = ClientTls();
  options.max_version = TlsVersion::kTls12;
  auto conn = Dial(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "hello over TLS 1.2");
  EXPECT_EQ((*conn)->tls_info()->version, "TLSv1.2");
  (*conn)->Close();
}

TEST_F(TlsTest, AlpnPicksTheServersPreferredCommonProtocol) {
  StartServer(*TlsContext::NewServer(ServerTls()));  // offers h2, http/1.1
  TlsClientOptions options = ClientTls();
  options.alpn = {"http/1.1", "h2"};
  auto conn = Dial(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ((*conn)->tls_info()->alpn, "h2");
  (*conn)->Close();
  options.alpn = {"spdy/3"};  // nothing in common: no ALPN, not a failure
  conn = Dial(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ((*conn)->tls_info()->alpn, "");
  (*conn)->Close();
}

TEST_F(TlsTest, MutualTlsShowsTheClientIdentityToTheServer) {
  TlsServerOptions server = ServerTls();
  server.ca_pem = ca_->cert_pem();
  server.client_cert = TlsServerOptions::ClientCert::kRequire;
  StartServer(*TlsContext::NewServer(server));
  TlsClientOptions options = ClientTls();
  options.key_pair = client_cert_->key_pair();
  auto conn = Dial(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "mtls");
  std::shared_ptr<const TlsInfo> info = ServerInfo();
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->peer_verified);
  EXPECT_TRUE(absl::StrContains(info->subject, "CN=client")) << info->subject;
  EXPECT_EQ(info->dns_names, std::vector<std::string>{"client.example"});
  (*conn)->Close();
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefusedOnMutualTlsPort) {
  TlsServerOptions server = ServerTls();
  server.ca_pem = ca_->cert_pem();
  server.client_cert = TlsServerOptions::ClientCert::kRequire;
  StartServer(*TlsContext::NewServer(server));
  auto conn = Dial(ClientTls());
  // TLS 1.3: the client's handshake may finish before the server's verdict
  // arrives; then the connection is closed by the server's alert.
  if (conn.ok()) {
    (void)(*conn)->Write("x");
    EXPECT_TRUE(WaitFor([&] { return !(*conn)->active(); }));
  }
  EXPECT_TRUE(ServerClosedWith("did not return a certificate"));
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaIsRefused) {
  TlsServerOptions server = ServerTls();
  server.ca_pem = ca_->cert_pem();
  server.client_cert = TlsServerOptions::ClientCert::kRequire;
  StartServer(*TlsContext::NewServer(server));
  TestCert stranger =
      other_ca_->Issue({.common_name = "stranger", .dns_names = {}, .ip_addresses = {}});
  TlsClientOptions options = ClientTls();
  options.key_pair = stranger.key_pair();
  auto conn = Dial(options);
  if (conn.ok()) {
    (void)(*conn)->Write("x");
    EXPECT_TRUE(WaitFor([&] { return !(*conn)->active(); }));
  }
  EXPECT_TRUE(ServerClosedWith("certificate verify failed"));
}

TEST_F(TlsTest, UntrustedServerCertificateFailsTheDial) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  TlsClientOptions options = ClientTls();
  options.ca_pem = other_ca_->cert_pem();
  auto conn = Dial(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::IsUnavailable(conn.status())) << conn.status();
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "unable to get local issuer certificate"))
      << conn.status();
  EXPECT_TRUE(ServerClosedWith("TLS"));
}

TEST_F(TlsTest, ExpiredServerCertificateFailsTheDial) {
  TlsServerOptions server = ServerTls();
  server.key_pair = ca_->Issue({.common_name = "expired",
                                .dns_names = {},
                                .ip_addresses = {"127.0.0.1"},
                                .not_before = absl::Hours(-48),
                                .not_after = absl::Hours(-24)})
                        .key_pair();
  StartServer(*TlsContext::NewServer(server));
  auto conn = Dial(ClientTls());
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::IsUnavailable(conn.status())) << conn.status();
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "certificate has expired"))
      << conn.status();
}

TEST_F(TlsTest, WrongHostNameFailsTheDial) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  TlsClientOptions options = ClientTls();
  options.server_name = "other.example";
  auto conn = Dial(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "hostname mismatch")) << conn.status();
  // The right name passes.
  options.server_name = "localhost";
  conn = Dial(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  (*conn)->Close();
}

TEST_F(TlsTest, CertificateForAnotherAddressFailsTheDial) {
  TlsServerOptions server = ServerTls();
  server.key_pair = ca_->Issue({.common_name = "elsewhere",
                                .dns_names = {"elsewhere.example"},
                                .ip_addresses = {"10.9.8.7"}})
                        .key_pair();
  StartServer(*TlsContext::NewServer(server));
  auto conn = Dial(ClientTls());
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "IP address mismatch")) << conn.status();
}

TEST_F(TlsTest, PlaintextIsServedBesideTlsOnTheSamePort) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto plain = BlockingClient::Connect(server_->listen_address());
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(plain->SendAll("PRPC plaintext").ok());
  EXPECT_EQ(*plain->ReadExactly(14), "PRPC plaintext");
  auto conn = Dial(ClientTls());
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "and TLS");
  (*conn)->Close();
}

TEST_F(TlsTest, PlaintextOnTlsOnlyPortIsClosedWithAReason) {
  StartServer(*TlsContext::NewServer(ServerTls()), /*tls_required=*/true);
  auto plain = BlockingClient::Connect(server_->listen_address());
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(plain->SendAll("PRPC plaintext").ok());
  EXPECT_TRUE(plain->WaitForClose(absl::Seconds(20)));
  EXPECT_TRUE(ServerClosedWith("plaintext on a TLS-only port (first byte 0x50)"));
}

TEST_F(TlsTest, TlsClientToPlaintextServerFailsTheDial) {
  StartServer(nullptr);  // echoes the ClientHello back: not a ServerHello
  auto conn = Dial(ClientTls());
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::IsUnavailable(conn.status())) << conn.status();
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "TLS handshake")) << conn.status();
}

TEST_F(TlsTest, PeerStallingMidHandshakeTimesOut) {
  TlsServerOptions server = ServerTls();
  server.handshake_timeout = absl::Milliseconds(200);
  StartServer(*TlsContext::NewServer(server));
  auto raw = BlockingClient::Connect(server_->listen_address(), absl::Seconds(20));
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw->SendAll(std::string("\x16\x03\x01\x02\x00\x01", 6)).ok());  // and stall
  EXPECT_TRUE(raw->WaitForClose(absl::Seconds(20)));
  EXPECT_TRUE(ServerClosedWith("TLS handshake timed out after 200ms"));
}

TEST_F(TlsTest, GarbageAfterClientHelloClosesTheConnection) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  // A real ClientHello, made by a client session, then garbage.
  auto client_tls = TlsContext::NewClient(ClientTls());
  ASSERT_TRUE(client_tls.ok());
  auto session = TlsSession::Create(*client_tls, "", "127.0.0.1");
  ASSERT_TRUE(session.ok());
  LinkBuffer hello;
  ASSERT_TRUE((*session)->Start(hello).ok());
  auto raw = BlockingClient::Connect(server_->listen_address(), absl::Seconds(20));
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw->SendAll(hello.ToString() + std::string(64, '\x17')).ok());
  EXPECT_TRUE(raw->WaitForClose(absl::Seconds(20)));
  EXPECT_TRUE(ServerClosedWith("TLS handshake failed"));
}

TEST_F(TlsTest, RenegotiationIsRefused) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  // A blocking OpenSSL client on TLS 1.2 (1.3 has no renegotiation).
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  auto raw = BlockingClient::Connect(server_->listen_address(), absl::Seconds(20));
  ASSERT_TRUE(raw.ok());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, raw->fd());
  ASSERT_EQ(SSL_connect(ssl), 1);
  ASSERT_EQ(SSL_write(ssl, "ping", 4), 4);
  char buf[4];
  ASSERT_EQ(SSL_read(ssl, buf, 4), 4);
  ASSERT_EQ(SSL_renegotiate(ssl), 1);
  EXPECT_NE(SSL_do_handshake(ssl), 1);  // the server answers no_renegotiation
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(ctx);
}

TEST_F(TlsTest, ReloadedKeyPairIsPresentedToNewConnections) {
  auto server_tls = TlsContext::NewServer(ServerTls());
  ASSERT_TRUE(server_tls.ok());
  StartServer(*server_tls);
  auto first = Dial(ClientTls());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(absl::StrContains((*first)->tls_info()->subject, "CN=server"));
  TestCert renewed =
      ca_->Issue({.common_name = "renewed", .dns_names = {}, .ip_addresses = {"127.0.0.1"}});
  ASSERT_TRUE((*server_tls)->ReloadKeyPair(renewed.key_pair()).ok());
  auto second = Dial(ClientTls());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(absl::StrContains((*second)->tls_info()->subject, "CN=renewed"));
  ExpectEcho(*first, "old connection still works");
  // A bad pair is refused and the current one stays.
  TlsKeyPair bad = renewed.key_pair();
  bad.private_key_pem = client_cert_->key_pem;
  EXPECT_FALSE((*server_tls)->ReloadKeyPair(bad).ok());
  (*first)->Close();
  (*second)->Close();
}

TEST_F(TlsTest, ReconnectResumesTheSession) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto client_tls = TlsContext::NewClient(ClientTls());
  ASSERT_TRUE(client_tls.ok());
  auto first = Dial(*client_tls);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE((*first)->tls_info()->session_reused);
  ExpectEcho(*first, "ticket please");  // TLS 1.3 tickets come after the handshake
  (*first)->Close();
  auto second = Dial(*client_tls);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)->tls_info()->session_reused);
  ExpectEcho(*second, "resumed");
  (*second)->Close();
}

TEST_F(TlsTest, BadConfigurationIsRefusedWithAReason) {
  TlsServerOptions server;
  auto made = TlsContext::NewServer(server);
  EXPECT_TRUE(absl::IsInvalidArgument(made.status())) << made.status();
  server = ServerTls();
  server.key_pair.private_key_pem = client_cert_->key_pem;
  made = TlsContext::NewServer(server);
  EXPECT_TRUE(absl::StrContains(made.status().message(), "key values mismatch")) << made.status();
  server = ServerTls();
  server.client_cert = TlsServerOptions::ClientCert::kRequire;  // without a CA
  EXPECT_FALSE(TlsContext::NewServer(server).ok());
}

TEST_F(TlsTest, FailedHandshakesLeakNoFds) {
  StartServer(*TlsContext::NewServer(ServerTls()), /*tls_required=*/true);
  const int baseline = testing::CountOpenFds();
  TlsClientOptions untrusted = ClientTls();
  untrusted.ca_pem = other_ca_->cert_pem();
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(Dial(untrusted).ok());
    auto plain = BlockingClient::Connect(server_->listen_address());
    ASSERT_TRUE(plain.ok());
    ASSERT_TRUE(plain->SendAll("GET / HTTP/1.1\r\n\r\n").ok());
    EXPECT_TRUE(plain->WaitForClose(absl::Seconds(20)));
  }
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return testing::CountOpenFds() <= baseline; }))
      << testing::CountOpenFds() << " fds open, " << baseline << " before";
}

}  // namespace
}  // namespace netpoll
