// What one echo call costs in TLS alone, without sockets, loops or RPC: the
// floor under the TLS overhead the RPC benchmark measures (docs/benchmarks.md,
// "TLS vs plaintext").
//
//   bazel run --config=opt //bench:tls_record_bench
//
// BM_AesGcm/N: the cipher alone (AES-128-GCM through EVP, as TLS 1.3's
//   default suite here): seal N bytes and open them, what one side of a call
//   does to its request and its answer.
// BM_TlsSessionEcho/N: both sides of a call through netpoll's TlsSession, a
//   client and a server session after their handshake: the client seals an
//   N-byte request, the server opens it and seals an N-byte answer, which
//   the client opens. The answer goes in as a server's flush holds it: a
//   frame header, the meta and the payload, three chunks. One side's share
//   is half of the time per iteration.
// BM_OpenSslEcho/N: the same call through plain OpenSSL with memory BIOs
//   and one SSL_write per message (no TlsSession): what OpenSSL's own
//   record layer costs, for comparison.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "netpoll/link_buffer.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/tls_context.h"
#include "netpoll/tls_session.h"

namespace netpoll {
namespace {

// The bench cannot go on without its setup.
void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "tls_record_bench: %s failed\n", what);
  std::abort();
}

void BM_AesGcm(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<unsigned char> key(16, 7);
  std::vector<unsigned char> iv(12, 1);
  std::vector<unsigned char> plain(n, 'p');
  std::vector<unsigned char> sealed(n);
  std::vector<unsigned char> opened(n);
  unsigned char tag[16];
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> enc(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> dec(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  Check(EVP_EncryptInit_ex(enc.get(), EVP_aes_128_gcm(), nullptr, key.data(), nullptr) == 1,
        "EVP_EncryptInit_ex");
  Check(EVP_DecryptInit_ex(dec.get(), EVP_aes_128_gcm(), nullptr, key.data(), nullptr) == 1,
        "EVP_DecryptInit_ex");
  for (auto _ : state) {
    ++iv[11];  // a fresh nonce per record, as TLS does
    int len = 0;
    Check(EVP_EncryptInit_ex(enc.get(), nullptr, nullptr, nullptr, iv.data()) == 1, "seal init");
    Check(EVP_EncryptUpdate(enc.get(), sealed.data(), &len, plain.data(), static_cast<int>(n)) == 1,
          "seal");
    Check(EVP_EncryptFinal_ex(enc.get(), sealed.data() + len, &len) == 1, "seal final");
    Check(EVP_CIPHER_CTX_ctrl(enc.get(), EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag) == 1, "tag");
    Check(EVP_DecryptInit_ex(dec.get(), nullptr, nullptr, nullptr, iv.data()) == 1, "open init");
    Check(
        EVP_DecryptUpdate(dec.get(), opened.data(), &len, sealed.data(), static_cast<int>(n)) == 1,
        "open");
    Check(EVP_CIPHER_CTX_ctrl(dec.get(), EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) == 1, "set tag");
    Check(EVP_DecryptFinal_ex(dec.get(), opened.data() + len, &len) == 1, "open final");
    benchmark::DoNotOptimize(opened.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}
BENCHMARK(BM_AesGcm)->Arg(16)->Arg(4096);

struct Contexts {
  std::shared_ptr<TlsContext> server;
  std::shared_ptr<TlsContext> client;
};

// A CA and a certificate for "localhost" it signed, made once.
struct Certificates {
  std::string ca_pem;
  testing::TestCert server;
};

const Certificates& SharedCertificates() {
  static const Certificates* const certificates = [] {
    auto ca = testing::TestCa::Create("tls_record_bench CA");
    Check(ca.ok(), "TestCa::Create");
    testing::TestCertOptions options;
    options.common_name = "localhost";
    options.dns_names = {"localhost"};
    return new Certificates{(*ca)->cert_pem(), (*ca)->Issue(options)};
  }();
  return *certificates;
}

const Contexts& SharedContexts() {
  static const Contexts* const contexts = [] {
    TlsServerOptions server;
    server.key_pair = SharedCertificates().server.key_pair();
    TlsClientOptions client;
    client.ca_pem = SharedCertificates().ca_pem;
    client.server_name = "localhost";
    auto server_ctx = TlsContext::NewServer(server);
    auto client_ctx = TlsContext::NewClient(client);
    Check(server_ctx.ok() && client_ctx.ok(), "TlsContext");
    return new Contexts{*server_ctx, *client_ctx};
  }();
  return *contexts;
}

// A client and a server TlsSession, handshaken over in-memory wires.
struct SessionPair {
  SessionPair() {
    auto c = TlsSession::Create(SharedContexts().client);
    auto s = TlsSession::Create(SharedContexts().server);
    Check(c.ok() && s.ok(), "TlsSession::Create");
    client = std::move(*c);
    server = std::move(*s);
    Check(client->Start(to_server).ok(), "Start");
    LinkBuffer plain;
    for (int round = 0; round < 16 && !(to_server.empty() && to_client.empty() &&
                                        client->handshake_done() && server->handshake_done());
         ++round) {
      Check(server->Receive(to_server, plain, to_client).ok(), "server handshake");
      Check(client->Receive(to_client, plain, to_server).ok(), "client handshake");
    }
    Check(client->handshake_done() && server->handshake_done() && plain.empty(), "handshake");
  }

  std::unique_ptr<TlsSession> client;
  std::unique_ptr<TlsSession> server;
  LinkBuffer to_server;
  LinkBuffer to_client;
};

// The plaintext buffers of BM_TlsSessionEcho, made and dropped without TLS:
// the part of it a plaintext call pays as well.
void BM_EchoBuffersOnly(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::string payload(n, 'p');
  const std::string header(12, 'h');
  const std::string meta(24, 'm');
  LinkBuffer plain;
  LinkBuffer answer;
  for (auto _ : state) {
    plain.WriteBinary(header);
    plain.WriteBinary(meta);
    plain.WriteBinary(payload);
    benchmark::DoNotOptimize(plain.Len());
    plain.Clear();
    for (const std::string* part : {&header, &meta, &payload}) {
      LinkBuffer chunk;
      chunk.WriteBinary(*part);
      answer.Append(std::move(chunk));
    }
    benchmark::DoNotOptimize(answer.Len());
    answer.Clear();
  }
}
BENCHMARK(BM_EchoBuffersOnly)->Arg(16)->Arg(4096);

void BM_TlsSessionEcho(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  SessionPair pair;
  const std::string payload(n, 'p');
  const std::string header(12, 'h');  // baidu_std's frame header
  const std::string meta(24, 'm');    // a typical answer's RpcMeta
  LinkBuffer plain;
  LinkBuffer request;
  LinkBuffer answer;
  LinkBuffer echoed;
  for (auto _ : state) {
    plain.WriteBinary(header);
    plain.WriteBinary(meta);
    plain.WriteBinary(payload);
    Check(pair.client->Send(plain, pair.to_server).ok(), "client Send");
    Check(pair.server->Receive(pair.to_server, request, pair.to_client).ok(), "server Receive");
    request.Clear();
    // The answer's three chunks, each in a block of its own (as encoding
    // them into a flush leaves them).
    for (const std::string* part : {&header, &meta, &payload}) {
      LinkBuffer chunk;
      chunk.WriteBinary(*part);
      answer.Append(std::move(chunk));
    }
    Check(pair.server->Send(answer, pair.to_client).ok(), "server Send");
    Check(pair.client->Receive(pair.to_client, echoed, pair.to_server).ok(), "client Receive");
    Check(echoed.Len() == header.size() + meta.size() + n, "echo length");
    echoed.Clear();
  }
}
BENCHMARK(BM_TlsSessionEcho)->Arg(16)->Arg(4096);

// OpenSSL alone: memory BIOs, one SSL_write per message (the request and
// the answer each in one piece, which TlsSession's callers do not have),
// SSL_read into a flat buffer, and the records moved between the BIOs as a
// socket would.
class OpenSslPair {
 public:
  OpenSslPair() {
    const testing::TestCert& cert = SharedCertificates().server;
    server_ctx_ = SSL_CTX_new(TLS_server_method());
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    Check(server_ctx_ != nullptr && client_ctx_ != nullptr, "SSL_CTX_new");
    BIO* cert_bio = BIO_new_mem_buf(cert.cert_pem.data(), static_cast<int>(cert.cert_pem.size()));
    BIO* key_bio = BIO_new_mem_buf(cert.key_pem.data(), static_cast<int>(cert.key_pem.size()));
    X509* x509 = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    Check(SSL_CTX_use_certificate(server_ctx_, x509) == 1 &&
              SSL_CTX_use_PrivateKey(server_ctx_, key) == 1,
          "server certificate");
    X509_free(x509);
    EVP_PKEY_free(key);
    BIO_free(cert_bio);
    BIO_free(key_bio);
    for (SSL_CTX* ctx : {server_ctx_, client_ctx_}) {
      Check(SSL_CTX_set_ciphersuites(ctx, kTls13Ciphersuites) == 1, "ciphersuites");
    }
    server_ = NewSsl(server_ctx_);
    client_ = NewSsl(client_ctx_);
    SSL_set_accept_state(server_);
    SSL_set_connect_state(client_);
    for (int round = 0; round < 16; ++round) {
      const int c = SSL_do_handshake(client_);
      Move(client_, server_);
      const int s = SSL_do_handshake(server_);
      Move(server_, client_);
      if (c == 1 && s == 1) break;
    }
    Check(SSL_is_init_finished(client_) && SSL_is_init_finished(server_), "handshake");
    // The server's session tickets.
    char sink[256];
    (void)SSL_read(client_, sink, sizeof(sink));
  }
  ~OpenSslPair() {
    SSL_free(client_);
    SSL_free(server_);
    SSL_CTX_free(client_ctx_);
    SSL_CTX_free(server_ctx_);
  }
  OpenSslPair(const OpenSslPair&) = delete;
  OpenSslPair& operator=(const OpenSslPair&) = delete;

  // `from` writes `message`, `to` reads it into `into`.
  void Pass(SSL* from, SSL* to, const std::string& message, std::vector<char>& into) {
    Check(SSL_write(from, message.data(), static_cast<int>(message.size())) ==
              static_cast<int>(message.size()),
          "SSL_write");
    Move(from, to);
    size_t got = 0;
    while (got < message.size()) {
      const int n = SSL_read(to, into.data() + got, static_cast<int>(into.size() - got));
      Check(n > 0, "SSL_read");
      got += static_cast<size_t>(n);
    }
  }
  SSL* client() const { return client_; }
  SSL* server() const { return server_; }

 private:
  static SSL* NewSsl(SSL_CTX* ctx) {
    SSL* ssl = SSL_new(ctx);
    Check(ssl != nullptr, "SSL_new");
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    return ssl;
  }
  // The records `from` wrote, into `to`'s input (a socket's copy).
  void Move(SSL* from, SSL* to) {
    BIO* out = SSL_get_wbio(from);
    BIO* in = SSL_get_rbio(to);
    int n = 0;
    while ((n = BIO_read(out, wire_, sizeof(wire_))) > 0) {
      Check(BIO_write(in, wire_, n) == n, "BIO_write");
    }
  }

  SSL_CTX* server_ctx_ = nullptr;
  SSL_CTX* client_ctx_ = nullptr;
  SSL* server_ = nullptr;
  SSL* client_ = nullptr;
  char wire_[65536];
};

void BM_OpenSslEcho(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  OpenSslPair pair;
  const std::string message(12 + 24 + n, 'p');
  std::vector<char> at_server(message.size());
  std::vector<char> at_client(message.size());
  for (auto _ : state) {
    pair.Pass(pair.client(), pair.server(), message, at_server);
    pair.Pass(pair.server(), pair.client(), message, at_client);
    benchmark::DoNotOptimize(at_client.data());
  }
}
BENCHMARK(BM_OpenSslEcho)->Arg(16)->Arg(4096);

}  // namespace
}  // namespace netpoll
