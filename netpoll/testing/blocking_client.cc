#include "netpoll/testing/blocking_client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace netpoll::testing {
namespace {

// ------------------------------------------------ a BIO over a socket fd
//
// OpenSSL's own socket BIO writes with write(2): a peer that closed first
// would raise SIGPIPE and kill the test. This one sends with MSG_NOSIGNAL
// (a closed peer is EPIPE) and leaves errno to SSL_get_error.

// The BIO's data: the fd, on the heap (freed with the BIO).
int FdOf(BIO* bio) { return *static_cast<int*>(BIO_get_data(bio)); }

int SocketBioWrite(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::send(FdOf(bio), data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int SocketBioRead(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::recv(FdOf(bio), out, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(bio);
  }
  return static_cast<int>(n);
}

long SocketBioCtrl(BIO*, int cmd, long, void*) {  // NOLINT(google-runtime-int): OpenSSL's type
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int SocketBioCreate(BIO* bio) {
  BIO_set_data(bio, new int(-1));
  BIO_set_init(bio, 1);
  return 1;
}

int SocketBioDestroy(BIO* bio) {
  delete static_cast<int*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  static const BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "test socket");
    BIO_meth_set_write(m, SocketBioWrite);
    BIO_meth_set_read(m, SocketBioRead);
    BIO_meth_set_ctrl(m, SocketBioCtrl);
    BIO_meth_set_create(m, SocketBioCreate);
    BIO_meth_set_destroy(m, SocketBioDestroy);
    return m;
  }();
  return method;
}

// ------------------------------------------------ OpenSSL helpers

std::string TakeOpenSslErrors(absl::string_view fallback) {
  std::vector<std::string> reasons;
  while (unsigned long code = ERR_get_error()) {  // NOLINT(google-runtime-int): OpenSSL's type
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    reasons.emplace_back(buf);
  }
  return reasons.empty() ? std::string(fallback) : absl::StrJoin(reasons, "; ");
}

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// Adds every certificate of `pem` to the context's trust store.
absl::Status TrustPem(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert);
    X509_free(cert);
    ++added;
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the PEM text reads as an error
  if (added == 0) return absl::InvalidArgumentError("ca_pem holds no certificate");
  return absl::OkStatus();
}

absl::Status UseKeyPair(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem) {
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  const bool ok = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(ctx, cert) == 1 &&
                  SSL_CTX_use_PrivateKey(ctx, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("client certificate: ", TakeOpenSslErrors("unusable PEM")));
  }
  return absl::OkStatus();
}

absl::StatusOr<CtxPtr> NewClientCtx(const BlockingTlsOptions& tls) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) return absl::InternalError(TakeOpenSslErrors("SSL_CTX_new failed"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // The end of the stream without close_notify reads as EOF (a server that
  // closes on an error need not say goodbye first).
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!tls.ca_pem.empty()) {
    if (absl::Status s = TrustPem(ctx.get(), tls.ca_pem); !s.ok()) return s;
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!tls.cert_pem.empty()) {
    if (absl::Status s = UseKeyPair(ctx.get(), tls.cert_pem, tls.key_pem); !s.ok()) return s;
  }
  if (!tls.alpn.empty()) {
    std::string wire;
    for (const std::string& protocol : tls.alpn) {
      wire.push_back(static_cast<char>(protocol.size()));
      wire += protocol;
    }
    SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  return ctx;
}

// The numeric host of `address` ("127.0.0.1", "::1"); empty for others.
std::string NumericHost(const SocketAddress& address) {
  char host[INET6_ADDRSTRLEN] = {};
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.sockaddr());
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
  } else if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.sockaddr());
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  }
  return host;
}

// Puts `fd` in non-blocking mode for the scope (the modes of SendAllWhileReading
// and WaitForClose), then back.
class NonBlockingScope {
 public:
  explicit NonBlockingScope(int fd) : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {
    ::fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK);
  }
  ~NonBlockingScope() { ::fcntl(fd_, F_SETFL, flags_); }
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

 private:
  const int fd_;
  const int flags_;
};

}  // namespace

void BlockingClient::SslDeleter::operator()(ssl_st* ssl) const { SSL_free(ssl); }

BlockingClient::BlockingClient(BlockingClient&&) noexcept = default;
BlockingClient& BlockingClient::operator=(BlockingClient&&) noexcept = default;
BlockingClient::~BlockingClient() = default;

absl::StatusOr<BlockingClient> BlockingClient::Connect(const SocketAddress& address,
                                                       absl::Duration timeout) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  UniqueFd owned(fd);
  struct timeval tv;
  tv.tv_sec = absl::ToInt64Seconds(timeout);
  tv.tv_usec = absl::ToInt64Microseconds(timeout) % 1000000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, address.sockaddr(), address.length()) != 0) {
    return absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
  }
  return BlockingClient(std::move(owned), timeout);
}

absl::StatusOr<BlockingClient> BlockingClient::ConnectTls(const SocketAddress& address,
                                                          const BlockingTlsOptions& tls,
                                                          absl::Duration timeout) {
  absl::StatusOr<CtxPtr> ctx = NewClientCtx(tls);
  if (!ctx.ok()) return ctx.status();
  absl::StatusOr<BlockingClient> client = Connect(address, timeout);
  if (!client.ok()) return client.status();
  // The SSL keeps its own reference to the context.
  client->ssl_.reset(SSL_new(ctx->get()));
  SSL* ssl = client->ssl_.get();
  if (ssl == nullptr) return absl::InternalError(TakeOpenSslErrors("SSL_new failed"));
  if (!tls.server_name.empty()) {
    SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
    SSL_set1_host(ssl, tls.server_name.c_str());
  } else if (!tls.ca_pem.empty()) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), NumericHost(address).c_str());
  }
  BIO* bio = BIO_new(SocketBioMethod());
  if (bio == nullptr) return absl::InternalError(TakeOpenSslErrors("BIO_new failed"));
  *static_cast<int*>(BIO_get_data(bio)) = client->fd();
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by ssl
  ERR_clear_error();
  const int ret = SSL_connect(ssl);
  if (ret != 1) {
    const int err = SSL_get_error(ssl, ret);
    std::string reason = TakeOpenSslErrors(err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN
                                               ? "connection closed"
                                           : err == SSL_ERROR_WANT_READ ? "timed out"
                                                                        : "unknown error");
    const long verify = SSL_get_verify_result(ssl);  // NOLINT(google-runtime-int)
    if (verify != X509_V_OK) {
      absl::StrAppend(&reason, " (", X509_verify_cert_error_string(verify), ")");
    }
    return absl::UnavailableError(absl::StrCat("TLS handshake: ", reason));
  }
  return client;
}

absl::StatusOr<size_t> BlockingClient::ReadSome(char* out, size_t n) {
  if (ssl_ == nullptr) {
    while (true) {
      const ssize_t r = ::recv(fd_.get(), out, n, 0);
      if (r > 0) return static_cast<size_t>(r);
      if (r == 0) return absl::OutOfRangeError("EOF");
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    }
  }
  ERR_clear_error();
  errno = 0;
  const int r = SSL_read(ssl_.get(), out, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  if (r > 0) return static_cast<size_t>(r);
  switch (SSL_get_error(ssl_.get(), r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return 0;
    case SSL_ERROR_ZERO_RETURN:  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
      ERR_clear_error();
      return absl::OutOfRangeError("EOF");
    case SSL_ERROR_SYSCALL:
      if (errno == 0) return absl::OutOfRangeError("EOF");
      ERR_clear_error();
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    default:
      return absl::UnavailableError(
          absl::StrCat("TLS read: ", TakeOpenSslErrors("unknown TLS error")));
  }
}

absl::StatusOr<size_t> BlockingClient::WriteSome(absl::string_view data) {
  if (ssl_ == nullptr) {
    while (true) {
      const ssize_t w = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (w >= 0) return static_cast<size_t>(w);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    }
  }
  ERR_clear_error();
  errno = 0;
  const int w =
      SSL_write(ssl_.get(), data.data(), static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
  if (w > 0) return static_cast<size_t>(w);
  switch (SSL_get_error(ssl_.get(), w)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return 0;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      return absl::UnavailableError(
          absl::StrCat("send: ", errno != 0 ? strerror(errno) : "connection closed"));
    default:
      return absl::UnavailableError(
          absl::StrCat("TLS write: ", TakeOpenSslErrors("unknown TLS error")));
  }
}

absl::Status BlockingClient::SendAll(absl::string_view data) {
  while (!data.empty()) {
    absl::StatusOr<size_t> n = WriteSome(data);
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::UnavailableError("send: timed out");
    data.remove_prefix(*n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlockingClient::ReadExactly(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    absl::StatusOr<size_t> r = ReadSome(out.data() + got, n - got);
    if (absl::IsOutOfRange(r.status())) {
      return absl::UnavailableError(absl::StrCat("EOF after ", got, " of ", n, " bytes"));
    }
    if (!r.ok()) return r.status();
    if (*r == 0) return absl::UnavailableError("recv: timed out");
    got += *r;
  }
  return out;
}

absl::StatusOr<std::string> BlockingClient::ReadUntilEof() {
  std::string out;
  char buf[4096];
  while (true) {
    absl::StatusOr<size_t> r = ReadSome(buf, sizeof(buf));
    if (absl::IsOutOfRange(r.status())) return out;
    if (!r.ok()) return r.status();
    if (*r == 0) return absl::UnavailableError("recv: timed out");
    out.append(buf, *r);
  }
}

absl::Status BlockingClient::SendAllWhileReading(
    absl::string_view data, std::string& received,
    absl::FunctionRef<bool(std::string& received)> done) {
  NonBlockingScope non_blocking(fd_.get());
  absl::Time last_progress = absl::Now();
  char buf[1 << 16];
  bool finished = done(received);
  while (!data.empty() || !finished) {
    bool progress = false;
    if (!data.empty()) {
      absl::StatusOr<size_t> w = WriteSome(data);
      if (!w.ok()) return w.status();
      data.remove_prefix(*w);
      progress = *w > 0;
    }
    while (true) {
      absl::StatusOr<size_t> r = ReadSome(buf, sizeof(buf));
      if (absl::IsOutOfRange(r.status())) {
        return absl::UnavailableError(
            absl::StrCat("EOF with ", data.size(), " bytes unsent and reading not done"));
      }
      if (!r.ok()) return r.status();
      if (*r == 0) break;
      received.append(buf, *r);
      progress = true;
    }
    if (progress) {
      finished = done(received);
      last_progress = absl::Now();
      continue;
    }
    const absl::Duration left = last_progress + timeout_ - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("no progress for ",
                                                      absl::FormatDuration(timeout_), " with ",
                                                      data.size(), " bytes unsent"));
    }
    // NOLINTNEXTLINE(google-runtime-int): pollfd::events is a short.
    const auto events = static_cast<short>(POLLIN | (data.empty() ? 0 : POLLOUT));
    struct pollfd pfd = {fd_.get(), events, 0};
    ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
  return absl::OkStatus();
}

bool BlockingClient::WaitForClose(absl::Duration timeout) {
  NonBlockingScope non_blocking(fd_.get());
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (true) {
    absl::StatusOr<size_t> r = ReadSome(buf, sizeof(buf));
    if (!r.ok()) return true;  // EOF, a reset, or (TLS) an alert
    if (*r > 0) continue;      // dropped
    if (absl::Now() >= deadline) return false;
    struct pollfd pfd = {fd_.get(), POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1;
    ::poll(&pfd, 1, ms);
  }
}

void BlockingClient::ShutdownWrite() {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());  // sends close_notify; 0: the peer's is not read yet
    ERR_clear_error();
  }
  ::shutdown(fd_.get(), SHUT_WR);
}

void BlockingClient::Reset() {
  struct linger linger = {1, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
  ssl_.reset();
  fd_.reset();
}

std::string BlockingClient::alpn() const {
  if (ssl_ == nullptr) return "";
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the DIR's own fd
}

int64_t VmRssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = -1;
      return absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                                  absl::StripAsciiWhitespace(line.substr(6)), "kB")),
                              &kib)
                 ? kib
                 : -1;
    }
  }
  return -1;
}

}  // namespace netpoll::testing
