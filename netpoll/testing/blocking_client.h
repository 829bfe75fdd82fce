// BlockingClient: a plain blocking socket for tests, to talk to a server the
// way an independent peer would (no netpoll code on the client side). With
// ConnectTls() it speaks TLS over that socket with OpenSSL directly (its own
// SSL_CTX, a blocking handshake in ConnectTls), and every method below reads
// and writes plaintext through TLS records.
//
//   auto plain = BlockingClient::Connect(address);
//   auto tls = BlockingClient::ConnectTls(address, {.ca_pem = ca->cert_pem(),
//                                                   .server_name = "",
//                                                   .cert_pem = "", .key_pem = "",
//                                                   .alpn = {}});
//   (void)tls->SendAll("SSH-2.0-garbage\r\n");   // inside a TLS record
//   EXPECT_TRUE(tls->WaitForClose(absl::Seconds(5)));
//
// Thread safety: one thread at a time (also with TLS: OpenSSL's SSL object
// takes no concurrent reader and writer; SendAllWhileReading() does both).
#ifndef NETPOLL_TESTING_BLOCKING_CLIENT_H_
#define NETPOLL_TESTING_BLOCKING_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"

struct ssl_st;  // OpenSSL's SSL, kept out of this header

namespace netpoll::testing {

// TLS of a BlockingClient (TLS 1.2 or 1.3, OpenSSL's defaults otherwise).
struct BlockingTlsOptions {
  // The CA (PEM) that must have signed the server's certificate; empty
  // accepts any server.
  std::string ca_pem;
  // Sent as SNI and matched against the certificate's names; empty: the
  // dialed IP address is matched against its IP SANs.
  std::string server_name;
  // A client certificate and its key (PEM) for mutual TLS; empty: none.
  std::string cert_pem;
  std::string key_pem;
  // Protocols offered by ALPN (empty: no ALPN).
  std::vector<std::string> alpn;
};

class BlockingClient {
 public:
  static absl::StatusOr<BlockingClient> Connect(const SocketAddress& address,
                                                absl::Duration timeout = absl::Seconds(5));
  // Connects and completes a TLS handshake (the server verified as `tls`
  // says); UNAVAILABLE naming OpenSSL's reason when the handshake fails.
  static absl::StatusOr<BlockingClient> ConnectTls(const SocketAddress& address,
                                                   const BlockingTlsOptions& tls,
                                                   absl::Duration timeout = absl::Seconds(5));
  BlockingClient(BlockingClient&&) noexcept;
  BlockingClient& operator=(BlockingClient&&) noexcept;
  ~BlockingClient();

  absl::Status SendAll(absl::string_view data);
  // Reads exactly n bytes or fails (timeout, EOF, error).
  absl::StatusOr<std::string> ReadExactly(size_t n);
  // Reads whatever arrives until EOF (with TLS: close_notify or the end of
  // the stream); OK with the bytes, error on timeout or reset.
  absl::StatusOr<std::string> ReadUntilEof();
  // Sends `data` while reading what arrives, without a second thread (a
  // peer that answers while it is being sent to cannot block us on a full
  // socket). Bytes read are appended to `received`; `done` may consume them
  // and says when reading may stop. OK once everything is sent and `done`
  // returned true; an error on EOF, a reset, or timeout() without progress.
  absl::Status SendAllWhileReading(absl::string_view data, std::string& received,
                                   absl::FunctionRef<bool(std::string& received)> done);
  // True when the peer closed (EOF, a reset, with TLS also close_notify or
  // a fatal alert) within the timeout. Data arriving meanwhile is dropped.
  bool WaitForClose(absl::Duration timeout);
  // Half-close: no more data from this side (with TLS, a close_notify
  // first). Reading still works.
  void ShutdownWrite();
  // Close with SO_LINGER 0: the peer sees a reset (with TLS, no alert).
  void Reset();
  int fd() const { return fd_.get(); }
  bool is_tls() const { return ssl_ != nullptr; }
  // The protocol ALPN chose; empty without TLS or when none was.
  std::string alpn() const;

 private:
  struct SslDeleter {
    void operator()(ssl_st* ssl) const;
  };

  BlockingClient(UniqueFd fd, absl::Duration timeout) : fd_(std::move(fd)), timeout_(timeout) {}
  // One read or write of at most `n` bytes: the count, 0 when it would block
  // (non-blocking mode) or timed out, or an error (EOF is OUT_OF_RANGE).
  absl::StatusOr<size_t> ReadSome(char* out, size_t n);
  absl::StatusOr<size_t> WriteSome(absl::string_view data);

  UniqueFd fd_;
  absl::Duration timeout_;
  std::unique_ptr<ssl_st, SslDeleter> ssl_;  // TLS over fd_ (null: plaintext)
};

// Open fds of this process (entries of /proc/self/fd).
int CountOpenFds();

// Resident memory of this process (VmRSS of /proc/self/status), KiB; -1 when
// unreadable.
int64_t VmRssKiB();

}  // namespace netpoll::testing

#endif  // NETPOLL_TESTING_BLOCKING_CLIENT_H_
