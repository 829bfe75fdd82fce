#include "netpoll/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace netpoll {
namespace {

// The most sessions a client context keeps for resumption (one per server).
constexpr size_t kMaxCachedSessions = 1024;
// The most contexts ForServerName() keeps (one per server name).
constexpr size_t kMaxServerNames = 1024;

int ToOpenSsl(TlsVersion version) {
  return version == TlsVersion::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

absl::Status LoadKeyPair(SSL_CTX* ctx, const TlsKeyPair& pair) {
  if (!pair.cert_chain_pem.empty()) {
    BioPtr bio(
        BIO_new_mem_buf(pair.cert_chain_pem.data(), static_cast<int>(pair.cert_chain_pem.size())));
    X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
    if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
      X509_free(leaf);
      return absl::InvalidArgumentError(
          absl::StrCat("TLS certificate chain: ", DrainOpenSslErrors("no certificate in PEM")));
    }
    X509_free(leaf);
    SSL_CTX_clear_chain_certs(ctx);
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
        X509_free(extra);
        return absl::InvalidArgumentError(
            absl::StrCat("TLS certificate chain: ", DrainOpenSslErrors()));
      }
    }
    ERR_clear_error();  // the end of the PEM text
  } else if (!pair.cert_chain_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, pair.cert_chain_file.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS certificate chain ", pair.cert_chain_file, ": ", DrainOpenSslErrors()));
    }
  } else {
    return absl::InvalidArgumentError("TLS key pair without a certificate");
  }
  if (!pair.private_key_pem.empty()) {
    BioPtr bio(BIO_new_mem_buf(pair.private_key_pem.data(),
                               static_cast<int>(pair.private_key_pem.size())));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (key == nullptr || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
      EVP_PKEY_free(key);
      return absl::InvalidArgumentError(
          absl::StrCat("TLS private key: ", DrainOpenSslErrors("no key in PEM")));
    }
    EVP_PKEY_free(key);
  } else if (!pair.private_key_file.empty()) {
    if (SSL_CTX_use_PrivateKey_file(ctx, pair.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS private key ", pair.private_key_file, ": ", DrainOpenSslErrors()));
    }
  } else {
    return absl::InvalidArgumentError("TLS key pair without a private key");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS private key does not match the certificate: ", DrainOpenSslErrors()));
  }
  return absl::OkStatus();
}

absl::Status LoadCa(SSL_CTX* ctx, const std::string& pem, const std::string& file) {
  if (!pem.empty()) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      if (X509_STORE_add_cert(store, ca) == 1) ++added;
      X509_free(ca);
    }
    ERR_clear_error();
    if (added == 0) return absl::InvalidArgumentError("TLS CA: no certificate in PEM");
  }
  if (!file.empty() && SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS CA file ", file, ": ", DrainOpenSslErrors()));
  }
  return absl::OkStatus();
}

// ALPN names as the wire wants them: each prefixed by its length.
absl::StatusOr<std::string> AlpnWire(const std::vector<std::string>& names) {
  std::string wire;
  for (const std::string& name : names) {
    if (name.empty() || name.size() > 255) {
      return absl::InvalidArgumentError(absl::StrCat("bad ALPN protocol name \"", name, "\""));
    }
    wire.push_back(static_cast<char>(name.size()));
    wire.append(name);
  }
  return wire;
}

int SelectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len,
               const unsigned char* in, unsigned int in_len, void* arg) {
  const auto* server_wire = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(
          &selected, out_len, reinterpret_cast<const unsigned char*>(server_wire->data()),
          static_cast<unsigned int>(server_wire->size()), in, in_len) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int CacheKeyIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int OnNewSession(SSL* ssl, SSL_SESSION* session) {
  const auto* context = static_cast<const TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, CacheKeyIndex()));
  if (context == nullptr || key == nullptr || key->empty()) return 0;
  context->PutSession(*key, session);
  return 1;  // the cache keeps the reference
}

}  // namespace

std::string DrainOpenSslErrors(absl::string_view fallback) {
  std::vector<std::string> parts;
  while (unsigned long e = ERR_get_error()) {  // NOLINT(google-runtime-int): OpenSSL's type
    const char* reason = ERR_reason_error_string(e);
    parts.push_back(reason != nullptr ? reason : absl::StrCat("error ", e));
  }
  if (parts.empty()) return std::string(fallback);
  return absl::StrJoin(parts, "; ");
}

TlsContext::TlsContext(bool is_server, absl::Duration handshake_timeout, std::string server_name,
                       bool verify_peer, bool session_resumption)
    : is_server_(is_server),
      handshake_timeout_(handshake_timeout),
      server_name_(std::move(server_name)),
      verify_peer_(verify_peer),
      session_resumption_(session_resumption) {}

TlsContext::~TlsContext() = default;

void TlsContext::SetSessionCacheKey(SSL* ssl, const std::string* key) {
  SSL_set_ex_data(ssl, CacheKeyIndex(), const_cast<std::string*>(key));
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::NewServer(const TlsServerOptions& options) {
  std::shared_ptr<TlsContext> context(
      new TlsContext(/*is_server=*/true, options.handshake_timeout, "",
                     options.client_cert != TlsServerOptions::ClientCert::kNone, false));
  context->server_options_ = options;
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();
  context->alpn_wire_ = *std::move(alpn);
  absl::StatusOr<CtxPtr> ctx = context->BuildCtx(options.key_pair);
  if (!ctx.ok()) return ctx.status();
  MutexLock derive_lock(&context->derive_mu_);
  context->key_pair_ = options.key_pair;
  MutexLock lock(&context->mu_);
  context->ctx_ = *std::move(ctx);
  return context;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::NewClient(const TlsClientOptions& options) {
  std::shared_ptr<TlsContext> context(new TlsContext(/*is_server=*/false, options.handshake_timeout,
                                                     options.server_name, options.verify_server,
                                                     options.session_resumption));
  context->client_options_ = options;
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();
  context->alpn_wire_ = *std::move(alpn);
  absl::StatusOr<CtxPtr> ctx = context->BuildCtx(options.key_pair);
  if (!ctx.ok()) return ctx.status();
  MutexLock derive_lock(&context->derive_mu_);
  context->key_pair_ = options.key_pair;
  MutexLock lock(&context->mu_);
  context->ctx_ = *std::move(ctx);
  return context;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::DeriveLocked(
    std::vector<std::string> alpn, std::string server_name) const {
  if (is_server_) {
    TlsServerOptions options = server_options_;
    options.key_pair = key_pair_;
    options.alpn = std::move(alpn);
    return NewServer(options);
  }
  TlsClientOptions options = client_options_;
  options.key_pair = key_pair_;
  options.alpn = std::move(alpn);
  options.server_name = std::move(server_name);
  return NewClient(options);
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::WithAlpn(
    std::vector<std::string> alpn) const {
  MutexLock lock(&derive_mu_);
  absl::StatusOr<std::shared_ptr<TlsContext>> derived = DeriveLocked(std::move(alpn), server_name_);
  if (!derived.ok()) return derived.status();
  std::erase_if(derived_, [](const std::weak_ptr<TlsContext>& d) { return d.expired(); });
  derived_.push_back(*derived);
  return derived;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::ForServerName(
    const std::string& server_name) const {
  if (is_server_) return absl::InvalidArgumentError("ForServerName() needs a client context");
  if (server_name.empty()) return absl::InvalidArgumentError("ForServerName() needs a name");
  MutexLock lock(&derive_mu_);
  if (auto it = by_name_.find(server_name); it != by_name_.end()) return it->second;
  absl::StatusOr<std::shared_ptr<TlsContext>> derived =
      DeriveLocked(client_options_.alpn, server_name);
  if (!derived.ok()) return derived.status();
  if (by_name_.size() >= kMaxServerNames) {
    by_name_.erase(by_name_.begin());  // any one: a bound, not an LRU
  }
  by_name_[server_name] = *derived;
  return *std::move(derived);
}

absl::StatusOr<TlsContext::CtxPtr> TlsContext::BuildCtx(const TlsKeyPair& key_pair) const {
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(is_server_ ? TLS_server_method() : TLS_client_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError(DrainOpenSslErrors("SSL_CTX_new failed"));
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_app_data(c, const_cast<TlsContext*>(this));
  // Renegotiation is refused: it is a known DoS lever and nothing needs it.
  SSL_CTX_set_options(
      c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their record buffers back.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  const TlsVersion min = is_server_ ? server_options_.min_version : client_options_.min_version;
  const TlsVersion max = is_server_ ? server_options_.max_version : client_options_.max_version;
  if (SSL_CTX_set_min_proto_version(c, ToOpenSsl(min)) != 1 ||
      SSL_CTX_set_max_proto_version(c, ToOpenSsl(max)) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("TLS versions: ", DrainOpenSslErrors()));
  }
  const std::string& ciphers =
      is_server_ ? server_options_.cipher_list : client_options_.cipher_list;
  if (!ciphers.empty() && SSL_CTX_set_cipher_list(c, ciphers.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS cipher list \"", ciphers, "\": ", DrainOpenSslErrors()));
  }
  const std::string& suites =
      is_server_ ? server_options_.ciphersuites : client_options_.ciphersuites;
  if (!suites.empty() && SSL_CTX_set_ciphersuites(c, suites.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS 1.3 cipher suites \"", suites, "\": ", DrainOpenSslErrors()));
  }
  if (is_server_) {
    if (absl::Status s = LoadKeyPair(c, key_pair); !s.ok()) return s;
    const TlsServerOptions& o = server_options_;
    if (o.client_cert != TlsServerOptions::ClientCert::kNone) {
      if (o.ca_pem.empty() && o.ca_file.empty()) {
        return absl::InvalidArgumentError("TLS client certificates need a CA (ca_pem or ca_file)");
      }
      if (absl::Status s = LoadCa(c, o.ca_pem, o.ca_file); !s.ok()) return s;
      int mode = SSL_VERIFY_PEER;
      if (o.client_cert == TlsServerOptions::ClientCert::kRequire) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      }
      SSL_CTX_set_verify(c, mode, nullptr);
    }
    if (!alpn_wire_.empty()) {
      SSL_CTX_set_alpn_select_cb(c, SelectAlpn, const_cast<std::string*>(&alpn_wire_));
    }
    // Resumption (TLS 1.3 tickets, TLS 1.2 tickets or ids); a resumed
    // session must come from a context of this configuration. The server's
    // cache is bounded.
    static constexpr unsigned char kSessionIdContext[] = "nprpc";
    SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof(kSessionIdContext) - 1);
    SSL_CTX_sess_set_cache_size(c, kMaxCachedSessions);
  } else {
    const TlsClientOptions& o = client_options_;
    if (!key_pair.cert_chain_pem.empty() || !key_pair.cert_chain_file.empty()) {
      if (absl::Status s = LoadKeyPair(c, key_pair); !s.ok()) return s;
    }
    if (o.ca_pem.empty() && o.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(c) != 1) {
        return absl::InternalError(absl::StrCat("TLS default CAs: ", DrainOpenSslErrors()));
      }
    } else if (absl::Status s = LoadCa(c, o.ca_pem, o.ca_file); !s.ok()) {
      return s;
    }
    SSL_CTX_set_verify(c, o.verify_server ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!alpn_wire_.empty() &&
        SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(alpn_wire_.data()),
                                static_cast<unsigned int>(alpn_wire_.size())) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("TLS ALPN: ", DrainOpenSslErrors()));
    }
    if (o.session_resumption) {
      SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(c, OnNewSession);
    } else {
      SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    }
  }
  return ctx;
}

absl::Status TlsContext::ReloadKeyPair(const TlsKeyPair& key_pair) {
  MutexLock derive_lock(&derive_mu_);
  absl::StatusOr<CtxPtr> ctx = BuildCtx(key_pair);
  if (!ctx.ok()) return ctx.status();
  CtxPtr old;
  {
    MutexLock lock(&mu_);
    old = std::move(ctx_);
    ctx_ = *std::move(ctx);
  }
  key_pair_ = key_pair;
  // `old` lives on in the SSL objects made from it. The derived contexts
  // share this one's configuration, so the pair that loaded here loads
  // there too.
  absl::Status status;
  std::erase_if(derived_, [](const std::weak_ptr<TlsContext>& d) { return d.expired(); });
  for (const std::weak_ptr<TlsContext>& weak : derived_) {
    if (std::shared_ptr<TlsContext> derived = weak.lock())
      status.Update(derived->ReloadKeyPair(key_pair));
  }
  for (auto& entry : by_name_) status.Update(entry.second->ReloadKeyPair(key_pair));
  return status;
}

absl::StatusOr<SSL*> TlsContext::NewSsl() const {
  CtxPtr ctx;
  {
    MutexLock lock(&mu_);
    ctx = ctx_;
  }
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.get());  // holds its own reference to ctx
  if (ssl == nullptr) return absl::InternalError(DrainOpenSslErrors("SSL_new failed"));
  return ssl;
}

SSL_SESSION* TlsContext::TakeSession(const std::string& key) const {
  if (!session_resumption_) return nullptr;
  MutexLock lock(&mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* session = it->second.get();
  if (SSL_SESSION_is_resumable(session) != 1) {
    sessions_.erase(it);
    return nullptr;
  }
  SSL_SESSION_up_ref(session);
  return session;
}

void TlsContext::PutSession(const std::string& key, SSL_SESSION* session) const {
  std::shared_ptr<SSL_SESSION> owned(session, SSL_SESSION_free);
  MutexLock lock(&mu_);
  if (sessions_.size() >= kMaxCachedSessions && !sessions_.contains(key)) {
    sessions_.erase(sessions_.begin());  // any one: a bound, not an LRU
  }
  sessions_[key] = std::move(owned);
}

}  // namespace netpoll
