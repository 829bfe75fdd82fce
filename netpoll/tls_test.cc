// Tests of TLS in the transport: TlsContext, TlsSession, and the
// Connection/Server/Dialer hooks, over loopback with certificates made at
// run time (netpoll/testing/test_certs.h).
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

// Bytes OpenSSL holds, counted by allocation functions installed before
// OpenSSL allocates anything (a static initializer of this test binary).
std::atomic<int64_t> g_openssl_bytes{0};

void* CountingMalloc(size_t n, const char* /*file*/, int /*line*/) {
  void* p = malloc(n);
  if (p != nullptr) g_openssl_bytes += static_cast<int64_t>(malloc_usable_size(p));
  return p;
}
void* CountingRealloc(void* old, size_t n, const char* /*file*/, int /*line*/) {
  const auto before = static_cast<int64_t>(old == nullptr ? 0 : malloc_usable_size(old));
  void* p = realloc(old, n);
  if (p != nullptr || n == 0) g_openssl_bytes -= before;
  if (p != nullptr) g_openssl_bytes += static_cast<int64_t>(malloc_usable_size(p));
  return p;
}
void CountingFree(void* p, const char* /*file*/, int /*line*/) {
  if (p != nullptr) g_openssl_bytes -= static_cast<int64_t>(malloc_usable_size(p));
  free(p);
}
const bool g_counting_openssl =
    CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, CountingFree) == 1;

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
  // Mutual TLS: the server requires a client certificate from ca_, and the
  // client presents one.
  static TlsServerOptions MutualServerTls() {
    TlsServerOptions options = ServerTls();
    options.ca_pem = ca_->cert_pem();
    options.client_cert = TlsServerOptions::ClientCert::kRequire;
    return options;
  }
  static TlsClientOptions MutualClientTls() {
    TlsClientOptions options = ClientTls();
    options.key_pair = client_cert_->key_pair();
    return options;
  }

  // An echo server with `tls` (null: plaintext only); records why its
  // connections closed and the TLS identity it saw.
  void StartServer(std::shared_ptr<const TlsContext> tls, bool tls_required = false) {
    ServerOptions options;
    options.num_loops = 1;
    options.connection.tls = std::move(tls);
    options.connection.tls_required = tls_required;
    options.connection.memory_budget = budget_;
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

  // StartServer() with a certificate naming only `dns_name` (no IP SAN).
  void StartServerNamed(const std::string& common_name, const std::string& dns_name) {
    TlsServerOptions server = ServerTls();
    server.key_pair =
        ca_->Issue({.common_name = common_name, .dns_names = {dns_name}, .ip_addresses = {}})
            .key_pair();
    StartServer(*TlsContext::NewServer(server));
  }

  absl::StatusOr<ConnectionPtr> Dial(const TlsClientOptions& options) {
    absl::StatusOr<std::shared_ptr<TlsContext>> tls = TlsContext::NewClient(options);
    if (!tls.ok()) return tls.status();
    return Dial(*tls);
  }
  absl::StatusOr<ConnectionPtr> Dial(std::shared_ptr<const TlsContext> tls) {
    return Dial(std::move(tls), server_->listen_address().ToString());
  }
  // Dials "localhost:<port>" (a host name) instead of the numeric address.
  absl::StatusOr<ConnectionPtr> DialLocalhost(std::shared_ptr<const TlsContext> tls) {
    return Dial(std::move(tls), absl::StrCat("localhost:", server_->listen_address().port()));
  }
  absl::StatusOr<ConnectionPtr> Dial(std::shared_ptr<const TlsContext> tls,
                                     const std::string& address) {
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
    return Dialer::DialSync(client_loops_->loop(0), address, options);
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
  std::shared_ptr<MemoryBudget> budget_;  // for the server's connections; null: none
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
  EXPECT_EQ(info->cipher, "TLS_AES_128_GCM_SHA256");  // kTls13Ciphersuites' first
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
  StartServer(*TlsContext::NewServer(MutualServerTls()));
  auto conn = Dial(MutualClientTls());
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
  StartServer(*TlsContext::NewServer(MutualServerTls()));
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
  StartServer(*TlsContext::NewServer(MutualServerTls()));
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

TEST_F(TlsTest, DialByHostNameVerifiesThatNameWithoutServerName) {
  StartServerNamed("named", "localhost");  // no IP SAN: only the name can verify
  auto client_tls = TlsContext::NewClient(ClientTls());
  ASSERT_TRUE(client_tls.ok());
  auto conn = DialLocalhost(*client_tls);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "verified by name");
  (*conn)->Close();
  // The numeric address still needs an IP SAN.
  conn = Dial(*client_tls);
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "IP address mismatch")) << conn.status();
}

TEST_F(TlsTest, DialByHostNameFailsOnCertificateForAnotherName) {
  StartServerNamed("other", "other.example");
  auto conn = Dial(*TlsContext::NewClient(ClientTls()),
                   absl::StrCat("localhost:", server_->listen_address().port()));
  ASSERT_FALSE(conn.ok());
  EXPECT_TRUE(absl::IsUnavailable(conn.status())) << conn.status();
  EXPECT_TRUE(absl::StrContains(conn.status().message(), "hostname mismatch")) << conn.status();
}

TEST_F(TlsTest, ExplicitServerNameWinsOverTheDialedName) {
  StartServerNamed("svc", "svc.example");
  TlsClientOptions options = ClientTls();
  options.server_name = "svc.example";
  auto conn = DialLocalhost(*TlsContext::NewClient(options));
  ASSERT_TRUE(conn.ok()) << conn.status();
  (*conn)->Close();
}

TEST_F(TlsTest, ForServerNameKeepsOneContextPerName) {
  auto client_tls = TlsContext::NewClient(ClientTls());
  ASSERT_TRUE(client_tls.ok());
  auto a = (*client_tls)->ForServerName("a.example");
  auto again = (*client_tls)->ForServerName("a.example");
  auto b = (*client_tls)->ForServerName("b.example");
  ASSERT_TRUE(a.ok() && again.ok() && b.ok());
  EXPECT_EQ(*a, *again);
  EXPECT_NE(*a, *b);
  EXPECT_EQ((*a)->server_name(), "a.example");
  EXPECT_TRUE((*client_tls)->server_name().empty());
  EXPECT_FALSE((*TlsContext::NewServer(ServerTls()))->ForServerName("a.example").ok());
}

TEST_F(TlsTest, ReloadedClientKeyPairReachesDerivedContexts) {
  StartServer(*TlsContext::NewServer(MutualServerTls()));
  auto client_tls = TlsContext::NewClient(MutualClientTls());
  ASSERT_TRUE(client_tls.ok());
  auto with_alpn = (*client_tls)->WithAlpn({"http/1.1"});
  ASSERT_TRUE(with_alpn.ok());
  auto named = (*with_alpn)->ForServerName("localhost");  // derived twice
  ASSERT_TRUE(named.ok());
  TestCert renewed =
      ca_->Issue({.common_name = "renewed client", .dns_names = {}, .ip_addresses = {}});
  ASSERT_TRUE((*client_tls)->ReloadKeyPair(renewed.key_pair()).ok());
  for (const std::shared_ptr<const TlsContext>& tls :
       {std::shared_ptr<const TlsContext>(*with_alpn), *named}) {
    auto conn = DialLocalhost(tls);
    ASSERT_TRUE(conn.ok()) << conn.status();
    ExpectEcho(*conn, "renewed");
    ASSERT_NE(ServerInfo(), nullptr);
    EXPECT_TRUE(absl::StrContains(ServerInfo()->subject, "CN=renewed client"))
        << ServerInfo()->subject;
    (*conn)->Close();
  }
  // Derived after the reload: the current pair too.
  auto later = (*client_tls)->WithAlpn({});
  ASSERT_TRUE(later.ok());
  auto conn = Dial(*later);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "later");
  EXPECT_TRUE(absl::StrContains(ServerInfo()->subject, "CN=renewed client"));
  (*conn)->Close();
}

TEST_F(TlsTest, ServerContextWithAlpnOffersOnlyThat) {
  auto server_tls = TlsContext::NewServer(ServerTls());  // h2, http/1.1
  ASSERT_TRUE(server_tls.ok());
  auto http1 = (*server_tls)->WithAlpn({"http/1.1"});
  ASSERT_TRUE(http1.ok());
  StartServer(*http1);
  TlsClientOptions options = ClientTls();
  options.alpn = {"h2", "http/1.1"};
  auto conn = Dial(options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_EQ((*conn)->tls_info()->alpn, "http/1.1");
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

TEST_F(TlsTest, RecordStalledAfterClientHelloTimesOutTheHandshake) {
  TlsServerOptions server = ServerTls();
  server.handshake_timeout = absl::Milliseconds(200);
  StartServer(*TlsContext::NewServer(server));
  auto client_tls = TlsContext::NewClient(ClientTls());
  ASSERT_TRUE(client_tls.ok());
  auto session = TlsSession::Create(*client_tls, "", "127.0.0.1");
  ASSERT_TRUE(session.ok());
  LinkBuffer hello;
  ASSERT_TRUE((*session)->Start(hello).ok());
  auto raw = BlockingClient::Connect(server_->listen_address(), absl::Seconds(20));
  ASSERT_TRUE(raw.ok());
  // A well-formed header announcing 16 KiB, 100 bytes of it, then silence.
  ASSERT_TRUE(raw->SendAll(hello.ToString() + std::string("\x17\x03\x03\x40\x00", 5) +
                           std::string(100, 'x'))
                  .ok());
  EXPECT_TRUE(raw->WaitForClose(absl::Seconds(20)));
  EXPECT_TRUE(ServerClosedWith("TLS handshake timed out after 200ms"));
}

// A client that drives a TlsSession by hand over a blocking socket, so that
// a test can send any bytes, whole records or not.
class ManualTlsClient {
 public:
  static absl::StatusOr<ManualTlsClient> Connect(const SocketAddress& server,
                                                 std::shared_ptr<const TlsContext> tls) {
    auto raw = BlockingClient::Connect(server, absl::Seconds(20));
    if (!raw.ok()) return raw.status();
    auto session = TlsSession::Create(std::move(tls), "", "127.0.0.1");
    if (!session.ok()) return session.status();
    ManualTlsClient client(std::move(*raw), std::move(*session));
    LinkBuffer hello;
    if (absl::Status s = client.session_->Start(hello); !s.ok()) return s;
    if (absl::Status s = client.raw_.SendAll(hello.ToString()); !s.ok()) return s;
    while (!client.session_->handshake_done()) {
      LinkBuffer plain;
      if (absl::Status s = client.Pump(plain); !s.ok()) return s;
    }
    return client;
  }

  // Encrypts `data` into records (not sent).
  std::string Seal(absl::string_view data) {
    LinkBuffer plain;
    plain.WriteBinary(data);
    return Seal(plain);
  }
  std::string Seal(LinkBuffer& plain) {
    LinkBuffer wire;
    EXPECT_TRUE(session_->Send(plain, wire).ok());
    return wire.ToString();
  }
  absl::Status SendRaw(absl::string_view bytes) { return raw_.SendAll(bytes); }
  // Reads and decrypts until `n` bytes of plaintext came.
  absl::StatusOr<std::string> Receive(size_t n) {
    LinkBuffer plain;
    while (plain.Len() < n) {
      if (absl::Status s = Pump(plain); !s.ok()) return s;
    }
    return plain.ToString();
  }

 private:
  ManualTlsClient(BlockingClient raw, std::unique_ptr<TlsSession> session)
      : raw_(std::move(raw)), session_(std::move(session)) {}

  // One read from the socket through the session; answers what it owes.
  absl::Status Pump(LinkBuffer& plain) {
    struct pollfd pfd = {raw_.fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 20000) != 1) return absl::DeadlineExceededError("nothing to read");
    char buf[16384];
    const ssize_t r = ::recv(raw_.fd(), buf, sizeof(buf), 0);
    if (r <= 0) return absl::UnavailableError("closed by the server");
    wire_in_.WriteBinary(absl::string_view(buf, static_cast<size_t>(r)));
    LinkBuffer wire_out;
    absl::Status s = session_->Receive(wire_in_, plain, wire_out);
    if (!wire_out.empty()) (void)raw_.SendAll(wire_out.ToString());
    return s;
  }

  BlockingClient raw_;
  std::unique_ptr<TlsSession> session_;
  LinkBuffer wire_in_;  // a record still arriving
};

TEST_F(TlsTest, RecordStillArrivingIsChargedToTheBudgetAndNotHeldByOpenSsl) {
  ASSERT_TRUE(g_counting_openssl) << "OpenSSL allocated before the counting functions came";
  budget_ = std::make_shared<MemoryBudget>(64 << 20);
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto client =
      ManualTlsClient::Connect(server_->listen_address(), *TlsContext::NewClient(ClientTls()));
  ASSERT_TRUE(client.ok()) << client.status();
  // A round trip: the server's handshake (and its session tickets) are done.
  ASSERT_TRUE(client->SendRaw(client->Seal("ping")).ok());
  ASSERT_EQ(*client->Receive(4), "ping");
  const int64_t charged_before = budget_->used();
  const int64_t openssl_before = g_openssl_bytes.load();
  // A 16,000-byte record, all but its last 100 bytes.
  const std::string payload(16000, 'r');
  const std::string record = client->Seal(payload);
  ASSERT_TRUE(client->SendRaw(record.substr(0, record.size() - 100)).ok());
  EXPECT_TRUE(WaitFor([&] { return budget_->used() - charged_before >= 15000; }))
      << "charged " << budget_->used() - charged_before;
  // OpenSSL did not take the partial record into a read buffer of its own.
  EXPECT_LT(g_openssl_bytes.load() - openssl_before, 4096);
  // The rest of the record completes it: the echo comes back whole.
  ASSERT_TRUE(client->SendRaw(record.substr(record.size() - 100)).ok());
  EXPECT_EQ(*client->Receive(payload.size()), payload);
  EXPECT_TRUE(WaitFor([&] { return budget_->used() - charged_before < 4096; }))
      << "still charged " << budget_->used() - charged_before;
}

// The body lengths of the TLS records in `wire` (which holds whole records).
std::vector<size_t> RecordBodies(absl::string_view wire) {
  std::vector<size_t> bodies;
  while (wire.size() >= 5) {
    const size_t body = static_cast<size_t>(static_cast<unsigned char>(wire[3])) << 8 |
                        static_cast<unsigned char>(wire[4]);
    bodies.push_back(body);
    wire.remove_prefix(std::min(wire.size(), 5 + body));
  }
  return bodies;
}

TEST_F(TlsTest, SmallChunksAreSealedIntoFullRecords) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto client =
      ManualTlsClient::Connect(server_->listen_address(), *TlsContext::NewClient(ClientTls()));
  ASSERT_TRUE(client.ok()) << client.status();
  // 40 answers of 1,000 bytes, each in a block of its own (as a protocol
  // queues them), then one chunk of 40,000 bytes.
  LinkBuffer plain;
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    LinkBuffer answer;
    answer.WriteBinary(std::string(1000, static_cast<char>('a' + i % 26)));
    expected += answer.ToString();
    plain.Append(std::move(answer));
  }
  const std::string big(40000, 'z');
  plain.WriteBinary(big);
  expected += big;
  const std::string wire = client->Seal(plain);
  // TLS 1.3 adds a content-type byte and a 16-byte tag to each record. The
  // 80,000 bytes fill four full records and a fifth (not 40 + 3 records).
  constexpr size_t kFull = 16384 + 17;
  EXPECT_EQ(RecordBodies(wire),
            (std::vector<size_t>{kFull, kFull, kFull, kFull, 80000 - 4 * 16384 + 17}));
  ASSERT_TRUE(client->SendRaw(wire).ok());
  EXPECT_EQ(*client->Receive(expected.size()), expected);
}

TEST_F(TlsTest, EstablishedSessionsHoldNoMoreThanTheirConnectionsAreCharged) {
  ASSERT_TRUE(g_counting_openssl) << "OpenSSL allocated before the counting functions came";
  StartServer(*TlsContext::NewServer(ServerTls()));
  auto tls = TlsContext::NewClient(ClientTls());
  ASSERT_TRUE(tls.ok());
  auto first = Dial(*tls);  // the contexts' own state is allocated by now
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectEcho(*first, "first");
  const int64_t before = g_openssl_bytes.load();
  constexpr int kConnections = 20;
  std::vector<ConnectionPtr> connections;
  for (int i = 0; i < kConnections; ++i) {
    auto conn = Dial(*tls);
    ASSERT_TRUE(conn.ok()) << conn.status();
    ExpectEcho(*conn, "idle after this");
    connections.push_back(*conn);
  }
  // Each connection is two sessions here, a client's and a server's.
  const int64_t per_pair = (g_openssl_bytes.load() - before) / kConnections;
  EXPECT_GT(per_pair, 0);
  EXPECT_LE(per_pair, static_cast<int64_t>(2 * TlsSession::kHeldBytes));
  for (auto& conn : connections) conn->Close();
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

TEST_F(TlsTest, WithoutSessionResumptionEveryHandshakeIsFull) {
  StartServer(*TlsContext::NewServer(ServerTls()));
  TlsClientOptions options = ClientTls();
  options.session_resumption = false;
  auto client_tls = TlsContext::NewClient(options);
  ASSERT_TRUE(client_tls.ok());
  for (int i = 0; i < 2; ++i) {
    auto conn = Dial(*client_tls);
    ASSERT_TRUE(conn.ok()) << conn.status();
    ExpectEcho(*conn, "ticket please");
    EXPECT_FALSE((*conn)->tls_info()->session_reused) << "dial " << i;
    (*conn)->Close();
  }
}

TEST_F(TlsTest, TheServersCipherSuiteOrderDecides) {
  TlsServerOptions server = ServerTls();
  server.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
  StartServer(*TlsContext::NewServer(server));
  auto conn = Dial(ClientTls());  // offers AES-128-GCM first
  ASSERT_TRUE(conn.ok()) << conn.status();
  ExpectEcho(*conn, "over ChaCha20");
  EXPECT_EQ((*conn)->tls_info()->cipher, "TLS_CHACHA20_POLY1305_SHA256");
  (*conn)->Close();
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
  TlsClientOptions client = ClientTls();
  client.ciphersuites = "TLS_NO_SUCH_SUITE";
  auto bad_suites = TlsContext::NewClient(client);
  EXPECT_TRUE(absl::StrContains(bad_suites.status().message(), "TLS 1.3 cipher suites"))
      << bad_suites.status();
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
