#include "netpoll/tls_session.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace netpoll {
namespace {

// Plaintext one SSL_read offers at most: one TLS record.
constexpr size_t kMaxRecordPlaintext = 16384;
constexpr size_t kMinReadOffer = 1024;

bool IsIpAddress(const std::string& text) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

std::string AsnString(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string IpOf(const ASN1_OCTET_STRING* s) {
  char text[INET6_ADDRSTRLEN] = {0};
  const int len = ASN1_STRING_length(s);
  const unsigned char* data = ASN1_STRING_get0_data(s);
  if (len == 4) {
    inet_ntop(AF_INET, data, text, sizeof(text));
  } else if (len == 16) {
    inet_ntop(AF_INET6, data, text, sizeof(text));
  }
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::Create(
    std::shared_ptr<const TlsContext> context, std::string peer_key, const std::string& peer_ip) {
  absl::StatusOr<SSL*> ssl = context->NewSsl();
  if (!ssl.ok()) return ssl.status();
  std::unique_ptr<TlsSession> session(
      new TlsSession(std::move(context), *ssl, std::move(peer_key)));
  SSL* s = session->ssl_;
  if (session->context_->is_server()) {
    SSL_set_accept_state(s);
    return session;
  }
  SSL_set_connect_state(s);
  TlsContext::SetSessionCacheKey(s, &session->peer_key_);
  const std::string& name = session->context_->server_name();
  if (session->context_->verify_peer()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(s);
    const std::string& expected = name.empty() ? peer_ip : name;
    if (IsIpAddress(expected)) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, expected.c_str()) != 1) {
        return absl::InvalidArgumentError(absl::StrCat("TLS expected IP ", expected));
      }
    } else if (!expected.empty() && SSL_set1_host(s, expected.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("TLS expected host name ", expected));
    }
  }
  if (!name.empty() && !IsIpAddress(name) && SSL_set_tlsext_host_name(s, name.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("TLS server name (SNI) ", name));
  }
  if (!session->peer_key_.empty()) {
    if (SSL_SESSION* cached = session->context_->TakeSession(session->peer_key_)) {
      SSL_set_session(s, cached);
      SSL_SESSION_free(cached);
    }
  }
  return session;
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, SSL* ssl, std::string peer_key)
    : context_(std::move(context)),
      ssl_(ssl),
      rbio_(BIO_new(BIO_s_mem())),
      wbio_(BIO_new(BIO_s_mem())),
      peer_key_(std::move(peer_key)) {
  // An empty read BIO means "more to come", not EOF.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);  // ssl_ owns both now
}

TlsSession::~TlsSession() {
  // A connection closed without close_notify keeps its session resumable
  // (OpenSSL would drop it, a TLS 1.0 rule that TLS 1.3 dropped).
  if (handshake_done_) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);
}

void TlsSession::DrainWire(LinkBuffer& wire_out) {
  while (size_t pending = BIO_ctrl_pending(wbio_)) {
    absl::Span<char> room = wire_out.Malloc(pending);
    const int n = BIO_read(wbio_, room.data(), static_cast<int>(room.size()));
    wire_out.MallocAck(n > 0 ? static_cast<size_t>(n) : 0);
    if (n <= 0) break;
  }
}

absl::Status TlsSession::ErrorOf(int ret, const char* what) {
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return absl::OutOfRangeError("TLS peer sent close_notify");
  }
  std::string reason = DrainOpenSslErrors(err == SSL_ERROR_SYSCALL ? "unexpected end of input"
                                                                   : "unknown TLS error");
  const long verify = SSL_get_verify_result(ssl_);  // NOLINT(google-runtime-int): OpenSSL's type
  if (verify != X509_V_OK) {
    absl::StrAppend(&reason, " (", X509_verify_cert_error_string(verify), ")");
  }
  return absl::UnavailableError(absl::StrCat(what, ": ", reason));
}

absl::Status TlsSession::Start(LinkBuffer& wire_out) {
  if (context_->is_server()) return absl::OkStatus();
  absl::Status s = Handshake();
  DrainWire(wire_out);
  return s;
}

absl::Status TlsSession::Handshake() {
  ERR_clear_error();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    FillInfo();
    return absl::OkStatus();
  }
  const int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return absl::OkStatus();
  return ErrorOf(ret, "TLS handshake failed");
}

absl::Status TlsSession::Receive(LinkBuffer& wire_in, LinkBuffer& plain, LinkBuffer& wire_out) {
  wire_in.ForEachChunk([this](absl::string_view chunk) {
    BIO_write(rbio_, chunk.data(), static_cast<int>(chunk.size()));
  });
  wire_in.Clear();
  if (!handshake_done_) {
    absl::Status s = Handshake();
    DrainWire(wire_out);
    if (!s.ok() || !handshake_done_) return s;
  }
  ERR_clear_error();
  while (true) {
    const size_t buffered = BIO_ctrl_pending(rbio_) + static_cast<size_t>(SSL_pending(ssl_));
    if (buffered == 0) break;
    absl::Span<char> room = plain.Malloc(std::clamp(buffered, kMinReadOffer, kMaxRecordPlaintext));
    const int n = SSL_read(ssl_, room.data(), static_cast<int>(room.size()));
    if (n > 0) {
      plain.MallocAck(static_cast<size_t>(n));
      continue;
    }
    plain.MallocAck(0);
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) break;
    DrainWire(wire_out);  // an alert for the peer, if any
    return ErrorOf(n, "TLS record error");
  }
  DrainWire(wire_out);
  return absl::OkStatus();
}

absl::Status TlsSession::Send(LinkBuffer& plain, LinkBuffer& wire_out) {
  ERR_clear_error();
  absl::Status status;
  plain.ForEachChunk([&](absl::string_view chunk) {
    if (!status.ok()) return;
    // A memory BIO takes everything: SSL_write writes whole chunks.
    const int n = SSL_write(ssl_, chunk.data(), static_cast<int>(chunk.size()));
    if (n <= 0) status = ErrorOf(n, "TLS write failed");
  });
  plain.Clear();
  DrainWire(wire_out);
  return status;
}

void TlsSession::Shutdown(LinkBuffer& wire_out) {
  if (shutdown_sent_ || !handshake_done_) return;
  shutdown_sent_ = true;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
  DrainWire(wire_out);
}

void TlsSession::FillInfo() {
  auto info = std::make_shared<TlsInfo>();
  info->version = SSL_get_version(ssl_);
  info->cipher = SSL_get_cipher_name(ssl_);
  info->session_reused = SSL_session_reused(ssl_) == 1;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn != nullptr) info->alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
    info->peer_verified =
        SSL_get_verify_mode(ssl_) != SSL_VERIFY_NONE && SSL_get_verify_result(ssl_) == X509_V_OK;
    if (BIO* bio = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      const long len = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
      if (len > 0) info->subject.assign(data, static_cast<size_t>(len));
      BIO_free(bio);
    }
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(peer, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_DNS) {
        info->dns_names.push_back(AsnString(name->d.dNSName));
      } else if (name->type == GEN_IPADD) {
        info->ip_addresses.push_back(IpOf(name->d.iPAddress));
      } else if (name->type == GEN_URI) {
        info->uris.push_back(AsnString(name->d.uniformResourceIdentifier));
      }
    }
    GENERAL_NAMES_free(names);
    X509_free(peer);
  }
  info_ = std::move(info);
}

}  // namespace netpoll
