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
// OpenSSL reads and writes the LinkBuffers through BIO methods of our own
// (no memory BIO, no extra copy), and only whole records: a record still
// arriving waits in wire_in, which the connection charges to its memory
// budget, so OpenSSL's buffers are freed after each call
// (SSL_MODE_RELEASE_BUFFERS).
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
  // What a session holds in OpenSSL once established, charged to the memory
  // budget with its connection: a client and a server session together held
  // 45 KiB (peer certificate, keys, resumption tickets; tls_test measures it
  // with counting allocation functions and checks it stays within this).
  static constexpr size_t kHeldBytes = 24 << 10;

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
  // Consumes the whole records of `wire_in` (a record still arriving stays
  // there): decrypted bytes are appended to `plain`, bytes owed to the peer
  // to `wire_out`. Errors name the cause (a failed handshake, a bad record);
  // OutOfRange: the peer sent close_notify.
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
  struct Bio;  // the BIO methods over wire_in_ and wire_out_
  class Io;    // sets wire_in_ and wire_out_ for one call

  TlsSession(std::shared_ptr<const TlsContext> context, SSL* ssl, std::string peer_key);
  // Whether wire_in_ holds the rest of the current record, or a whole next
  // one (which then becomes current).
  bool WholeRecordAvailable();
  // Runs the handshake as far as the input allows.
  absl::Status Handshake();
  // The error of a failed SSL_* call `ret`, with the verification result.
  absl::Status ErrorOf(int ret, const char* what);
  void FillInfo();

  const std::shared_ptr<const TlsContext> context_;
  SSL* const ssl_;  // owned; owns its BIOs, which read wire_in_ and write wire_out_
  const std::string peer_key_;
  // The buffers of the call in progress (Io); null between calls.
  LinkBuffer* wire_in_ = nullptr;
  LinkBuffer* wire_out_ = nullptr;
  // Bytes of the current record OpenSSL has not read yet.
  size_t record_left_ = 0;
  bool handshake_done_ = false;
  bool shutdown_sent_ = false;
  std::shared_ptr<const TlsInfo> info_;
};

}  // namespace netpoll

#endif  // NETPOLL_TLS_SESSION_H_
