// ServerConnection: the server's state of one accepted connection (the value
// of its Connection::context()): which protocol it speaks, picked from its
// first bytes by sniffing every protocol the server speaks
// (rpc/internal/protocol.h), and that protocol's session.
//
// Thread safety: loop thread only (the connection's).
#ifndef RPC_INTERNAL_SERVER_CONNECTION_H_
#define RPC_INTERNAL_SERVER_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "netpoll/connection.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/protocol.h"

namespace nprpc {

class ServerCore;

class ServerConnection {
 public:
  explicit ServerConnection(std::shared_ptr<ServerCore> core) : core_(std::move(core)) {}

  // New input: picks the protocol on the first bytes, then hands every input
  // to its session. Closes the connection for bytes no protocol claims.
  void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input);
  void OnPeerClosed(const netpoll::ConnectionPtr& conn);
  void OnClosed(const netpoll::ConnectionPtr& conn);
  // ServerSession::OnServerStopping() of its session, if it has one.
  void OnServerStopping(const netpoll::ConnectionPtr& conn);

  // The connection's ServerConnection (it must be a server connection).
  static ServerConnection& Of(netpoll::Connection& conn);
  // The same, or null for a connection without one. Any thread: the state is
  // set by on_prepare, before the connection is published to other threads,
  // and never replaced.
  static ServerConnection* Find(netpoll::Connection& conn);

  // For status pages, any thread: the protocol the connection speaks (null
  // until its first bytes picked one) and its calls in flight.
  const ServerProtocol* protocol() const { return protocol_.load(std::memory_order_acquire); }
  int64_t calls_in_flight() const { return calls_in_flight_.load(std::memory_order_relaxed); }
  // ServerCall: a call of this connection was admitted / answered. Any thread.
  void AddCallInFlight(int64_t delta) {
    calls_in_flight_.fetch_add(delta, std::memory_order_relaxed);
  }

 private:
  const std::shared_ptr<ServerCore> core_;
  std::shared_ptr<ServerSession> session_;  // null until sniffed
  std::atomic<const ServerProtocol*> protocol_{nullptr};
  std::atomic<int64_t> calls_in_flight_{0};
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_SERVER_CONNECTION_H_
