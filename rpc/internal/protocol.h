// The protocol seam of the server: one port, many protocols.
//
//                      netpoll::Server (one port)
//                                |  bytes of one connection
//                                v
//            ServerConnection: Sniff() each registered protocol on the first
//            bytes (mine / not mine / need more); unknown bytes close it
//                                |
//                                v  ServerProtocol::NewSession()
//            ServerSession (per connection, one protocol): parse frames out of
//            the LinkBuffer (zero-copy), per-connection limits, then
//                                |  ServerCore::Lookup / Acquire / Start
//                                v
//            ServerCore (protocol-independent): services and methods,
//            concurrency limits, deadlines, worker pool, stats, shutdown
//                                |  ServerCall::Run() on a worker or the loop
//                                v
//            the handler -> ServerCall::Complete() -> the protocol's
//            ServerCall subclass encodes the answer -> Connection::Write
//
// A protocol owns only its bytes: how a request is recognised, cut, parsed
// (decompressed) into the request message, and how an answer is encoded.
// Everything every protocol shares lives in ServerCore and ServerCall.
// baidu_std (rpc/internal/baidu_std_protocol.h) is the first protocol;
// HTTP/1.1, HTTP/2 (gRPC) and TLS come next.
//
// Thread safety: a ServerProtocol is immutable after registration and used
// from every loop thread. A ServerSession belongs to its connection's loop
// thread: every method runs there.
#ifndef RPC_INTERNAL_PROTOCOL_H_
#define RPC_INTERNAL_PROTOCOL_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "netpoll/connection.h"
#include "netpoll/link_buffer.h"

namespace nprpc {

class ServerCore;

// Is this connection's first input mine?
enum class SniffResult { kMine, kNotMine, kNeedMore };

// One connection speaking one protocol. Loop thread only.
class ServerSession {
 public:
  virtual ~ServerSession() = default;
  // New input: consume what can be handled now; leave a partial frame.
  virtual void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) = 0;
  // A call of this connection completed: its answer is queued (or dropped).
  // `held_bytes` is what the session charged for it (ServerCall::held_bytes),
  // to give back to the memory budget.
  virtual void OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) = 0;
  // The peer closed its write side after its last input.
  virtual void OnPeerClosed(const netpoll::ConnectionPtr& conn) = 0;
  // The connection closed (any reason); nothing arrives after this.
  virtual void OnClosed(const netpoll::ConnectionPtr& conn) = 0;
  // The server began a graceful shutdown (new calls are refused from now
  // on): a protocol that can say so tells its peer (HTTP/2 GOAWAY).
  virtual void OnServerStopping(const netpoll::ConnectionPtr& /*conn*/) {}
};

class ServerProtocol {
 public:
  virtual ~ServerProtocol() = default;
  // "baidu_std", ...
  virtual absl::string_view name() const = 0;
  // Looks at (never consumes) the first bytes of a connection.
  virtual SniffResult Sniff(const netpoll::LinkBuffer& input) const = 0;
  // The session for a connection this protocol recognised. Loop thread.
  virtual std::shared_ptr<ServerSession> NewSession(std::shared_ptr<ServerCore> core,
                                                    const netpoll::ConnectionPtr& conn) const = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_PROTOCOL_H_
