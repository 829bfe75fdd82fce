#include "netpoll/tls_session.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
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

// SSL_get_error() needs the thread's error queue empty before an SSL_* call.
// It nearly always is (every error we meet is drained into a Status), and
// ERR_peek_error() is a fraction of ERR_clear_error(), which resets all 16
// slots of the queue: a measurable share of a small record's cost.
void ClearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// A TLS record's header: type, version (2 bytes), body length (2 bytes).
constexpr size_t kRecordHeader = 5;
// The longest record body any TLS version allows (TLS 1.2: 2^14 + 2048).
constexpr size_t kMaxRecordBody = 16384 + 2048;

}  // namespace

// The BIO methods between OpenSSL and the connection's LinkBuffers: OpenSSL
// reads ciphertext straight from the connection's wire input and writes
// records straight into its wire output, with no memory BIO (and its copy
// and reallocations) in between. Reads hand over whole records only: a
// record still arriving waits in the wire input, which the connection
// charges to its memory budget, instead of in OpenSSL's read buffer, which
// SSL_MODE_RELEASE_BUFFERS then frees after every read.
struct TlsSession::Bio {
  static int Write(BIO* bio, const char* data, size_t len, size_t* written) {
    auto* session = static_cast<TlsSession*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (session->wire_out_ == nullptr) {  // outside a call: nowhere to write
      BIO_set_retry_write(bio);
      return 0;
    }
    session->wire_out_->WriteBinary(absl::string_view(data, len));
    *written = len;
    return 1;
  }

  static int Read(BIO* bio, char* data, size_t len, size_t* read) {
    auto* session = static_cast<TlsSession*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    LinkBuffer* in = session->wire_in_;
    if (in == nullptr || in->empty() || !session->WholeRecordAvailable()) {
      BIO_set_retry_read(bio);
      return 0;
    }
    const size_t n = std::min({len, in->Len(), session->record_left_});
    (void)in->ReadBinary(absl::MakeSpan(data, n));
    session->record_left_ -= n;
    *read = n;
    return 1;
  }

  static long Ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {  // NOLINT(google-runtime-int)
    auto* session = static_cast<TlsSession*>(BIO_get_data(bio));
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return session->wire_in_ == nullptr
                   ? 0
                   : static_cast<long>(session->wire_in_->Len());  // NOLINT
      default:
        return 0;
    }
  }

  static int Create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static int Destroy(BIO* /*bio*/) { return 1; }

  static const BIO_METHOD* Method() {
    static const BIO_METHOD* const method = [] {
      BIO_METHOD* m =
          BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netpoll LinkBuffer");
      BIO_meth_set_write_ex(m, Write);
      BIO_meth_set_read_ex(m, Read);
      BIO_meth_set_ctrl(m, Ctrl);
      BIO_meth_set_create(m, Create);
      BIO_meth_set_destroy(m, Destroy);
      return m;
    }();
    return method;
  }
};

bool TlsSession::WholeRecordAvailable() {
  if (record_left_ > 0) return true;
  unsigned char header[kRecordHeader];
  if (!wire_in_->PeekCopy(kRecordHeader, reinterpret_cast<char*>(header))) return false;
  const size_t body = static_cast<size_t>(header[3]) << 8 | header[4];
  // A header no record may have (content type 20-24, version 3.x, length)
  // goes to OpenSSL at once, which refuses it without waiting for the body.
  const bool plausible =
      header[0] >= 20 && header[0] <= 24 && header[1] == 3 && body <= kMaxRecordBody;
  if (plausible && wire_in_->Len() < kRecordHeader + body) return false;
  record_left_ = kRecordHeader + body;
  return true;
}

// Points the BIOs at a call's buffers for its duration.
class TlsSession::Io {
 public:
  Io(TlsSession& session, LinkBuffer* wire_in, LinkBuffer* wire_out) : session_(session) {
    session_.wire_in_ = wire_in;
    session_.wire_out_ = wire_out;
  }
  ~Io() {
    session_.wire_in_ = nullptr;
    session_.wire_out_ = nullptr;
  }
  Io(const Io&) = delete;
  Io& operator=(const Io&) = delete;

 private:
  TlsSession& session_;
};

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
    : context_(std::move(context)), ssl_(ssl), peer_key_(std::move(peer_key)) {
  BIO* rbio = BIO_new(Bio::Method());
  BIO* wbio = BIO_new(Bio::Method());
  BIO_set_data(rbio, this);
  BIO_set_data(wbio, this);
  SSL_set_bio(ssl_, rbio, wbio);  // ssl_ owns both now
}

TlsSession::~TlsSession() {
  // A connection closed without close_notify keeps its session resumable
  // (OpenSSL would drop it, a TLS 1.0 rule that TLS 1.3 dropped).
  if (handshake_done_) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);
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
  Io io(*this, nullptr, &wire_out);
  return Handshake();
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
  Io io(*this, &wire_in, &wire_out);
  if (!handshake_done_) {
    absl::Status s = Handshake();
    if (!s.ok() || !handshake_done_) return s;
  }
  ClearStaleErrors();
  while (true) {
    const size_t buffered = wire_in.Len() + static_cast<size_t>(SSL_pending(ssl_));
    if (buffered == 0) break;
    absl::Span<char> room = plain.Malloc(std::clamp(buffered, kMinReadOffer, kMaxRecordPlaintext));
    const int n = SSL_read(ssl_, room.data(), static_cast<int>(room.size()));
    if (n > 0) {
      plain.MallocAck(static_cast<size_t>(n));
      continue;
    }
    plain.MallocAck(0);
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) break;  // the rest of a record is still coming
    return ErrorOf(n, "TLS record error");  // an alert for the peer is in wire_out
  }
  return absl::OkStatus();
}

absl::Status TlsSession::Send(LinkBuffer& plain, LinkBuffer& wire_out) {
  Io io(*this, nullptr, &wire_out);
  ClearStaleErrors();
  absl::Status status;
  // Each SSL_write costs a record (header, tag, and OpenSSL's per-record
  // cipher setup, which dominates for small records): chunks smaller than a
  // record are gathered into full records first. A chunk of a record or more
  // goes to OpenSSL as it is (it splits it into records itself).
  char stage[kMaxRecordPlaintext];
  size_t staged = 0;
  const auto write = [&](const char* data, size_t len) {
    if (!status.ok() || len == 0) return;
    // The BIO takes everything: SSL_write writes all of it.
    const int n = SSL_write(ssl_, data, static_cast<int>(len));
    if (n <= 0) status = ErrorOf(n, "TLS write failed");
  };
  plain.ForEachChunk([&](absl::string_view chunk) {
    while (!chunk.empty()) {
      if (staged == 0 && chunk.size() >= kMaxRecordPlaintext) {
        write(chunk.data(), chunk.size());
        return;
      }
      const size_t n = std::min(chunk.size(), kMaxRecordPlaintext - staged);
      memcpy(stage + staged, chunk.data(), n);
      staged += n;
      chunk.remove_prefix(n);
      if (staged == kMaxRecordPlaintext) {
        write(stage, staged);
        staged = 0;
      }
    }
  });
  write(stage, staged);
  plain.Clear();
  return status;
}

void TlsSession::Shutdown(LinkBuffer& wire_out) {
  if (shutdown_sent_ || !handshake_done_) return;
  shutdown_sent_ = true;
  Io io(*this, nullptr, &wire_out);
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
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
