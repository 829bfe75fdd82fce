// TlsSession: one connection's TLS state machine (OpenSSL 3) over memory
// BIOs, with no socket of its own. The connection feeds it the ciphertext
// it read and the plaintext it must send; the session returns plaintext for
// the layer above and ciphertext (records, handshake messages, alerts) for
// the socket. It never blocks and never touches an fd, so the connection's
// loop drives it like any other input:
//
//   socket --read--> Receive(wire_in) --> plaintext (input LinkBuffer)
//                                     \-> wire_out (handshake answers, tickets)
//   plaintext (written) --> Send() --> wire_out --writev--> socket
//
// TlsInfo (netpoll/tls_context.h) is what the handshake established: the
// connection publishes it (Connection::tls_info()).
//
// Thread safety: none; one thread at a time (the connection's loop).
#ifndef NETPOLL_TLS_SESSION_H_
#define NETPOLL_TLS_SESSION_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netpoll/link_buffer.h"
#include "netpoll/tls_context.h"

namespace netpoll {

class TlsSession {
 public:
  // `context` decides the role. Client: `peer_key` ("host:port") keys the
  // session cache, and `peer_ip` is matched against the server certificate
  // when the context has no server_name.
  static absl::StatusOr<std::unique_ptr<TlsSession>> Create(
      std::shared_ptr<const TlsContext> context, std::string peer_key = "",
      const std::string& peer_ip = "");
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client: the first handshake flight (ClientHello) into `wire_out`.
  // Server: nothing to do.
  absl::Status Start(LinkBuffer& wire_out);
  // Consumes all of `wire_in`: decrypted bytes are appended to `plain`, bytes
  // owed to the peer to `wire_out`. Errors name the cause (a failed
  // handshake, a bad record); OutOfRange: the peer sent close_notify.
  absl::Status Receive(LinkBuffer& wire_in, LinkBuffer& plain, LinkBuffer& wire_out);
  // After the handshake: encrypts all of `plain` (consumed) into `wire_out`.
  absl::Status Send(LinkBuffer& plain, LinkBuffer& wire_out);
  // A close_notify alert into `wire_out` (once).
  void Shutdown(LinkBuffer& wire_out);

  bool handshake_done() const { return handshake_done_; }
  bool is_server() const { return context_->is_server(); }
  // Valid once handshake_done().
  std::shared_ptr<const TlsInfo> info() const { return info_; }

 private:
  TlsSession(std::shared_ptr<const TlsContext> context, SSL* ssl, std::string peer_key);
  // Moves what OpenSSL wrote to the write BIO into `wire_out`.
  void DrainWire(LinkBuffer& wire_out);
  // Runs the handshake as far as the input allows.
  absl::Status Handshake();
  // The error of a failed SSL_* call `ret`, with the verification result.
  absl::Status ErrorOf(int ret, const char* what);
  void FillInfo();

  const std::shared_ptr<const TlsContext> context_;
  SSL* const ssl_;  // owned; owns rbio_ and wbio_
  BIO* rbio_;       // ciphertext from the peer
  BIO* wbio_;       // ciphertext to the peer
  const std::string peer_key_;
  bool handshake_done_ = false;
  bool shutdown_sent_ = false;
  std::shared_ptr<const TlsInfo> info_;
};

}  // namespace netpoll

#endif  // NETPOLL_TLS_SESSION_H_
