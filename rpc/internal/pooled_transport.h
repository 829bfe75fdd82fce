// PooledTransport: the "pooled" and "short" connection types. Each attempt
// leases a connection of its own from a netpoll::ConnectionPool, sends one
// request, and gives the connection back when the response has arrived.
//
//   pooled: the pool keeps idle connections for reuse (per-address caps, idle
//           timeout, a bounded wait queue with the call's deadline).
//   short:  the same pool with no idle connections kept: every call dials a
//           new connection, which closes after the response.
//
// Each pooled connection carries a CallSlot (its on_prepare context) that
// holds the attempt in progress and its lease. A connection whose attempt was
// abandoned with the response still in flight is never reused (the lease is
// marked broken), so a late response cannot be mistaken for the next call's.
// A response whose correlation id is not the attempt's (a duplicate, an
// unknown id) is dropped and logged (rate-limited), as on a single
// connection; a frame that cannot be decoded closes the connection.
//
// Authentication (an Authenticator given to Create()): the first request
// written on each pooled connection carries a credential, asked for when the
// attempt has its connection (so with short connections, every request).
// If the credential cannot be made the attempt fails with ERPCAUTH and the
// connection goes back unused. An ERPCAUTH answer marks the connection broken
// (the server closes it).
//
// Thread safety: every public method is safe from any thread.
#ifndef RPC_INTERNAL_POOLED_TRANSPORT_H_
#define RPC_INTERNAL_POOLED_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "netpoll/connection.h"
#include "netpoll/connection_pool.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "netpoll/socket.h"
#include "netpoll/tls_context.h"
#include "rpc/authenticator.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/transport.h"

namespace nprpc {

struct PooledTransportOptions {
  bool short_connections = false;
  absl::Duration connect_timeout = absl::Seconds(1);
  size_t max_connections_per_endpoint = 256;
  size_t max_idle_per_endpoint = 64;
  absl::Duration idle_timeout = absl::Minutes(1);
  size_t max_waiters = 4096;
  size_t max_body_size = kDefaultMaxBodySize;
  // ChannelOptions::max_unwritten_bytes and write_timeout.
  size_t max_unwritten_bytes = size_t{64} << 20;
  absl::Duration write_timeout = absl::Seconds(30);
  netpoll::TcpKeepAliveOptions keepalive{};
  // ChannelOptions::tls; null: plaintext.
  std::shared_ptr<const netpoll::TlsContext> tls{};
};

class PooledTransport : public Transport, public std::enable_shared_from_this<PooledTransport> {
 public:
  // One pool serves every endpoint of a channel. MakePool() builds one with
  // the right callbacks.
  static absl::StatusOr<std::unique_ptr<netpoll::ConnectionPool>> MakePool(
      netpoll::EventLoopGroup* group, const PooledTransportOptions& options);

  // `pool` is not owned: it must stay alive until Shutdown() has returned;
  // after that the transport never touches it. (The channel destroys the pool
  // on its own thread, never on a loop thread.)
  // `authenticator` (may be null: no credential) must be thread-safe.
  static std::shared_ptr<PooledTransport> Create(
      std::string address, netpoll::ConnectionPool* pool,
      std::shared_ptr<const Authenticator> authenticator = nullptr);
  ~PooledTransport() override;

  // One attempt in flight (defined in the .cc; shared with the connection
  // callbacks there).
  struct Attempt;

  void Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
            absl::Duration timeout) override;
  void Abandon(const ClientCallPtr& call, absl::Status status) override;
  void Shutdown() override;
  size_t in_flight() const override;

 private:
  PooledTransport(std::string address, netpoll::ConnectionPool* pool,
                  std::shared_ptr<const Authenticator> authenticator);
  void OnAcquired(const std::shared_ptr<Attempt>& attempt,
                  absl::StatusOr<netpoll::ConnectionPool::Lease> lease, netpoll::LinkBuffer frame);
  void Forget(int64_t correlation_id);
  friend struct PooledCallbacks;

  const std::string address_;
  netpoll::ConnectionPool* const pool_;                       // not owned; used until Shutdown()
  const std::shared_ptr<const Authenticator> authenticator_;  // null: none

  mutable netpoll::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Attempts in progress (acquiring or sent), by correlation id.
  absl::flat_hash_map<int64_t, std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_POOLED_TRANSPORT_H_
