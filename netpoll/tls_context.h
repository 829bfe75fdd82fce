// TlsContext: the TLS configuration (OpenSSL 3) shared by the connections of
// one server or one client: certificate chain and key, the CAs that verify
// the peer, client-certificate policy (mTLS), ALPN, protocol versions, the
// handshake timeout and, for clients, a session cache for resumption.
//
//   netpoll::TlsServerOptions options;
//   options.key_pair.cert_chain_file = "server.crt";
//   options.key_pair.private_key_file = "server.key";
//   options.ca_file = "clients-ca.crt";  // with client_cert = kRequire: mTLS
//   options.client_cert = netpoll::TlsServerOptions::ClientCert::kRequire;
//   auto tls = netpoll::TlsContext::NewServer(options);
//   server_options.connection.tls = *tls;   // netpoll::ServerOptions
//
// A connection whose ConnectionOptions::tls is set runs TLS over memory BIOs
// on its own loop (netpoll/tls_session.h): everything above the connection
// sees plaintext. ReloadKeyPair() swaps the certificate and key without a
// restart: connections made afterwards present the new pair, established
// ones keep theirs.
//
// Thread safety: every method is safe from any thread; one context serves
// many connections on many loops at once.
#ifndef NETPOLL_TLS_CONTEXT_H_
#define NETPOLL_TLS_CONTEXT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"

// OpenSSL's types (SSL, SSL_CTX, SSL_SESSION), declared here so that users
// of this header need not include OpenSSL.
struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;

namespace netpoll {

enum class TlsVersion { kTls12, kTls13 };

// A certificate chain (leaf first) and its private key, as PEM text or in PEM
// files. Text wins when both are set.
struct TlsKeyPair {
  std::string cert_chain_pem;
  std::string private_key_pem;
  std::string cert_chain_file;
  std::string private_key_file;
};

// The TLS 1.3 suites offered and chosen by default: OpenSSL's three, with
// AES-128-GCM first, as BoringSSL and Go order them (OpenSSL's own default
// puts AES-256-GCM first): 10 AES rounds per block instead of 14.
inline constexpr char kTls13Ciphersuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct TlsServerOptions {
  // The certificate the server presents (required).
  TlsKeyPair key_pair;
  // CAs that verify client certificates (PEM text and/or a file).
  std::string ca_pem;
  std::string ca_file;
  // kNone: no client certificate is asked for. kRequest: asked for, and
  // verified when sent. kRequire: mutual TLS, a handshake without a valid
  // client certificate fails.
  enum class ClientCert { kNone, kRequest, kRequire };
  ClientCert client_cert = ClientCert::kNone;
  // Protocols offered by ALPN, in order of preference. A client offering
  // none of them (or no ALPN at all, as baidu_std clients) gets none.
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  // OpenSSL cipher list for TLS 1.2 (empty: OpenSSL's default).
  std::string cipher_list;
  // TLS 1.3 cipher suites, in order of preference ("TLS_AES_256_GCM_SHA384:
  // ..."); the server's order decides. Empty: OpenSSL's default.
  std::string ciphersuites = kTls13Ciphersuites;
  // A handshake not done this long after its first byte closes the
  // connection.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

struct TlsClientOptions {
  // The client certificate for mutual TLS (optional: empty sends none).
  TlsKeyPair key_pair;
  // CAs that verify the server (PEM text and/or a file). Neither: the
  // system's default roots.
  std::string ca_pem;
  std::string ca_file;
  // false skips verifying the server (tests only: anyone can impersonate it).
  bool verify_server = true;
  // Sent as SNI and matched against the server certificate's names. Empty:
  // a dial by host name ("api.internal:443", netpoll/dialer.h) uses that
  // name (ForServerName()); a dial by IP address matches the address
  // against the certificate's IP SANs (no SNI).
  std::string server_name;
  // Protocols offered by ALPN (empty: no ALPN, as baidu_std).
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  std::string cipher_list;
  std::string ciphersuites = kTls13Ciphersuites;  // as TlsServerOptions
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Reconnects to a server resume its last session (fewer round trips and
  // no certificate exchange). false: every handshake is a full one (no
  // session is cached or offered).
  bool session_resumption = true;
};

// What a finished handshake established. Immutable once published.
struct TlsInfo {
  // The peer presented a certificate that verified against the CAs.
  bool peer_verified = false;
  // The peer certificate's subject (RFC 2253, "CN=client,O=Example"), empty
  // without one, and its subject alternative names.
  std::string subject;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::vector<std::string> uris;  // e.g. SPIFFE IDs
  // The protocol ALPN chose ("h2", "http/1.1"), empty when none.
  std::string alpn;
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_128_GCM_SHA256"
  // The handshake resumed an earlier session (no certificate exchange).
  bool session_reused = false;
};

class TlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<TlsContext>> NewServer(const TlsServerOptions& options);
  static absl::StatusOr<std::shared_ptr<TlsContext>> NewClient(const TlsClientOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Derived contexts: this one's configuration and current key pair with
  // one thing changed. ReloadKeyPair() on this context reaches every
  // derived context still in use (and theirs); each has its own session
  // cache.
  //
  // A context that offers `alpn` instead: a client's (e.g. {"h2"} for gRPC)
  // or a server's (e.g. {"http/1.1"} for a port that speaks HTTP/1.1 only).
  absl::StatusOr<std::shared_ptr<TlsContext>> WithAlpn(std::vector<std::string> alpn) const;
  // A client context that sends `server_name` as SNI and verifies the server
  // certificate against it (an IP address: against its IP SANs, no SNI):
  // what a dial by host name uses when this context names no server. Made
  // once per name and kept (up to 1024 names), so connections to one name
  // share their sessions; a session is resumed only under the name it was
  // verified for.
  absl::StatusOr<std::shared_ptr<const TlsContext>> ForServerName(
      const std::string& server_name) const;

  // Replaces the certificate and key, here and in the derived contexts:
  // connections made from now on present them. An error (unreadable, key
  // not matching) keeps the old pair.
  absl::Status ReloadKeyPair(const TlsKeyPair& key_pair);

  bool is_server() const { return is_server_; }
  absl::Duration handshake_timeout() const { return handshake_timeout_; }
  const std::string& server_name() const { return server_name_; }
  bool verify_peer() const { return verify_peer_; }

  // For TlsSession: a new SSL object of the current configuration (owned by
  // the caller, SSL_free). Any thread.
  absl::StatusOr<ssl_st*> NewSsl() const;
  // Client session cache, keyed by the server ("host:port"): the session to
  // resume (a reference the caller frees with SSL_SESSION_free), or null.
  ssl_session_st* TakeSession(const std::string& key) const;
  // Keeps `session` (takes the reference) as the one to resume for `key`.
  void PutSession(const std::string& key, ssl_session_st* session) const;
  // Names the key under which the sessions `ssl` receives are cached;
  // `key` must outlive `ssl`.
  static void SetSessionCacheKey(ssl_st* ssl, const std::string* key);

 private:
  using CtxPtr = std::shared_ptr<ssl_ctx_st>;  // frees with SSL_CTX_free

  TlsContext(bool is_server, absl::Duration handshake_timeout, std::string server_name,
             bool verify_peer, bool session_resumption);
  // Builds an SSL_CTX of this context's configuration with `key_pair`.
  absl::StatusOr<CtxPtr> BuildCtx(const TlsKeyPair& key_pair) const;
  // A new context of this configuration and current key pair, offering
  // `alpn` and (clients) naming `server_name`.
  absl::StatusOr<std::shared_ptr<TlsContext>> DeriveLocked(std::vector<std::string> alpn,
                                                           std::string server_name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(derive_mu_);

  // Constant after creation.
  const bool is_server_;
  const absl::Duration handshake_timeout_;
  const std::string server_name_;
  const bool verify_peer_;
  const bool session_resumption_;
  // The configuration BuildCtx() applies (set once by NewServer/NewClient).
  TlsServerOptions server_options_;
  TlsClientOptions client_options_;
  std::string alpn_wire_;  // ALPN list in wire format (length-prefixed)

  // Derivation and reloads; held across a reload of the derived contexts,
  // so that they end with the pair this one has. Taken before mu_.
  mutable Mutex derive_mu_;
  TlsKeyPair key_pair_ ABSL_GUARDED_BY(derive_mu_);  // the current pair
  // Contexts made by WithAlpn() (owned by their users).
  mutable std::vector<std::weak_ptr<TlsContext>> derived_ ABSL_GUARDED_BY(derive_mu_);
  // Contexts made by ForServerName(), by name.
  mutable absl::flat_hash_map<std::string, std::shared_ptr<TlsContext>> by_name_
      ABSL_GUARDED_BY(derive_mu_);

  mutable Mutex mu_;
  CtxPtr ctx_ ABSL_GUARDED_BY(mu_);  // replaced by ReloadKeyPair
  // Frees with SSL_SESSION_free.
  mutable absl::flat_hash_map<std::string, std::shared_ptr<ssl_session_st>> sessions_
      ABSL_GUARDED_BY(mu_);
};

// The OpenSSL errors queued on this thread (cleared), joined by "; ", or
// `fallback` when none.
std::string DrainOpenSslErrors(absl::string_view fallback = "unknown TLS error");

}  // namespace netpoll

#endif  // NETPOLL_TLS_CONTEXT_H_
